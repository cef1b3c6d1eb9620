"""Content gaps: the questions the engine could not answer, grouped by meaning and ranked by volume.

Steps of ``cluster_gaps``:

1. Exact duplicates (after ``text.normalise``) collapse into one item that keeps its count, so a
   question asked 40 times weighs 40 in the ranking and in the linkage, yet is embedded, compared and
   shown once.
2. Items are clustered agglomeratively with average linkage on cosine similarity (UPGMA, weighted by
   question counts), stopping when the best pair of clusters is less similar than ``threshold``.
   Pure numpy, deterministic: ties go to the earliest input.
3. Clusters asked fewer than ``min_count`` times are dropped: a one-off is not a gap. The caller
   knows the total, so "not clustered" is ``len(questions) - sum(gap.count)``.
4. Each gap is labelled by its most often asked wording, the most central (highest cosine to the
   count-weighted centroid) among equals; examples are its most central distinct questions.

Cost is O(u^2) memory and about O(u^2) time for u distinct questions (rows whose nearest cluster
was not involved in a merge keep it, since an average never exceeds its larger part). Above
``MAX_DISTINCT`` distinct questions, only the most frequent ones are clustered and a warning is
logged.

The default threshold was measured with multilingual-e5-small (query embeddings) on realistic
support questions (the set in tests/test_gaps.py): paraphrases of one question (Kazakhstan delivery,
courier vacancies, crypto payment) average 0.875-0.917 within a topic (pairwise minimum 0.79),
unrelated questions about 0.81. Average linkage gives exactly the three topics for thresholds
0.85-0.87; at 0.84 two unrelated one-offs pair up, at 0.88 topics split. 0.86 is the middle.
Known limit: a question sharing a salient word with a topic ("курьер нахамил" next to courier
vacancies, 0.885 on average) joins that topic at any threshold that keeps paraphrases together.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from kb_engine.embedding.base import Embedder
from kb_engine.text import normalise

log = logging.getLogger(__name__)

DEFAULT_THRESHOLD = 0.86
MAX_DISTINCT = 4000  # a 4000 x 4000 float32 similarity matrix is 64 MB
MAX_EXAMPLES = 5


@dataclass(frozen=True)
class Gap:
    label: str  # the wording asked most often (the most central of those)
    count: int  # questions in the cluster, duplicates included
    examples: tuple[str, ...]  # up to MAX_EXAMPLES distinct questions, most central first
    question_ids: tuple[str, ...]  # every question of the cluster, in input order


@dataclass
class _Item:
    text: str  # the first spelling seen
    ids: list[str]
    rows: list[int]


def _collapse(questions: Sequence[tuple[str, str]]) -> list[_Item]:
    by_key: dict[str, _Item] = {}
    for row, (qid, text) in enumerate(questions):
        key = " ".join(normalise(text).split())
        item = by_key.get(key)
        if item is None:
            by_key[key] = _Item(text=text.strip(), ids=[qid], rows=[row])
        else:
            item.ids.append(qid)
            item.rows.append(row)
    return list(by_key.values())  # dicts keep insertion order: first occurrence first


def _average_linkage(sim: np.ndarray, weights: np.ndarray, threshold: float) -> list[list[int]]:
    """Merge clusters while the best average similarity is at least ``threshold``."""
    n = len(weights)
    if n < 2:
        return [[i] for i in range(n)]
    sim = sim.astype(np.float64, copy=True)
    np.fill_diagonal(sim, -np.inf)
    size = weights.astype(np.float64, copy=True)
    members: list[list[int]] = [[i] for i in range(n)]
    alive = np.ones(n, dtype=bool)
    best = np.argmax(sim, axis=1)
    best_sim = sim[np.arange(n), best]
    while True:
        i = int(np.argmax(np.where(alive, best_sim, -np.inf)))
        if not alive[i] or best_sim[i] < threshold:
            break
        j = int(best[i])
        a, b = min(i, j), max(i, j)  # the merged cluster keeps the earlier index
        merged = (size[a] * sim[a] + size[b] * sim[b]) / (size[a] + size[b])
        merged[~alive] = -np.inf
        merged[a] = merged[b] = -np.inf
        sim[a], sim[:, a] = merged, merged
        sim[b], sim[:, b] = -np.inf, -np.inf
        size[a] += size[b]
        members[a].extend(members[b])
        members[b] = []
        alive[b] = False
        best_sim[b] = -np.inf
        # Averages never exceed their larger part, so only rows that pointed at a or b can change.
        stale = np.flatnonzero(alive & ((best == a) | (best == b)))
        for k in [a, *stale.tolist()]:
            best[k] = int(np.argmax(sim[k]))
            best_sim[k] = sim[k, best[k]]
    return [sorted(m) for m in members if m]


def cluster_gaps(
    questions: Sequence[tuple[str, str]],
    vectors: np.ndarray,
    threshold: float = DEFAULT_THRESHOLD,
    min_count: int = 2,
) -> list[Gap]:
    """Group (id, text) questions by meaning; ``vectors`` row i is the L2-normalised embedding of i."""
    vectors = np.asarray(vectors, dtype=np.float32)
    if vectors.ndim != 2 or vectors.shape[0] != len(questions):
        raise ValueError(
            f"vectors must have one row per question: got shape {vectors.shape}, {len(questions)} questions"
        )
    if not -1.0 <= threshold <= 1.0:
        raise ValueError(f"threshold is a cosine similarity in [-1, 1], got {threshold}")
    if min_count < 1:
        raise ValueError(f"min_count must be at least 1, got {min_count}")
    items = _collapse(questions)
    if len(items) > MAX_DISTINCT:
        log.warning("gaps: %d distinct questions, clustering the %d most frequent", len(items), MAX_DISTINCT)
        keep = sorted(range(len(items)), key=lambda k: -len(items[k].ids))[:MAX_DISTINCT]
        items = [items[k] for k in sorted(keep)]
    if not items:
        return []
    weights = np.array([len(it.ids) for it in items], dtype=np.float64)
    item_vecs = np.stack([vectors[it.rows].mean(axis=0) for it in items])
    item_vecs /= np.maximum(np.linalg.norm(item_vecs, axis=1, keepdims=True), 1e-12)
    sim = item_vecs @ item_vecs.T
    gaps: list[Gap] = []
    for cluster in _average_linkage(sim, weights, threshold):
        count = int(weights[cluster].sum())
        if count < min_count:
            continue
        centroid = (weights[cluster, None] * item_vecs[cluster]).sum(axis=0)
        centrality = item_vecs[cluster] @ centroid
        by_centrality = [cluster[k] for k in np.argsort(-centrality, kind="stable")]
        # The label: the wording asked most often (a typo is rarely repeated), the most central of those.
        label = max(by_centrality, key=lambda k: weights[k])
        rows = sorted(
            (row, qid) for k in cluster for row, qid in zip(items[k].rows, items[k].ids, strict=True)
        )
        gaps.append(
            Gap(
                label=items[label].text,
                count=count,
                examples=tuple(items[k].text for k in by_centrality[:MAX_EXAMPLES]),
                question_ids=tuple(qid for _, qid in rows),
            )
        )
    gaps.sort(key=lambda g: (-g.count, g.label))
    return gaps


def embed_and_cluster(questions: Sequence[tuple[str, str]], embedder: Embedder, **kw: Any) -> list[Gap]:
    """Embed each distinct question text once with ``embed_query``, then ``cluster_gaps``."""
    cache: dict[str, np.ndarray] = {}
    for _, text in questions:
        if text not in cache:
            cache[text] = np.asarray(embedder.embed_query(text), dtype=np.float32)
    if not questions:
        return cluster_gaps(questions, np.empty((0, embedder.dim), dtype=np.float32), **kw)
    vectors = np.stack([cache[text] for _, text in questions])
    return cluster_gaps(questions, vectors, **kw)
