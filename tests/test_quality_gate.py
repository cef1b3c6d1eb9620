"""The quality gate: a fixed third of the golden set (both splits, both audiences, every style) runs
through the real engine on the shipped help centre, and each metric must stay above its floor.

The floors sit a little under what this subset measured when they were set (README, "Evals"): a change
that breaks retrieval, answerability, citations or the audience filter falls through one of them,
while the noise of a question or two does not. Raise a floor when the engine gets better; never lower
one to make a change pass — run `kb eval run` and `kb eval compare` and find out what got worse.
"""

from __future__ import annotations

import re
from datetime import date

import pytest

from eval import dataset as ds
from eval.runner import run, summarise
from kb_engine.engine import AnswerEngine
from kb_engine.runtime import Runtime

# metric: (floor, "min" | "max") — measured on this subset at the time of setting in the comment.
FLOORS = {
    "hit@5": (0.95, "min"),  # 0.973
    "mrr@10": (0.83, "min"),  # 0.858
    "key_fact_recall": (0.52, "min"),  # 0.564
    "citation_validity": (1.0, "min"),  # 1.0
    "citation_support": (0.97, "min"),  # 0.994
    "correct_handoff": (0.64, "min"),  # 0.714 (10 of 14)
    "false_handoff": (0.16, "max"),  # 0.12 (9 of 75)
    "audience_leaks": (0, "max"),  # 0
    "language_ok": (1.0, "min"),  # 1.0
}


def gate_items() -> list[ds.GoldenItem]:
    return [i for i in ds.load(ds.GOLDEN) if int(re.sub(r"\D", "", i.id)) % 3 == 0]


def test_the_gate_subset_covers_the_set() -> None:
    items = gate_items()
    assert len(items) >= 80
    assert {i.audience for i in items} >= {"buyer", "seller"}
    assert {i.split for i in items} == {"dev", "heldout"}
    assert sum(not i.answerable for i in items) >= 10
    assert {i.style for i in items} == {i.style for i in ds.load(ds.GOLDEN)}


@pytest.fixture(scope="module")
def gate_summary(knowledge_rt: Runtime) -> dict[str, object]:
    engine = AnswerEngine(
        knowledge_rt.settings, knowledge_rt.index, knowledge_rt.embedder, knowledge_rt.sparse
    )
    items = [i.model_copy(update={"as_of": i.as_of or date(2026, 11, 25)}) for i in gate_items()]
    return summarise(run(engine, items), knowledge_rt.settings.answer_threshold)


@pytest.mark.parametrize("metric", sorted(FLOORS))
def test_quality_floor(gate_summary: dict[str, object], metric: str) -> None:
    floor, kind = FLOORS[metric]
    value = gate_summary[metric]
    assert isinstance(value, int | float), f"{metric} was not measured"
    if kind == "min":
        assert value >= floor, f"{metric} {value} fell below its floor {floor}"
    else:
        assert value <= floor, f"{metric} {value} rose above its ceiling {floor}"
