from __future__ import annotations

from kb_engine.config import Settings
from kb_engine.embedding.base import Embedder


def make_embedder(settings: Settings) -> Embedder:
    """The embedder the settings ask for (without cache: see ``CachedEmbedder``)."""
    if settings.embedder == "openai":
        from kb_engine.embedding.openai_api import OpenAIEmbedder

        assert settings.embed_base_url  # checked by Settings
        return OpenAIEmbedder(
            base_url=settings.embed_base_url,
            model=settings.embed_model,
            api_key=settings.embed_api_key,
            dim=settings.embed_dim,
            batch_size=settings.embed_batch_size,
            query_prefix=settings.embed_query_prefix,
            passage_prefix=settings.embed_passage_prefix,
            input_type=settings.embed_input_type,
        )
    from kb_engine.embedding.e5 import E5Embedder

    return E5Embedder(threads=settings.embed_threads, batch_size=settings.embed_batch_size)
