"""Sync sources into the index: idempotent, incremental, safe to kill at any moment.

The index is its own manifest: every point carries its document's id, content hash and chunk
count, so "what does the index hold of document X" is a scroll, not a second store to keep in
step. A document is unchanged when all its points carry the current hash and their number is the
chunk count; anything else (new, edited, or half-written by a killed run) is redone:

1. embed the new version's chunks (cached embeddings are reused);
2. upsert them (ids are content hashes, so unchanged chunks are overwritten in place);
3. delete the document's points that are not in the new version; flush.

A run killed between 2 and 3 leaves both versions' points; the next run sees mixed hashes and
finishes step 3. Documents gone from a directory are deleted (``delete_missing``), except those
whose file failed to parse this time: a broken edit never wipes the last good version.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from ingest.chunking import ChunkingParams, chunk_document
from ingest.parse import parse
from ingest.sources import FailedFile, RawDocument, Source
from kb_engine.config import Settings
from kb_engine.embedding import CachedEmbedder
from kb_engine.errors import ConfigError, DocumentError
from kb_engine.index import Index
from kb_engine.schema import Chunk, DocState, IndexedChunk
from kb_engine.sparse import SparseEncoder

log = logging.getLogger(__name__)

# Bump when parsing or chunking changes output for the same input (2: hostile-input checks).
PIPELINE_VERSION = "2"

Progress = Callable[[str, int, int], None]  # (stage, done, total)


@dataclass
class Failure:
    source: str
    reason: str
    message: str


@dataclass
class IngestReport:
    new: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    failed: list[Failure] = field(default_factory=list)
    chunks_written: int = 0
    chunks_embedded: int = 0  # chunks the model computed (the rest came from the cache)
    tokens_written: int = 0
    seconds: float = 0.0
    index_points: int = 0

    @property
    def ok(self) -> bool:
        return not self.failed

    def as_dict(self) -> dict[str, object]:
        return {
            "new": len(self.new),
            "changed": len(self.changed),
            "unchanged": len(self.unchanged),
            "deleted": len(self.deleted),
            "failed": [f.__dict__ for f in self.failed],
            "chunks_written": self.chunks_written,
            "chunks_embedded": self.chunks_embedded,
            "tokens_written": self.tokens_written,
            "seconds": round(self.seconds, 3),
            "index_points": self.index_points,
        }


@dataclass
class _Pending:
    chunks: list[Chunk]
    stale_ids: list[str]
    status: str  # "new" | "changed"


class Ingestor:
    """Runs sync for one or more paths against one index. Reusable; not thread-safe."""

    def __init__(
        self,
        settings: Settings,
        index: Index,
        embedder: CachedEmbedder,
        sparse: SparseEncoder,
        progress: Progress | None = None,
    ) -> None:
        self.settings = settings
        self.index = index
        self.embedder = embedder
        self.sparse = sparse
        self.progress = progress or (lambda stage, done, total: None)
        self.params = ChunkingParams(
            target=settings.chunk_target_tokens,
            max_tokens=settings.chunk_max_tokens,
            overlap=settings.chunk_overlap_tokens,
            tokenizer=settings.tokenizer,
        )
        self.batch_chunks = max(settings.embed_batch_size, 64)
        # Anything that changes what parsing and chunking produce from the same bytes.
        self.signature = f"{PIPELINE_VERSION}|{self.params}|{settings.default_locale}|{sparse.name}"

    def run(self, paths: Iterable[Path], delete_missing: bool | None = None) -> IngestReport:
        started = time.perf_counter()
        report = IngestReport()
        self.index.ensure_schema(self.embedder.name, self.embedder.dim, self.sparse.name)
        delete = self.settings.delete_missing if delete_missing is None else delete_missing
        for path in paths:
            if not path.exists():
                raise ConfigError(f"no such file or directory: {path}")
            source = Source(
                path, self.settings.include, self.settings.exclude, int(self.settings.max_file_mb * 1_000_000)
            )
            self._sync_source(source, report, delete)
        if report.new or report.changed or report.deleted:
            self.index.optimize()
        self.index.flush()
        report.index_points = self.index.count()
        report.seconds = time.perf_counter() - started
        return report

    def _sync_source(self, source: Source, report: IngestReport, delete: bool) -> None:
        indexed = self.index.documents(source.key)
        untouched = _untouched(indexed)
        files = source.files()
        seen: dict[str, str] = {}  # doc id → source, to catch duplicate ids
        failed_sources: set[str] = set()
        pending: list[_Pending] = []
        pending_chunks = 0
        for done, path in enumerate(files, start=1):
            self.progress("parse", done, len(files))
            for item in source.read(path):
                if isinstance(item, FailedFile):
                    failed_sources.add(item.source.split("#", 1)[0])
                    report.failed.append(Failure(item.source, item.error.reason, str(item.error)))
                    continue
                fingerprint = item.fingerprint(self.signature)
                known = untouched.get((item.source, fingerprint))
                if known is not None and known not in seen:  # same bytes, same settings: no parsing
                    seen[known] = item.source
                    report.unchanged.append(known)
                    continue
                chunks = self._chunks(item, fingerprint, report, failed_sources)
                if chunks is None:
                    continue
                doc_id = chunks[0].doc.doc_id
                if doc_id in seen:
                    failed_sources.add(item.source.split("#", 1)[0])
                    report.failed.append(
                        Failure(
                            item.source,
                            "duplicate-id",
                            f"document id {doc_id!r} is also used by {seen[doc_id]}",
                        )
                    )
                    continue
                seen[doc_id] = item.source
                state, point_ids = indexed.get(doc_id, (None, []))
                if state is not None and state.is_current(chunks[0].doc_hash):
                    report.unchanged.append(doc_id)
                    continue
                new_ids = {c.id for c in chunks}
                pending.append(
                    _Pending(
                        chunks,
                        [i for i in point_ids if i not in new_ids],
                        "new" if state is None else "changed",
                    )
                )
                pending_chunks += len(chunks)
                if pending_chunks >= self.batch_chunks:
                    self._write(source.key, pending, report)
                    pending, pending_chunks = [], 0
        self._write(source.key, pending, report)

        gone = [d for d in indexed if d not in seen and not _from_failed(indexed, d, failed_sources)]
        if delete and gone:
            self.index.delete_documents(source.key, gone)
            self.index.flush()
            report.deleted.extend(gone)

    def _chunks(
        self, raw: RawDocument, fingerprint: str, report: IngestReport, failed_sources: set[str]
    ) -> list[Chunk] | None:
        try:
            chunks = chunk_document(parse(raw, self.settings.default_locale), self.params, fingerprint)
        except DocumentError as exc:
            failed_sources.add(raw.source.split("#", 1)[0])
            report.failed.append(Failure(raw.source, exc.reason, str(exc)))
            return None
        except Exception as exc:  # a parser's own bug on odd input must not end the whole run
            log.warning("parsing %s failed unexpectedly", raw.source, exc_info=True)
            failed_sources.add(raw.source.split("#", 1)[0])
            message = f"the parser failed ({type(exc).__name__}: {exc}); please report this file"
            report.failed.append(Failure(raw.source, "error", message))
            return None
        return chunks

    def _write(self, source_key: str, pending: list[_Pending], report: IngestReport) -> None:
        if not pending:
            return
        chunks = [c for p in pending for c in p.chunks]
        texts = [c.embed_text for c in chunks]
        before = self.embedder.computed
        dense = self.embedder.embed_passages(texts)
        embedded = self.embedder.computed - before
        sparse = self.sparse.encode_documents(texts)
        points = [
            IndexedChunk(chunk=c, dense=d.tolist(), sparse=s)
            for c, d, s in zip(chunks, dense, sparse, strict=True)
        ]
        self.index.upsert(source_key, points)
        self.index.delete_points([i for p in pending for i in p.stale_ids])
        self.index.flush()
        for p in pending:
            (report.new if p.status == "new" else report.changed).append(p.chunks[0].doc.doc_id)
        report.chunks_written += len(chunks)
        report.chunks_embedded += embedded
        report.tokens_written += sum(c.tokens for c in chunks)
        self.progress("embed", report.chunks_written, 0)
        log.debug("wrote %d chunks of %d documents", len(chunks), len(pending))


def _from_failed(indexed: dict[str, tuple[DocState, list[str]]], doc_id: str, failed: set[str]) -> bool:
    """Whether an indexed document came from a file that failed this run (then it is kept)."""
    return any(source.split("#", 1)[0] in failed for source in indexed[doc_id][0].sources)


def _untouched(indexed: dict[str, tuple[DocState, list[str]]]) -> dict[tuple[str, str], str]:
    """(source, raw fingerprint) → doc id, for documents whose last write completed."""
    out = {}
    for doc_id, (state, _) in indexed.items():
        if state.is_complete() and len(state.sources) == 1 and len(state.raw_hashes) == 1:
            out[(next(iter(state.sources)), next(iter(state.raw_hashes)))] = doc_id
    return out
