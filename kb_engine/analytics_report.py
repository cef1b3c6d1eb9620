"""The support report: ``SupportStats`` as one self-contained HTML page in Russian, for a support lead.

Inline CSS and SVG only (``kb_engine.report_html``): no scripts, no external URLs but the help-centre
links of the articles themselves. Questions are customers' text (redacted when logged): every piece
of data is escaped.
"""

from __future__ import annotations

from datetime import datetime
from html import escape

from kb_engine.analytics import SupportStats
from kb_engine.analytics_report_sections import (
    AUDIENCES,
    articles_section,
    channel_label,
    gaps_section,
    latency_section,
    pct,
    share_tile,
    suggestions_section,
    tiles,
    topic_label,
    when,
)
from kb_engine.report_html import (
    BASE_CSS,
    COLORS,
    GREY,
    count_bars_svg,
    lines_svg,
    rate_bars_svg,
    section,
    stacked_columns_svg,
    table,
)

MIN_RATED = 5  # fewer ratings than this: the topic's rate is drawn grey and flagged
CSS = (
    BASE_CSS
    + """
header p{margin:4px 0;color:#555}
.tiles{display:grid;grid-template-columns:repeat(auto-fill,minmax(138px,1fr));gap:10px;margin:14px 0}
.tile{border:1px solid #e2e2e2;border-radius:8px;padding:10px 12px;background:#fafbfc}
.tile b{display:block;font-size:22px;font-weight:600;color:#222}.tile span{color:#666;font-size:13px}
.note{color:#555;max-width:860px}.muted{color:#888}
.gap{border:1px solid #e2e2e2;border-radius:8px;padding:8px 12px;margin:10px 0}
.gap h3{margin:0 0 4px;font-size:15px}.gap ul{margin:4px 0 4px 18px;padding:0}
.gap .meta{color:#666;font-size:13px;margin:4px 0}
.count{display:inline-block;min-width:34px;padding:0 6px;margin-right:8px;border-radius:10px;
 background:#e8eef7;text-align:center;font-weight:600}
.split{display:flex;height:16px;border-radius:4px;overflow:hidden;max-width:640px;margin:6px 0}
.split span{display:block;height:100%}
.cols{display:flex;flex-wrap:wrap;gap:8px 32px}.cols>div{flex:1 1 420px}
ul.docs{columns:2;max-width:980px}
.empty{padding:24px;border:1px dashed #ccc;border-radius:8px;max-width:760px}
"""
)


def render(stats: SupportStats, title: str = "Поддержка «Самобранки»: отчёт") -> str:
    """The whole report as one HTML document."""
    if stats.answers == 0:
        body = _header(stats, title) + _empty(stats)
    else:
        body = "\n".join(
            [
                _header(stats, title),
                _volume(stats),
                _actions(stats),
                _feedback(stats),
                gaps_section(stats),
                articles_section(stats),
                suggestions_section(stats),
                latency_section(stats),
                _rules(stats),
            ]
        )
    nav = "".join(
        f'<a href="#{a}">{t}</a>'
        for a, t in [
            ("volume", "Объём"),
            ("actions", "Ответы и передачи"),
            ("feedback", "Оценки"),
            ("gaps", "Пробелы в базе знаний"),
            ("articles", "Статьи"),
            ("suggestions", "Черновики"),
            ("latency", "Скорость"),
        ]
    )
    return (
        '<!DOCTYPE html>\n<html lang="ru">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{escape(title)}</title>\n<style>{CSS}</style>\n</head>\n<body>\n"
        f"<nav>{nav}</nav>\n{body}\n</body>\n</html>\n"
    )


# --- formatting -------------------------------------------------------------------------------------------


def _bucket_labels(stats: SupportStats) -> list[str]:
    fmt = {"hour": "%d.%m %H:00", "day": "%d.%m", "week": "нед. %d.%m"}[stats.period.bucket]
    return [datetime.fromisoformat(s).strftime(fmt) for s in stats.volume.bucket_starts]


def _one_bucket_note(stats: SupportStats) -> str:
    unit = {"hour": "один час", "day": "один день", "week": "одну неделю"}[stats.period.bucket]
    return (
        f'<p class="note muted">Все обращения периода пришлись на {unit}: график по времени появится, '
        "когда журнал охватит больше. Ниже — итоги периода.</p>"
    )


# --- sections ---------------------------------------------------------------------------------------------


def _span(stats: SupportStats) -> str:
    p = stats.period
    start = p.since if p.since is not None else p.first
    end = p.until if p.until is not None else p.last
    if start is None or end is None:
        return "за всё время"
    if when(stats, start, False) == when(stats, end, False):  # one day: its date once
        hours = f"{when(stats, start)[-5:]}–{when(stats, end)[-5:]}"
        return f"{when(stats, start, False)}, {hours} ({p.timezone})"
    return f"с {when(stats, start)} по {when(stats, end)} ({p.timezone})"


def _header(stats: SupportStats, title: str) -> str:
    line = f"Период: {_span(stats)} · отчёт построен {when(stats, stats.period.generated)}"
    head = f'<header id="overview"><h1>{escape(title)}</h1><p>{escape(line)}</p>'
    if stats.answers == 0:
        return head + "</header>"
    a, f = stats.actions, stats.feedback
    agents = stats.volume.channel_totals.get("suggest", 0)
    cards = tiles(
        [
            ("вопросов" + (f", из них {agents} от операторов" if agents else ""), str(stats.answers)),
            share_tile("бот ответил сам", a.counts["answer"], stats.answers),
            share_tile("передал оператору", a.counts["handoff"], stats.answers),
            share_tile("попросил уточнить", a.counts["clarify"], stats.answers),
            share_tile("ответов оценили", f.rated, stats.answers),
            share_tile("из оценок — «плохо»", f.down, f.rated),
            ("вопросов без уверенного ответа: см. пробелы", str(stats.gaps.questions)),
        ]
    )
    return head + cards + "</header>"


def _empty(stats: SupportStats) -> str:
    scope = "за этот период" if stats.period.since is not None or stats.period.until is not None else "пока"
    return (
        f'<div class="empty"><h2>Обращений {scope} нет</h2>'
        "<p>Отчёт строится по журналу ответов сервиса. Чтобы его наполнить, запустите сервис "
        "(<code>make run</code> или <code>kb serve</code>) и отправьте демонстрационный трафик — "
        "несколько сотен типичных вопросов с оценками:</p>"
        "<pre><code>kb demo-traffic</code></pre><p>Затем снова: <code>kb report</code>.</p></div>"
    )


def _volume(stats: SupportStats) -> str:
    v = stats.volume
    labels = _bucket_labels(stats)
    audiences = {AUDIENCES.get(k, k): vs for k, vs in v.by_audience.items() if sum(vs)}
    topics = {topic_label(k): vs for k, vs in v.by_topic.items()}
    topic_colors = [
        GREY if k in ("other", "none") else COLORS[i % len(COLORS)] for i, k in enumerate(v.by_topic)
    ]
    audience_colors = [
        GREY if k == "none" else COLORS[i] for i, k in enumerate(v.by_audience) if sum(v.by_audience[k])
    ]
    if len(labels) > 1:
        charts = (
            "<h3>По аудитории</h3>"
            + stacked_columns_svg(labels, audiences, "обращения по аудитории", audience_colors)
            + "<h3>По темам</h3>"
            + stacked_columns_svg(labels, topics, "обращения по темам", topic_colors)
        )
    else:
        charts = _one_bucket_note(stats)

    def bars(title: str, names: list[str], counts: list[int]) -> str:
        return f"<h3>{title}</h3>" + count_bars_svg(names, counts, title, plot_w=250)

    audience = [(AUDIENCES.get(k, k), n) for k, n in v.audience_totals.items() if n]
    totals = (
        '<div class="cols"><div>'
        + bars("Аудитория, всего", [k for k, _ in audience], [n for _, n in audience])
        + bars("Каналы, всего", [channel_label(k) for k in v.channel_totals], list(v.channel_totals.values()))
        + "</div><div>"
        + bars("Темы, всего", [topic_label(k) for k in v.topic_totals], list(v.topic_totals.values()))
        + "</div></div>"
    )
    bucket = {"hour": "по часам", "day": "по дням", "week": "по неделям"}[stats.period.bucket]
    note = (
        f'<p class="note">Сколько вопросов задали {bucket} ({stats.period.timezone}). Тема — раздел справки, '
        "к которому относится ответ.</p>"
    )
    return section("volume", "Объём обращений", note + charts + totals)


def _actions(stats: SupportStats) -> str:
    a = stats.actions
    labels = _bucket_labels(stats)
    note = (
        '<p class="note">Что сделал бот: ответил со ссылками на справку, попросил уточнить слишком общий '
        "вопрос («не работает») или передал оператору, потому что уверенности не хватило.</p>"
    )
    if len(labels) > 1:
        series = {"передано оператору": a.over_time["handoff"], "уточнение": a.over_time["clarify"]}
        chart = lines_svg(labels, series, "доля передач и уточнений")
    else:
        chart = ""
    rows = [
        [
            escape(channel_label(c.channel)),
            str(c.total),
            f"{c.answer} · {pct(c.answer, c.total)}",
            f"{c.clarify} · {pct(c.clarify, c.total)}",
            f"{c.handoff} · {pct(c.handoff, c.total)}",
        ]
        for c in a.by_channel
    ]
    rows.append(
        [
            "<b>всего</b>",
            f"<b>{stats.answers}</b>",
            f"{a.counts['answer']} · {pct(a.rates['answer'])}",
            f"{a.counts['clarify']} · {pct(a.rates['clarify'])}",
            f"{a.counts['handoff']} · {pct(a.rates['handoff'])}",
        ]
    )
    body = note + chart + table(["канал", "обращений", "ответ", "уточнение", "передано оператору"], rows)
    return section("actions", "Ответы, уточнения, передачи оператору", body)


def _feedback(stats: SupportStats) -> str:
    f = stats.feedback
    heading = "Оценки «плохо» по темам"
    if not f.rated:
        return section("feedback", heading, '<p class="muted">За период нет оценок.</p>')
    rows = [t for t in f.by_topic if t.rated]
    notes = [
        f"{t.down} из {t.rated}"
        + (f" (передано: {t.down_handoffs})" if t.down_handoffs else "")
        + (" · мало оценок" if t.rated < MIN_RATED else "")
        for t in rows
    ]
    chart = rate_bars_svg(
        [topic_label(t.topic) for t in rows],
        [t.down_rate or 0.0 for t in rows],
        [t.interval or (0.0, 1.0) for t in rows],
        notes,
        "доля оценок «плохо» по темам",
        faint=[t.rated < MIN_RATED for t in rows],
    )
    note = (
        f'<p class="note">Оценено {f.rated} ответов из {stats.answers} ({pct(f.rated, stats.answers)}): '
        f"{f.up} «хорошо», {f.down} «плохо». Полоса — доля «плохо» среди оценённых ответов темы (у ответа "
        "считается его последняя оценка); «передано» — из них вопросы, переданные оператору. Чёрный "
        "отрезок — 95-процентный интервал: при малом числе оценок доля ненадёжна (1 из 1 — это «где-то "
        f"от 21 до 100\u202f%»). Темы, где оценок меньше {MIN_RATED}, серые.</p>"
    )
    reasons = ""
    if f.down_reasons:
        reasons = "<h3>Что писали в оценках «плохо»</h3>" + table(
            ["причина", "раз"], [[escape(r.reason), str(r.count)] for r in f.down_reasons]
        )
    return section("feedback", heading, note + chart + reasons)


def _rules(stats: SupportStats) -> str:
    similarity = f"{stats.gaps.similarity_threshold:.2f}".replace(".", ",")
    return (
        '<footer><h2>Как считается</h2><ul class="note">'
        "<li>Вопрос входит в период по времени, когда его задали; оценка — вместе со своим вопросом, когда "
        "бы её ни поставили. Если ответ оценивали несколько раз, считается последняя оценка.</li>"
        "<li>Тема — раздел справки, к которому относятся процитированные статьи (у переданных оператору — "
        "раздел лучшего найденного фрагмента).</li>"
        f"<li>Пробелы: похожие вопросы объединены моделью e5 по смыслу (сходство не ниже {similarity}); "
        "приветствия не учитываются, повторы считаются.</li>"
        f"<li>Время — {escape(stats.period.timezone)}. Данные в JSON: <code>kb report --json</code> или "
        "<code>GET /v1/admin/stats?format=json</code>.</li></ul></footer>"
    )
