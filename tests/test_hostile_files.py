"""Hostile files are refused with a reason, cheaply; the rest of the batch is ingested and found.

Bombs are built small and fast: the DOCX one only just passes the real 50 MB limit, and for the
PDF ones the limits are lowered, so what is tested is that the check runs before the expensive
step (memory is measured with tracemalloc), not that the machine survives a gigabyte.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import time
import tracemalloc
import zipfile
import zlib
from pathlib import Path

import pytest

import ingest.guards as guards
import ingest.pdf as pdf
import ingest.pdf_decode as pdf_decode
from ingest.parse import parse
from ingest.sources import RawDocument
from kb_engine.engine import AnswerEngine
from kb_engine.runtime import Runtime
from tests.conftest import ROOT, article, ingest, write

COURIER = "Курьер ждёт на адресе 15 минут. Если вас нет, доставку можно перенести один раз бесплатно."
PICKUP = "Заказ хранится в пункте выдачи 7 дней, срок хранения можно продлить ещё на 3 дня."
EXPORT = "Подарочный сертификат действует 12 месяцев с даты покупки и не обменивается на деньги."
SECRET = "Секретное слово жирафоконь из файла вне базы знаний."


# --- building hostile files ---


def docx_bomb(path: Path, unpacked_mb: int) -> None:
    """A real DOCX whose document.xml is ``unpacked_mb`` MB of spaces: about 1 KB per MB on disk."""
    with zipfile.ZipFile(ROOT / "knowledge/policies/seller-offer.docx") as src:
        parts = [(info, src.read(info)) for info in src.infolist() if info.filename != "word/document.xml"]
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for info, data in parts:
            z.writestr(info, data)
        with z.open("word/document.xml", "w", force_zip64=True) as f:
            f.write(b'<?xml version="1.0"?><w:document xmlns:w="urn:w"><w:body><w:p><w:r><w:t>')
            block = b" " * 1_000_000
            for _ in range(unpacked_mb):
                f.write(block)
            f.write(b"</w:t></w:r></w:p></w:body></w:document>")


def build_pdf(objects: list[bytes]) -> bytes:
    """A minimal PDF: objects numbered from 1 (1 is the catalog), with a correct xref table."""
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for n, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % n + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)


def stream(data: bytes, extra: bytes = b"") -> bytes:
    return b"<< /Length %d %s >>\nstream\n" % (len(data), extra) + data + b"\nendstream"


def text_pdf(pages: list[bytes]) -> bytes:
    """One page per content stream (already wrapped with ``stream``), Helvetica as F1."""
    kids = b" ".join(b"%d 0 R" % (4 + 2 * i) for i in range(len(pages)))
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [%s] /Count %d >>" % (kids, len(pages)),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    for i, content in enumerate(pages):
        objects.append(
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
            b"/Resources << /Font << /F1 3 0 R >> >> /Contents %d 0 R >>" % (5 + 2 * i)
        )
        objects.append(content)
    return build_pdf(objects)


def page(text: str) -> bytes:
    return stream(b"BT /F1 12 Tf 72 700 Td (%s) Tj ET" % text.encode("latin-1"))


def flate_bomb(unpacked_mb: int) -> bytes:
    z = zlib.compressobj(9)
    block = b" " * 1_000_000
    return b"".join([*(z.compress(block) for _ in range(unpacked_mb)), z.flush()])


def hostile_corpus(root: Path, outside: Path) -> dict[str, str]:
    """Good files and every kind of hostile one; returns the reason the report must give each."""
    write(root / "good.md", article("courier", "Курьерская доставка", COURIER))
    write(
        root / "good.html",
        "<html><head><title>Пункт выдачи</title><meta name='id' content='pickup'></head><body>"
        f"<article><h1>Пункт выдачи</h1><p>{PICKUP}<p>Второй абзац без закрывающего тега."
        "<ul><li>первый пункт<li>второй пункт</ul></article></body></html>",
    )
    good_line = {"id": "gift-cards", "title": "Сертификаты", "body": EXPORT}
    lines = [
        good_line,
        {"id": "../../etc/passwd", "body": EXPORT},
        {"id": "a/b", "body": EXPORT},
        {"id": "a\\b", "body": EXPORT},
        {"id": "nul\x00byte", "body": EXPORT},
        {"id": "bell\x07", "body": EXPORT},
        {"id": "x" * 10_000, "body": EXPORT},
        {**good_line, "body": "Повтор того же id в той же выгрузке."},
        {"id": "сертификат:возврат", "title": "Возврат сертификата", "body": "Сертификат вернуть нельзя."},
    ]
    write(root / "export.jsonl", "\n".join(json.dumps(x, ensure_ascii=False) for x in lines) + "\n")
    write(root / "front-matter-id.md", article("../../escape", "Побег", COURIER))

    docx_bomb(root / "bomb.docx", 60)
    write(
        root / "deep.html", "<html><body>" + "<div>" * 100_000 + "x" + "</div>" * 100_000 + "</body></html>"
    )
    write(root / "unclosed.html", "<html><body>" + "<div><span>" * 50_000 + "x")
    write(root / "deep-quotes.md", "> " * 300 + "цитата в цитате\n\nТекст после цитаты.")
    write(root / "nested-lists.md", "- " * 3000 + "пункт")
    write(root / "slow.md", "[слово " * 6000)

    with open(root / "huge.pdf", "wb") as f:  # sparse: 200 MB by size, no disk used
        f.write(b"%PDF-1.4\n")
        f.truncate(200 * 1024 * 1024)
    (root / "bomb.pdf").write_bytes(text_pdf([stream(flate_bomb(16), b"/Filter /FlateDecode")]))
    (root / "many-pages.pdf").write_bytes(text_pdf([page(f"Page {i}") for i in range(5)]))

    rnd = random.Random(7)
    (root / "random.md").write_bytes(rnd.randbytes(20_000))
    (root / "elf.md").write_bytes(b"\x7fELF\x02\x01\x01\x00" + rnd.randbytes(4_000))
    (root / "png.md").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + rnd.randbytes(4_000))
    (root / "controls.md").write_bytes(bytes(rnd.randrange(1, 128) for _ in range(4_000)))

    write(outside / "secret.md", article("secret", "Секрет", SECRET))
    (root / "passwd.md").symlink_to("/etc/passwd")
    (root / "secret.md").symlink_to(outside / "secret.md")
    (root / "outside-dir").symlink_to(outside, target_is_directory=True)
    (root / "inside-link.md").symlink_to(root / "good.md")  # inside the tree: followed
    (root / "linked-meta.pdf").write_bytes(text_pdf([page("Policy")]))
    (root / "linked-meta.pdf.meta.yaml").symlink_to("/etc/passwd")
    expected = {
        "export.jsonl#2": "unsafe",
        "export.jsonl#3": "unsafe",
        "export.jsonl#4": "unsafe",
        "export.jsonl#5": "unsafe",
        "export.jsonl#6": "unsafe",
        "export.jsonl#7": "unsafe",
        "export.jsonl#8": "duplicate-id",
        "front-matter-id.md": "unsafe",
        "bomb.docx": "unsafe",
        "deep.html": "unsafe",
        "unclosed.html": "unsafe",
        "deep-quotes.md": "unsafe",
        "nested-lists.md": "unsafe",
        "slow.md": "timeout",
        "huge.pdf": "too-large",
        "bomb.pdf": "unsafe",
        "many-pages.pdf": "too-large",
        "random.md": "undecodable",
        "elf.md": "undecodable",
        "png.md": "undecodable",
        "controls.md": "undecodable",
        "passwd.md": "unsafe",
        "secret.md": "unsafe",
        "inside-link.md": "duplicate-id",
        "linked-meta.pdf": "unsafe",
    }
    if hasattr(os, "mkfifo"):
        os.mkfifo(root / "pipe.md")
        (root / "piped-meta.pdf").write_bytes(text_pdf([page("Policy")]))
        os.mkfifo(root / "piped-meta.pdf.meta.yaml")  # reading it would wait for a writer forever
        expected |= {"pipe.md": "unsupported", "piped-meta.pdf": "unsupported"}
    return expected


@pytest.fixture
def small_limits(monkeypatch: pytest.MonkeyPatch) -> None:
    """Limits low enough that small test files cross them; parsers warmed up first, so that the
    time limit measures parsing, not imports."""
    for fmt, data in (("md", "# Т\n\nтекст".encode()), ("html", b"<p>text</p>")):
        parse(RawDocument(f"warm.{fmt}", fmt, data))
    monkeypatch.setattr(guards, "PARSE_SECONDS", 2.0)
    monkeypatch.setattr(guards, "PARSE_SECONDS_PER_MB", 0.0)
    monkeypatch.setattr(pdf_decode, "MAX_DECODED_BYTES", 8_000_000)
    monkeypatch.setattr(pdf, "MAX_PAGES", 3)


@pytest.mark.usefixtures("small_limits")
def test_hostile_files_are_refused_and_the_rest_is_answerable(runtime: Runtime, tmp_path: Path) -> None:
    expected = hostile_corpus(tmp_path / "kb", tmp_path / "outside")
    started = time.perf_counter()
    report = ingest(runtime, tmp_path / "kb")
    assert time.perf_counter() - started < 60  # minutes, or an OOM kill, before the checks

    failed = {f.source: f for f in report.failed}
    assert {s: f.reason for s, f in failed.items()} == expected
    assert "zip bomb" in failed["bomb.docx"].message and "61 MB (limit 50 MB)" in failed["bomb.docx"].message
    assert "decompression bomb" in failed["bomb.pdf"].message
    assert "'../../etc/passwd' is not allowed" in failed["export.jsonl#2"].message
    assert "10000 characters" in failed["export.jsonl#7"].message
    assert "/etc/passwd" in failed["passwd.md"].message and "not followed" in failed["passwd.md"].message
    assert "PNG" in failed["png.md"].message and "ELF" in failed["elf.md"].message
    assert "export.jsonl#1" in failed["export.jsonl#8"].message
    assert sorted(report.new) == ["courier", "gift-cards", "pickup", "сертификат:возврат"]

    engine = AnswerEngine(runtime.settings, runtime.index, runtime.embedder, runtime.sparse)
    for question, doc_id in (
        ("сколько курьер ждёт на адресе", "courier"),
        ("сколько дней хранится заказ в пункте выдачи", "pickup"),
        ("срок действия подарочного сертификата", "gift-cards"),
    ):
        assert engine.search(question, top_k=1)[0].doc_id == doc_id
    everything = engine.search("секретное слово жирафоконь root bin bash", top_k=50)
    assert not any("жирафоконь" in p.text or "root:" in p.text for p in everything)


@pytest.mark.parametrize(
    "doc_id", ["buyer-returns", "policy_2024.v2", "faq:доставка", "miracl#12", "Ёлка-1", "a" * 200]
)
def test_good_ids_pass(doc_id: str) -> None:
    assert guards.check_doc_id(doc_id) == doc_id


@pytest.mark.parametrize(
    "doc_id",
    [
        "../../etc/passwd",
        "..",
        "a..b",
        "a/b",
        "/abs",
        "a\\b",
        "a\x00b",
        "a\tb",
        "a b",
        "a\u200bb",
        "a" * 201,
        " ",
    ],
)
def test_bad_ids_are_refused(doc_id: str) -> None:
    with pytest.raises(guards.UnsafeDocument):
        guards.check_doc_id(doc_id)


def test_docx_bomb_is_refused_before_unpacking(tmp_path: Path) -> None:
    docx_bomb(tmp_path / "bomb.docx", 60)
    data = (tmp_path / "bomb.docx").read_bytes()
    assert len(data) < 200_000
    parse(RawDocument("warm.md", "md", "текст".encode()))
    tracemalloc.start()
    try:
        with pytest.raises(guards.UnsafeDocument, match="zip bomb"):
            parse(RawDocument("bomb.docx", "docx", data))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 5_000_000


def test_docx_part_with_a_bomb_ratio_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(guards, "ZIP_RATIO_MIN_BYTES", 1_000_000)
    docx_bomb(tmp_path / "bomb.docx", 20)  # under the 50 MB total, but 1000:1
    with pytest.raises(guards.UnsafeDocument, match=r"expands \d+ times"):
        guards.check_docx((tmp_path / "bomb.docx").read_bytes())


def test_pdf_bomb_stops_at_the_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pdf_decode, "MAX_DECODED_BYTES", 8_000_000)
    data = text_pdf([page("Fine page"), stream(flate_bomb(64), b"/Filter /FlateDecode")])
    assert pdf.pdf_elements(text_pdf([page("Warm up")]))
    tracemalloc.start()
    try:
        with pytest.raises(guards.UnsafeDocument, match="more than 8 MB"):
            pdf.pdf_elements(data)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 40_000_000


@pytest.mark.parametrize("seed", range(3))
def test_bounded_decoders_decode_like_pdfminer(seed: int) -> None:
    from pdfminer.lzw import lzwdecode
    from pdfminer.runlength import rldecode

    rnd = random.Random(seed)
    plain = b"".join(
        rnd.choice([b"BT ", b"(text) Tj ", b"ET\n", bytes([rnd.randrange(256)]) * 40]) for _ in range(500)
    )
    packed = zlib.compress(plain)
    runs = bytes([255, 65, 2, 1, 2, 3, 200, 0, 9, *b"0123456789", 128])
    lzw = bytes.fromhex("800b6050220c0c8501")  # "-----A---B" from the PDF reference, 3.3.3
    with pdf_decode.decode_budget():
        assert pdf_decode._BoundedZlib.decompress(packed) == zlib.decompress(packed)
        assert pdf_decode._BoundedZlib.decompress(packed + b"junk") == plain
        with pytest.raises(zlib.error):
            pdf_decode._BoundedZlib.decompress(packed[:-10])
        assert pdf_decode._rldecode(runs) == rldecode(runs)
        assert pdf_decode._lzwdecode(lzw) == lzwdecode(lzw) == b"-----A---B"


def test_time_limit_stops_python_code_and_leaves_no_stray_exception() -> None:
    assert guards.time_limit(5, lambda: 42) == 42

    def spin() -> None:
        while True:
            pass

    started = time.perf_counter()
    with pytest.raises(guards.ParseTimeout):
        guards.time_limit(0.3, spin)
    assert time.perf_counter() - started < 3
    time.sleep(0.5)  # a late watchdog would raise here
    assert sum(range(1000)) == 499500


def test_unclosed_paragraphs_and_list_items_still_parse() -> None:
    html = "<html><body>" + "<p>абзац <li>пункт " * 2000 + "</body></html>"
    doc = parse(RawDocument("sloppy.html", "html", html.encode()))
    assert doc.text.count("абзац") == 2000


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs named pipes")
def test_cli_lists_hostile_files_and_exits_1(tmp_path: Path) -> None:
    root = tmp_path / "kb"
    write(root / "good.md", article("courier", "Курьерская доставка", COURIER))
    write(root / "export.jsonl", json.dumps({"id": "../../etc/passwd", "body": EXPORT}) + "\n")
    write(root / "deep.html", "<div>" * 100_000)
    docx_bomb(root / "bomb.docx", 60)
    (root / "elf.md").write_bytes(b"\x7fELF\x02\x01\x01\x00" + bytes(1000))
    (root / "passwd.md").symlink_to("/etc/passwd")
    os.mkfifo(root / "pipe.md")
    with open(root / "huge.pdf", "wb") as f:
        f.write(b"%PDF-1.4\n")
        f.truncate(200 * 1024 * 1024)
    env = {**os.environ, "KB_DATA_DIR": str(tmp_path / "var"), "COLUMNS": "200"}
    run = subprocess.run(
        [sys.executable, "-m", "kb_engine.cli", "ingest", str(root), "--json"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 1, run.stderr
    report = json.loads(run.stdout)
    assert report["new"] == 1
    assert {f["source"]: f["reason"] for f in report["failed"]} == {
        "export.jsonl#1": "unsafe",
        "deep.html": "unsafe",
        "bomb.docx": "unsafe",
        "elf.md": "undecodable",
        "passwd.md": "unsafe",
        "pipe.md": "unsupported",
        "huge.pdf": "too-large",
    }
    assert "Traceback" not in run.stderr
