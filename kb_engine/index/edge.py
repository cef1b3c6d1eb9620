"""The embedded Qdrant engine (qdrant-edge-py): the real engine, in this process, in a directory.

It does no background work: ``optimize()`` builds HNSW and ``flush()`` makes writes durable, both
called by the ingestion run. One process may open a directory at a time; a lock file records who
holds it, so a second process is told which pid to stop instead of a WAL error.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

import qdrant_edge as qe

from kb_engine.errors import IndexLockedError, IndexSchemaError, KBIndexError, StorageFullError
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

_META = "kb-index.json"
_LOCK = "kb.lock"
_SCROLL_FIELDS = ["doc_id", "doc_hash", "doc_chunks", "source", "raw_hash"]


class EdgeIndex:
    backend = "embedded"

    def __init__(self, path: Path, rrf_k: int = 60, min_free_mb: float = 0.0) -> None:
        self.path = Path(path)
        self.rrf_k = rrf_k
        self.min_free_mb = min_free_mb
        try:
            self.path.mkdir(parents=True, exist_ok=True)
            self._lock_file: TextIO | None = _acquire_lock(self.path / _LOCK)
        except OSError as exc:  # read-only file system, no permission, not a directory…
            raise KBIndexError(
                f"cannot use {self.path}: {exc.strerror or exc}; KB_DATA_DIR must be a writable directory "
                "(the embedded index locks and writes it, even to search)"
            ) from None
        self._shard: qe.EdgeShard | None = None
        self._meta: dict[str, Any] = {}
        meta_path = self.path / _META
        if meta_path.exists():
            self._meta = json.loads(meta_path.read_text())
            self._shard = self._load()

    # --- schema ---
    def ensure_schema(self, embedder: str, dim: int, sparse: str) -> None:
        wanted = {"embedder": embedder, "dim": dim, "sparse": sparse}
        if self._shard is not None:
            have = {k: self._meta.get(k) for k in wanted}
            if have != wanted:
                raise IndexSchemaError(
                    f"index at {self.path} was built with {have}, but the settings ask for {wanted}: "
                    f"delete {self.path} to rebuild, or point KB_DATA_DIR elsewhere"
                )
            return
        shard_dir = self.path / "shard"
        self._check_space()
        if shard_dir.exists():  # no meta file: a create that never finished (no point was written)
            shutil.rmtree(shard_dir)
        config = qe.EdgeConfig(
            vectors={DENSE: qe.EdgeVectorParams(size=dim, distance=qe.Distance.Cosine)},
            sparse_vectors={SPARSE: qe.EdgeSparseVectorParams(modifier=qe.Modifier.Idf)},
        )
        self._shard = qe.EdgeShard.create(str(shard_dir), config)
        for field in KEYWORD_FIELDS:
            self._shard.update(qe.UpdateOperation.create_field_index(field, qe.PayloadSchemaType.Keyword))
        for field in DATETIME_FIELDS:
            self._shard.update(qe.UpdateOperation.create_field_index(field, qe.PayloadSchemaType.Datetime))
        self._shard.flush()
        self._meta = wanted
        # Written last: a directory without it is an unfinished create and is redone.
        tmp = self.path / (_META + ".tmp")
        tmp.write_text(json.dumps(wanted))
        os.replace(tmp, self.path / _META)

    def _load(self) -> qe.EdgeShard:
        try:
            return qe.EdgeShard.load(str(self.path / "shard"))
        except Exception as exc:  # the engine raises plain exceptions with its own text
            if "WouldBlock" in str(exc):
                raise IndexLockedError(f"index at {self.path} is open in another process: {exc}") from exc
            raise

    @property
    def shard(self) -> qe.EdgeShard:
        if self._shard is None:
            raise IndexSchemaError(f"index at {self.path} has no collection yet: run `kb ingest` first")
        return self._shard

    # --- writes ---
    def _check_space(self) -> None:
        free_mb = shutil.disk_usage(self.path).free / 2**20
        if free_mb < self.min_free_mb:
            raise StorageFullError(
                f"{self.path} has {free_mb:.0f} MB free, less than KB_MIN_FREE_MB={self.min_free_mb:g}: "
                "writes stopped before the disk filled (the index is as it was); free space or move "
                "KB_DATA_DIR, then run again"
            )

    def upsert(self, source_key: str, points: Sequence[IndexedChunk]) -> None:
        if not points:
            return
        self._check_space()
        batch = [
            qe.Point(
                id=p.chunk.id,
                vector={DENSE: list(p.dense), SPARSE: qe.SparseVector(p.sparse.indices, p.sparse.values)},
                payload=to_payload(p.chunk, source_key),
            )
            for p in points
        ]
        self.shard.update(qe.UpdateOperation.upsert_points(batch))

    def delete_points(self, ids: Sequence[str]) -> None:
        if ids:
            self.shard.update(qe.UpdateOperation.delete_points(list(ids)))

    def delete_documents(self, source_key: str, doc_ids: Sequence[str]) -> None:
        if not doc_ids:
            return
        flt = qe.Filter(
            must=[
                qe.FieldCondition(key="source_key", match=qe.MatchValue(source_key)),
                qe.FieldCondition(key="doc_id", match=qe.MatchAny(list(doc_ids))),
            ]
        )
        self.shard.update(qe.UpdateOperation.delete_points_by_filter(flt))

    # --- reads ---
    def documents(self, source_key: str) -> dict[str, tuple[DocState, list[str]]]:
        states: dict[str, tuple[DocState, list[str]]] = {}
        if self._shard is None:
            return states
        flt = qe.Filter(must=[qe.FieldCondition(key="source_key", match=qe.MatchValue(source_key))])
        offset = None
        while True:
            records, offset = self.shard.scroll(
                qe.ScrollRequest(offset=offset, limit=2048, filter=flt, with_payload=_SCROLL_FIELDS)
            )
            for record in records:
                accumulate_state(states, record.id, record.payload or {})
            if offset is None:
                return states

    def document_titles(self) -> dict[str, str]:
        titles: dict[str, str] = {}
        if self._shard is None:
            return titles
        offset = None
        while True:
            records, offset = self.shard.scroll(
                qe.ScrollRequest(offset=offset, limit=2048, with_payload=["doc_id", "title"])
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
        if self._shard is None or (mode == "sparse" and not sparse.indices):
            return []
        qfilter = _filter(flt)
        dense_query = qe.Query.Nearest(list(dense), using=DENSE)
        sparse_query = qe.Query.Nearest(qe.SparseVector(sparse.indices, sparse.values), using=SPARSE)
        query: Any = dense_query if mode == "dense" else sparse_query  # Any: the stub omits Fusion.Rrf
        prefetches: list[qe.Prefetch] | None = None
        if mode == "hybrid":
            prefetches = [qe.Prefetch(limit=prefetch, query=dense_query, filter=qfilter)]
            if sparse.indices:
                prefetches.append(qe.Prefetch(limit=prefetch, query=sparse_query, filter=qfilter))
            query = qe.Fusion.Rrf(k=self.rrf_k)
        hits = self.shard.query(
            qe.QueryRequest(
                limit=limit,
                prefetches=prefetches,
                query=query,
                with_payload=True,
                with_vector=[DENSE],
                filter=qfilter,
            )
        )
        sims = similarities(dense, [h.vector for h in hits])
        return closer_first(
            [passage_from_payload(h.id, h.score, h.payload or {}, s) for h, s in zip(hits, sims, strict=True)]
        )

    def chunks(self, keys: Sequence[tuple[str, int]]) -> list[Passage]:
        if self._shard is None or not keys:
            return []
        should: list[Any] = [
            qe.Filter(
                must=[
                    qe.FieldCondition(key="doc_id", match=qe.MatchValue(doc_id)),
                    qe.FieldCondition(key="position", match=qe.MatchAny(positions)),
                ]
            )
            for doc_id, positions in by_document(keys).items()
        ]
        records, _ = self.shard.scroll(
            qe.ScrollRequest(limit=len(keys), filter=qe.Filter(should=should), with_payload=True)
        )
        found = [passage_from_payload(r.id, 0.0, r.payload or {}) for r in records]
        return sorted(found, key=lambda p: (p.doc_id, p.position))

    def count(self, flt: SearchFilter | None = None) -> int:
        if self._shard is None:
            return 0
        return int(self.shard.count(qe.CountRequest(exact=True, filter=_filter(flt) if flt else None)))

    def flush(self) -> None:
        if self._shard is not None:
            self._shard.flush()

    def optimize(self) -> None:
        if self._shard is not None:
            self._shard.optimize()

    def info(self) -> IndexInfo:
        return IndexInfo(
            backend=self.backend,
            location=str(self.path),
            points=self.count(),
            embedder=self._meta.get("embedder"),
            dim=self._meta.get("dim"),
        )

    def close(self) -> None:
        if self._shard is not None:
            self._shard.flush()
            self._shard.close()
            self._shard = None
        if self._lock_file is not None:
            fcntl.flock(self._lock_file, fcntl.LOCK_UN)
            self._lock_file.close()
            self._lock_file = None


def _filter(flt: SearchFilter | None) -> qe.Filter | None:
    if flt is None:
        return None
    must: list[Any] = []
    if flt.audience:
        must.append(qe.FieldCondition(key="audience", match=qe.MatchAny([flt.audience, "all"])))
    if flt.categories:
        must.append(qe.FieldCondition(key="category", match=qe.MatchAny(list(flt.categories))))
    if flt.locale:
        must.append(qe.FieldCondition(key="locale", match=qe.MatchValue(flt.locale)))
    if flt.doc_ids:
        must.append(qe.FieldCondition(key="doc_id", match=qe.MatchAny(list(flt.doc_ids))))
    if flt.as_of:
        moment = as_of_bound(flt.as_of)
        must.append(
            qe.Filter(
                should=[
                    qe.IsEmptyCondition("valid_from"),
                    qe.FieldCondition(key="valid_from", range=qe.RangeDateTime(lte=moment)),
                ]
            )
        )
        must.append(
            qe.Filter(
                should=[
                    qe.IsEmptyCondition("valid_until"),
                    qe.FieldCondition(key="valid_until", range=qe.RangeDateTime(gte=moment)),
                ]
            )
        )
    return qe.Filter(must=must) if must else None


def _acquire_lock(path: Path) -> TextIO:
    handle = open(path, "a+")  # noqa: SIM115 - held open for the life of the index
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        holder = handle.read().strip() or "unknown process"
        handle.close()
        raise IndexLockedError(
            f"index at {path.parent} is locked by another process ({holder}): stop it, "
            "or run with another KB_DATA_DIR; to ingest while serving, POST /v1/admin/ingest (admin key)"
        ) from None
    handle.seek(0)
    handle.truncate()
    handle.write(f"pid {os.getpid()}: {' '.join(os.path.basename(a) for a in sys.argv[:3])}")
    handle.flush()
    return handle
