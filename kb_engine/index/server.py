"""A Qdrant server or cluster through qdrant-client: the scale-out path.

Stateless API replicas and ingestion jobs share the cluster; there is no lock. Tests run this
adapter against qdrant-client's local mode, which speaks the same API.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from qdrant_client import QdrantClient, models
from qdrant_client.http.exceptions import ResponseHandlingException, UnexpectedResponse

from kb_engine.errors import IndexSchemaError, IndexUnavailable
from kb_engine.index.base import (
    DATETIME_FIELDS,
    DENSE,
    KEYWORD_FIELDS,
    SPARSE,
    IndexInfo,
    QueryMode,
    accumulate_state,
    as_of_bound,
    by_document,
    closer_first,
    passage_from_payload,
    similarities,
    to_payload,
)
from kb_engine.schema import DocState, IndexedChunk, Passage, SearchFilter, SparseVector

_SCROLL_FIELDS = ["doc_id", "doc_hash", "doc_chunks", "source", "raw_hash"]


class ServerIndex:
    backend = "server"

    def __init__(self, client: QdrantClient, collection: str, location: str, rrf_k: int = 60) -> None:
        self.client = client
        self.collection = collection
        self.location = location
        self.rrf_k = rrf_k
        self._meta: dict[str, Any] = {}
        try:
            self._exists = client.collection_exists(collection)
        except (ResponseHandlingException, UnexpectedResponse, OSError) as exc:
            raise IndexUnavailable(f"cannot reach Qdrant at {location}: {exc}") from exc
        if self._exists:
            self._meta = dict(client.get_collection(collection).config.metadata or {})

    @classmethod
    def connect(
        cls, url: str, api_key: str | None, collection: str, timeout_s: float, rrf_k: int = 60
    ) -> ServerIndex:
        client = QdrantClient(url=url, api_key=api_key, timeout=int(timeout_s))
        return cls(client, collection, url, rrf_k=rrf_k)

    def ensure_schema(self, embedder: str, dim: int, sparse: str) -> None:
        wanted = {"embedder": embedder, "dim": dim, "sparse": sparse}
        if self._exists:
            have = {k: self._meta.get(k) for k in wanted}
            if have != wanted:
                raise IndexSchemaError(
                    f"collection {self.collection!r} at {self.location} was built with {have}, "
                    f"but the settings ask for {wanted}: drop it or set KB_COLLECTION"
                )
            return
        self.client.create_collection(
            self.collection,
            vectors_config={DENSE: models.VectorParams(size=dim, distance=models.Distance.COSINE)},
            sparse_vectors_config={SPARSE: models.SparseVectorParams(modifier=models.Modifier.IDF)},
            metadata=wanted,
        )
        for field in KEYWORD_FIELDS:
            self.client.create_payload_index(self.collection, field, models.PayloadSchemaType.KEYWORD)
        for field in DATETIME_FIELDS:
            self.client.create_payload_index(self.collection, field, models.PayloadSchemaType.DATETIME)
        self._exists, self._meta = True, wanted

    def upsert(self, source_key: str, points: Sequence[IndexedChunk]) -> None:
        if not points:
            return
        self.client.upsert(
            self.collection,
            wait=True,
            points=[
                models.PointStruct(
                    id=p.chunk.id,
                    vector={
                        DENSE: list(p.dense),
                        SPARSE: models.SparseVector(indices=p.sparse.indices, values=p.sparse.values),
                    },
                    payload=to_payload(p.chunk, source_key),
                )
                for p in points
            ],
        )

    def delete_points(self, ids: Sequence[str]) -> None:
        if ids:
            self.client.delete(self.collection, models.PointIdsList(points=list(ids)), wait=True)

    def delete_documents(self, source_key: str, doc_ids: Sequence[str]) -> None:
        if not doc_ids:
            return
        flt = models.Filter(
            must=[
                models.FieldCondition(key="source_key", match=models.MatchValue(value=source_key)),
                models.FieldCondition(key="doc_id", match=models.MatchAny(any=list(doc_ids))),
            ]
        )
        self.client.delete(self.collection, models.FilterSelector(filter=flt), wait=True)

    def documents(self, source_key: str) -> dict[str, tuple[DocState, list[str]]]:
        states: dict[str, tuple[DocState, list[str]]] = {}
        if not self._exists:
            return states
        flt = models.Filter(
            must=[models.FieldCondition(key="source_key", match=models.MatchValue(value=source_key))]
        )
        offset = None
        while True:
            records, offset = self.client.scroll(
                self.collection, scroll_filter=flt, limit=2048, offset=offset, with_payload=_SCROLL_FIELDS
            )
            for record in records:
                accumulate_state(states, record.id, record.payload or {})
            if offset is None:
                return states

    def document_titles(self) -> dict[str, str]:
        titles: dict[str, str] = {}
        if not self._exists:
            return titles
        offset = None
        while True:
            records, offset = self.client.scroll(
                self.collection, limit=2048, offset=offset, with_payload=["doc_id", "title"]
            )
            for record in records:
                payload = record.payload or {}
                titles.setdefault(payload["doc_id"], payload.get("title") or payload["doc_id"])
            if offset is None:
                return titles

    def hybrid_query(
        self,
        dense: Sequence[float],
        sparse: SparseVector,
        flt: SearchFilter,
        limit: int,
        prefetch: int,
        mode: QueryMode = "hybrid",
    ) -> list[Passage]:
        if not self._exists or (mode == "sparse" and not sparse.indices):
            return []
        qfilter = _filter(flt)
        query: Any = (
            list(dense)
            if mode == "dense"
            else models.SparseVector(indices=sparse.indices, values=sparse.values)
        )
        using: str | None = DENSE if mode == "dense" else SPARSE
        prefetches: list[models.Prefetch] | None = None
        if mode == "hybrid":
            prefetches = [models.Prefetch(query=list(dense), using=DENSE, limit=prefetch, filter=qfilter)]
            if sparse.indices:
                prefetches.append(models.Prefetch(query=query, using=SPARSE, limit=prefetch, filter=qfilter))
            query, using = models.RrfQuery(rrf=models.Rrf(k=self.rrf_k)), None
        response = self.client.query_points(
            self.collection,
            prefetch=prefetches,
            query=query,
            using=using,
            query_filter=qfilter,
            limit=limit,
            with_payload=True,
            with_vectors=[DENSE],
        )
        sims = similarities(dense, [p.vector for p in response.points])
        return closer_first(
            [
                passage_from_payload(p.id, p.score, p.payload or {}, s)
                for p, s in zip(response.points, sims, strict=True)
            ]
        )

    def chunks(self, keys: Sequence[tuple[str, int]]) -> list[Passage]:
        if not self._exists or not keys:
            return []
        should: list[Any] = [
            models.Filter(
                must=[
                    models.FieldCondition(key="doc_id", match=models.MatchValue(value=doc_id)),
                    models.FieldCondition(key="position", match=models.MatchAny(any=positions)),
                ]
            )
            for doc_id, positions in by_document(keys).items()
        ]
        records, _ = self.client.scroll(
            self.collection, scroll_filter=models.Filter(should=should), limit=len(keys), with_payload=True
        )
        found = [passage_from_payload(r.id, 0.0, r.payload or {}) for r in records]
        return sorted(found, key=lambda p: (p.doc_id, p.position))

    def count(self, flt: SearchFilter | None = None) -> int:
        if not self._exists:
            return 0
        return self.client.count(
            self.collection, count_filter=_filter(flt) if flt else None, exact=True
        ).count

    def flush(self) -> None:
        """The server makes writes durable itself (``wait=True`` on every write)."""

    def optimize(self) -> None:
        """The server optimizes in the background."""

    def info(self) -> IndexInfo:
        return IndexInfo(
            backend=self.backend,
            location=f"{self.location}/{self.collection}",
            points=self.count(),
            embedder=self._meta.get("embedder"),
            dim=self._meta.get("dim"),
        )

    def close(self) -> None:
        self.client.close()


def _filter(flt: SearchFilter | None) -> models.Filter | None:
    if flt is None:
        return None
    must: list[Any] = []
    if flt.audience:
        must.append(models.FieldCondition(key="audience", match=models.MatchAny(any=[flt.audience, "all"])))
    if flt.categories:
        must.append(models.FieldCondition(key="category", match=models.MatchAny(any=list(flt.categories))))
    if flt.locale:
        must.append(models.FieldCondition(key="locale", match=models.MatchValue(value=flt.locale)))
    if flt.doc_ids:
        must.append(models.FieldCondition(key="doc_id", match=models.MatchAny(any=list(flt.doc_ids))))
    if flt.as_of:
        moment = as_of_bound(flt.as_of)
        must.append(
            models.Filter(
                should=[
                    models.IsEmptyCondition(is_empty=models.PayloadField(key="valid_from")),
                    models.FieldCondition(key="valid_from", range=models.DatetimeRange(lte=moment)),
                ]
            )
        )
        must.append(
            models.Filter(
                should=[
                    models.IsEmptyCondition(is_empty=models.PayloadField(key="valid_until")),
                    models.FieldCondition(key="valid_until", range=models.DatetimeRange(gte=moment)),
                ]
            )
        )
    return models.Filter(must=must) if must else None
