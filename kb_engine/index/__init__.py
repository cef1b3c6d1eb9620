"""The vector index behind one interface: the embedded Qdrant engine, or a Qdrant server."""

from kb_engine.index.base import Index, IndexInfo, QueryMode
from kb_engine.index.factory import open_index

__all__ = ["Index", "IndexInfo", "QueryMode", "open_index"]
