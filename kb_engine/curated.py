"""Curated answers: an answer the content team approved, pinned to a question and its paraphrases.

When a question is close enough to a pinned one (e5 cosine ≥ KB_CURATED_THRESHOLD, same audience or
one that serves both) and every document the answer cites is still in the index, the curated answer
is served before any drafting, marked ``"drafter": "curated"``. Its text carries markers [n] into its
citations, checked when it is pinned.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence

import numpy as np
from pydantic import BaseModel, Field

from kb_engine.embedding import Embedder
from kb_engine.schema import Citation


class CuratedAnswer(BaseModel):
    id: str = Field(default_factory=lambda: f"cur_{uuid.uuid4().hex[:12]}")
    question: str
    paraphrases: list[str] = Field(default_factory=list)
    answer: str
    citations: list[Citation]
    audience: str | None = None  # buyer | seller | None: both
    created: float = Field(default_factory=time.time)


class CuratedMatcher:
    """The pinned questions' embeddings, and the nearest one to a query."""

    def __init__(self, embedder: Embedder, items: Sequence[CuratedAnswer] = ()) -> None:
        self.embedder = embedder
        self.load(items)

    def load(self, items: Sequence[CuratedAnswer]) -> None:
        owners: list[CuratedAnswer] = []
        vectors: list[np.ndarray] = []
        for item in items:
            for text in (item.question, *item.paraphrases):
                owners.append(item)
                vectors.append(self.embedder.embed_query(text))
        self._owners = owners
        self._matrix = np.vstack(vectors) if vectors else np.zeros((0, 1))

    def __len__(self) -> int:
        return len({o.id for o in self._owners})

    def match(self, query: str, audience: str | None, threshold: float) -> tuple[CuratedAnswer, float] | None:
        if not self._owners:
            return None
        sims = self._matrix @ self.embedder.embed_query(query)
        for i in np.argsort(-sims, kind="stable"):
            if sims[i] < threshold:
                return None
            owner = self._owners[int(i)]
            if owner.audience in (None, audience):  # an audience-specific answer only to that audience
                return owner, float(sims[i])
        return None
