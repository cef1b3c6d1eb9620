"""Hybrid search: the query's dense and sparse vectors, fused by RRF inside Qdrant, with filters."""

from __future__ import annotations

from datetime import date
from typing import Literal

from kb_engine.embedding import Embedder
from kb_engine.index import Index
from kb_engine.schema import Passage, SearchFilter
from kb_engine.sparse import SparseEncoder


class Searcher:
    def __init__(self, index: Index, embedder: Embedder, sparse: SparseEncoder, prefetch: int = 40) -> None:
        self.index = index
        self.embedder = embedder
        self.sparse = sparse
        self.prefetch = prefetch

    def search(
        self,
        query: str,
        audience: Literal["buyer", "seller"] | None = None,
        top_k: int = 5,
        as_of: date | None = None,
        categories: tuple[str, ...] = (),
    ) -> list[Passage]:
        """Top passages for a query. Validity defaults to today: expired policy versions stay out."""
        if not query.strip():
            raise ValueError("the query is empty")
        flt = SearchFilter(audience=audience, as_of=as_of or date.today(), categories=categories)
        dense = self.embedder.embed_query(query)
        sparse = self.sparse.encode_query(query)
        return self.index.hybrid_query(
            dense.tolist(), sparse, flt, limit=top_k, prefetch=max(self.prefetch, top_k)
        )
