"""The HTML eval report on small synthetic runs: self-contained, escaped, and showing the right things."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from eval.report import GOALS, goal_status, histogram_svg, refusal_curve_svg, render, write

XSS = "<script>alert(1)</script> Где мой заказ?"
VOID = {"meta", "br", "hr", "img", "input", "link"}


def row(id: str, answerable: bool = True, **fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "id": id,
        "split": "dev",
        "style": "chat",
        "audience": "buyer",
        "topic": "orders",
        "answerable": answerable,
        "question": f"Вопрос {id}",
        "query": f"вопрос {id}",
        "action": "answer" if answerable else "handoff",
        "confidence": 0.8 if answerable else 0.1,
        "answer": "Отменить заказ можно в приложении. [1]",
        "cited": ["buyer-orders-cancel"],
        "ranked": ["buyer-orders-cancel", "buyer-orders-statuses", "policy-delivery"],
        "gold": ["buyer-orders-cancel"] if answerable else [],
        "timings_ms": {"retrieve": 5.0, "draft": 2.0, "total": 7.0},
        "leaks": 0,
        "language_ok": True,
        "citation_validity": 1.0,
        "citation_support": 1.0,
    }
    if answerable:
        base.update({m: 1.0 for m in ("hit@1", "hit@3", "hit@5", "hit@10", "mrr@10", "ndcg@10", "recall@5")})
        base["key_fact_recall"] = 1.0
    base.update(fields)
    return base


@pytest.fixture
def results() -> list[dict[str, Any]]:
    return [
        row("b-001", tokens=40),
        row("b-002", question=XSS, key_fact_recall=0.5, **{"mrr@10": 0.5}, tokens=60),
        row("b-003", style="typo", key_fact_recall=0.0, **{"mrr@10": 0.0, "hit@5": 0.0}, ranked=["x", "y"]),
        row("b-004", key_fact_recall=0.0, **{"mrr@10": 1.0}, action="handoff", answer="Передаю специалисту."),
        row("u-001", answerable=False, audience=None, topic=None, style="unanswerable"),
        row(
            "u-002",
            answerable=False,
            style="unanswerable",
            action="answer",
            confidence=0.6,
            question="Как сварить борщ?",
        ),
        row("b-005", timings_ms={"total": 120.0}, key_fact_recall=None),
    ]


@pytest.fixture
def summary() -> dict[str, Any]:
    curve = [{"threshold": t / 20, "coverage": 1 - t / 20, "precision": 0.5 + t / 40} for t in range(21)]
    return {
        "questions": 7,
        "answerable": 5,
        "unanswerable": 2,
        "threshold": 0.35,
        "hit@5": 0.8,
        "mrr@10": 0.7,
        "key_fact_recall": 0.5,
        "citation_validity": 1.0,
        "citation_support": 1.0,
        "correct_handoff": 0.5,
        "false_handoff": 0.2,
        "audience_leaks": 0,
        "language_ok": 1.0,
        "total_p50_ms": 7.0,
        "total_p95_ms": 120.0,
        "draft_p50_ms": 2.0,
        "refusal_curve": curve,
    }


def section(html: str, anchor: str) -> str:
    match = re.search(rf'<(section|header) id="{anchor}">(.*?)</\1>', html, re.S)
    assert match, f"no section {anchor}"
    return match.group(2)


class TagChecker(HTMLParser):
    """Records every element and whether open/close tags pair up."""

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []
        self.tags: list[str] = []
        self.errors: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        if tag not in VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if tag in VOID:
            return
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes {self.stack[-1:] or 'nothing'}")
        else:
            self.stack.pop()


def test_report_is_balanced_html_with_every_section(
    summary: dict[str, Any], results: list[dict[str, Any]]
) -> None:
    peers = {"bm25": {"hit@5": 0.7}, "hybrid (ours)": {"hit@5": 0.8}}
    html = render(summary, results, peers)
    checker = TagChecker()
    checker.feed(html)
    checker.close()
    assert checker.errors == [] and checker.stack == []
    assert (
        html.startswith("<!DOCTYPE html>") and checker.tags.count("svg") >= 5
    )  # 3 breakdowns, curve, latency
    for anchor in ("headline", "peers", "breakdowns", "refusal", "latency", "worst"):
        assert f'id="{anchor}"' in html


def test_report_is_self_contained_and_escapes_user_text(
    summary: dict[str, Any], results: list[dict[str, Any]]
) -> None:
    html = render(summary, results, title="eval <dev>")
    assert "http://" not in html and "https://" not in html and "<script" not in html.lower()
    assert "&lt;script&gt;alert(1)&lt;/script&gt; Где мой заказ?" in html
    assert "Отменить заказ можно в приложении. [1]" in html and "<title>eval &lt;dev&gt;</title>" in html


def test_refusal_curve_marks_the_chosen_threshold(
    summary: dict[str, Any], results: list[dict[str, Any]]
) -> None:
    svg = section(render(summary, results), "refusal")
    assert 'class="threshold-marker"' in svg and "threshold 0.35" in svg

    def marker_x(threshold: float) -> float:
        found = re.search(
            r'class="threshold-marker" x1="([\d.]+)"', refusal_curve_svg(summary["refusal_curve"], threshold)
        )
        assert found
        return float(found.group(1))

    assert marker_x(0.0) < marker_x(0.35) < marker_x(0.7) < marker_x(1.0)
    assert "threshold-marker" not in refusal_curve_svg(summary["refusal_curve"], None)


@pytest.mark.parametrize(
    ("metric", "value", "met", "gap"),
    [
        ("hit@5", 0.96, True, 0.01),
        ("hit@5", 0.9, False, -0.05),
        ("false_handoff", 0.04, True, 0.01),
        ("false_handoff", 0.06, False, -0.01),
        ("audience_leaks", 0, True, 0.0),
        ("audience_leaks", 2, False, -2.0),
        ("language_ok", 1.0, True, 0.0),
        ("language_ok", 0.99, False, -0.01),
        ("correct_handoff", None, False, None),
    ],
)
def test_goal_status(metric: str, value: float | None, met: bool, gap: float | None) -> None:
    status = {g["metric"]: g for g in goal_status({metric: value})}
    assert set(status) == set(GOALS)
    assert status[metric]["met"] is met and status[metric]["gap"] == (
        None if gap is None else pytest.approx(gap)
    )
    assert all(not g["met"] and g["gap"] is None for m, g in status.items() if m != metric)  # absent: n/a


def test_headline_shows_missed_goals_and_splits(
    summary: dict[str, Any], results: list[dict[str, Any]]
) -> None:
    summary["split_summaries"] = {"dev": {"hit@5": 1.0}, "heldout": {"hit@5": 0.5}}
    del summary["correct_handoff"]
    head = section(render(summary, results), "headline")
    hit5 = re.search(r"<tr><td>hit@5</td>(.*?)</tr>", head)
    assert hit5 and "missed by 0.150" in hit5.group(1)
    assert '<span class="met">1.000</span>' in hit5.group(
        1
    ) and '<span class="missed">0.500</span>' in hit5.group(1)
    handoff = re.search(r"<tr><td>correct_handoff</td>(.*?)</tr>", head)
    assert handoff and "n/a" in handoff.group(1) and "met" not in handoff.group(1)
    assert (
        "4/9 goals met" in head
    )  # missed: hit@5, mrr@10, key_fact_recall, false_handoff; n/a: correct_handoff


def test_worst_questions_lists_the_worst_first(
    summary: dict[str, Any], results: list[dict[str, Any]]
) -> None:
    worst = section(render(summary, results), "worst")
    lowest, _, rest = worst.partition('id="answered-unanswerable"')
    order = re.findall(r'<article class="case" data-id="([^"]+)"', lowest)
    assert order == [
        "b-003",
        "b-004",
        "b-002",
    ]  # key-fact recall 0 (mrr 0 before 1), then 0.5; perfect ones left out
    answered, _, handoffs = rest.partition('id="false-handoffs"')
    assert re.findall(r'data-id="([^"]+)"', answered) == ["u-002"] and "Как сварить борщ?" in answered
    assert "b-004" in handoffs and "b-003" not in handoffs
    assert '<code class="doc gold">✓ buyer-orders-cancel</code>' in lowest


def test_peers_bold_the_best_and_list_where_we_lose(
    summary: dict[str, Any], results: list[dict[str, Any]]
) -> None:
    peers = {
        "bm25": {
            "hit@5": 0.7,
            "mrr@10": 0.9,
            "per_question": {"b-001": {"mrr@10": 1.0}, "b-002": {"mrr@10": 1.0}, "b-003": {"mrr@10": 0.0}},
        },
        "hybrid (ours)": {
            "hit@5": 0.95,
            "mrr@10": 0.8,
            "per_question": {"b-001": {"mrr@10": 1.0}, "b-002": {"mrr@10": 0.5}, "b-003": {"mrr@10": 0.5}},
        },
    }
    html = section(render(summary, results, peers), "peers")
    bm25 = re.search(r"<tr><td>bm25</td>(.*?)</tr>", html)
    ours = re.search(r"<tr><td>hybrid \(ours\)</td>(.*?)</tr>", html)
    assert bm25 and ours
    assert re.findall(r'<strong class="best">([\d.]+)</strong>', bm25.group(1)) == ["0.900"]
    assert re.findall(r'<strong class="best">([\d.]+)</strong>', ours.group(1)) == ["0.950"]
    assert "ours higher on <strong>1</strong>, lower on <strong>1</strong>, tied on 1 of 3" in html
    losses = re.search(r'<ol class="losses">(.*?)</ol>', html)
    assert (
        losses
        and "b-002" in losses.group(1)
        and "&lt;script&gt;" in losses.group(1)
        and "b-003" not in losses.group(1)
    )


def test_breakdowns_use_none_safe_means(summary: dict[str, Any], results: list[dict[str, Any]]) -> None:
    html = section(render(summary, results), "breakdowns")
    typo = re.search(r"<tr><td>typo</td>(.*?)</tr>", html)
    chat = re.search(r"<tr><td>chat</td>(.*?)</tr>", html)
    unanswerable = re.search(r"<tr><td>unanswerable</td>(.*?)</tr>", html)
    assert typo and chat and unanswerable
    assert re.findall(r"<td>([^<]*)</td>", typo.group(1))[:3] == ["1", "0.000", "0.000"]
    # chat: b-001, b-002, b-004, b-005; key-fact recall of b-005 is missing: mean of 1, 0.5, 0 = 0.5
    assert re.findall(r"<td>([^<]*)</td>", chat.group(1))[:4] == ["4", "1.000", "0.875", "0.500"]
    assert "0.250" in chat.group(1)  # one false handoff among 4 answerable
    assert unanswerable.group(1).count("n/a") == 4 and "0.500" in unanswerable.group(
        1
    )  # correct handoff 1 of 2


def test_latency_histogram_counts_every_question(
    summary: dict[str, Any], results: list[dict[str, Any]]
) -> None:
    svg = histogram_svg([r["timings_ms"]["total"] for r in results], {"p50": 7.0, "p95": 120.0})
    counts = [int(c) for c in re.findall(r'class="bin" data-count="(\d+)"', svg)]
    assert len(counts) == 20 and sum(counts) == len(results) and counts[0] == 6 and counts[-1] == 1
    latency = section(render(summary, results), "latency")
    assert "p95 120 ms" in latency and "<td>draft</td><td>2.0</td>" in latency
    assert "<td>tokens</td><td>50.0</td><td>40</td>" in latency


def test_empty_run_renders(tmp_path: Path) -> None:
    path = write(tmp_path / "out" / "report.html", {}, [])
    html = path.read_text(encoding="utf-8")
    assert path.name == "report.html" and "0/9 goals met" in html and "no refusal curve" in html


def test_write_is_utf8(summary: dict[str, Any], results: list[dict[str, Any]], tmp_path: Path) -> None:
    path = write(tmp_path / "report.html", summary, results)
    assert "Где мой заказ?".encode() in path.read_bytes()
