"""The sections of the support report about content and agents (content gaps, articles, agents' drafts,
latency), and the labels and number formats the whole report shares. Every value is escaped here or
by ``kb_engine.report_html``.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from html import escape

from kb_engine.analytics import SupportStats
from kb_engine.report_html import COLORS, section, table

AUDIENCES = {"buyer": "покупатели", "seller": "продавцы", "none": "не указано"}
CHANNELS = {"chat": "чат", "email": "почта", "voice": "голос", "suggest": "черновики операторам"}
# Categories of the shipped help centre; any other topic is shown as it is named in the index.
TOPICS = {
    "account": "аккаунт",
    "delivery": "доставка",
    "loyalty": "баллы и лояльность",
    "orders": "заказы",
    "payment": "оплата",
    "returns": "возвраты",
    "warranty": "гарантия",
    "seller-catalog": "продавцы: каталог",
    "seller-finance": "продавцы: финансы",
    "seller-logistics": "продавцы: логистика",
    "seller-marketing": "продавцы: продвижение",
    "seller-onboarding": "продавцы: подключение",
    "seller-quality": "продавцы: качество",
    "seller-support": "продавцы: поддержка",
    "none": "без темы",
    "other": "прочее",
}
GAPS_SHOWN = 15


def when(stats: SupportStats, ts: float, with_time: bool = True) -> str:
    """A moment in the report's time zone: «25.11.2026 19:34»."""
    try:
        moment = datetime.fromtimestamp(ts, timezone(timedelta(minutes=stats.period.utc_offset_minutes)))
    except (OverflowError, OSError, ValueError):  # a `since` of year 1 or 9999 asked for
        return "—"
    return moment.strftime("%d.%m.%Y %H:%M" if with_time else "%d.%m.%Y")


def pct(part: float | None, whole: float | None = None) -> str:
    """A share as Russian text: «22 %», «4,5 %», «—» when there is nothing to divide."""
    share = part if whole is None else (part / whole if part is not None and whole else None)
    if share is None:
        return "—"
    value = share * 100
    text = f"{value:.1f}" if 0 < value < 10 else f"{value:.0f}"
    return text.replace(".", ",") + "\u202f%"


def topic_label(key: str) -> str:
    return TOPICS.get(key, key)


def channel_label(key: str) -> str:
    if key.startswith("openai:"):
        return f"OpenAI API ({CHANNELS.get(key[7:], key[7:])})"
    return CHANNELS.get(key, key)


def tiles(items: list[tuple[str, str]]) -> str:
    """(caption, value) tiles; both are plain text."""
    cells = "".join(f'<div class="tile"><b>{escape(v)}</b><span>{escape(k)}</span></div>' for k, v in items)
    return f'<div class="tiles">{cells}</div>'


def share_tile(caption: str, part: int, whole: int) -> tuple[str, str]:
    return f"{caption} ({part} из {whole})", pct(part, whole)


def gaps_section(stats: SupportStats) -> str:
    g = stats.gaps
    heading = "Пробелы в базе знаний"
    cutoff = f"{g.confidence_cutoff:.2f}".replace(".", ",")
    note = (
        '<p class="note">Вопросы, которые бот передал оператору, и ответы с уверенностью ниже '
        f"{cutoff}, сгруппированные по смыслу: кандидаты на новые статьи справки (или на статьи, которые бот "
        "не находит). Сначала самые частые; вопросы, заданные один раз, не показаны.</p>"
    )
    if not g.questions:
        return section("gaps", heading, note + '<p class="muted">Таких вопросов за период нет.</p>')
    summary = (
        f"<p>{g.questions} вопросов без уверенного ответа: {g.clustered} в {len(g.clusters)} группах, "
        f"{g.questions - g.clustered} заданы по одному разу.</p>"
    )
    if g.note:
        summary += f'<p class="muted">{escape(g.note)}</p>'
    cards = []
    for c in g.clusters[:GAPS_SHOWN]:
        who = ", ".join(f"{AUDIENCES.get(k, k)} {n}" for k, n in c.audiences.items())
        how = f"передано оператору {c.handoffs}"
        if c.low_confidence:
            how += f", неуверенный ответ {c.low_confidence}"
        topic = f" · ближайшая тема: {topic_label(c.nearest_topic)}" if c.nearest_topic else ""
        others = [e for e in c.examples if e != c.label]
        examples = "".join(f"<li>{escape(e)}</li>" for e in others)
        cards.append(
            f'<article class="gap"><h3><span class="count" title="вопросов">{c.count}</span>'
            f"{escape(c.label)}</h3>"
            + (f"<ul>{examples}</ul>" if others else "")
            + f'<p class="meta">{escape(f"{who} · {how}{topic}")} · последний раз '
            f"{when(stats, c.last_seen)}</p></article>"
        )
    more = len(g.clusters) - GAPS_SHOWN
    tail = (
        f'<p class="muted">Ещё групп: {more} (все — в <code>kb report --json</code>).</p>' if more > 0 else ""
    )
    return section("gaps", heading, note + summary + "".join(cards) + tail)


def _doc(doc_id: str, title: str, url: str | None) -> str:
    name = escape(title or doc_id)
    link = f'<a href="{escape(url)}">{name}</a>' if url and url.startswith(("https://", "http://")) else name
    return f'{link} <code class="muted">{escape(doc_id)}</code>'


def articles_section(stats: SupportStats) -> str:
    a = stats.articles
    most = (
        table(
            ["статья", "ответов", "оценено", "«плохо»"],
            [
                [_doc(s.doc_id, s.title, s.url), str(s.answers), str(s.rated), str(s.down)]
                for s in a.most_cited
            ],
        )
        if a.most_cited
        else '<p class="muted">Ни один ответ не ссылался на статьи.</p>'
    )
    downs = (
        table(
            ["статья", "с «плохо»", "оценено", "доля «плохо»"],
            [
                [_doc(s.doc_id, s.title, s.url), str(s.down), str(s.rated), pct(s.down, s.rated)]
                for s in a.most_cited_down
            ],
        )
        if a.most_cited_down
        else '<p class="muted">Нет ответов с оценкой «плохо», ссылавшихся на статьи.</p>'
    )
    if a.never_cited is None:
        never = f'<p class="muted">Нет данных: {escape(a.never_cited_note or "индекс не прочитан")}</p>'
    elif not a.never_cited:
        never = f"<p>Все {a.indexed} документов индекса процитированы хотя бы раз.</p>"
    else:
        items = "".join(f"<li>{_doc(d.doc_id, d.title, None)}</li>" for d in a.never_cited)
        never = (
            f"<p>{len(a.never_cited)} из {a.indexed} документов индекса: их не находят, о них не спрашивают "
            f'или они устарели.</p><ul class="docs">{items}</ul>'
        )
    note = (
        f'<p class="note">{a.answers_citing} ответов ссылались на {a.distinct_cited} статей; у статьи ответ '
        "считается один раз, сколько бы ссылок на неё в нём ни было.</p>"
    )
    body = (
        note
        + "<h3>Чаще всего в ответах</h3>"
        + most
        + "<h3>Чаще всего в ответах с оценкой «плохо»</h3>"
        + '<p class="note muted">Оценка относится к ответу целиком: статья здесь — повод перечитать её, '
        "а не виновник.</p>" + downs + "<h3>Ни разу не процитированы за период</h3>" + never
    )
    return section("articles", "Статьи справки", body)


def suggestions_section(stats: SupportStats) -> str:
    s = stats.suggestions
    heading = "Черновики для операторов"
    note = (
        '<p class="note">Черновики ответов, которые бот предлагает операторам (<code>/v1/suggest</code>). '
        "По последней оценке черновика: «принят» — «хорошо» без правок, «отредактирован» — оператор прислал "
        "свой вариант ответа, «отклонён» — «плохо» без своего варианта.</p>"
    )
    if not s.requests:
        return section(
            "suggestions", heading, note + '<p class="muted">За период черновики не запрашивали.</p>'
        )
    edit = "—" if s.mean_edit_size is None else pct(s.mean_edit_size)
    cards = tiles(
        [
            ("запросов черновика", str(s.requests)),
            share_tile("с черновиком", s.with_draft, s.requests),
            share_tile("черновиков оценено", s.rated, s.with_draft),
            share_tile("принято как есть", s.accepted, s.rated),
            share_tile("отредактировано", s.edited, s.rated),
            share_tile("отклонено", s.rejected, s.rated),
            ("изменено текста при правке, в среднем", edit),
        ]
    )
    split = ""
    if s.rated:
        parts = [
            (s.accepted, COLORS[2], "принято"),
            (s.edited, COLORS[1], "отредактировано"),
            (s.rejected, COLORS[3], "отклонено"),
        ]
        split = (
            '<div class="split">'
            + "".join(
                f'<span style="width:{n / s.rated * 100:.1f}%;background:{c}" title="{t}: {n}"></span>'
                for n, c, t in parts
                if n
            )
            + "</div>"
            + '<p class="muted">'
            + " · ".join(f'<span style="color:{c}">■</span> {t} {n}' for n, c, t in parts)
            + "</p>"
        )
    extra = []
    if s.edited and s.mean_edit_size is None:
        extra.append("объём правки не посчитан: в журнале нет текста черновиков")
    elif s.edits_measured < s.edited:
        extra.append(f"объём правки посчитан по {s.edits_measured} из {s.edited} черновиков")
    if s.requests > s.with_draft:
        extra.append(
            f"{s.requests - s.with_draft} запросов остались без черновика: вопрос передан или неясен"
        )
    tail = "".join(f'<p class="muted">{escape(t)}.</p>' for t in extra)
    return section("suggestions", heading, note + cards + split + tail)


def latency_section(stats: SupportStats) -> str:
    lat = stats.latency
    if not lat.count:
        return section("latency", "Скорость ответа", '<p class="muted">Нет замеров.</p>')

    def ms(v: float | None) -> str:
        return "—" if v is None else f"{v:.0f}"

    rows = [
        [escape(channel_label(r.channel)), str(r.count), ms(r.p50_ms), ms(r.p95_ms)] for r in lat.by_channel
    ]
    rows.append(["<b>всего</b>", str(lat.count), ms(lat.p50_ms), ms(lat.p95_ms)])
    note = (
        '<p class="note">Время движка на ответ (поиск и составление текста), в миллисекундах: медиана и 95-й '
        "перцентиль (95\u202f% ответов быстрее). Для черновиков операторам — поиск и короткий черновик."
        "</p>"
    )
    return section(
        "latency", "Скорость ответа", note + table(["канал", "ответов", "медиана, мс", "95 %, мс"], rows)
    )
