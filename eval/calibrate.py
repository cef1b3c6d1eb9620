"""Fit the answerability model (``kb_engine.engine.answerability``) and choose the threshold.

From an eval run's rows (each carries the retrieval ``signals`` and whether the question is
answerable): an L2-regularised logistic regression, fitted on the dev split only, then the
threshold with the highest correct handoff whose false handoff stays within the budget. The
held-out split is scored with the fitted model and reported, never fitted on.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from kb_engine.errors import ConfigError

SIGNALS = ("similarity", "coverage", "agreement")


@dataclass(frozen=True)
class Calibration:
    weights: dict[str, float]
    threshold: float
    dev: dict[str, float]  # correct_handoff, false_handoff, auc at the threshold
    heldout: dict[str, float] | None


def fit(rows: list[dict[str, Any]], max_false_handoff: float = 0.05, l2: float = 1.0) -> Calibration:
    usable = [r for r in rows if r.get("signals") and r.get("action") != "clarify"]
    dev = [r for r in usable if r.get("split", "dev") == "dev"]
    labels = np.array([bool(r["answerable"]) for r in dev], dtype=float)
    if len(dev) < 20 or labels.min() == labels.max():
        raise ConfigError("calibration needs a dev split with both answerable and unanswerable questions")
    x = _matrix(dev)
    mean, std = x.mean(axis=0), x.std(axis=0) + 1e-9
    z = (x - mean) / std
    w, b = np.zeros(z.shape[1]), 0.0
    for _ in range(5000):  # gradient descent: three features, a few hundred rows — converges in ms
        p = 1 / (1 + np.exp(-(z @ w + b)))
        w -= 0.5 * (z.T @ (p - labels) + l2 * w) / len(labels)
        b -= 0.5 * float((p - labels).mean())
    raw = w / std
    weights = {"bias": round(b - float(mean @ raw), 4)} | {
        name: round(float(v), 4) for name, v in zip(SIGNALS, raw, strict=True)
    }
    dev_scores = _scores(dev, weights)
    threshold = _threshold(dev_scores, labels, max_false_handoff)
    held = [r for r in usable if r.get("split") == "heldout"]
    held_labels = np.array([bool(r["answerable"]) for r in held], dtype=float)
    return Calibration(
        weights=weights,
        threshold=threshold,
        dev=_rates(dev_scores, labels, threshold),
        heldout=_rates(_scores(held, weights), held_labels, threshold) if held else None,
    )


def _matrix(rows: list[dict[str, Any]]) -> np.ndarray:
    return np.array([[float(r["signals"].get(name, 0.0)) for name in SIGNALS] for r in rows])


def _scores(rows: list[dict[str, Any]], weights: dict[str, float]) -> np.ndarray:
    if not rows:
        return np.zeros(0)
    coef = np.array([weights[name] for name in SIGNALS])
    return 1 / (1 + np.exp(-np.clip(_matrix(rows) @ coef + weights["bias"], -50, 50)))


def _threshold(scores: np.ndarray, labels: np.ndarray, budget: float) -> float:
    """The highest threshold (most handoffs of unanswerable questions) within the false-handoff budget."""
    best = 0.0
    for t in np.round(np.arange(0.05, 1.0, 0.01), 2):
        if float(((scores < t) & (labels == 1)).sum() / max((labels == 1).sum(), 1)) <= budget:
            best = float(t)
    return best


def _rates(scores: np.ndarray, labels: np.ndarray, threshold: float) -> dict[str, float]:
    pos, neg = scores[labels == 1], scores[labels == 0]
    auc = float((pos[:, None] > neg[None, :]).sum() + 0.5 * (pos[:, None] == neg[None, :]).sum())
    return {
        "correct_handoff": round(float((neg < threshold).mean()) if len(neg) else 0.0, 4),
        "false_handoff": round(float((pos < threshold).mean()) if len(pos) else 0.0, 4),
        "auc": round(auc / max(len(pos) * len(neg), 1), 4),
        "questions": float(len(labels)),
    }
