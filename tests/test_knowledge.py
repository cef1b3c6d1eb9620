"""The shipped help centre: what the issue asks of it, and that search finds the right article in it."""

from __future__ import annotations

import json
from collections import Counter
from datetime import date
from pathlib import Path

import frontmatter
import pytest

from ingest.parse import parse
from ingest.sources import Source
from kb_engine.config import Settings
from kb_engine.engine import AnswerEngine
from kb_engine.runtime import Runtime
from tests.conftest import KNOWLEDGE


@pytest.fixture(scope="module")
def documents() -> list:  # type: ignore[type-arg]
    settings = Settings()
    source = Source(KNOWLEDGE, settings.include, settings.exclude, 20_000_000)
    docs = []
    for path in source.files():
        for raw in source.read(path):
            assert not hasattr(raw, "error"), raw
            docs.append(parse(raw))
    return docs


def test_the_help_centre_covers_what_support_needs(documents: list) -> None:  # type: ignore[type-arg]
    articles = [d for d in documents if d.meta.doc_type == "article"]
    policies = [d for d in documents if d.meta.doc_type == "policy"]
    by_audience = Counter(d.meta.audience for d in articles)
    assert len(articles) >= 70 and by_audience["buyer"] >= 40 and by_audience["seller"] >= 25
    assert len({d.meta.doc_id.removesuffix("-2024") for d in policies}) >= 8
    assert len({d.meta.doc_id for d in documents}) == len(documents)
    formats = Counter(Path(d.meta.source.split("#")[0]).suffix for d in documents)
    assert formats[".docx"] >= 2 and formats[".pdf"] >= 2 and formats[".html"] >= 3 and formats[".jsonl"] >= 1
    for d in documents:
        words = len(d.text.split())
        assert 150 <= words <= 950, (d.meta.source, words)
        assert d.meta.url and d.meta.url.startswith("https://help.samobranka.example/")
        assert d.meta.updated and d.meta.category != "general"


def test_one_policy_has_an_expired_and_a_current_version(documents: list) -> None:  # type: ignore[type-arg]
    returns = {d.meta.doc_id: d.meta for d in documents if d.meta.doc_id.startswith("policy-returns")}
    old, new = returns["policy-returns-2024"], returns["policy-returns"]
    assert old.valid_until and old.valid_until < date.today() and new.valid_from and not new.valid_until
    assert new.valid_from > old.valid_until


def test_markdown_front_matter_has_the_house_keys() -> None:
    for path in KNOWLEDGE.rglob("*.md"):
        if "_editorial" in path.parts:
            continue
        meta = frontmatter.load(path).metadata
        assert {"id", "title", "audience", "category", "url", "updated"} <= set(meta), path
        assert meta["audience"] in {"buyer", "seller", "all"}, path


def test_export_lines_are_articles() -> None:
    for line in (KNOWLEDGE / "exports/faq-export.jsonl").read_text(encoding="utf-8").splitlines():
        record = json.loads(line)
        assert {"id", "title", "audience", "category", "url", "updated", "body"} <= set(record)


CASES = [
    ("сколько дней хранится заказ в пункте выдачи", "buyer", "7 календарных дней"),
    ("не проходит оплата картой что делать", "buyer", "3-D Secure"),
    ("через сколько вернутся деньги на карту после возврата", "buyer", "10 рабочих дней"),
    ("сколько стоит курьерская доставка", "buyer", "199 ₽"),
    ("можно ли вернуть нижнее бельё", "buyer", "нижнее бельё"),
    ("как активировать подарочную карту", "buyer", "Активировать подарочную карту"),
    ("когда приходят выплаты продавцу", "seller", "сред"),
    ("какая комиссия на одежду по FBO", "seller", "15%"),
    ("штраф за отмену заказа FBS", "seller", "10%"),
    ("требования к фото товара размер", "seller", "900×1200"),
    ("за сколько часов собрать заказ FBS", "seller", "48 час"),
]


@pytest.mark.parametrize(("query", "audience", "fact"), CASES)
def test_search_finds_the_fact_in_the_top_five(
    knowledge_rt: Runtime, query: str, audience: str, fact: str
) -> None:
    searcher = AnswerEngine(
        knowledge_rt.settings, knowledge_rt.index, knowledge_rt.embedder, knowledge_rt.sparse
    )
    hits = searcher.search(query, audience=audience, top_k=5)  # type: ignore[arg-type]
    assert any(fact in h.text for h in hits), [(h.doc_id, h.text[:80]) for h in hits]
    assert all(h.audience in {audience, "all"} for h in hits)


def test_expired_policy_version_is_used_only_for_its_own_dates(knowledge_rt: Runtime) -> None:
    searcher = AnswerEngine(
        knowledge_rt.settings, knowledge_rt.index, knowledge_rt.embedder, knowledge_rt.sparse
    )
    query = "политика возврата срок возврата товара надлежащего качества"
    today = {h.doc_id for h in searcher.search(query, top_k=10)}
    assert "policy-returns" in today and "policy-returns-2024" not in today
    in_2025 = {h.doc_id for h in searcher.search(query, top_k=10, as_of=date(2025, 5, 1))}
    assert "policy-returns-2024" in in_2025 and "policy-returns" not in in_2025


def test_reingesting_the_help_centre_is_a_no_op(knowledge_rt: Runtime) -> None:
    from tests.conftest import ingest

    points = knowledge_rt.index.count()
    report = ingest(knowledge_rt, KNOWLEDGE)
    assert report.new == report.changed == report.deleted == [] and report.chunks_embedded == 0
    assert knowledge_rt.index.count() == points
