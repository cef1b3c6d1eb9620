"""Retrieval metrics, counted per document (a document is found if any of its chunks is).

``ranked`` is the list of distinct document ids in retrieval order; ``gold`` the set of documents
that answer the question. hit@k: a gold document within the first k. MRR@10: 1/rank of the first gold
document within 10. nDCG@10 with binary gains. recall@k: share of the gold documents within k.
"""

from __future__ import annotations

import math
from collections.abc import Sequence


def hit_at(ranked: Sequence[str], gold: set[str], k: int) -> float:
    return 1.0 if any(d in gold for d in ranked[:k]) else 0.0


def mrr_at(ranked: Sequence[str], gold: set[str], k: int = 10) -> float:
    for rank, doc in enumerate(ranked[:k], start=1):
        if doc in gold:
            return 1.0 / rank
    return 0.0


def ndcg_at(ranked: Sequence[str], gold: set[str], k: int = 10) -> float:
    dcg = sum(1.0 / math.log2(rank + 1) for rank, doc in enumerate(ranked[:k], start=1) if doc in gold)
    ideal = sum(1.0 / math.log2(rank + 1) for rank in range(1, min(len(gold), k) + 1))
    return dcg / ideal if ideal else 0.0


def recall_at(ranked: Sequence[str], gold: set[str], k: int) -> float:
    return len(gold & set(ranked[:k])) / len(gold) if gold else 0.0


def retrieval_scores(ranked: Sequence[str], gold: set[str]) -> dict[str, float]:
    """Every retrieval metric of one question, by name (the names the summaries and reports use)."""
    return {
        "hit@1": hit_at(ranked, gold, 1),
        "hit@3": hit_at(ranked, gold, 3),
        "hit@5": hit_at(ranked, gold, 5),
        "hit@10": hit_at(ranked, gold, 10),
        "mrr@10": mrr_at(ranked, gold),
        "ndcg@10": ndcg_at(ranked, gold),
        "recall@5": recall_at(ranked, gold, 5),
    }
