"""`kb eval compare`: the paired bootstrap, the hard gates and the per-question report, on synthetic runs."""

from __future__ import annotations

import json
from io import StringIO
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from rich.console import Console

from eval.compare import Comparison, MetricDelta, compare, exit_code, load_run, main, render_text, to_json
from kb_engine.errors import ConfigError


def row(i: int, *, rank: int | None = 1, answerable: bool = True, **overrides: Any) -> dict[str, Any]:
    """A result row whose gold document ``gold-i`` sits at ``rank`` among the ranked documents."""
    gold = f"gold-{i}"
    ranked = [f"other-{i}-{k}" for k in range(1, 10)]
    if rank is not None:
        ranked.insert(rank - 1, gold)
    base: dict[str, Any] = {
        "id": f"q-{i:03d}",
        "split": "dev",
        "audience": "buyer",
        "answerable": answerable,
        "question": f"Вопрос номер {i}?",
        "action": "answer" if answerable else "handoff",
        "confidence": 0.8,
        "answer": "Ответ.",
        "cited": [ranked[0]] if answerable else [],
        "ranked": ranked[:10],
        "gold": [gold] if answerable else [],
        "timings_ms": {"retrieve": 20.0, "draft": 5.0, "total": 25.0},
        "leaks": 0,
        "language_ok": True,
        "citation_validity": 1.0,
        "citation_support": 1.0,
    }
    if answerable:
        found = rank is not None
        base.update(
            {
                "hit@1": float(rank == 1),
                "hit@5": float(found and rank <= 5),
                "mrr@10": 1 / rank if found else 0.0,
                "ndcg@10": 1 / np.log2(rank + 1) if found else 0.0,
                "recall@5": float(found and rank <= 5),
                "key_fact_recall": 1.0,
            }
        )
    return base | overrides


def run(n: int = 200, **overrides: Any) -> list[dict[str, Any]]:
    return [row(i, **overrides) for i in range(n)]


def metric(comparison: Comparison, name: str) -> MetricDelta:
    return next(m for m in comparison.metrics if m.metric.name == name)


def write_run(directory: Path, rows: list[dict[str, Any]]) -> Path:
    directory.mkdir()
    lines = (json.dumps(r, ensure_ascii=False) for r in rows)
    (directory / "results.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return directory


def test_identical_runs_have_no_change() -> None:
    rows = run(150) + [row(i, answerable=False) for i in range(150, 200)]
    result = compare(rows, rows)
    assert result.paired == 200 and not result.only_base and not result.only_new
    for m in result.metrics:
        if m.metric.name == "correctness":
            continue  # no row has it
        assert m.delta == 0 and m.ci == (0.0, 0.0), m.metric.name
        assert m.verdict == "same" and not m.regression
    assert metric(result, "correct_handoff").n == 50 and metric(result, "mrr@10").n == 150
    assert metric(result, "correctness").verdict == "n/a"  # no row has it
    assert not result.worse and not result.better
    assert exit_code(result) == 0
    assert "no significant regression" in render_text(result)


def test_large_mrr_drop_is_a_regression_naming_questions_and_documents() -> None:
    base = run()
    new = [row(i, rank=4) if i % 4 == 0 else row(i) for i in range(200)]  # 50 questions lose rank 1
    result = compare(base, new)
    mrr = metric(result, "mrr@10")
    assert mrr.delta == pytest.approx(-50 * 0.75 / 200)
    assert mrr.ci is not None and mrr.ci[1] < 0
    assert mrr.verdict == "worse" and mrr.regression
    assert metric(result, "hit@5").verdict == "same"  # rank 4 is still within 5
    assert exit_code(result) == 1 and "mrr@10" in result.regressions
    assert {d.id for d in result.worse} == {f"q-{i:03d}" for i in range(0, 200, 4)}
    first = result.worse[0]
    assert [(c.field, c.old, c.new) for c in first.changes] == [("mrr@10", 1.0, 0.25)]
    i = int(first.id.removeprefix("q-"))
    assert first.gold == (f"gold-{i}",)
    assert first.ranked_old[0] == f"gold-{i}" and first.ranked_new[0] == f"other-{i}-1"
    text = render_text(result)
    assert "REGRESSION in hit@1, mrr@10, ndcg@10" in text
    assert first.id in text and f"other-{i}-1" in text and "mrr@10 1→0.250" in text


def test_a_couple_of_questions_flipping_both_ways_is_not_significant() -> None:
    base = run()
    new = run()
    new[3] = row(3, rank=2)  # worse
    base[7] = row(7, rank=2)  # so q-007 got better
    result = compare(base, new)
    for m in result.metrics:
        assert not m.regression and m.verdict in ("same", "n/a"), m.metric.name
    assert [d.id for d in result.worse] == ["q-003"]
    assert [d.id for d in result.better] == ["q-007"]
    assert exit_code(result) == 0


def test_one_added_leak_is_a_regression_though_the_ci_spans_zero() -> None:
    new = run()
    new[42] = row(42, leaks=1)
    result = compare(run(), new)
    leaks = metric(result, "audience_leaks")
    assert leaks.delta == 1 and leaks.ci is not None and leaks.ci[0] <= 0
    assert leaks.regression and leaks.reason.startswith("hard gate")
    assert result.regressions == ("audience_leaks",) and exit_code(result) == 1
    assert [(d.id, d.changes[0].field) for d in result.worse] == [("q-042", "leaks")]


def test_citation_validity_falling_from_one_is_a_regression() -> None:
    new = run()
    new[5] = row(5, citation_validity=0.5)
    result = compare(run(), new)
    assert metric(result, "citation_validity").regression
    assert result.regressions == ("citation_validity",)
    # the gate is about losing a perfect score: below 1.0 already, a small drop is judged by the CI
    base = [row(i, citation_validity=0.9) for i in range(200)]
    new = [row(i, citation_validity=0.5 if i == 5 else 0.9) for i in range(200)]
    assert exit_code(compare(base, new)) == 0


@pytest.mark.parametrize(
    ("base_action", "new_action", "verdict", "code"),
    [("answer", "handoff", "worse", 1), ("handoff", "answer", "better", 0)],
)
def test_false_handoff_is_lower_is_better(base_action: str, new_action: str, verdict: str, code: int) -> None:
    def rows(action: str) -> list[dict[str, Any]]:
        return [row(i, action=action if i < 40 else "answer") for i in range(200)]

    result = compare(rows(base_action), rows(new_action))
    false_handoff = metric(result, "false_handoff")
    assert false_handoff.verdict == verdict
    assert false_handoff.regression is (verdict == "worse")
    assert exit_code(result) == code


def test_unanswerable_question_answered_is_worse() -> None:
    base = [row(i, answerable=False) for i in range(100)]
    new = [row(i, answerable=False, action="answer" if i < 30 else "handoff") for i in range(100)]
    result = compare(base, new)
    assert metric(result, "correct_handoff").regression
    assert len(result.worse) == 30
    assert result.worse[0].changes[0].field == "action"
    assert (result.worse[0].changes[0].old, result.worse[0].changes[0].new) == ("handoff", "answer")


def noisy_runs(seed: int) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Two unrelated runs over 300 questions, every third one unanswerable."""
    rng = np.random.default_rng(seed)

    def one(i: int) -> dict[str, Any]:
        timings = {"total": float(rng.uniform(10, 100))}
        if i % 3 == 0:
            action = "answer" if rng.random() < 0.3 else "handoff"
            return row(i, answerable=False, action=action, timings_ms=timings)
        rank = int(rng.integers(1, 11))
        return row(i, rank=rank, key_fact_recall=float(rng.random()), timings_ms=timings)

    return [one(i) for i in range(300)], [one(i) for i in range(300)]


def test_ci_contains_the_delta_and_has_the_textbook_width() -> None:
    for seed in range(3):
        base, new = noisy_runs(seed)
        result = compare(base, new, seed=seed)
        for m in result.metrics:
            if m.ci is not None:
                assert m.delta is not None
                assert m.ci[0] <= m.delta <= m.ci[1], m.metric.name
        # for a mean over many questions the bootstrap agrees with the normal approximation
        pairs = zip(base, new, strict=True)
        diffs = np.array([n["mrr@10"] - b["mrr@10"] for b, n in pairs if b["answerable"]])
        half_width = 1.96 * diffs.std() / np.sqrt(len(diffs))
        mrr = metric(result, "mrr@10")
        assert mrr.n == 200 and mrr.ci is not None
        assert (mrr.ci[1] - mrr.ci[0]) / 2 == pytest.approx(half_width, rel=0.15)


def test_same_seed_same_result_other_seed_other_ci() -> None:
    base, new = noisy_runs(7)
    assert to_json(compare(base, new, seed=1)) == to_json(compare(base, new, seed=1))
    assert metric(compare(base, new, seed=1), "mrr@10").ci != metric(compare(base, new, seed=2), "mrr@10").ci


def test_only_common_ids_are_compared() -> None:
    base = run(10)
    new = [row(i, rank=2) for i in range(5, 15)]
    result = compare(base, new)
    assert result.paired == 5
    assert result.only_base == tuple(f"q-{i:03d}" for i in range(5))
    assert result.only_new == tuple(f"q-{i:03d}" for i in range(10, 15))
    assert metric(result, "mrr@10").n == 5 and metric(result, "mrr@10").delta == pytest.approx(-0.5)
    assert "compared 5 questions (5 only in base, 5 only in new" in render_text(result)
    with pytest.raises(ConfigError, match="no question ids in common"):
        compare(run(3), [row(i) for i in range(3, 6)])


def test_missing_results_name_the_path(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=str(tmp_path / "results.jsonl")):
        load_run(tmp_path)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"id": "q-1"}\n{"id": ', "line 2: not valid JSON"),
        ('{"question": "без id"}\n', "line 1: a result row needs a string 'id'"),
        ('{"id": "q-1"}\n{"id": "q-1"}\n', "line 2: question id 'q-1' appears twice"),
        ("\n", "holds no results"),
    ],
)
def test_malformed_results_are_reported(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "results.jsonl"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(ConfigError, match=message) as info:
        load_run(path)
    assert str(path) in str(info.value)


def test_rows_missing_optional_keys_are_tolerated() -> None:
    sparse = [{"id": f"q-{i}", "answerable": True, "mrr@10": 1.0} for i in range(20)]
    result = compare(sparse, sparse)
    assert metric(result, "mrr@10").n == 20
    assert metric(result, "false_handoff").verdict == "n/a"  # no action recorded
    assert exit_code(result) == 0


def test_main_prints_and_returns_the_exit_code_without_writing(tmp_path: Path) -> None:
    base = write_run(tmp_path / "base", run())
    new = write_run(tmp_path / "new", [row(i, rank=None) if i < 60 else row(i) for i in range(200)])
    before = sorted(tmp_path.rglob("*"))
    assert main(base, base, Console(file=StringIO())) == 0
    table = StringIO()
    assert main(base, new, Console(file=table, width=200)) == 1
    assert "▼ regression" in table.getvalue() and "q-000" in table.getvalue()
    machine = StringIO()
    assert main(base, new / "results.jsonl", Console(file=machine, width=80), as_json=True) == 1
    report = json.loads(machine.getvalue())
    assert report["regression"] is True and "hit@5" in report["regressions"]
    assert len(report["worse"]) == 60 and report["worse"][0]["documents"]["gold"]
    assert sorted(tmp_path.rglob("*")) == before
