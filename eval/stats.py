"""The two summary statistics every eval table uses, defined once: a None-skipping mean and the
nearest-rank p95 (the runner, the peers, external datasets and the report must agree)."""

from __future__ import annotations

import statistics
from collections.abc import Iterable


def mean(values: Iterable[float | bool | None], digits: int | None = 4) -> float | None:
    """The mean of the values that are present (None: not measured for that question)."""
    present = [float(v) for v in values if v is not None]
    if not present:
        return None
    value = statistics.fmean(present)
    return round(value, digits) if digits is not None else value


def p95(values: Iterable[float]) -> float:
    """Nearest-rank 95th percentile of a non-empty sample."""
    ordered = sorted(values)
    return ordered[int(0.95 * (len(ordered) - 1))]
