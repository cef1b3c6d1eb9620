"""Peers: other retrievers run on the same golden questions, scored with the same metrics.

- ``bm25``: our lemma-BM25 sparse side of the index alone;
- ``dense``: our e5 dense side of the index alone;
- ``hybrid (ours)``: RRF over both, exactly what ``AnswerEngine.search`` does;
- ``llama-index``: what a team builds first with llama-index-core: ``VectorStoreIndex`` with its
  default ``SentenceSplitter``, the same e5 model, the default in-memory vector store, top-k retrieval.

Every peer answers the same standalone question (a follow-up is joined with the question before it by
our rules: no LLM here) under the same audience and validity date, and returns distinct document ids
in rank order; ``run_peers`` scores them as ``eval.runner`` scores the engine.
"""

from __future__ import annotations

import logging
import statistics
import time
from collections.abc import Callable, Iterable, Sequence
from datetime import date
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from llama_index.core import Document, VectorStoreIndex
from llama_index.core.base.embeddings.base import BaseEmbedding
from llama_index.core.node_parser import SentenceSplitter
from llama_index.core.retrievers import BaseRetriever
from pydantic import PrivateAttr

from eval.dataset import GoldenItem
from eval.metrics.retrieval import retrieval_scores
from eval.stats import p95
from ingest.parse import ParsedDocument, parse
from ingest.sources import FailedFile, Source
from kb_engine.config import Settings
from kb_engine.embedding import CachedEmbedder, Embedder
from kb_engine.engine import AnswerEngine, AudienceArg
from kb_engine.index import QueryMode
from kb_engine.query import condense, normalise_query
from kb_engine.schema import SearchFilter

log = logging.getLogger(__name__)

Progress = Callable[[int, int], None]
RANKED = 10  # distinct documents a peer returns, as eval.runner scores the engine
CANDIDATES = 50  # chunks (nodes) read to find them
OURS = "hybrid (ours)"
METRICS = ("hit@1", "hit@3", "hit@5", "hit@10", "mrr@10", "ndcg@10", "recall@5")


class Retriever(Protocol):
    def ranked(self, question: str, audience: AudienceArg, as_of: date | None) -> list[str]:
        """Distinct document ids, best first, at most ten, that pass the audience and validity filters."""
        ...


class IndexRetriever:
    """Our index read one way: ``sparse`` (BM25), ``dense`` or ``hybrid`` (RRF of both, the engine's)."""

    def __init__(self, engine: AnswerEngine, mode: QueryMode, embedder: Embedder | None = None) -> None:
        if mode not in ("hybrid", "dense", "sparse"):
            raise ValueError(f"mode must be hybrid, dense or sparse, not {mode!r}")
        self.engine = engine
        self.mode: QueryMode = mode
        self.embedder = embedder or engine.embedder

    def ranked(self, question: str, audience: AudienceArg, as_of: date | None) -> list[str]:
        # As AnswerEngine.search(query, audience, top_k=50, as_of): the prefetch is at least the limit.
        text = normalise_query(question)
        # BM25 alone needs no model: a zero vector only leaves the passages' similarity at 0.
        dense = np.zeros(self.embedder.dim) if self.mode == "sparse" else self.embedder.embed_query(text)
        hits = self.engine.index.hybrid_query(
            dense.tolist(),
            self.engine.sparse.encode_query(text),
            SearchFilter(audience=audience, as_of=as_of or date.today()),
            limit=CANDIDATES,
            prefetch=max(self.engine.settings.prefetch_k, CANDIDATES),
            mode=self.mode,
        )
        return list(dict.fromkeys(h.doc_id for h in hits))[:RANKED]


class E5Embedding(BaseEmbedding):
    """Our embedder as a llama-index embedding model: queries and passages get e5's own prefixes
    (``embed_query`` / ``embed_passages``), and a ``CachedEmbedder`` makes re-runs cheap."""

    _embedder: Embedder = PrivateAttr()

    def __init__(self, embedder: Embedder) -> None:
        super().__init__(model_name=embedder.name, embed_batch_size=64)
        self._embedder = embedder

    @classmethod
    def class_name(cls) -> str:
        return "KbE5Embedding"

    def _get_query_embedding(self, query: str) -> list[float]:
        return [float(x) for x in self._embedder.embed_query(query)]

    async def _aget_query_embedding(self, query: str) -> list[float]:
        return self._get_query_embedding(query)

    def _get_text_embedding(self, text: str) -> list[float]:
        return self._get_text_embeddings([text])[0]

    def _get_text_embeddings(self, texts: list[str]) -> list[list[float]]:
        return [[float(x) for x in row] for row in self._embedder.embed_passages(texts)]


# Added for the post-filter only: a team's reader would not put them in the text that is embedded.
_FILTER_KEYS = ["doc_id", "audience", "valid_from", "valid_until"]


class LlamaIndexRetriever:
    """The pipeline a team builds first with llama-index-core, on the same documents and model.

    What it is: one llama ``Document`` per document, split by ``SentenceSplitter()`` with its defaults
    (1024 tokens, overlap 200), embedded by the same e5 model (``E5Embedding``), kept in the default
    in-memory ``SimpleVectorStore`` of ``VectorStoreIndex``, read by ``as_retriever(similarity_top_k)``.
    No LLM is configured or used: no query engine is built, so llama-index never reaches for OpenAI.

    Where it departs from a first build, and why:
    - Text comes from our parsers (``ingest.parse``), not ``SimpleDirectoryReader``, which cannot read
      our DOCX/PDF/HTML/JSONL offline without extra packages. Each document is rendered as its title
      and its sections (heading, then paragraphs), close to what the reader sees in a Markdown file;
      metadata carries ``file_path`` (kept in the embedded text, as the reader's default does) and
      ``file_name`` (excluded, as the reader does).
    - Audience and validity: the retriever fetches ``CANDIDATES`` nodes and drops those of the other
      audience or not valid on the date (a post-filter over metadata), so it is held to the same rules
      as the others; the keys used for this are excluded from the embedded text.
    """

    def __init__(self, documents: Sequence[ParsedDocument], embedder: Embedder) -> None:
        started = time.perf_counter()
        llama_docs = [_llama_document(d) for d in documents]
        self.index = VectorStoreIndex.from_documents(
            llama_docs, embed_model=E5Embedding(embedder), transformations=[SentenceSplitter()]
        )
        self.nodes = len(self.index.docstore.docs)
        self.retriever: BaseRetriever = self.index.as_retriever(similarity_top_k=CANDIDATES)
        self.build_s = round(time.perf_counter() - started, 2)
        log.info(
            "llama-index peer: %d documents, %d nodes, built in %.1f s",
            len(llama_docs),
            self.nodes,
            self.build_s,
        )

    @classmethod
    def from_paths(cls, paths: Iterable[Path], settings: Settings, embedder: Embedder) -> LlamaIndexRetriever:
        return cls(parse_documents(paths, settings), embedder)

    def ranked(self, question: str, audience: AudienceArg, as_of: date | None) -> list[str]:
        day = (as_of or date.today()).isoformat()
        ranked: list[str] = []
        for hit in self.retriever.retrieve(question):
            meta = hit.node.metadata
            if audience and meta["audience"] not in (audience, "all"):
                continue
            if (meta["valid_from"] and meta["valid_from"] > day) or (
                meta["valid_until"] and meta["valid_until"] < day
            ):
                continue
            if meta["doc_id"] not in ranked:
                ranked.append(meta["doc_id"])
        return ranked[:RANKED]


def parse_documents(paths: Iterable[Path], settings: Settings) -> list[ParsedDocument]:
    """The documents ingestion would index from ``paths`` (same include/exclude globs), parsed."""
    documents: list[ParsedDocument] = []
    for path in paths:
        source = Source(path, settings.include, settings.exclude, int(settings.max_file_mb * 1_000_000))
        for file in source.files():
            for raw in source.read(file):
                if isinstance(raw, FailedFile):
                    log.warning("peer corpus: skipped %s: %s", raw.source, raw.error)
                    continue
                documents.append(parse(raw, settings.default_locale))
    return documents


def _llama_document(doc: ParsedDocument) -> Document:
    meta = doc.meta
    parts = [meta.title]
    for section in doc.sections:
        heading = [section.path[-1]] if section.path else []
        parts.append("\n".join([*heading, *section.blocks]))
    file_path = meta.source.split("#", 1)[0]  # relative to the ingested folder, as in our index
    return Document(
        id_=meta.doc_id,
        text="\n\n".join(parts),
        metadata={
            "file_path": file_path,
            "file_name": file_path.rsplit("/", 1)[-1],
            "doc_id": meta.doc_id,
            "audience": meta.audience,
            "valid_from": meta.valid_from.isoformat() if meta.valid_from else None,
            "valid_until": meta.valid_until.isoformat() if meta.valid_until else None,
        },
        excluded_embed_metadata_keys=["file_name", *_FILTER_KEYS],
        excluded_llm_metadata_keys=["file_name", *_FILTER_KEYS],
    )


def default_peers(
    engine: AnswerEngine, settings: Settings, knowledge_paths: Iterable[Path]
) -> dict[str, Retriever]:
    """All four peers over the engine's index and the same knowledge folders.

    Each peer embeds its own query: the engine's in-memory query cache would let the first peer to
    ask a question pay for all of them. Passages still come from the persistent embedding cache."""
    embedder = _without_query_cache(engine.embedder)
    return {
        "bm25": IndexRetriever(engine, "sparse"),
        "dense": IndexRetriever(engine, "dense", embedder),
        OURS: IndexRetriever(engine, "hybrid", embedder),
        "llama-index": LlamaIndexRetriever.from_paths(knowledge_paths, settings, embedder),
    }


def _without_query_cache(embedder: Embedder) -> Embedder:
    if isinstance(embedder, CachedEmbedder):
        return CachedEmbedder(embedder.inner, embedder.cache, query_cache_size=0)
    return embedder


def standalone(item: GoldenItem) -> str:
    """The question every peer is asked: as typed, or for a follow-up, joined with the question
    before it by the engine's rules (``AnswerEngine.retrieve`` without an LLM)."""
    return condense(item.history, normalise_query(item.question)) if item.history else item.question


def run_peers(
    retrievers: dict[str, Retriever], items: list[GoldenItem], progress: Progress | None = None
) -> dict[str, dict[str, Any]]:
    """Per peer: mean retrieval metrics over the answerable items, ``per_question`` metrics by item id,
    and the p50/p95 latency of a retrieval in ms. Peers take turns on each question."""
    answerable = [i for i in items if i.answerable]
    per_question: dict[str, dict[str, dict[str, float]]] = {name: {} for name in retrievers}
    latencies: dict[str, list[float]] = {name: [] for name in retrievers}
    for done, item in enumerate(answerable, start=1):
        question, as_of, gold = standalone(item), item.as_of or date.today(), {g.doc_id for g in item.gold}
        for name, retriever in retrievers.items():
            started = time.perf_counter()
            ranked = retriever.ranked(question, item.audience, as_of)
            latencies[name].append((time.perf_counter() - started) * 1000)
            per_question[name][item.id] = retrieval_scores(ranked, gold)
        if progress:
            progress(done, len(answerable))
    return {name: _summary(per_question[name], latencies[name]) for name in retrievers}


def _summary(per_question: dict[str, dict[str, float]], latencies: list[float]) -> dict[str, Any]:
    rows = list(per_question.values())
    summary: dict[str, Any] = {"questions": len(rows)}
    for metric in METRICS:
        summary[metric] = round(statistics.fmean(r[metric] for r in rows), 4) if rows else None
    times = sorted(latencies)
    summary["latency_p50_ms"] = round(statistics.median(times), 2) if times else None
    summary["latency_p95_ms"] = round(p95(times), 2) if times else None
    summary["per_question"] = per_question
    return summary


def where_ours_loses(
    peers: dict[str, dict[str, Any]], ours: str = OURS, metric: str = "mrr@10"
) -> dict[str, list[str]]:
    """Per other peer: ids of the questions where it ranked the gold document higher than ours did."""
    mine = peers[ours]["per_question"]
    return {
        name: [qid for qid, row in result["per_question"].items() if row[metric] > mine[qid][metric]]
        for name, result in peers.items()
        if name != ours
    }
