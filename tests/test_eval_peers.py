"""Peers on the same questions: each finds what it should, keeps the filters, and is scored as the engine is.

The index peers read the session-indexed help centre; the llama-index peer is built over a slice of
it (delivery and seller logistics, with their colliding topics, and both editions of the returns
policy) to keep the run short.
"""

from __future__ import annotations

import statistics
from datetime import date
from pathlib import Path

import pytest
from llama_index.core import Settings as LlamaSettings

from eval.dataset import Gold, GoldenItem
from eval.peers import (
    OURS,
    IndexRetriever,
    LlamaIndexRetriever,
    Retriever,
    parse_documents,
    run_peers,
    where_ours_loses,
)
from ingest.parse import ParsedDocument
from kb_engine.engine import AnswerEngine, AudienceArg
from kb_engine.runtime import Runtime

KNOWLEDGE = Path(__file__).resolve().parent.parent / "knowledge"
SLICE = [
    KNOWLEDGE / "buyers" / "delivery",
    KNOWLEDGE / "sellers" / "seller-logistics",
    KNOWLEDGE / "policies" / "returns-policy-2024.md",
    KNOWLEDGE / "policies" / "returns-policy-2026.md",
]
TODAY = date(2026, 11, 25)


@pytest.fixture(scope="module")
def documents(knowledge_rt: Runtime) -> list[ParsedDocument]:
    return parse_documents(SLICE, knowledge_rt.settings)


@pytest.fixture(scope="module")
def peers(knowledge_rt: Runtime, documents: list[ParsedDocument]) -> dict[str, Retriever]:
    rt = knowledge_rt
    engine = AnswerEngine(rt.settings, rt.index, rt.embedder, rt.sparse)
    return {
        "bm25": IndexRetriever(engine, "sparse"),
        "dense": IndexRetriever(engine, "dense"),
        OURS: IndexRetriever(engine, "hybrid"),
        "llama-index": LlamaIndexRetriever(documents, rt.embedder),
    }


def audience_of(rt: Runtime, doc_ids: list[str]) -> dict[str, str]:
    return {p.doc_id: p.audience for p in rt.index.chunks([(d, 0) for d in doc_ids])}


PEERS = ["bm25", "dense", OURS, "llama-index"]


@pytest.mark.parametrize("name", PEERS)
@pytest.mark.parametrize(
    ("question", "audience", "gold"),
    [
        ("скока дней заказ лежит в пвз", "buyer", "buyer-delivery-storage"),
        ("Сколько стоит доставка курьером?", "buyer", "buyer-delivery-courier"),
        ("сколько дней бесплатное хранение товара на складе", "seller", "seller-logistics-storage"),
    ],
)
def test_each_peer_finds_the_answer_in_its_top_five(
    peers: dict[str, Retriever], name: str, question: str, audience: AudienceArg, gold: str
) -> None:
    assert gold in peers[name].ranked(question, audience, TODAY)[:5]


@pytest.mark.parametrize("name", PEERS)
def test_no_peer_shows_a_buyer_the_sellers_pages_or_the_reverse(
    peers: dict[str, Retriever], knowledge_rt: Runtime, name: str
) -> None:
    peer = peers[name]
    # Storage and returns exist on both sides: unfiltered, each question draws the other side's pages.
    for question, audience, other in [
        ("возврат товара на склад: сроки и кто платит", "buyer", "seller"),
        ("как упаковать товар", "buyer", "seller"),
        ("сколько дней хранится товар и что будет после", "seller", "buyer"),
    ]:
        unfiltered = peer.ranked(question, None, TODAY)
        assert other in audience_of(knowledge_rt, unfiltered).values(), "the question must tempt the peer"
        ranked = peer.ranked(question, audience, TODAY)
        assert ranked and other not in audience_of(knowledge_rt, ranked).values()


@pytest.mark.parametrize("name", PEERS)
def test_no_peer_returns_a_policy_edition_not_in_force_on_the_date(
    peers: dict[str, Retriever], name: str
) -> None:
    question = "сколько дней можно вернуть товар надлежащего качества"
    back_then = peers[name].ranked(question, "buyer", date(2025, 1, 10))
    assert "policy-returns" not in back_then
    now = peers[name].ranked(question, "buyer", TODAY)
    assert "policy-returns-2024" not in now
    assert "policy-returns-2024" in back_then and "policy-returns" in now  # each edition in its time


def test_llama_index_peer_builds_and_answers_with_the_network_blocked(
    knowledge_rt: Runtime,
    documents: list[ParsedDocument],
    no_network: None,
    capsys: pytest.CaptureFixture[str],
) -> None:
    peer = LlamaIndexRetriever(documents[:4], knowledge_rt.embedder)
    assert peer.nodes >= 4
    assert peer.ranked("как работает курьерская доставка", "buyer", TODAY)
    assert LlamaSettings._llm is None  # no LLM was ever resolved (the default would be OpenAI)
    # llama-index prints, not raises, when a download (NLTK data) fails: nothing may have been tried.
    assert "error" not in capsys.readouterr().out.lower()


class Fixed:
    """A peer that always returns the same ranking."""

    def __init__(self, ranked: list[str]) -> None:
        self.ranking = ranked

    def ranked(self, question: str, audience: AudienceArg, as_of: date | None) -> list[str]:
        return self.ranking


def item(id_: str, question: str, gold: list[str], audience: AudienceArg = "buyer") -> GoldenItem:
    return GoldenItem(
        id=id_,
        question=question,
        audience=audience,
        style="chat",
        answerable=bool(gold),
        gold=[Gold(doc_id=g) for g in gold],
    )


ITEMS = [
    item("q-1", "скока дней заказ лежит в пвз", ["buyer-delivery-storage", "buyer-delivery-pickup-point"]),
    item("q-2", "Сколько стоит доставка курьером?", ["buyer-delivery-courier"]),
    item("q-3", "сколько дней бесплатное хранение на складе", ["seller-logistics-storage"], "seller"),
    item("q-4", "как стать космонавтом", []),  # unanswerable: not scored
]


def test_run_peers_scores_each_question_and_means_them() -> None:
    fixed = {OURS: Fixed(["buyer-delivery-courier", "x"]), "other": Fixed(["x", "buyer-delivery-storage"])}
    result = run_peers(fixed, ITEMS)  # type: ignore[arg-type]  # Fixed is a Retriever
    ours, other = result[OURS], result["other"]
    assert set(ours["per_question"]) == {"q-1", "q-2", "q-3"} and ours["questions"] == 3
    assert ours["per_question"]["q-2"]["hit@1"] == 1.0 and ours["per_question"]["q-1"]["hit@10"] == 0.0
    assert other["per_question"]["q-1"]["mrr@10"] == 0.5 and other["per_question"]["q-1"]["recall@5"] == 0.5
    assert ours["mrr@10"] == pytest.approx(1 / 3, abs=1e-4) and other["hit@5"] == pytest.approx(
        1 / 3, abs=1e-4
    )
    assert where_ours_loses(result) == {"other": ["q-1"]}


def test_run_peers_on_real_peers_reports_means_of_its_per_question_metrics(
    peers: dict[str, Retriever],
) -> None:
    seen: list[tuple[int, int]] = []
    result = run_peers(peers, ITEMS, lambda done, total: seen.append((done, total)))
    assert set(result) == set(PEERS) and seen[-1] == (3, 3)
    for name, metrics in result.items():
        rows = metrics["per_question"]
        assert set(rows) == {"q-1", "q-2", "q-3"}, name
        for metric in ("hit@1", "hit@3", "hit@5", "hit@10", "mrr@10", "ndcg@10", "recall@5"):
            assert metrics[metric] == pytest.approx(
                statistics.fmean(r[metric] for r in rows.values()), abs=1e-4
            )
        assert metrics["hit@5"] == 1.0, name  # the clearly answerable questions above
        assert metrics["latency_p50_ms"] > 0
