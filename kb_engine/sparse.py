"""Sparse vectors: BM25 term weights over Russian lemmas, with IDF applied by Qdrant.

A document vector holds, for each term, BM25's saturated term frequency; the query vector holds
1 for each of its terms. The index is created with the IDF modifier, so Qdrant multiplies in the
inverse document frequency from its own statistics: the score is BM25 without us keeping
collection statistics, and it stays right as documents come and go.
"""

from __future__ import annotations

import zlib
from collections import Counter
from typing import Protocol

from kb_engine.schema import SparseVector
from kb_engine.text import terms


class SparseEncoder(Protocol):
    """Turns text into a sparse vector; documents and queries are weighted differently."""

    name: str

    def encode_documents(self, texts: list[str]) -> list[SparseVector]: ...

    def encode_query(self, text: str) -> SparseVector: ...


def term_id(term: str) -> int:
    """A stable 31-bit id for a term (the same on every machine, unlike ``hash``)."""
    return zlib.crc32(term.encode("utf-8")) & 0x7FFFFFFF


class LemmaBM25Encoder:
    """BM25 over lemmas and word families (see ``kb_engine.text``)."""

    name = "lemma-bm25-v2"  # bump when terms() changes: the index must be rebuilt

    def __init__(self, k1: float = 1.2, b: float = 0.75, avg_len: float = 120.0) -> None:
        if k1 <= 0 or not 0 <= b <= 1 or avg_len <= 0:
            raise ValueError("BM25 needs k1 > 0, 0 <= b <= 1 and avg_len > 0")
        self.k1, self.b, self.avg_len = k1, b, avg_len

    def encode_documents(self, texts: list[str]) -> list[SparseVector]:
        return [self._document(text) for text in texts]

    def _document(self, text: str) -> SparseVector:
        counts = Counter(terms(text))
        length = sum(counts.values())
        norm = self.k1 * (1 - self.b + self.b * length / self.avg_len)
        weights: dict[int, float] = {}
        for term, tf in counts.items():
            tid = term_id(term)
            weights[tid] = weights.get(tid, 0.0) + tf * (self.k1 + 1) / (tf + norm)
        return _to_vector(weights)

    def encode_query(self, text: str) -> SparseVector:
        return _to_vector({term_id(term): 1.0 for term in set(terms(text))})


def _to_vector(weights: dict[int, float]) -> SparseVector:
    ordered = sorted(weights.items())
    return SparseVector(indices=[i for i, _ in ordered], values=[round(v, 6) for _, v in ordered])
