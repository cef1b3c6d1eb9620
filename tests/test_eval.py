"""Eval metrics on known cases, and a run over a small golden set with the real engine."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from eval.dataset import load
from eval.metrics.facts import contains_fact, key_fact_recall
from eval.metrics.retrieval import hit_at, mrr_at, ndcg_at, recall_at
from eval.runner import run, summarise
from kb_engine.engine import AnswerEngine
from kb_engine.errors import ConfigError
from kb_engine.runtime import Runtime


def test_retrieval_metrics() -> None:
    ranked = ["a", "b", "c", "d"]
    assert hit_at(ranked, {"c"}, 1) == 0 and hit_at(ranked, {"c"}, 3) == 1
    assert mrr_at(ranked, {"c"}) == pytest.approx(1 / 3) and mrr_at(ranked, {"z"}) == 0
    assert ndcg_at(ranked, {"a"}) == 1.0 and 0 < ndcg_at(ranked, {"b", "d"}) < 1
    assert recall_at(ranked, {"a", "z"}, 5) == 0.5


@pytest.mark.parametrize(
    ("answer", "fact", "found"),
    [
        ("Вернуть можно в течение 14 календарных дней.", "14 календарных дней", True),
        ("Курьер бесплатно от 3000 ₽", "от 3 000 ₽", True),
        ("Возврат товара оформляется в приложении", "вернуть товар", True),  # word family
        ("Заказ хранится 7 дней", "Ждёт в пункте выдачи", False),
        ("Откройте «Профиль → Заказы»", "Профиль → Заказы", True),
    ],
)
def test_key_facts_match_russian_forms(answer: str, fact: str, found: bool) -> None:
    assert contains_fact(answer, fact) is found


def test_key_fact_recall_is_a_share() -> None:
    assert key_fact_recall("7 календарных дней, продлить на 3 дня", ["7 календарных дней", "5 дней"]) == 0.5
    assert key_fact_recall("что угодно", []) is None


MINI = [
    {
        "id": "m-1",
        "question": "скока дней заказ лежит в пвз",
        "audience": "buyer",
        "history": [],
        "as_of": None,
        "style": "typo",
        "answerable": True,
        "gold": [
            {"doc_id": "buyer-delivery-storage", "section": None},
            {"doc_id": "buyer-delivery-pickup-point", "section": None},
        ],
        "key_facts": ["7 календарных дней"],
        "reference": "7 календарных дней.",
        "topic": "delivery",
        "split": "dev",
    },
    {
        "id": "m-2",
        "question": "Как отменить заказ?",
        "audience": "buyer",
        "history": [],
        "as_of": None,
        "style": "chat",
        "answerable": True,
        "gold": [{"doc_id": "buyer-orders-cancel", "section": None}],
        "key_facts": ["Отменить заказ"],
        "reference": "Профиль → Заказы → «Отменить заказ».",
        "topic": "orders",
        "split": "dev",
    },
    {
        "id": "m-3",
        "question": "как приготовить борщ",
        "audience": None,
        "history": [],
        "as_of": None,
        "style": "unanswerable",
        "answerable": False,
        "gold": [],
        "key_facts": [],
        "reference": "Передать специалисту.",
        "topic": None,
        "split": "heldout",
    },
]


def test_run_and_summary_over_a_small_set(knowledge_rt: Runtime, tmp_path: Path) -> None:
    path = tmp_path / "mini.jsonl"
    path.write_text("\n".join(json.dumps(i, ensure_ascii=False) for i in MINI), encoding="utf-8")
    items = load(path)
    assert [i.id for i in load(path, "heldout")] == ["m-3"]
    engine = AnswerEngine(
        knowledge_rt.settings, knowledge_rt.index, knowledge_rt.embedder, knowledge_rt.sparse
    )
    results = run(engine, items)
    summary = summarise(results, knowledge_rt.settings.answer_threshold)
    assert summary["hit@5"] == 1.0 and summary["mrr@10"] > 0.5
    assert summary["key_fact_recall"] == 1.0 and summary["correct_handoff"] == 1.0
    assert summary["false_handoff"] == 0.0 and summary["audience_leaks"] == 0
    assert summary["citation_validity"] == 1.0 and summary["citation_support"] == 1.0
    assert len(summary["refusal_curve"]) == 21 and summary["refusal_curve"][0]["coverage"] == 1.0


def test_bad_dataset_line_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text('{"id": "x", "question": ""}\n', encoding="utf-8")
    with pytest.raises(ConfigError, match=r"bad\.jsonl:1"):
        load(path)
