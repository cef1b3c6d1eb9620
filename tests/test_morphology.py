"""Russian morphology in sparse search: inflected and derived forms meet."""

from __future__ import annotations

from pathlib import Path

import pytest

from kb_engine.index.edge import EdgeIndex
from kb_engine.schema import Chunk, DocMeta, IndexedChunk, SearchFilter
from kb_engine.sparse import LemmaBM25Encoder, term_id
from kb_engine.text import terms


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("вернуть", "возврат"),
        ("верну", "возврат"),
        ("возвращу", "возврат"),
        ("вернёте", "возвратить"),
        ("доставят", "доставка"),
        ("привезут", "привезти"),
        ("оплатил", "оплата"),
        ("Отменить", "отмене"),
        ("ЁЛКА", "елки"),
        ("заказов", "заказ"),
        ("курьером", "курьерская"),
    ],
)
def test_forms_share_a_term(a: str, b: str) -> None:
    assert terms(a) == terms(b)


def test_function_words_carry_no_weight() -> None:
    assert terms("а если я у него в заказе") == ["заказ"]
    assert terms("Где мой заказ??") == ["где", "заказ"]


def test_bm25_weights_saturate_and_normalise_length() -> None:
    enc = LemmaBM25Encoder(k1=1.2, b=0.75, avg_len=10)
    once, thrice = enc.encode_documents(["возврат товара", "возврат возврат возврат товара"])
    w1 = dict(zip(once.indices, once.values, strict=True))[term_id("возврат")]
    w3 = dict(zip(thrice.indices, thrice.values, strict=True))[term_id("возврат")]
    assert w1 < w3 < 2.2 * w1  # grows with frequency, but far less than linearly
    q = enc.encode_query("как вернуть вернуть товар")
    assert sorted(q.indices) == sorted({term_id("возврат"), term_id("товар")}) and set(q.values) == {1.0}


def test_sparse_search_matches_inflected_forms_in_the_engine(tmp_path: Path) -> None:
    """Sparse-only retrieval in the real engine: the query shares no surface form with the text."""
    enc = LemmaBM25Encoder()
    texts = {
        "refund": "Возврат денежных средств на карту занимает до 10 рабочих дней.",
        "courier": "Курьерская доставка стоит 199 рублей, бесплатно от 3000.",
        "storage": "Хранение заказа в пункте выдачи — 7 дней, продление на 3 дня.",
    }
    index = EdgeIndex(tmp_path / "index")
    try:
        index.ensure_schema("none", 2, enc.name)
        pts = []
        for doc_id, text in texts.items():
            meta = DocMeta(doc_id=doc_id, source=doc_id, title=doc_id)
            chunk = Chunk(
                id=Chunk.make_id(doc_id, (), text),
                doc=meta,
                doc_hash="h",
                doc_chunks=1,
                position=0,
                section=(),
                text=text,
                tokens=10,
            )
            pts.append(IndexedChunk(chunk=chunk, dense=[1.0, 0.0], sparse=enc.encode_documents([text])[0]))
        index.upsert("s", pts)
        for query, expected in [
            ("когда мне вернут деньги", "refund"),
            ("привезёт ли курьер", "courier"),
            ("сколько хранят заказы", "storage"),
            ("продлить хранение", "storage"),
        ]:
            # dense vectors are all alike here, so the ranking is the sparse side's
            hits = index.hybrid_query(
                [1.0, 0.0], enc.encode_query(query), SearchFilter(), limit=1, prefetch=3
            )
            assert hits[0].doc_id == expected, query
    finally:
        index.close()
