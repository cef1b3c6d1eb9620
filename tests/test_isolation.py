"""Audience isolation: whatever is asked, a buyer never gets a seller-only passage and a seller never
gets a buyer-only one — in search results, in the passages an answer is drafted from, or in citations.

The questions are the whole golden set asked as both audiences, plus random queries made of words
from the help centre's own articles of the *other* audience (the hardest case: a buyer asking in
seller words)."""

from __future__ import annotations

import random
import re
from datetime import date

import pytest

from eval import dataset as ds
from kb_engine.engine import AnswerEngine
from kb_engine.runtime import Runtime
from tests.conftest import KNOWLEDGE

OTHER = {"buyer": "seller", "seller": "buyer"}


@pytest.fixture(scope="module")
def engine(knowledge_rt: Runtime) -> AnswerEngine:
    return AnswerEngine(knowledge_rt.settings, knowledge_rt.index, knowledge_rt.embedder, knowledge_rt.sparse)


def random_queries(folder: str, n: int, seed: int) -> list[str]:
    words = sorted(
        {
            w
            for f in (KNOWLEDGE / folder).rglob("*.md")
            for w in re.findall(r"[а-яё]{5,}", f.read_text().lower())
        }
    )
    rng = random.Random(seed)
    return [" ".join(rng.sample(words, rng.randint(1, 6))) for _ in range(n)]


def leaks(engine: AnswerEngine, question: str, audience: str, search: bool = False) -> list[str]:
    allowed = (audience, "all")
    found = engine.retrieve(question, audience, as_of=date(2026, 11, 25))  # type: ignore[arg-type]
    answer = engine.answer_from(found, question, "chat")
    searched = engine.search(question, audience, top_k=20) if search else []  # type: ignore[arg-type]
    bad = [p.doc_id for p in [*found.passages, *searched] if p.audience not in allowed]
    by_doc = {p.doc_id: p.audience for p in found.passages}
    bad += [c.doc_id for c in answer.citations if by_doc.get(c.doc_id) not in allowed]
    return bad


@pytest.mark.parametrize("audience", ["buyer", "seller"])
def test_no_leak_on_the_golden_set_asked_as_either_audience(engine: AnswerEngine, audience: str) -> None:
    leaked = {i.id: b for i in ds.load(ds.GOLDEN) if (b := leaks(engine, i.question, audience))}
    assert not leaked


@pytest.mark.parametrize("audience", ["buyer", "seller"])
def test_no_leak_on_random_queries_in_the_other_audiences_words(engine: AnswerEngine, audience: str) -> None:
    folder = {"buyer": "sellers", "seller": "buyers"}[audience]
    queries = random_queries(folder, 100, seed=7)
    leaked = {q: b for q in queries if (b := leaks(engine, q, audience, search=True))}
    assert not leaked
    # The queries do reach the other audience's documents when no audience is given: the filter is
    # what keeps them out, not the wording.
    unfiltered = [p.audience for q in queries[:30] for p in engine.search(q, None, top_k=5)]
    assert unfiltered.count(OTHER[audience]) > len(unfiltered) // 3
