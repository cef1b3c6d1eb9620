from __future__ import annotations

from typing import Protocol

import numpy as np


class Embedder(Protocol):
    """Turns passages and queries into L2-normalised vectors of ``dim`` floats.

    ``name`` identifies the model (and its variant): the embedding cache and the index are keyed
    by it, so switching models never mixes vectors from two models.
    """

    name: str
    dim: int

    def embed_passages(self, texts: list[str]) -> np.ndarray: ...

    def embed_query(self, text: str) -> np.ndarray: ...
