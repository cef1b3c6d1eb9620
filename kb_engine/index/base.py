from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any, Literal, Protocol

import numpy as np
from pydantic import BaseModel

from kb_engine.schema import Chunk, DocState, IndexedChunk, Passage, SearchFilter, SparseVector

DENSE = "dense"
SPARSE = "sparse"

# Payload fields with an index, and their kinds: what filters and sync look up.
KEYWORD_FIELDS = ("audience", "category", "doc_id", "locale", "source_key", "doc_type")
DATETIME_FIELDS = ("valid_from", "valid_until")

# Which side of the index a query reads: both fused by RRF (what the engine uses), or one alone
# (the peers the eval compares against).
QueryMode = Literal["hybrid", "dense", "sparse"]


class IndexInfo(BaseModel):
    backend: str
    location: str
    points: int
    embedder: str | None = None
    dim: int | None = None


class Index(Protocol):
    """What kb-engine needs of a vector index. Both backends pass ``tests/test_index_contract.py``."""

    backend: str

    def ensure_schema(self, embedder: str, dim: int, sparse: str) -> None:
        """Create the collection, or check that an existing one was built with the same models."""
        ...

    def upsert(self, source_key: str, points: Sequence[IndexedChunk]) -> None: ...

    def delete_points(self, ids: Sequence[str]) -> None: ...

    def delete_documents(self, source_key: str, doc_ids: Sequence[str]) -> None: ...

    def documents(self, source_key: str) -> dict[str, tuple[DocState, list[str]]]:
        """Per document of a source: what the index holds of it, and its point ids."""
        ...

    def document_titles(self) -> dict[str, str]:
        """Every indexed document, of every source: doc id → title (what the analytics list as never
        cited)."""
        ...

    def hybrid_query(
        self,
        dense: Sequence[float],
        sparse: SparseVector,
        flt: SearchFilter,
        limit: int,
        prefetch: int,
        mode: QueryMode = "hybrid",
    ) -> list[Passage]:
        """The ``limit`` best chunks that pass ``flt``. ``hybrid``: RRF over the ``prefetch`` nearest
        of each side; ``dense`` / ``sparse``: that side alone (``prefetch`` unused; an empty sparse
        query finds nothing). Whatever the mode, ``similarity`` is the chunk's cosine to ``dense``."""
        ...

    def chunks(self, keys: Sequence[tuple[str, int]]) -> list[Passage]:
        """Chunks by (doc id, position), one round trip (to read a hit with its neighbours).
        Missing keys are skipped; the result is ordered by document, then position."""
        ...

    def count(self, flt: SearchFilter | None = None) -> int: ...

    def flush(self) -> None: ...

    def optimize(self) -> None: ...

    def info(self) -> IndexInfo: ...

    def close(self) -> None: ...


def to_payload(chunk: Chunk, source_key: str) -> dict[str, Any]:
    """A chunk as a flat payload. Dates are RFC 3339 datetimes so range filters work on them."""
    doc = chunk.doc
    payload: dict[str, Any] = {
        "doc_id": doc.doc_id,
        "source": doc.source,
        "source_key": source_key,
        "title": doc.title,
        "audience": doc.audience,
        "category": doc.category,
        "doc_type": doc.doc_type,
        "url": doc.url,
        "locale": doc.locale,
        "updated": doc.updated.isoformat() if doc.updated else None,
        "section": list(chunk.section),
        "position": chunk.position,
        "text": chunk.text,
        "context": chunk.context,
        "tokens": chunk.tokens,
        "doc_hash": chunk.doc_hash,
        "doc_chunks": chunk.doc_chunks,
        "raw_hash": chunk.raw_hash,
    }
    # Absent, not null, when open-ended: "is empty" covers both, and absent keeps payloads small.
    if doc.valid_from:
        payload["valid_from"] = _datetime(doc.valid_from)
    if doc.valid_until:
        payload["valid_until"] = _datetime(doc.valid_until, end_of_day=True)
    return payload


def _datetime(d: date, end_of_day: bool = False) -> str:
    return f"{d.isoformat()}T{'23:59:59' if end_of_day else '00:00:00'}Z"


def as_of_bound(d: date) -> str:
    return f"{d.isoformat()}T12:00:00Z"


def similarities(query: Sequence[float], vectors: list[Any]) -> list[float | None]:
    """Cosines of the query and stored dense vectors (all unit length), where the backend returned them."""
    dense = [v.get(DENSE) if isinstance(v, dict) else v for v in vectors]
    present = [i for i, v in enumerate(dense) if v]
    out: list[float | None] = [None] * len(dense)
    if present:
        scores = np.asarray([dense[i] for i in present], dtype=np.float32) @ np.asarray(
            query, dtype=np.float32
        )
        for i, score in zip(present, scores.tolist(), strict=True):
            out[i] = float(score)
    return out


def closer_first(passages: list[Passage]) -> list[Passage]:
    """Equal scores ordered by dense closeness. RRF gives a chunk ranked (1, 2) and one ranked (2, 1)
    the same score, and the engine returns such ties in no fixed order: the same question could get
    a different first passage from one call to the next."""
    return sorted(passages, key=lambda p: (-p.score, -(p.similarity or 0.0)))


def by_document(keys: Sequence[tuple[str, int]]) -> dict[str, list[int]]:
    grouped: dict[str, list[int]] = {}
    for doc_id, position in keys:
        grouped.setdefault(doc_id, []).append(int(position))
    return grouped


def passage_from_payload(
    point_id: Any, score: float, payload: dict[str, Any], sim: float | None = None
) -> Passage:
    return Passage(
        chunk_id=str(point_id),
        doc_id=payload["doc_id"],
        source=payload["source"],
        title=payload["title"],
        section=tuple(payload.get("section") or ()),
        text=payload["text"],
        score=float(score),
        audience=payload["audience"],
        category=payload["category"],
        url=payload.get("url"),
        position=int(payload.get("position", 0)),
        valid_from=_date(payload.get("valid_from")),
        valid_until=_date(payload.get("valid_until")),
        similarity=sim,
        version=payload.get("doc_hash"),
    )


def _date(value: str | None) -> date | None:
    return date.fromisoformat(value[:10]) if value else None


def accumulate_state(
    states: dict[str, tuple[DocState, list[str]]], point_id: Any, payload: dict[str, Any]
) -> None:
    state, ids = states.setdefault(payload["doc_id"], (DocState(), []))
    state.doc_hashes.add(payload["doc_hash"])
    state.doc_chunks.add(int(payload["doc_chunks"]))
    state.sources.add(str(payload.get("source", "")))
    state.raw_hashes.add(str(payload.get("raw_hash", "")))
    state.points += 1
    ids.append(str(point_id))
