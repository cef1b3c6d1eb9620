"""Bad files are reported with a reason and skipped; everything else is ingested; exit code says so."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from kb_engine.runtime import Runtime
from tests.conftest import ROOT, article, ingest, write

GOOD = "Курьер ждёт на адресе 15 минут. Если вас нет, доставку можно перенести один раз бесплатно."


def bad_corpus(root: Path) -> dict[str, str]:
    """Each kind of bad file, with the reason the report must give."""
    write(root / "good.md", article("good", "Курьерская доставка", GOOD))
    write(root / "cp1251.md", article("cp", "Доставка", GOOD), encoding="cp1251")
    (root / "empty.md").write_bytes(b"")
    write(root / "only-front-matter.md", article("fm", "Пусто", ""))
    (root / "broken.docx").write_bytes(b"PK\x03\x04 this is not really a zip archive")
    with zipfile.ZipFile(root / "not-word.docx", "w") as z:
        z.writestr("hello.txt", "a zip, but not a Word document")
    (root / "broken.pdf").write_bytes(b"%PDF-1.4\n%%garbage without objects\n")
    (root / "binary.txt").write_bytes(b"\x00\x01\x02\xff\xfe" * 200)
    (root / "big.md").write_bytes(b"a" * 1_200_000)
    write(root / "bad-meta.md", "---\nid: x\naudience: everyone\n---\nТекст статьи про доставку.")
    write(root / "bad-yaml.md", "---\nid: [x\n---\nТекст")
    write(
        root / "export.jsonl",
        json.dumps({"id": "j1", "title": "Из выгрузки", "body": GOOD}, ensure_ascii=False)
        + "\n{not json}\n"
        + '{"id": "j3"}\n',
    )
    return {
        "empty.md": "empty",
        "only-front-matter.md": "empty",
        "broken.docx": "corrupt",
        "not-word.docx": "corrupt",
        "broken.pdf": "corrupt",
        "binary.txt": "undecodable",
        "big.md": "too-large",
        "bad-meta.md": "corrupt",
        "bad-yaml.md": "corrupt",
        "export.jsonl#2": "corrupt",
        "export.jsonl#3": "empty",
    }


def test_each_bad_file_is_reported_and_the_rest_ingested(runtime: Runtime, tmp_path: Path) -> None:
    expected = bad_corpus(tmp_path / "kb")
    settings = runtime.settings.model_copy(update={"max_file_mb": 1.0})
    runtime.settings = settings
    report = ingest(runtime, tmp_path / "kb")
    assert {f.source: f.reason for f in report.failed} == expected
    assert all(f.message for f in report.failed)
    assert sorted(report.new) == ["cp", "good", "j1"]


def test_unsupported_file_given_directly(runtime: Runtime, tmp_path: Path) -> None:
    path = write(tmp_path / "notes.rtf", "{\\rtf1 text}")
    report = ingest(runtime, path)
    assert [(f.source, f.reason) for f in report.failed] == [("notes.rtf", "unsupported")]


def test_cli_exit_codes_and_reasons(tmp_path: Path) -> None:
    bad_corpus(tmp_path / "kb")
    env = {**os.environ, "KB_DATA_DIR": str(tmp_path / "var"), "KB_MAX_FILE_MB": "1", "COLUMNS": "200"}
    run = subprocess.run(
        [sys.executable, "-m", "kb_engine.cli", "ingest", str(tmp_path / "kb"), "--json"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 1, run.stderr
    report = json.loads(run.stdout)
    assert report["new"] == 3 and len(report["failed"]) == 11
    assert "failed" in run.stderr

    missing = subprocess.run(
        [sys.executable, "-m", "kb_engine.cli", "ingest", str(tmp_path / "nope")],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert missing.returncode == 2
    assert "no such file or directory" in missing.stderr and "Traceback" not in missing.stderr

    bad_setting = subprocess.run(
        [sys.executable, "-m", "kb_engine.cli", "search", "доставка"],
        env={**env, "KB_CHUNK_TARGET_TOKENS": "5000"},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert bad_setting.returncode == 2 and "KB_CHUNK_TARGET_TOKENS" in bad_setting.stderr


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "cp1251", "koi8-r"])
def test_text_encodings_are_detected(runtime: Runtime, tmp_path: Path, encoding: str) -> None:
    text = article(
        "enc", "Возврат денег", "Деньги за возврат приходят на карту в течение 10 рабочих дней. " * 3
    )
    write(tmp_path / "kb/enc.md", text, encoding=encoding)
    report = ingest(runtime, tmp_path / "kb")
    assert report.ok and report.new == ["enc"]
    hits = runtime.index.documents(f"dir:{(tmp_path / 'kb').resolve()}")
    assert "enc" in hits
