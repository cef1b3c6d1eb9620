"""Embedding cache: (model, sha256 of text) → vector, in SQLite under KB_DATA_DIR/cache.

Unchanged text is never embedded twice, whatever document it moves to.
"""

from __future__ import annotations

import hashlib
import sqlite3
import threading
from collections import OrderedDict
from pathlib import Path

import numpy as np

from kb_engine.embedding.base import Embedder


class EmbeddingCache:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS embeddings (model TEXT, text_hash TEXT, vector BLOB,"
            " PRIMARY KEY (model, text_hash)) WITHOUT ROWID"
        )
        self._lock = threading.Lock()

    @staticmethod
    def key(text: str) -> str:
        return hashlib.sha256(text.encode("utf-8")).hexdigest()

    def get_many(self, model: str, keys: list[str]) -> dict[str, np.ndarray]:
        found: dict[str, np.ndarray] = {}
        with self._lock:
            for start in range(0, len(keys), 500):
                batch = keys[start : start + 500]
                marks = ",".join("?" * len(batch))
                rows = self._db.execute(
                    f"SELECT text_hash, vector FROM embeddings WHERE model = ? AND text_hash IN ({marks})",
                    [model, *batch],
                )
                for text_hash, blob in rows:
                    found[text_hash] = np.frombuffer(blob, dtype=np.float32)
        return found

    def put_many(self, model: str, items: dict[str, np.ndarray]) -> None:
        with self._lock:
            self._db.execute("BEGIN")
            self._db.executemany(
                "INSERT OR REPLACE INTO embeddings VALUES (?, ?, ?)",
                [(model, k, np.asarray(v, dtype=np.float32).tobytes()) for k, v in items.items()],
            )
            self._db.execute("COMMIT")

    def count(self, model: str | None = None) -> int:
        with self._lock:
            if model is None:
                return int(self._db.execute("SELECT count(*) FROM embeddings").fetchone()[0])
            sql = "SELECT count(*) FROM embeddings WHERE model = ?"
            return int(self._db.execute(sql, [model]).fetchone()[0])

    def close(self) -> None:
        with self._lock:
            self._db.close()


class CachedEmbedder:
    """Wraps an Embedder: passages are looked up in the cache first; queries go to the model."""

    def __init__(self, inner: Embedder, cache: EmbeddingCache, query_cache_size: int = 0) -> None:
        self.inner = inner
        self.cache = cache
        self.query_cache_size = query_cache_size
        self._queries: OrderedDict[str, np.ndarray] = OrderedDict()
        self._query_lock = threading.Lock()
        self.name = inner.name
        self.dim = inner.dim
        self.computed = 0  # passages actually sent to the model, for reports and tests

    def embed_passages(self, texts: list[str]) -> np.ndarray:
        keys = [EmbeddingCache.key(t) for t in texts]
        found = self.cache.get_many(self.name, list(set(keys)))
        missing = list(dict.fromkeys(k for k in keys if k not in found))
        if missing:
            first_text: dict[str, str] = {}
            for k, t in zip(keys, texts, strict=True):
                first_text.setdefault(k, t)
            vectors = self.inner.embed_passages([first_text[k] for k in missing])
            fresh = dict(zip(missing, vectors, strict=True))
            self.cache.put_many(self.name, fresh)
            found.update(fresh)
            self.computed += len(missing)
        if not texts:
            return np.empty((0, self.dim), dtype=np.float32)
        return np.vstack([found[k] for k in keys])

    def embed_query(self, text: str) -> np.ndarray:
        """Support questions repeat: the last ``query_cache_size`` distinct queries are kept in memory."""
        if self.query_cache_size == 0:
            return self.inner.embed_query(text)
        with self._query_lock:
            hit = self._queries.get(text)
            if hit is not None:
                self._queries.move_to_end(text)
                return hit
        vector = self.inner.embed_query(text)
        with self._query_lock:
            self._queries[text] = vector
            if len(self._queries) > self.query_cache_size:
                self._queries.popitem(last=False)
        return vector
