"""One contract, two backends: the embedded engine and the server path (qdrant-client local mode)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
from qdrant_client import QdrantClient

from kb_engine.embedding.e5 import E5Embedder
from kb_engine.errors import IndexLockedError, IndexSchemaError
from kb_engine.index import Index, QueryMode
from kb_engine.index.edge import EdgeIndex
from kb_engine.index.server import ServerIndex
from kb_engine.schema import Chunk, DocMeta, IndexedChunk, Passage, SearchFilter
from kb_engine.sparse import LemmaBM25Encoder

SPARSE = LemmaBM25Encoder()
DOCS = {
    "returns-2026": (
        "all",
        "returns",
        date(2026, 3, 1),
        None,
        "Товар надлежащего качества можно вернуть в течение 14 дней со дня получения.",
    ),
    "returns-2024": (
        "all",
        "returns",
        date(2024, 6, 1),
        date(2026, 2, 28),
        "Товар надлежащего качества можно вернуть в течение 7 дней со дня получения.",
    ),
    "seller-payouts": (
        "seller",
        "seller-finance",
        None,
        None,
        "Выплаты продавцам — раз в неделю, по средам, за выкупленные товары.",
    ),
    "buyer-courier": (
        "buyer",
        "delivery",
        None,
        None,
        "Курьер привезёт заказ в выбранный интервал и позвонит за 30–60 минут.",
    ),
}
# Shares the rare words of "когда перечислят деньги за проданные товары" but not its meaning.
DECOY = {
    "decoy-rhyme": (
        "all",
        "misc",
        None,
        None,
        "Перечислить все деньги подряд — детская считалка про жадного купца.",
    )
}


@pytest.fixture(params=["embedded", "server"])
def index(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Index]:
    idx: Index
    if request.param == "embedded":
        idx = EdgeIndex(tmp_path / "index")
    else:
        idx = ServerIndex(QdrantClient(location=":memory:"), "kb_test", ":memory:")
    yield idx
    idx.close()


def points(e5: E5Embedder, doc_ids: list[str] | None = None, suffix: str = "") -> list[IndexedChunk]:
    out = []
    docs = DOCS | DECOY
    for doc_id in doc_ids or list(DOCS):
        audience, category, valid_from, valid_until, text = docs[doc_id]
        text += suffix
        meta = DocMeta(
            doc_id=doc_id,
            source=f"{doc_id}.md",
            title=doc_id,
            audience=audience,
            category=category,
            valid_from=valid_from,
            valid_until=valid_until,
        )
        chunk = Chunk(
            id=Chunk.make_id(doc_id, (), text),
            doc=meta,
            doc_hash="h" + suffix,
            doc_chunks=1,
            position=0,
            section=("Раздел",),
            text=text,
            tokens=20,
        )
        out.append(
            IndexedChunk(
                chunk=chunk,
                dense=e5.embed_passages([text])[0].tolist(),
                sparse=SPARSE.encode_documents([text])[0],
            )
        )
    return out


def query(index: Index, e5: E5Embedder, text: str, mode: QueryMode = "hybrid", **flt: object) -> list[str]:
    return [h.doc_id for h in search(index, e5, text, mode, **flt)]


def search(
    index: Index, e5: E5Embedder, text: str, mode: QueryMode = "hybrid", **flt: object
) -> list[Passage]:
    return index.hybrid_query(
        e5.embed_query(text).tolist(),
        SPARSE.encode_query(text),
        SearchFilter(**flt),  # type: ignore[arg-type]
        limit=10,
        prefetch=20,
        mode=mode,
    )


def test_upsert_query_and_payload_round_trip(index: Index, e5: E5Embedder) -> None:
    index.ensure_schema(e5.name, e5.dim, SPARSE.name)
    index.upsert("src", points(e5))
    assert index.count() == 4
    hits = index.hybrid_query(
        e5.embed_query("когда выплаты продавцу").tolist(),
        SPARSE.encode_query("когда выплаты продавцу"),
        SearchFilter(),
        limit=2,
        prefetch=10,
    )
    assert hits[0].doc_id == "seller-payouts"
    assert hits[0].section == ("Раздел",) and hits[0].source == "seller-payouts.md"
    assert hits[0].score > 0


def test_audience_filter_admits_all_but_never_the_other_side(index: Index, e5: E5Embedder) -> None:
    index.ensure_schema(e5.name, e5.dim, SPARSE.name)
    index.upsert("src", points(e5))
    buyer = query(index, e5, "выплаты по средам", audience="buyer")
    assert "seller-payouts" not in buyer and "buyer-courier" in buyer and "returns-2026" in buyer
    seller = query(index, e5, "курьер", audience="seller")
    assert "buyer-courier" not in seller and "seller-payouts" in seller


def test_validity_keeps_expired_versions_out(index: Index, e5: E5Embedder) -> None:
    index.ensure_schema(e5.name, e5.dim, SPARSE.name)
    index.upsert("src", points(e5))
    today = query(index, e5, "сколько дней на возврат", as_of=date(2026, 11, 25))
    assert "returns-2026" in today and "returns-2024" not in today
    back_then = query(index, e5, "сколько дней на возврат", as_of=date(2025, 1, 10))
    assert "returns-2024" in back_then and "returns-2026" not in back_then
    assert index.count(SearchFilter(as_of=date(2026, 2, 28))) == 3  # last day of the old version


def test_category_filter_and_counts(index: Index, e5: E5Embedder) -> None:
    index.ensure_schema(e5.name, e5.dim, SPARSE.name)
    index.upsert("src", points(e5))
    assert set(query(index, e5, "возврат", categories=("returns",))) == {"returns-2026", "returns-2024"}
    assert index.count(SearchFilter(audience="seller")) == 3


PAYOUT_QUESTION = "когда перечислят деньги за проданные товары"


def test_one_side_queries_rank_by_their_own_side(index: Index, e5: E5Embedder) -> None:
    """Dense alone ranks by meaning, sparse alone by shared rare words: on the same question they
    disagree about what comes first, and hybrid keeps the answer near the top."""
    index.ensure_schema(e5.name, e5.dim, SPARSE.name)
    index.upsert("src", points(e5, [*DOCS, *DECOY]))
    dense = query(index, e5, PAYOUT_QUESTION, "dense")
    sparse = query(index, e5, PAYOUT_QUESTION, "sparse")
    assert dense[0] == "seller-payouts" and sparse[0] == "decoy-rhyme"
    assert "seller-payouts" in query(index, e5, PAYOUT_QUESTION)[:2]
    # Dense reads every point; sparse only those sharing a word with the question.
    assert set(dense) == {*DOCS, *DECOY}
    assert "buyer-courier" not in sparse and set(sparse) < set(dense)


def test_dense_only_is_cosine_order_and_keeps_the_passage_shape(index: Index, e5: E5Embedder) -> None:
    index.ensure_schema(e5.name, e5.dim, SPARSE.name)
    index.upsert("src", points(e5))
    hits = search(index, e5, PAYOUT_QUESTION, "dense")
    sims = [h.similarity or 0.0 for h in hits]
    assert sims == sorted(sims, reverse=True)
    assert all(abs(h.score - (h.similarity or 0.0)) < 1e-3 for h in hits)  # cosine is the score
    top = hits[0]
    assert (
        top.section == ("Раздел",) and top.source == "seller-payouts.md" and top.category == "seller-finance"
    )
    for h in search(index, e5, PAYOUT_QUESTION, "sparse"):
        assert h.similarity is not None and 0 < h.similarity <= 1.0001 and h.score > 0


def test_fusion_ties_go_to_the_closer_passage_every_time(index: Index, e5: E5Embedder) -> None:
    """Dense ranks the answer first and sparse the decoy: RRF scores them the same, and the answer
    (the closer of the two) must come first on every call, not by the engine's whim."""
    index.ensure_schema(e5.name, e5.dim, SPARSE.name)
    index.upsert("src", points(e5, ["seller-payouts", *DECOY]))
    runs = [search(index, e5, "когда перечислят деньги продавцам") for _ in range(8)]
    assert runs[0][0].score == runs[0][1].score  # the tie this is about
    assert all([h.doc_id for h in hits] == ["seller-payouts", "decoy-rhyme"] for hits in runs)


@pytest.mark.parametrize("mode", ["dense", "sparse"])
def test_one_side_queries_keep_the_filters(index: Index, e5: E5Embedder, mode: QueryMode) -> None:
    index.ensure_schema(e5.name, e5.dim, SPARSE.name)
    index.upsert("src", points(e5))
    assert "seller-payouts" in query(index, e5, "выплаты по средам", mode)
    assert "seller-payouts" not in query(index, e5, "выплаты по средам", mode, audience="buyer")
    returns = query(index, e5, "вернуть товар надлежащего качества", mode, as_of=date(2025, 1, 10))
    assert "returns-2024" in returns and "returns-2026" not in returns


def test_sparse_only_with_no_words_finds_nothing(index: Index, e5: E5Embedder) -> None:
    index.ensure_schema(e5.name, e5.dim, SPARSE.name)
    index.upsert("src", points(e5))
    assert query(index, e5, "???", "sparse") == []
    assert query(index, e5, "???", "dense")  # the dense side always has neighbours


def test_documents_state_and_deletes(index: Index, e5: E5Embedder) -> None:
    index.ensure_schema(e5.name, e5.dim, SPARSE.name)
    index.upsert("a", points(e5, ["returns-2026", "buyer-courier"]))
    index.upsert("b", points(e5, ["seller-payouts"]))
    docs = index.documents("a")
    assert set(docs) == {"returns-2026", "buyer-courier"}
    state, ids = docs["returns-2026"]
    assert state.is_current("h") and len(ids) == 1 and state.sources == {"returns-2026.md"}

    # A second version upserted, the old not yet deleted: not current, both ids visible.
    index.upsert("a", points(e5, ["returns-2026"], suffix=" Изменено."))
    state, ids = index.documents("a")["returns-2026"]
    assert not state.is_complete() and len(ids) == 2

    index.delete_points([ids[0]])
    assert index.documents("a")["returns-2026"][0].points == 1
    index.delete_documents("a", ["buyer-courier", "seller-payouts"])  # only within source "a"
    assert set(index.documents("a")) == {"returns-2026"}
    assert set(index.documents("b")) == {"seller-payouts"}


def test_document_titles_list_every_source(index: Index, e5: E5Embedder) -> None:
    assert index.document_titles() == {}  # no collection yet
    index.ensure_schema(e5.name, e5.dim, SPARSE.name)
    index.upsert("a", points(e5, ["returns-2026", "buyer-courier"]))
    index.upsert("a", points(e5, ["returns-2026"], suffix=" Изменено."))  # two versions: one entry
    index.upsert("b", points(e5, ["seller-payouts"]))
    assert index.document_titles() == {d: d for d in ("returns-2026", "buyer-courier", "seller-payouts")}


def test_schema_mismatch_is_refused(index: Index, e5: E5Embedder) -> None:
    index.ensure_schema(e5.name, e5.dim, SPARSE.name)
    index.ensure_schema(e5.name, e5.dim, SPARSE.name)  # same models: fine
    with pytest.raises(IndexSchemaError, match="built with"):
        index.ensure_schema("another-model", 768, SPARSE.name)


def test_embedded_index_names_the_process_that_holds_it(tmp_path: Path) -> None:
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from kb_engine.index.edge import EdgeIndex; "
            f"idx = EdgeIndex({str(tmp_path / 'index')!r}); print('ready', flush=True); time.sleep(60)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "ready"
        with pytest.raises(IndexLockedError, match=rf"pid {holder.pid}") as info:
            EdgeIndex(tmp_path / "index")
        assert "KB_DATA_DIR" in str(info.value)
    finally:
        holder.kill()
        holder.wait()
    EdgeIndex(tmp_path / "index").close()  # released when the holder dies


def test_similarity_and_neighbouring_chunks(index: Index, e5: E5Embedder) -> None:
    index.ensure_schema(e5.name, e5.dim, SPARSE.name)
    meta = DocMeta(doc_id="long", source="long.md", title="Длинная статья")
    texts = [f"Абзац {i} о сроках доставки курьером." for i in range(5)]
    vectors = e5.embed_passages(texts)
    index.upsert(
        "src",
        [
            IndexedChunk(
                chunk=Chunk(
                    id=Chunk.make_id("long", (), t),
                    doc=meta,
                    doc_hash="h",
                    doc_chunks=5,
                    position=i,
                    section=("Сроки",),
                    text=t,
                    tokens=10,
                ),
                dense=vectors[i].tolist(),
                sparse=SPARSE.encode_documents([t])[0],
            )
            for i, t in enumerate(texts)
        ],
    )
    q = e5.embed_query("Абзац 3 о сроках доставки курьером")
    hits = index.hybrid_query(q.tolist(), SPARSE.encode_query("абзац 3"), SearchFilter(), limit=5, prefetch=5)
    assert all(h.similarity is not None and 0 < h.similarity <= 1.0001 for h in hits)
    top = max(hits, key=lambda h: h.similarity or 0)
    assert abs((top.similarity or 0) - float(vectors[top.position] @ q)) < 1e-3
    around = index.chunks([("long", 2), ("long", 1), ("long", 3), ("long", 9), ("missing", 0)])
    assert [p.position for p in around] == [1, 2, 3] and around[0].text == texts[1]
    assert index.chunks([("missing", 0)]) == []
