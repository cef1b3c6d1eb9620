"""Compare two eval runs question by question: the regression gate for changes to the knowledge base.

Steps:
1. Load both runs' ``results.jsonl`` and pair the rows by question id (ids in one run only are counted,
   not compared).
2. For every metric in ``METRICS``, take each paired question's value from both runs; a metric counts
   only the questions that have it in both (retrieval metrics exist for answerable questions only).
3. Point estimate: the new mean minus the base mean over those questions (a sum for audience leaks).
4. Uncertainty: a paired bootstrap. Resample the question ids with replacement; one resample is a row of
   multinomial counts, so every resample of every metric is one matrix product. The 95% CI is the
   2.5th-97.5th percentile of the resampled deltas.
5. Verdict: a gating metric regresses when its whole CI lies on the bad side of zero. Two hard gates do
   not wait for the CI: any increase in audience leaks, and citation validity falling from 1.0.
6. Per question: which questions got worse or better, with the documents involved, so a content editor
   sees which article moved.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from io import StringIO
from pathlib import Path
from typing import Any, Literal

import numpy as np
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from kb_engine.errors import ConfigError

Row = dict[str, Any]
Verdict = Literal["better", "worse", "same", "n/a"]

_EPS = 1e-9  # float noise: a mean of identical values must not read as a change
SHOWN_WORSE = 20
SHOWN_BETTER = 5


@dataclass(frozen=True)
class Metric:
    name: str
    extract: Callable[[Row], float | None]
    direction: Literal["higher", "lower"]
    gates: bool
    aggregate: Literal["mean", "sum"] = "mean"
    digits: int = 3

    @property
    def sign(self) -> int:
        """+1 when a rise is an improvement, -1 when a rise is a regression."""
        return 1 if self.direction == "higher" else -1


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) else None


def _field(name: str) -> Callable[[Row], float | None]:
    return lambda row: _number(row.get(name))


def _not_answered(answerable: bool) -> Callable[[Row], float | None]:
    def extract(row: Row) -> float | None:
        if row.get("answerable") is not answerable or "action" not in row:
            return None
        return float(row["action"] != "answer")

    return extract


def _total_ms(row: Row) -> float | None:
    timings = row.get("timings_ms")
    return _number(timings.get("total")) if isinstance(timings, dict) else None


METRICS: tuple[Metric, ...] = (
    *(
        Metric(name, _field(name), "higher", gates=True)
        for name in (
            "hit@1",
            "hit@5",
            "mrr@10",
            "ndcg@10",
            "recall@5",
            "key_fact_recall",
            "correctness",
            "citation_validity",
            "citation_support",
        )
    ),
    Metric("correct_handoff", _not_answered(answerable=False), "higher", gates=True),
    Metric("false_handoff", _not_answered(answerable=True), "lower", gates=True),
    Metric("audience_leaks", _field("leaks"), "lower", gates=True, aggregate="sum", digits=0),
    Metric("latency_total_ms", _total_ms, "lower", gates=False, digits=1),
)


@dataclass(frozen=True)
class MetricDelta:
    metric: Metric
    n: int  # questions that have the metric in both runs
    base: float | None
    new: float | None
    delta: float | None
    ci: tuple[float, float] | None
    verdict: Verdict  # from the CI alone
    regression: bool  # a gating metric that regressed, by its CI or by a hard gate
    reason: str


@dataclass(frozen=True)
class Change:
    field: str
    old: Any
    new: Any


@dataclass(frozen=True)
class QuestionDiff:
    id: str
    question: str
    changes: tuple[Change, ...]
    gold: tuple[str, ...]
    ranked_old: tuple[str, ...]  # top 3
    ranked_new: tuple[str, ...]
    cited_old: tuple[str, ...]
    cited_new: tuple[str, ...]


@dataclass(frozen=True)
class Comparison:
    paired: int
    only_base: tuple[str, ...]
    only_new: tuple[str, ...]
    metrics: tuple[MetricDelta, ...]
    worse: tuple[QuestionDiff, ...]
    better: tuple[QuestionDiff, ...]
    resamples: int
    seed: int
    alpha: float

    @property
    def regressions(self) -> tuple[str, ...]:
        return tuple(m.metric.name for m in self.metrics if m.regression)

    @property
    def significant_regression(self) -> bool:
        return bool(self.regressions)


def load_run(path: Path) -> list[Row]:
    """Rows of a run's ``results.jsonl``; ``path`` is the run directory or the file itself."""
    file = path / "results.jsonl" if path.is_dir() else path
    if not file.is_file():
        raise ConfigError(f"no eval results at {file}: pass a directory written by `kb eval run`")
    rows: list[Row] = []
    seen: set[str] = set()
    with file.open(encoding="utf-8") as fh:
        for number, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ConfigError(
                    f"{file}, line {number}: not valid JSON ({exc.msg}); re-run the eval"
                ) from exc
            if not isinstance(row, dict) or not isinstance(row.get("id"), str):
                raise ConfigError(f"{file}, line {number}: a result row needs a string 'id'; re-run the eval")
            if row["id"] in seen:
                raise ConfigError(f"{file}, line {number}: question id {row['id']!r} appears twice")
            seen.add(row["id"])
            rows.append(row)
    if not rows:
        raise ConfigError(f"{file} holds no results: re-run the eval")
    return rows


def compare(
    base_rows: list[Row], new_rows: list[Row], *, resamples: int = 2000, seed: int = 0, alpha: float = 0.05
) -> Comparison:
    if resamples < 1 or not 0 < alpha < 1:
        raise ConfigError(f"resamples must be >= 1 and alpha in (0, 1), got {resamples} and {alpha}")
    base = {r["id"]: r for r in base_rows}
    new = {r["id"]: r for r in new_rows}
    ids = [i for i in base if i in new]
    if not ids:
        raise ConfigError("the two runs have no question ids in common: compare runs of the same golden set")
    pairs = [(base[i], new[i]) for i in ids]
    metrics = _metric_deltas(pairs, resamples, seed, alpha)
    diffs = [_question_diff(b, n) for b, n in pairs]
    worse = sorted((d for d, bad in diffs if bad), key=lambda d: (-_severity(d), d.id))
    better = [d for d, bad in diffs if d.changes and not bad]
    return Comparison(
        paired=len(ids),
        only_base=tuple(i for i in base if i not in new),
        only_new=tuple(i for i in new if i not in base),
        metrics=metrics,
        worse=tuple(worse),
        better=tuple(better),
        resamples=resamples,
        seed=seed,
        alpha=alpha,
    )


def _metric_deltas(
    pairs: list[tuple[Row, Row]], resamples: int, seed: int, alpha: float
) -> tuple[MetricDelta, ...]:
    """Every metric at once: questions are rows, metrics columns; missing values are NaN."""
    old = np.array([[_nan(m.extract(b)) for m in METRICS] for b, _ in pairs])
    new = np.array([[_nan(m.extract(n)) for m in METRICS] for _, n in pairs])
    present = ~np.isnan(old) & ~np.isnan(new)
    diff = np.where(present, new - old, 0.0)
    rng = np.random.default_rng(seed)
    # counts[r, i]: how often question i is drawn in resample r, so a resampled sum is one matrix product
    counts = rng.multinomial(len(pairs), np.full(len(pairs), 1 / len(pairs)), size=resamples).astype(float)
    boot_sums = counts @ diff
    boot_drawn = counts @ present.astype(float)
    deltas = []
    for j, metric in enumerate(METRICS):
        both = present[:, j]
        boot = boot_sums[:, j], boot_drawn[:, j]
        deltas.append(_metric_delta(metric, old[both, j], new[both, j], *boot, alpha))
    return tuple(deltas)


def _metric_delta(
    metric: Metric,
    old: np.ndarray,
    new: np.ndarray,
    boot_sums: np.ndarray,
    boot_drawn: np.ndarray,
    alpha: float,
) -> MetricDelta:
    """``old``/``new``: the paired values present in both runs; ``boot_*``: per resample, the sum of the
    deltas and how many of these questions were drawn."""
    n = len(old)
    if n == 0:
        return MetricDelta(metric, 0, None, None, None, None, "n/a", False, "no questions have it")
    if metric.aggregate == "sum":
        base_value, new_value = float(old.sum()), float(new.sum())
        boot = boot_sums
    else:
        base_value, new_value = float(old.mean()), float(new.mean())
        drawn = boot_drawn > 0  # a resample that drew none of these questions says nothing about them
        boot = boot_sums[drawn] / boot_drawn[drawn]
    delta = new_value - base_value
    ci: tuple[float, float] | None = None
    verdict: Verdict = "n/a"
    if len(boot):
        lo, hi = np.quantile(boot, [alpha / 2, 1 - alpha / 2])
        ci = (float(lo), float(hi))
        verdict = _ci_verdict(metric.sign, ci)
    reason = f"the {1 - alpha:.0%} CI lies on the bad side of zero" if verdict == "worse" else ""
    if metric.name == "audience_leaks" and delta > 0:
        reason = f"hard gate: audience leaks rose by {delta:.0f}"
    elif metric.name == "citation_validity" and base_value >= 1 - _EPS and new_value < 1 - _EPS:
        reason = "hard gate: citation validity fell below 1.0"
    regression = metric.gates and bool(reason)
    return MetricDelta(metric, n, base_value, new_value, delta, ci, verdict, regression, reason)


def _ci_verdict(sign: int, ci: tuple[float, float]) -> Verdict:
    lo, hi = sorted((sign * ci[0], sign * ci[1]))  # oriented so that positive means better
    if lo > _EPS:
        return "better"
    if hi < -_EPS:
        return "worse"
    return "same"


def _nan(value: float | None) -> float:
    return np.nan if value is None else value


def _question_diff(base: Row, new: Row) -> tuple[QuestionDiff, bool]:
    """The changes a reader cares about, and whether any of them is for the worse."""
    worse: list[Change] = []
    better: list[Change] = []

    def track(name: str, old: Any, now: Any, got_worse: bool, got_better: bool) -> None:
        if got_worse:
            worse.append(Change(name, old, now))
        elif got_better:
            better.append(Change(name, old, now))

    answerable = base.get("answerable", new.get("answerable"))
    if answerable:
        for name in ("key_fact_recall", "mrr@10"):
            old, now = _number(base.get(name)), _number(new.get(name))
            if old is not None and now is not None:
                track(name, old, now, now < old - _EPS, now > old + _EPS)
        old, now = _number(base.get("hit@5")), _number(new.get("hit@5"))
        track("hit@5", old, now, old == 1 and now == 0, old == 0 and now == 1)
    old_action, new_action = base.get("action"), new.get("action")
    if answerable is not None and old_action is not None and new_action is not None:
        lost = old_action == "answer" and new_action != "answer"
        gained = old_action != "answer" and new_action == "answer"
        track("action", old_action, new_action, *((lost, gained) if answerable else (gained, lost)))
    old, now = _number(base.get("leaks")), _number(new.get("leaks"))
    if old is not None and now is not None:
        track("leaks", int(old), int(now), now > old, now < old)
    old, now = _number(base.get("citation_validity")), _number(new.get("citation_validity"))
    if old is not None and now is not None:
        track("citation_validity", old, now, now < old - _EPS, now > old + _EPS)
    diff = QuestionDiff(
        id=str(new["id"]),
        question=str(new.get("question") or base.get("question") or ""),
        changes=tuple(worse or better),  # a question with any change for the worse is listed as worse
        gold=tuple(new.get("gold") or base.get("gold") or ()),
        ranked_old=tuple((base.get("ranked") or ())[:3]),
        ranked_new=tuple((new.get("ranked") or ())[:3]),
        cited_old=tuple(base.get("cited") or ()),
        cited_new=tuple(new.get("cited") or ()),
    )
    return diff, bool(worse)


def _severity(diff: QuestionDiff) -> float:
    return sum(
        abs(c.new - c.old) if isinstance(c.old, int | float) and isinstance(c.new, int | float) else 1.0
        for c in diff.changes
    )


_VERDICT_TEXT = {"better": "[green]▲ better[/]", "same": "= no significant change", "n/a": "– no data"}


def render(comparison: Comparison, console: Console) -> None:
    """The metric table, the questions that got worse (with documents) and the final verdict."""
    c = comparison
    header = f"compared {c.paired} questions"
    if c.only_base or c.only_new:
        header += f" ({len(c.only_base)} only in base, {len(c.only_new)} only in new: not compared)"
    console.print(header, highlight=False)
    table = Table(
        title=f"kb eval compare: paired bootstrap, {c.resamples} resamples, {1 - c.alpha:.0%} CI",
        header_style="bold",
    )
    for column in ("metric", "n", "base", "new", "delta", f"{1 - c.alpha:.0%} CI", "verdict"):
        table.add_column(column, justify="left" if column in ("metric", "verdict") else "right")
    for m in c.metrics:
        digits = m.metric.digits
        table.add_row(
            m.metric.name + ("" if m.metric.gates else " (info)"),
            str(m.n),
            _fmt(m.base, digits),
            _fmt(m.new, digits),
            _fmt(m.delta, digits, signed=True),
            f"[{_fmt(m.ci[0], digits, True)}, {_fmt(m.ci[1], digits, True)}]" if m.ci else "–",
            _verdict_text(m),
        )
    console.print(table)
    if c.worse:
        worse = Table(
            title=f"{_questions(len(c.worse))} got worse (showing {min(len(c.worse), SHOWN_WORSE)})",
            header_style="bold red",
            show_lines=True,
        )
        for column in ("id", "question", "what changed", "documents"):
            worse.add_column(column)
        for d in c.worse[:SHOWN_WORSE]:
            worse.add_row(
                *(escape(cell) for cell in (d.id, d.question, _changes_text(d), _documents_text(d)))
            )
        console.print(worse)
    better = escape(", ".join(f"{d.id} ({_changes_text(d, sep='; ')})" for d in c.better[:SHOWN_BETTER]))
    console.print(
        f"{_questions(len(c.better))} got better" + (f": {better}" if better else ""), highlight=False
    )
    if c.significant_regression:
        console.print(f"[bold red]REGRESSION[/] in {', '.join(c.regressions)}", highlight=False)
    else:
        console.print("[bold green]no significant regression[/]", highlight=False)


def render_text(comparison: Comparison, width: int = 160) -> str:
    buffer = StringIO()
    render(comparison, Console(file=buffer, width=width, color_system=None, highlight=False))
    return buffer.getvalue()


def _questions(count: int) -> str:
    return f"{count} question" if count == 1 else f"{count} questions"


def _verdict_text(m: MetricDelta) -> str:
    if m.regression:
        return "[bold red]▼ regression[/]" + (f" ({m.reason})" if m.reason.startswith("hard gate") else "")
    if m.verdict == "worse":
        return "[yellow]▼ worse (informational)[/]"
    return _VERDICT_TEXT[m.verdict]


def _fmt(value: float | None, digits: int, signed: bool = False) -> str:
    if value is None:
        return "–"
    return f"{value:+.{digits}f}" if signed else f"{value:.{digits}f}"


def _changes_text(diff: QuestionDiff, sep: str = "\n") -> str:
    def value(v: Any) -> str:
        if isinstance(v, float):
            return str(int(v)) if v.is_integer() else f"{v:.3f}"
        return str(v)

    return sep.join(f"{c.field} {value(c.old)}→{value(c.new)}" for c in diff.changes)


def _documents_text(diff: QuestionDiff) -> str:
    def docs(ids: tuple[str, ...]) -> str:
        return ", ".join(ids) or "–"

    return (
        f"gold: {docs(diff.gold)}\n"
        f"top-3: {docs(diff.ranked_old)} → {docs(diff.ranked_new)}\n"
        f"cited: {docs(diff.cited_old)} → {docs(diff.cited_new)}"
    )


def to_json(comparison: Comparison) -> dict[str, Any]:
    """Machine-readable form, for ``compare.json``."""
    c = comparison
    return {
        "paired": c.paired,
        "only_base": list(c.only_base),
        "only_new": list(c.only_new),
        "resamples": c.resamples,
        "seed": c.seed,
        "alpha": c.alpha,
        "regression": c.significant_regression,
        "regressions": list(c.regressions),
        "metrics": [
            {
                "name": m.metric.name,
                "direction": m.metric.direction,
                "gates": m.metric.gates,
                "n": m.n,
                "base": m.base,
                "new": m.new,
                "delta": m.delta,
                "ci": list(m.ci) if m.ci else None,
                "verdict": m.verdict,
                "regression": m.regression,
                "reason": m.reason,
            }
            for m in c.metrics
        ],
        "worse": [_diff_json(d) for d in c.worse],
        "better": [_diff_json(d) for d in c.better],
    }


def _diff_json(diff: QuestionDiff) -> dict[str, Any]:
    return {
        "id": diff.id,
        "question": diff.question,
        "changes": [{"field": c.field, "old": c.old, "new": c.new} for c in diff.changes],
        "documents": {
            "gold": list(diff.gold),
            "ranked_old": list(diff.ranked_old),
            "ranked_new": list(diff.ranked_new),
            "cited_old": list(diff.cited_old),
            "cited_new": list(diff.cited_new),
        },
    }


def exit_code(comparison: Comparison) -> int:
    return 1 if comparison.significant_regression else 0


def main(base: Path, new: Path, console: Console, as_json: bool = False) -> int:
    """``kb eval compare BASE NEW``: print the comparison; 0 without a regression, 1 with one.
    Writes no files; a missing or malformed run raises ``ConfigError``."""
    comparison = compare(load_run(base), load_run(new))
    if as_json:
        text = json.dumps(to_json(comparison), ensure_ascii=False, indent=2)
        console.print(text, markup=False, highlight=False, soft_wrap=True)
    else:
        render(comparison, console)
    return exit_code(comparison)
