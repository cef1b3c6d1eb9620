"""Dense embeddings behind the ``Embedder`` seam, with a persistent cache."""

from kb_engine.embedding.base import Embedder
from kb_engine.embedding.cache import CachedEmbedder, EmbeddingCache
from kb_engine.embedding.factory import make_embedder

__all__ = ["CachedEmbedder", "Embedder", "EmbeddingCache", "make_embedder"]
