from __future__ import annotations

from kb_engine.config import Settings
from kb_engine.index.base import Index


def open_index(settings: Settings) -> Index:
    """The embedded engine under KB_DATA_DIR, or the Qdrant server at KB_QDRANT_URL."""
    if settings.qdrant_url:
        from kb_engine.index.server import ServerIndex

        return ServerIndex.connect(
            settings.qdrant_url,
            settings.qdrant_api_key,
            settings.collection,
            settings.qdrant_timeout_s,
            rrf_k=settings.rrf_k,
        )
    from kb_engine.index.edge import EdgeIndex

    return EdgeIndex(settings.index_dir, rrf_k=settings.rrf_k, min_free_mb=settings.min_free_mb)
