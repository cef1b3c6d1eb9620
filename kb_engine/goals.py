"""The answer-quality goals of the offline defaults: what `kb eval run` reports as met or missed and
what the web console's content view shows. One table for both (the core cannot import `eval`)."""

from __future__ import annotations

from typing import Literal

Op = Literal[">=", "<=", "=="]

# metric -> (operator, goal)
GOALS: dict[str, tuple[Op, float]] = {
    "hit@5": (">=", 0.95),
    "mrr@10": (">=", 0.85),
    "citation_validity": ("==", 1.0),
    "citation_support": (">=", 0.95),
    "key_fact_recall": (">=", 0.8),
    "correct_handoff": (">=", 0.9),
    "false_handoff": ("<=", 0.05),
    "audience_leaks": ("==", 0),
    "language_ok": ("==", 1.0),
}
_EPS = 1e-9


def margin(op: Op, goal: float, value: float) -> tuple[bool, float]:
    """(met, gap): the signed margin, >= 0 by how much the goal is met, < 0 by how much it is missed."""
    gap = {">=": value - goal, "<=": goal - value, "==": -abs(value - goal)}[op]
    return gap >= -_EPS, round(gap, 4) + 0.0  # + 0.0: no -0.0
