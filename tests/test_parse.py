"""Parsing: metadata from every place it can live, heading paths, steps and tables kept readable."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from ingest.parse import parse
from ingest.sources import RawDocument, Source, glob_match
from kb_engine.config import Settings
from tests.conftest import KNOWLEDGE, write


def read_one(root: Path, rel: str) -> RawDocument:
    source = Source(root, ["**/*"], [], 10**8)
    (item,) = list(source.read(root / rel))
    assert isinstance(item, RawDocument), item
    return item


def test_markdown_without_front_matter_gets_its_id_and_title_from_the_file(tmp_path: Path) -> None:
    write(
        tmp_path / "faq/cancel.md",
        "# Как отменить заказ\n\nОткройте заказ.\n\n## Если уже в пути\n\nОткажитесь.\n",
    )
    doc = parse(read_one(tmp_path, "faq/cancel.md"))
    assert (doc.meta.doc_id, doc.meta.source, doc.meta.title) == (
        "faq/cancel",
        "faq/cancel.md",
        "Как отменить заказ",
    )
    assert doc.meta.audience == "all" and doc.meta.locale == "ru"
    assert [(s.path, s.blocks) for s in doc.sections] == [
        ((), ["Откройте заказ."]),
        (("Если уже в пути",), ["Откажитесь."]),
    ]


def test_numbered_steps_keep_their_numbers_and_tables_their_rows(tmp_path: Path) -> None:
    write(
        tmp_path / "a.md",
        "---\nid: a\ntitle: Т\n---\n## Шаги\n\n1. Откройте Профиль.\n2. Нажмите «Вернуть».\n\n"
        "- условие\n\n| Категория | FBO |\n|---|---|\n| Книги | 10% |\n",
    )
    (section,) = parse(read_one(tmp_path, "a.md")).sections
    assert section.path == ("Шаги",)
    assert section.blocks == [
        "1. Откройте Профиль.",
        "2. Нажмите «Вернуть».",
        "- условие",
        "Категория | FBO\nКниги | 10%",
    ]


def test_html_export_metadata_and_noise(tmp_path: Path) -> None:
    doc = parse(read_one(KNOWLEDGE, "exports/helpdesk/contact-support.html"))  # windows-1251
    assert doc.meta.doc_id == "buyer-account-contact-support" and doc.meta.audience == "all"
    assert doc.meta.url == "https://help.samobranka.example/contact-support"
    assert "Профиль → Помощь" in doc.text  # &rarr; and cp1251 both decoded
    assert "Была ли статья полезна" not in doc.text  # footer dropped
    assert all(s.path[0] != doc.meta.title for s in doc.sections if s.path)


def test_docx_and_pdf_sections_follow_their_headings() -> None:
    offer = parse(read_one(KNOWLEDGE, "policies/seller-offer.docx"))
    assert offer.meta.doc_id == "policy-seller-offer" and offer.meta.doc_type == "policy"
    assert ("1. Общие положения",) in [s.path for s in offer.sections]
    payouts = parse(read_one(KNOWLEDGE, "policies/seller-payouts-regulations.pdf"))
    paths = [s.path for s in payouts.sections]
    assert ("2. Расчётный период и график выплат",) in paths
    clauses = next(s for s in payouts.sections if s.path == ("2. Расчётный период и график выплат",)).blocks
    assert clauses[0].startswith("2.1. ") and all(b[0].isdigit() for b in clauses)
    assert "стр." not in payouts.text  # running footers dropped


def test_policy_versions_carry_their_validity() -> None:
    old = parse(read_one(KNOWLEDGE, "policies/returns-policy-2024.md")).meta
    assert (old.valid_from, old.valid_until) == (date(2024, 6, 1), date(2026, 2, 28))


@pytest.mark.parametrize(
    ("path", "pattern", "hit"),
    [
        ("a.md", "**/*.md", True),
        ("x/y/a.md", "**/*.md", True),
        ("x/a.mdx", "**/*.md", False),
        ("_editorial/facts.md", "**/_*/**", True),
        ("buyers/_drafts/a.md", "**/_*/**", True),
        ("buyers/a_b.md", "**/_*/**", False),
        ("p/offer.docx.meta.yaml", "**/*.meta.yaml", True),
        ("sellers/x.md", "sellers/*", True),
        ("sellers/x/y.md", "sellers/*", False),
    ],
)
def test_globs(path: str, pattern: str, hit: bool) -> None:
    assert glob_match(path, pattern) is hit


def test_default_globs_take_content_and_skip_editorial_files() -> None:
    settings = Settings()
    files = {
        p.relative_to(KNOWLEDGE).as_posix()
        for p in Source(KNOWLEDGE, settings.include, settings.exclude, 10**8).files()
    }
    assert "_editorial/facts.md" not in files
    assert not any(f.endswith(".meta.yaml") for f in files)
    assert {"policies/seller-offer.docx", "exports/faq-export.jsonl"} <= files
