"""The long-lived parts built from settings: index, embedder (with cache), sparse encoder."""

from __future__ import annotations

from dataclasses import dataclass

from kb_engine.config import Settings
from kb_engine.embedding import CachedEmbedder, EmbeddingCache, make_embedder
from kb_engine.index import Index, open_index
from kb_engine.sparse import LemmaBM25Encoder


@dataclass
class Runtime:
    settings: Settings
    index: Index
    embedder: CachedEmbedder
    sparse: LemmaBM25Encoder

    def close(self) -> None:
        self.index.close()
        self.embedder.cache.close()

    def __enter__(self) -> Runtime:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_runtime(settings: Settings) -> Runtime:
    index = open_index(settings)  # first: a locked index fails before the model loads
    try:
        cache = EmbeddingCache(settings.cache_dir / "embeddings.sqlite")
        embedder = CachedEmbedder(make_embedder(settings), cache, settings.query_cache_size)
    except BaseException:
        index.close()
        raise
    sparse = LemmaBM25Encoder(k1=settings.bm25_k1, b=settings.bm25_b, avg_len=settings.bm25_avg_len)
    return Runtime(settings, index, embedder, sparse)
