"""Pieces of the self-contained HTML reports (the eval's and the support analytics'): base CSS, tables,
sections and inline SVG charts.

Everything here returns HTML text with no scripts and no external URLs, so a report opens on an
air-gapped machine. Labels and values are escaped here; the cells of ``table`` are HTML the caller
has escaped. A chart's hover text is an SVG ``<title>``, which browsers show without scripts.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from html import escape

# Calm, distinguishable on white and for the common colour-vision deficiencies in the first four.
COLORS = (
    "#3b6fb6",
    "#e08a2c",
    "#4a9a5b",
    "#b5475c",
    "#7a5ea8",
    "#3d9aa6",
    "#c9a227",
    "#8c6d4f",
    "#d37fa8",
    "#5f7d95",
)
GREY = "#b8bcc2"  # «other», «unknown»: present, but not the point

BASE_CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:24px auto;max-width:1100px;
 padding:0 16px;color:#222}
h1{margin-bottom:4px}h2{border-bottom:1px solid #ddd;padding-bottom:4px;margin-top:36px}
table{border-collapse:collapse;margin:8px 0 16px}th,td{border:1px solid #ddd;padding:3px 8px;text-align:right}
th{background:#f4f4f4}td:first-child,th:first-child{text-align:left}
.na,.muted{color:#888}nav a{margin-right:12px}code{font-size:90%}
svg.plot{display:block;margin:8px 0;font:11px system-ui,sans-serif}
"""


def table(head: Iterable[str], rows: Iterable[Iterable[str]], cls: str = "") -> str:
    """Header cells are plain text; body cells are HTML already escaped by the caller."""
    th = "".join(f"<th>{escape(h)}</th>" for h in head)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    attr = f' class="{cls}"' if cls else ""
    return f"<table{attr}><thead><tr>{th}</tr></thead><tbody>{body}</tbody></table>"


def section(anchor: str, heading: str, body: str) -> str:
    return f'<section id="{anchor}"><h2>{escape(heading)}</h2>\n{body}\n</section>'


# --- SVG primitives ---------------------------------------------------------------------------------------


def svg(width: float, height: float, body: str, label: str) -> str:
    return (
        f'<svg class="plot" viewBox="0 0 {width:.0f} {height:.0f}" width="{width:.0f}" height="{height:.0f}" '
        f'role="img" aria-label="{escape(label)}">{body}</svg>'
    )


def text(x: float, y: float, content: str, anchor: str = "start", cls: str = "") -> str:
    extra = f' class="{cls}"' if cls else ""
    return f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}"{extra}>{escape(content)}</text>'


def line(x1: float, y1: float, x2: float, y2: float, style: str = 'stroke="#ccc"') -> str:
    return f'<line x1="{x1:.1f}" y1="{y1:.1f}" x2="{x2:.1f}" y2="{y2:.1f}" {style}/>'


def legend(
    names: Iterable[str],
    x: float,
    y: float,
    colors: Sequence[str] = COLORS,
    step: float = 130,
    per_row: int = 0,
) -> str:
    """Coloured squares with names, ``step`` apart; ``per_row`` > 0 wraps onto rows 16 px apart."""
    parts = []
    for i, name in enumerate(names):
        row, col = divmod(i, per_row) if per_row else (0, i)
        x0, y0 = x + col * step, y + row * 16
        parts.append(
            f'<rect x="{x0:.1f}" y="{y0 - 9:.1f}" width="10" height="10" fill="{colors[i % len(colors)]}"/>'
        )
        parts.append(text(x0 + 14, y0, name))
    return "".join(parts)


def nice_max(value: float) -> float:
    """The smallest 1, 2, 2.5 or 5 × 10^k at or above ``value``: a round top for an axis."""
    if value <= 0:
        return 1.0
    scale = 1.0
    while scale * 10 <= value:
        scale *= 10
    while scale > value:
        scale /= 10
    for step in (1, 2, 2.5, 5, 10):
        if step * scale >= value:
            return step * scale
    return 10 * scale  # unreachable


def count_axis(value: float, ticks: int = 4) -> tuple[float, float]:
    """(top, step) of an axis of counts: whole steps of 1, 2 or 5 × 10^k, about ``ticks`` of them."""
    step = 1.0
    while step * ticks < value:
        for factor in (2.0, 2.5, 2.0):  # 1 → 2 → 5 → 10 → 20 → 50 …
            step *= factor
            if step * ticks >= value:
                break
    step = float(round(step))
    return max(step, step * math.ceil(value / step)), step


def _thin(count: int, room: float, each: float) -> int:
    """Label every k-th of ``count`` ticks so that labels ``each`` px wide fit in ``room`` px."""
    return max(1, math.ceil(count * each / max(room, 1.0)))


# --- charts -----------------------------------------------------------------------------------------------


def bar_chart_svg(labels: list[str], series: dict[str, list[float | None]], label: str) -> str:
    """Horizontal grouped bars of shares in 0..1: one group per label, one bar per series."""
    left, plot_w, bar_h, gap, top = 150, 380, 11, 9, 30
    group_h = bar_h * len(series) + gap
    height = top + group_h * len(labels) + 22
    parts = [legend(series, left, 14)]
    for tick in (0.0, 0.25, 0.5, 0.75, 1.0):
        x = left + tick * plot_w
        parts.append(line(x, top - 4, x, height - 18))
        parts.append(text(x, height - 6, f"{tick:g}", "middle"))
    for i, name in enumerate(labels):
        y0 = top + i * group_h
        short = name if len(name) <= 24 else name[:23] + "…"
        parts.append(text(left - 6, y0 + bar_h * len(series) / 2 + 4, short, "end"))
        for j, (metric, values) in enumerate(series.items()):
            value, y = values[i], y0 + j * bar_h
            if value is None:
                parts.append(text(left + 4, y + bar_h - 2, "n/a", cls="na"))
                continue
            tip = escape(f"{name} {metric}: {value:.3f}")
            parts.append(
                f'<rect x="{left}" y="{y:.1f}" width="{value * plot_w:.1f}" height="{bar_h - 1}" '
                f'fill="{COLORS[j % len(COLORS)]}"><title>{tip}</title></rect>'
            )
            parts.append(text(left + value * plot_w + 4, y + bar_h - 2, f"{value:.2f}"))
    return svg(left + plot_w + 50, height, "".join(parts), label)


def histogram_svg(
    values: list[float], markers: dict[str, float], bins: int = 20, x_label: str = "total latency, ms"
) -> str:
    """Counts of ``values`` in ``bins`` equal bins, with labelled vertical markers (e.g. p50, p95)."""
    width, height, left, right, top, bottom = 560, 240, 45, 20, 20, 40
    plot_w, plot_h = width - left - right, height - top - bottom
    lo, hi = min(values), max(values)
    span = (hi - lo) or 1.0
    counts = [0] * bins
    for v in values:
        counts[min(int((v - lo) / span * bins), bins - 1)] += 1
    most = max(counts)

    def x(v: float) -> float:
        return left + (v - lo) / span * plot_w

    fmt = ".0f" if span >= 20 else ".1f"

    bar_w = plot_w / bins
    parts = []
    for i, count in enumerate(counts):
        h, x0 = count / most * plot_h, left + i * bar_w + 1
        parts.append(
            f'<rect class="bin" data-count="{count}" x="{x0:.1f}" y="{top + plot_h - h:.1f}" '
            f'width="{bar_w - 2:.1f}" height="{h:.1f}" fill="{COLORS[0]}"><title>{count}</title></rect>'
        )
    parts.append(line(left, top + plot_h, left + plot_w, top + plot_h, 'stroke="#333"'))
    for i in range(5):
        v = lo + span * i / 4
        parts.append(text(x(v), top + plot_h + 14, f"{v:{fmt}}", "middle"))
    parts.append(text(left - 6, top + 4, str(most), "end") + text(left - 6, top + plot_h, "0", "end"))
    parts.append(text(left + plot_w / 2, height - 6, x_label, "middle"))
    for i, (name, value) in enumerate(markers.items()):
        mx = x(min(max(value, lo), lo + span))
        parts.append(line(mx, top, mx, top + plot_h, f'stroke="{COLORS[i + 1]}" stroke-dasharray="4,3"'))
        parts.append(text(mx + 3, top + 10 + 12 * i, f"{name} {value:{fmt}} ms"))
    return svg(width, height, "".join(parts), "latency histogram")


def stacked_columns_svg(
    x_labels: list[str],
    series: dict[str, list[int]],
    label: str,
    colors: Sequence[str] = COLORS,
    unit: str = "",
) -> str:
    """Vertical columns over time, one stacked segment per series (counts), with a legend on top."""
    width, left, right, bottom = 960, 48, 12, 34
    plot_w = width - left - right
    per_row = max(1, int(plot_w // 170))
    top = 14 + 16 * (-(-len(series) // per_row)) + 8
    plot_h = 200
    height = top + plot_h + bottom
    n = max(1, len(x_labels))
    totals = [sum(values[i] for values in series.values()) for i in range(len(x_labels))]
    y_max, y_step = count_axis(max(totals, default=0))
    slot = plot_w / n
    bar_w = max(1.0, min(slot * 0.8, 60.0))
    parts = [legend(series, left, 14, colors, step=170, per_row=per_row)]
    for k in range(int(y_max / y_step) + 1):
        value = k * y_step
        y = top + plot_h - value / y_max * plot_h
        parts.append(line(left, y, left + plot_w, y, 'stroke="#eee"'))
        parts.append(text(left - 6, y + 4, f"{value:g}", "end"))
    every = _thin(n, plot_w, 70)
    for i, name in enumerate(x_labels):
        x0 = left + i * slot + (slot - bar_w) / 2
        y = top + plot_h
        for j, (key, values) in enumerate(series.items()):
            if not values[i]:
                continue
            h = values[i] / y_max * plot_h
            y -= h
            tip = escape(f"{name} · {key}: {values[i]}{unit}")
            parts.append(
                f'<rect x="{x0:.1f}" y="{y:.1f}" width="{bar_w:.1f}" height="{h:.1f}" '
                f'fill="{colors[j % len(colors)]}"><title>{tip}</title></rect>'
            )
        if i % every == 0:
            parts.append(text(left + i * slot + slot / 2, top + plot_h + 14, name, "middle"))
    parts.append(line(left, top + plot_h, left + plot_w, top + plot_h, 'stroke="#333"'))
    return svg(width, height, "".join(parts), label)


def lines_svg(x_labels: list[str], series: dict[str, list[float | None]], label: str) -> str:
    """Shares in 0..1 over time, one line per series; None (no data in that bucket) breaks the line."""
    width, left, right, top, bottom = 960, 48, 12, 30, 34
    plot_w, plot_h = width - left - right, 180
    height = top + plot_h + bottom
    n = max(1, len(x_labels))
    values = [v for vs in series.values() for v in vs if v is not None]
    y_max = min(1.0, nice_max(max(values, default=0.0) * 1.1)) or 1.0
    slot = plot_w / n

    def xy(i: int, v: float) -> tuple[float, float]:
        return left + i * slot + slot / 2, top + plot_h - v / y_max * plot_h

    parts = [legend(series, left, 14, step=170)]
    for k in range(5):
        value = y_max * k / 4
        y = top + plot_h - value / y_max * plot_h
        parts.append(line(left, y, left + plot_w, y, 'stroke="#eee"'))
        parts.append(text(left - 6, y + 4, f"{value * 100:.0f} %", "end"))
    every = _thin(n, plot_w, 70)
    for i, name in enumerate(x_labels):
        if i % every == 0:
            parts.append(text(left + i * slot + slot / 2, top + plot_h + 14, name, "middle"))
    for j, (key, vs) in enumerate(series.items()):
        color = COLORS[j % len(COLORS)]
        runs: list[list[tuple[float, float]]] = [[]]
        for i, v in enumerate(vs):
            if v is None:
                runs.append([])
                continue
            runs[-1].append(xy(i, v))
            px, py = xy(i, v)
            tip = escape(f"{x_labels[i]} · {key}: {v * 100:.1f} %")
            parts.append(
                f'<circle cx="{px:.1f}" cy="{py:.1f}" r="2.5" fill="{color}"><title>{tip}</title></circle>'
            )
        for run in runs:
            if len(run) > 1:
                path = " ".join(f"{px:.1f},{py:.1f}" for px, py in run)
                parts.append(f'<polyline points="{path}" fill="none" stroke="{color}" stroke-width="2"/>')
    parts.append(line(left, top + plot_h, left + plot_w, top + plot_h, 'stroke="#333"'))
    return svg(width, height, "".join(parts), label)


def count_bars_svg(
    labels: list[str], counts: list[int], label: str, colors: Sequence[str] | None = None, plot_w: float = 560
) -> str:
    """Horizontal bars of counts, in the order given, each with its number."""
    left, bar_h, gap, top = 190, 14, 6, 6
    height = top + (bar_h + gap) * len(labels) + 4
    most = max(counts, default=0) or 1
    parts = []
    for i, (name, count) in enumerate(zip(labels, counts, strict=True)):
        y = top + i * (bar_h + gap)
        short = name if len(name) <= 30 else name[:29] + "…"
        parts.append(text(left - 6, y + bar_h - 3, short, "end"))
        w = count / most * plot_w
        color = colors[i % len(colors)] if colors else COLORS[0]
        tip = escape(f"{name}: {count}")
        parts.append(
            f'<rect x="{left}" y="{y:.1f}" width="{w:.1f}" height="{bar_h}" fill="{color}">'
            f"<title>{tip}</title></rect>"
        )
        parts.append(text(left + w + 4, y + bar_h - 3, str(count)))
    return svg(left + plot_w + 60, height, "".join(parts), label)


def rate_bars_svg(
    labels: list[str],
    rates: list[float],
    intervals: list[tuple[float, float]],
    notes: list[str],
    label: str,
    faint: list[bool] | None = None,
) -> str:
    """Horizontal bars of shares in 0..1 with a whisker for each share's interval and a note (e.g.
    "3 из 12") on the right; ``faint`` rows (too few to judge) are drawn grey."""
    left, plot_w, bar_h, gap, top = 190, 440, 14, 6, 22
    height = top + (bar_h + gap) * len(labels) + 4
    parts = []
    for tick in (0.0, 0.25, 0.5, 0.75, 1.0):
        x = left + tick * plot_w
        parts.append(line(x, top - 4, x, height - 2, 'stroke="#eee"'))
        parts.append(text(x, top - 8, f"{tick * 100:.0f} %", "middle"))
    for i, name in enumerate(labels):
        y = top + i * (bar_h + gap)
        short = name if len(name) <= 30 else name[:29] + "…"
        parts.append(text(left - 6, y + bar_h - 3, short, "end"))
        color = GREY if faint and faint[i] else COLORS[3]
        lo, hi = intervals[i]
        tip = escape(
            f"{name}: {rates[i] * 100:.0f} % ({notes[i]}), 95 % интервал {lo * 100:.0f}–{hi * 100:.0f} %"
        )
        parts.append(
            f'<rect x="{left}" y="{y:.1f}" width="{rates[i] * plot_w:.1f}" height="{bar_h}" fill="{color}" '
            f'fill-opacity="0.75"><title>{tip}</title></rect>'
        )
        ym = y + bar_h / 2
        parts.append(line(left + lo * plot_w, ym, left + hi * plot_w, ym, 'stroke="#333" stroke-width="1.2"'))
        for edge in (lo, hi):
            parts.append(line(left + edge * plot_w, ym - 4, left + edge * plot_w, ym + 4, 'stroke="#333"'))
        parts.append(text(left + plot_w + 8, y + bar_h - 3, notes[i]))
    return svg(left + plot_w + 230, height, "".join(parts), label)
