"""A self-contained HTML report of an eval run: headline metrics against goals, peers, breakdowns by
style, audience and topic, the refusal curve, latency and the worst questions.

One file with inline CSS and SVG plots (the generic charts are shared: ``kb_engine.report_html``), no
scripts and no external URLs: it must open on an air-gapped machine. Questions and answers are user text,
so every piece of data goes through ``escape``.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable
from html import escape
from pathlib import Path
from typing import Any

from eval.stats import mean, p95
from kb_engine.goals import GOALS, margin
from kb_engine.report_html import BASE_CSS, COLORS, bar_chart_svg, histogram_svg, legend, line, svg, text
from kb_engine.report_html import section as _section
from kb_engine.report_html import table as _table

Row = dict[str, Any]

OURS = "hybrid (ours)"
PEER_METRICS = ("hit@1", "hit@3", "hit@5", "hit@10", "mrr@10", "ndcg@10", "recall@5")
BAR_METRICS = ("hit@5", "mrr@10", "key_fact_recall")
STAGES = ("retrieve", "draft", "total")
WORST_LIMIT = 25
LOSSES_LIMIT = 10
_EPS = 1e-9  # means are floats: equal within this counts as equal

CSS = (
    BASE_CSS
    + """
.met{color:#1f7a35}.missed{color:#b3261e;font-weight:600}.best{font-weight:700}
.doc{display:inline-block;margin:1px 4px 1px 0;padding:0 4px;border-radius:3px;background:#eee}
.doc.gold{background:#d7f0dc;font-weight:600}
.case{border:1px solid #ddd;border-radius:6px;padding:8px 12px;margin:12px 0}.case h4{margin:0 0 4px}
.answer{white-space:pre-wrap;background:#fafafa;border-left:3px solid #ccc;padding:6px 10px;margin:6px 0}
dl{display:grid;grid-template-columns:max-content 1fr;gap:2px 12px;margin:4px 0}dt{color:#666}dd{margin:0}
"""
)


# --- public API -------------------------------------------------------------------------------------------


def goal_status(summary: dict[str, Any]) -> list[dict[str, Any]]:
    """Each goal with the summary's value. ``gap`` is the signed margin: >= 0 by how much the goal is met,
    < 0 by how much it is missed; None (and never met) when the metric is missing."""
    rows = []
    for metric, (op, goal) in GOALS.items():
        value = summary.get(metric)
        row: dict[str, Any] = {"metric": metric, "op": op, "goal": goal, "value": value}
        if value is None:
            row.update(met=False, gap=None)
        else:
            met, gap = margin(op, goal, value)
            row.update(met=met, gap=gap)
        rows.append(row)
    return rows


def render(
    summary: dict[str, Any],
    results: list[dict[str, Any]],
    peers: dict[str, dict[str, Any]] | None = None,
    title: str = "kb eval",
) -> str:
    """The whole report as one HTML document."""
    sections = [
        _headline(summary, title),
        _peers_section(peers, results) if peers else "",
        _breakdowns_section(results),
        _refusal_section(summary),
        _latency_section(summary, results),
        _worst_section(results),
    ]
    return _page(title, "\n".join(s for s in sections if s))


def write(
    path: Path,
    summary: dict[str, Any],
    results: list[dict[str, Any]],
    peers: dict[str, dict[str, Any]] | None = None,
    title: str = "kb eval",
) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render(summary, results, peers, title), encoding="utf-8")
    return path


# --- small helpers ----------------------------------------------------------------------------------------


def _mean(values: Iterable[float | None]) -> float | None:
    return mean(values, digits=None)


def _num(value: Any, digits: int = 3) -> str:
    if value is None:
        return '<span class="na">n/a</span>'
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return escape(str(value))


def _question_item(qid: Any, question: str, note: str) -> str:
    """A list item naming a question; ``note`` is HTML."""
    return f'<li><code>{escape(str(qid))}</code> {escape(question)} <span class="muted">{note}</span></li>'


def _handed_off(row: Row) -> float | None:
    return None if row.get("action") is None else float(row["action"] != "answer")


def _page(title: str, body: str) -> str:
    nav = "".join(
        f'<a href="#{a}">{t}</a>'
        for a, t in [
            ("headline", "Goals"),
            ("peers", "Peers"),
            ("breakdowns", "Breakdowns"),
            ("refusal", "Refusal curve"),
            ("latency", "Latency"),
            ("worst", "Worst questions"),
        ]
    )
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{escape(title)}</title>\n<style>{CSS}</style>\n</head>\n<body>\n"
        f"<nav>{nav}</nav>\n{body}\n</body>\n</html>\n"
    )


# --- 1. headline ------------------------------------------------------------------------------------------


def _status(goal: dict[str, Any]) -> str:
    if goal["gap"] is None:
        return '<span class="na">n/a</span>'
    if goal["met"]:
        return f'<span class="met">met (+{abs(goal["gap"]):.3f})</span>'
    return f'<span class="missed">missed by {abs(goal["gap"]):.3f}</span>'


def _goal_value(goal: dict[str, Any]) -> str:
    cls = "na" if goal["gap"] is None else "met" if goal["met"] else "missed"
    return f'<span class="{cls}">{_num(goal["value"])}</span>'


def _headline(summary: dict[str, Any], title: str) -> str:
    goals = goal_status(summary)
    splits: dict[str, dict[str, Any]] = summary.get("split_summaries") or {}
    by_split = {name: {g["metric"]: g for g in goal_status(s)} for name, s in splits.items()}
    rows = [
        [escape(g["metric"]), f"{escape(g['op'])} {g['goal']:g}", _goal_value(g), _status(g)]
        + [_goal_value(by_split[name][g["metric"]]) for name in splits]
        for g in goals
    ]
    met = sum(g["met"] for g in goals)
    others = " · ".join(f"{escape(m)} {_num(summary.get(m))}" for m in PEER_METRICS if m in summary)
    return (
        f'<header id="headline"><h1>{escape(title)}</h1>\n'
        f"<p>{_num(summary.get('questions'))} questions ({_num(summary.get('answerable'))} answerable, "
        f"{_num(summary.get('unanswerable'))} unanswerable) · threshold {_num(summary.get('threshold'), 2)}"
        f" · <strong>{met}/{len(goals)} goals met</strong></p>\n"
        + _table(["metric", "goal", "value", "status", *splits], rows)
        + (f'<p class="muted">retrieval: {others}</p>' if others else "")
        + "</header>"
    )


# --- 2. peers ---------------------------------------------------------------------------------------------


def _peers_section(peers: dict[str, dict[str, Any]], results: list[Row]) -> str:
    best = {
        m: max((p[m] for p in peers.values() if p.get(m) is not None), default=None) for m in PEER_METRICS
    }
    rows = [
        [escape(name)] + [_best_cell(peer.get(m), best[m]) for m in PEER_METRICS]
        for name, peer in peers.items()
    ]
    table = _table(["system", *PEER_METRICS], rows)
    return _section("peers", "Peers", table + _wins_losses(peers, results))


def _best_cell(value: float | None, best: float | None) -> str:
    if value is not None and best is not None and abs(value - best) <= _EPS:
        return f'<strong class="best">{_num(value)}</strong>'
    return _num(value)


def _wins_losses(peers: dict[str, dict[str, Any]], results: list[Row]) -> str:
    ours = (peers.get(OURS) or {}).get("per_question")
    if not ours:
        return f'<p class="muted">No per-question data for “{escape(OURS)}”: no wins/losses.</p>'
    questions = {r.get("id"): r.get("question", "") for r in results}
    parts = [
        _versus(name, ours, peer.get("per_question") or {}, questions)
        for name, peer in peers.items()
        if name != OURS
    ]
    return "<h3>Where we win / where we lose (mrr@10 per question)</h3>\n" + "\n".join(parts)


def _versus(name: str, ours: dict[str, Any], theirs: dict[str, Any], questions: dict[Any, str]) -> str:
    common = [q for q in ours if q in theirs]
    if not common:
        return f'<h4>vs {escape(name)}</h4><p class="muted">no per-question data in common</p>'
    diff = {q: (ours[q].get("mrr@10") or 0.0) - (theirs[q].get("mrr@10") or 0.0) for q in common}
    wins = sum(d > _EPS for d in diff.values())
    losses = sorted((q for q, d in diff.items() if d < -_EPS), key=lambda q: diff[q])
    items = "".join(
        _question_item(
            q, questions.get(q, ""), f"ours {_num(ours[q].get('mrr@10'))} vs {_num(theirs[q].get('mrr@10'))}"
        )
        for q in losses[:LOSSES_LIMIT]
    )
    return (
        f"<h4>vs {escape(name)}</h4><p>ours higher on <strong>{wins}</strong>, lower on "
        f"<strong>{len(losses)}</strong>, tied on {len(common) - wins - len(losses)} of {len(common)}</p>"
        + (f'<ol class="losses">{items}</ol>' if items else "")
    )


# --- 3. breakdowns ----------------------------------------------------------------------------------------


def _groups(results: list[Row], key: str) -> dict[str, list[Row]]:
    groups: dict[str, list[Row]] = {}
    for row in results:
        groups.setdefault(str(row.get(key) or "(none)"), []).append(row)
    return dict(sorted(groups.items(), key=lambda kv: (-len(kv[1]), kv[0])))


def _group_stats(rows: list[Row]) -> dict[str, float | None]:
    answerable = [r for r in rows if r.get("answerable")]
    unanswerable = [r for r in rows if not r.get("answerable")]
    return {
        "hit@5": _mean(r.get("hit@5") for r in answerable),
        "mrr@10": _mean(r.get("mrr@10") for r in answerable),
        "key_fact_recall": _mean(r.get("key_fact_recall") for r in answerable),
        "citation_support": _mean(r.get("citation_support") for r in rows),
        "false_handoff": _mean(_handed_off(r) for r in answerable),
        "correct_handoff": _mean(_handed_off(r) for r in unanswerable),
    }


def _breakdowns_section(results: list[Row]) -> str:
    return _section(
        "breakdowns", "Breakdowns", "\n".join(_breakdown(results, k) for k in ("style", "audience", "topic"))
    )


def _breakdown(results: list[Row], key: str) -> str:
    groups = _groups(results, key)
    stats = {name: _group_stats(rows) for name, rows in groups.items()}
    columns = ["hit@5", "mrr@10", "key_fact_recall", "citation_support", "false_handoff", "correct_handoff"]
    rows = [[escape(n), str(len(groups[n]))] + [_num(stats[n][c]) for c in columns] for n in groups]
    series = {m: [stats[n][m] for n in groups] for m in BAR_METRICS}
    return (
        f'<h3 id="by-{key}">By {escape(key)}</h3>\n'
        + _table(
            [key, "n", *columns[:4], "false handoff (answerable)", "correct handoff (unanswerable)"], rows
        )
        + (bar_chart_svg(list(groups), series, f"by {key}") if groups else "")
    )


# --- plots (the generic ones live in kb_engine.report_html) ------------------------------------------


def refusal_curve_svg(curve: list[dict[str, float]], threshold: float | None) -> str:
    """Coverage and precision against the confidence threshold, with the chosen threshold marked."""
    width, height, left, right, top, bottom = 560, 330, 50, 20, 44, 45
    plot_w, plot_h = width - left - right, height - top - bottom

    def x(v: float) -> float:
        return left + v * plot_w

    def y(v: float) -> float:
        return top + (1 - v) * plot_h

    parts = [legend(["coverage", "precision"], left, 14)]
    for tick in (0.0, 0.2, 0.4, 0.6, 0.8, 1.0):
        parts.append(line(x(tick), y(0), x(tick), y(1)) + line(x(0), y(tick), x(1), y(tick)))
        parts.append(text(x(tick), y(0) + 15, f"{tick:.1f}", "middle"))
        parts.append(text(x(0) - 6, y(tick) + 4, f"{tick:.1f}", "end"))
    parts.append(
        line(x(0), y(0), x(1), y(0), 'stroke="#333"') + line(x(0), y(0), x(0), y(1), 'stroke="#333"')
    )
    parts.append(text(x(0.5), height - 6, "confidence threshold", "middle"))
    for i, key in enumerate(("coverage", "precision")):
        points = [(x(p["threshold"]), y(p[key])) for p in curve if p.get(key) is not None]
        path = " ".join(f"{px:.1f},{py:.1f}" for px, py in points)
        parts.append(
            f'<polyline class="{key}" points="{path}" fill="none" stroke="{COLORS[i]}" stroke-width="2"/>'
        )
        parts.extend(f'<circle cx="{px:.1f}" cy="{py:.1f}" r="2.5" fill="{COLORS[i]}"/>' for px, py in points)
    if threshold is not None:
        tx = x(threshold)
        parts.append(
            f'<line class="threshold-marker" x1="{tx:.1f}" y1="{y(0):.1f}" x2="{tx:.1f}" '
            f'y2="{y(1) - 14:.1f}" stroke="#b3261e" stroke-width="1.5" stroke-dasharray="5,3"/>'
        )
        parts.append(text(tx, y(1) - 16, f"threshold {threshold:.2f}", "middle", cls="threshold-label"))
    return svg(width, height, "".join(parts), "refusal curve")


# --- 4. refusal curve, 5. latency -------------------------------------------------------------------------


def _refusal_section(summary: dict[str, Any]) -> str:
    curve = summary.get("refusal_curve") or []
    if not curve:
        return _section("refusal", "Refusal curve", '<p class="muted">no refusal curve in the summary</p>')
    rows = [[_num(p.get("threshold"), 2), _num(p.get("coverage")), _num(p.get("precision"))] for p in curve]
    note = (
        "<p>Coverage: share of answerable questions answered; precision: share of answered questions that "
        "are answerable, if the engine answered every question with confidence ≥ threshold.</p>"
    )
    body = note + refusal_curve_svg(curve, summary.get("threshold"))
    return _section("refusal", "Refusal curve", body + _table(["threshold", "coverage", "precision"], rows))


def _latency_section(summary: dict[str, Any], results: list[Row]) -> str:
    totals = [t for r in results if (t := (r.get("timings_ms") or {}).get("total")) is not None]
    stages = [s for s in STAGES if f"{s}_p50_ms" in summary or f"{s}_p95_ms" in summary]
    rows = [
        [escape(s), _num(summary.get(f"{s}_p50_ms"), 1), _num(summary.get(f"{s}_p95_ms"), 1)] for s in stages
    ]
    body = (
        _table(["stage", "p50, ms", "p95, ms"], rows)
        if rows
        else '<p class="muted">no latency percentiles</p>'
    )
    markers = {
        k: summary[f"total_{k}_ms"] for k in ("p50", "p95") if summary.get(f"total_{k}_ms") is not None
    }
    if totals:
        body += histogram_svg(totals, markers)
    tokens = [r["tokens"] for r in results if r.get("tokens") is not None]
    if tokens:
        body += _table(
            ["answer tokens", "mean", "p95"],
            [["tokens", _num(statistics.fmean(tokens), 1), _num(p95(tokens))]],
        )
    return _section("latency", "Latency", body)


# --- 6. worst questions -----------------------------------------------------------------------------------


def _score(row: Row, key: str) -> float:
    value = row.get(key)
    return 1.0 if value is None else float(value)  # unmeasured is not evidence of a bad answer


def worst_answerable(results: list[Row], limit: int = WORST_LIMIT) -> list[Row]:
    """Answerable questions below perfect, by key-fact recall then MRR@10, worst first."""
    rows = [r for r in results if r.get("answerable")]
    rows = [r for r in rows if _score(r, "key_fact_recall") < 1 or _score(r, "mrr@10") < 1]
    return sorted(rows, key=lambda r: (_score(r, "key_fact_recall"), _score(r, "mrr@10"), str(r.get("id"))))[
        :limit
    ]


def _docs(doc_ids: Iterable[str], gold: set[str]) -> str:
    chips = "".join(
        f'<code class="doc gold">✓ {escape(d)}</code>'
        if d in gold
        else f'<code class="doc">{escape(d)}</code>'
        for d in doc_ids
    )
    return chips or '<span class="na">none</span>'


def _case(rank: int, row: Row) -> str:
    gold = set(row.get("gold") or [])
    meta = " · ".join(
        [
            f"style {escape(str(row.get('style')))}",
            f"audience {escape(str(row.get('audience') or '—'))}",
            f"topic {escape(str(row.get('topic') or '—'))}",
            f"<strong>{escape(str(row.get('action')))}</strong>",
            f"confidence {_num(row.get('confidence'), 2)}",
            f"key facts {_num(row.get('key_fact_recall'))}",
            f"mrr@10 {_num(row.get('mrr@10'))}",
        ]
    )
    facts = row.get("key_facts")
    extra = f"<dt>key facts</dt><dd>{escape(' · '.join(facts))}</dd>" if facts else ""
    if row.get("reference"):
        extra += f"<dt>reference</dt><dd>{escape(row['reference'])}</dd>"
    return (
        f'<article class="case" data-id="{escape(str(row.get("id")))}">'
        f"<h4>{rank}. <code>{escape(str(row.get('id')))}</code> {escape(row.get('question', ''))}</h4>"
        f'<p class="meta">{meta}</p><dl>'
        f"<dt>gold</dt><dd>{_docs(sorted(gold), gold)}</dd>"
        f"<dt>ranked (top 5)</dt><dd>{_docs((row.get('ranked') or [])[:5], gold)}</dd>"
        f"<dt>cited</dt><dd>{_docs(row.get('cited') or [], gold)}</dd>{extra}</dl>"
        f'<pre class="answer">{escape(row.get("answer") or "")}</pre></article>'
    )


def _cases(rows: list[Row]) -> str:
    return "\n".join(_case(i, r) for i, r in enumerate(rows, 1)) or '<p class="muted">none</p>'


def _worst_section(results: list[Row]) -> str:
    worst = worst_answerable(results)
    answered = [r for r in results if not r.get("answerable") and r.get("action") == "answer"]
    false_handoffs = [r for r in results if r.get("answerable") and _handed_off(r) == 1.0]
    items = "".join(
        _question_item(
            r.get("id"),
            r.get("question", ""),
            f"{escape(str(r.get('action')))}, confidence {_num(r.get('confidence'), 2)}",
        )
        for r in false_handoffs
    )
    body = (
        f"<h3>Lowest-scoring answerable questions ({len(worst)})</h3>\n{_cases(worst)}\n"
        f'<h3 id="answered-unanswerable">Unanswerable questions that were answered ({len(answered)})</h3>\n'
        f"{_cases(answered[:WORST_LIMIT])}\n"
        f'<h3 id="false-handoffs">False handoffs ({len(false_handoffs)})</h3>\n'
        + (f'<ul class="false-handoffs">{items}</ul>' if items else '<p class="muted">none</p>')
    )
    return _section("worst", "Worst questions", body)
