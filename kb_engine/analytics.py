"""Support analytics over the answer log: what was asked and by whom, what was handed off, what users
rated down, which questions the help centre does not cover, which articles carry the answers, and how
agents use the drafts. ``compute_stats`` aggregates records in Python (the log may be SQLite or
PostgreSQL: every backend gives the same numbers); ``kb_engine.analytics_report`` draws the result.

Counting rules, shared by every section:

- **Period.** An answer counts when it was created in [since, until). Feedback counts with its
  answer, whenever it was given (a rating given after ``until`` of an answer inside the period
  counts; feedback on answers outside the period is ignored and reported as ``outside_period``).
- **One rating per answer.** When an answer was rated more than once, its latest feedback (highest
  id) wins; the earlier ones are ``superseded``. A *rated* answer has a rating of up or down.
- **Topic** is the answer's topic (the category of its cited articles; for a handoff, of the best
  passage found), ``none`` when it has none. The volume chart keeps the ``top_topics`` busiest
  topics and sums the rest as ``other``.
- **Audience**: ``buyer``, ``seller`` or ``none`` (not given). **Channel**: as logged (``chat``,
  ``email``, ``voice``, ``suggest`` for agents' drafts, ``openai:<channel>`` for the chat facade).
- **Time buckets**: an hour when the period spans less than 2 days, a day up to 90 days, a week
  beyond; in ``tz`` (the machine's local time by default). Empty buckets are kept, so time reads
  evenly.
- **Rates** are shares of the answers that can have them: actions over all answers; the thumbs-down
  rate of a topic over its rated answers, with a 95% Wilson interval (1 down of 1 rated is
  "somewhere between 21% and 100%", not "100%").
"""

from __future__ import annotations

import re
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from datetime import date, datetime, timedelta, tzinfo
from typing import Literal

from pydantic import BaseModel

from kb_engine.analytics_sections import (
    GAP_SIMILARITY,
    Articles,
    Gaps,
    Latency,
    Suggestions,
    article_stats,
    content_gaps,
    latency_stats,
    latest_feedback,
    suggestion_stats,
    wilson,
)
from kb_engine.embedding.base import Embedder
from kb_engine.errors import ConfigError
from kb_engine.index.base import Index
from kb_engine.store import AnswerRecord, FeedbackRecord, RecordStore

Bucket = Literal["hour", "day", "week"]
ACTIONS = ("answer", "clarify", "handoff")
AUDIENCES = ("buyer", "seller", "none")
OTHER = "other"
NONE = "none"
TOP_TOPICS = 8
_UNITS = {"h": 3600, "d": 86400, "w": 7 * 86400}
DURATION = re.compile(r"[0-9]{1,5}[hdw]")  # 24h, 7d, 2w: that long before now


class Period(BaseModel):
    since: float | None  # as asked, unix seconds
    until: float | None
    first: float | None  # the first and last answer in the period
    last: float | None
    bucket: Bucket
    timezone: str  # "UTC+03:00": the time of the buckets and of the labels
    utc_offset_minutes: int  # the same, as a number
    generated: float


class Volume(BaseModel):
    bucket_starts: list[str]  # ISO 8601 in the period's time zone, one per bucket, oldest first
    by_audience: dict[str, list[int]]  # buyer, seller, none → answers per bucket
    by_topic: dict[str, list[int]]  # the busiest topics, then «other»
    audience_totals: dict[str, int]
    topic_totals: dict[str, int]  # every topic, busiest first
    channel_totals: dict[str, int]


class ChannelActions(BaseModel):
    channel: str
    total: int
    answer: int
    clarify: int
    handoff: int


class Actions(BaseModel):
    counts: dict[str, int]  # answer, clarify, handoff
    rates: dict[str, float | None]  # of all answers in the period
    over_time: dict[str, list[float | None]]  # handoff, clarify: rate per bucket (None: no answers)
    by_channel: list[ChannelActions]  # busiest first


class TopicFeedback(BaseModel):
    topic: str
    answers: int
    rated: int
    up: int
    down: int
    down_handoffs: int  # of the downs, on questions handed off to an agent
    down_rate: float | None  # down / rated
    interval: tuple[float, float] | None  # 95% Wilson interval of down_rate


class ReasonCount(BaseModel):
    reason: str
    count: int


class FeedbackSummary(BaseModel):
    events: int  # feedback records on answers of the period, superseded ones included
    rated: int  # answers with a rating (their latest)
    up: int
    down: int
    superseded: int
    outside_period: int  # feedback records on answers not in the period
    by_topic: list[TopicFeedback]  # most downs first
    down_reasons: list[ReasonCount]  # reasons given with the latest thumbs-down, most frequent first


class SupportStats(BaseModel):
    """Everything the support report shows, JSON-serialisable (``GET /v1/admin/stats?format=json``)."""

    period: Period
    answers: int
    volume: Volume
    actions: Actions
    feedback: FeedbackSummary
    gaps: Gaps
    articles: Articles
    suggestions: Suggestions
    latency: Latency


def parse_when(value: str | date | datetime, now: float | None = None, tz: tzinfo | None = None) -> float:
    """``7d``, ``24h``, ``2w`` (that long before ``now``), or a date / date-time (ISO text or object;
    a date is its midnight, a naive date-time is in ``tz``) → unix seconds. A ConfigError says what
    was expected."""
    tz = tz or _local_tz()
    if isinstance(value, str):
        text = value.strip().lower()
        if DURATION.fullmatch(text):
            return (time.time() if now is None else now) - int(text[:-1]) * _UNITS[text[-1]]
        try:
            value = date.fromisoformat(text) if len(text) == 10 else datetime.fromisoformat(value.strip())
        except ValueError:
            raise ConfigError(
                f"expected a duration like 7d, 24h or 2w, or a date like 2026-11-01; got {value!r}"
            ) from None
    if not isinstance(value, datetime):
        value = datetime(value.year, value.month, value.day)
    return (value if value.tzinfo else value.replace(tzinfo=tz)).timestamp()


def compute_stats(
    answers: Sequence[AnswerRecord],
    feedback: Sequence[FeedbackRecord],
    *,
    embedder: Embedder | None,
    indexed_docs: dict[str, str] | None,
    since: float | None = None,
    until: float | None = None,
    low_confidence: float = 0.6,
    gap_similarity: float = GAP_SIMILARITY,
    missing_index_reason: str | None = None,
    top_topics: int = TOP_TOPICS,
    tz: tzinfo | None = None,
    now: float | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> SupportStats:
    """The report's numbers for the answers created in [since, until) (records outside are ignored).

    ``indexed_docs`` (doc id → title) lists what the index holds, for "never cited"; None when the
    index could not be read, with ``missing_index_reason`` saying why. ``embedder`` clusters the
    content gaps (None: not clustered). ``low_confidence``: an answer below it is a gap candidate
    (KB_ANSWER_THRESHOLD); ``gap_similarity`` the cosine at which two gap questions are one topic
    (KB_GAP_SIMILARITY). ``progress(done, total)`` follows the embedding of gap questions.
    """
    tz = tz or _local_tz()
    now = time.time() if now is None else now
    records = [
        r for r in answers if (since is None or r.created >= since) and (until is None or r.created < until)
    ]
    by_id = {r.id: r for r in records}
    latest, superseded, outside = latest_feedback(feedback, by_id)
    # The charts span the answers, up to `until` (or now) when a window was asked for: a quiet end
    # of the period shows as empty buckets, a `since` before the first answer adds nothing.
    first, last = (records[0].created, records[-1].created) if records else (now, now)
    end = last
    if since is not None or until is not None:  # `until` is exclusive
        end = max(last, min(until if until is not None else now, now) - 1e-6)
    bucket = _bucket_kind(end - first)
    starts = _bucket_starts(first, end, bucket, tz)
    index = {s: i for i, s in enumerate(starts)}
    slot = [index.get(_floor(r.created, bucket, tz), len(starts) - 1) for r in records]
    offset = _utc_offset_minutes(tz, now)
    return SupportStats(
        period=Period(
            since=since,
            until=until,
            first=records[0].created if records else None,
            last=records[-1].created if records else None,
            bucket=bucket,
            timezone=_tz_label(offset),
            utc_offset_minutes=offset,
            generated=now,
        ),
        answers=len(records),
        volume=_volume(records, slot, starts, top_topics),
        actions=_actions(records, slot, len(starts)),
        feedback=_feedback(records, latest, superseded, outside),
        gaps=content_gaps(records, embedder, low_confidence, progress, gap_similarity),
        articles=article_stats(records, latest, indexed_docs, missing_index_reason),
        suggestions=suggestion_stats(records, latest),
        latency=latency_stats(records),
    )


def stats_from_store(
    store: RecordStore,
    *,
    embedder: Embedder | None,
    index: Index | None,
    missing_index_reason: str | None = None,
    since: float | None = None,
    until: float | None = None,
    low_confidence: float = 0.6,
    gap_similarity: float = GAP_SIMILARITY,
    progress: Callable[[int, int], None] | None = None,
    tz: tzinfo | None = None,
    now: float | None = None,
) -> SupportStats:
    """``compute_stats`` over the log: the answers of [since, until) and all feedback given since
    ``since`` (a rating comes after its answer, whenever it came). ``index`` (None: not available,
    ``missing_index_reason`` says why) is asked for its documents."""
    docs, reason = (index.document_titles(), None) if index is not None else (None, missing_index_reason)
    return compute_stats(
        store.answers(since, until),
        store.feedback(since),
        embedder=embedder,
        indexed_docs=docs,
        missing_index_reason=reason,
        since=since,
        until=until,
        low_confidence=low_confidence,
        gap_similarity=gap_similarity,
        progress=progress,
        tz=tz,
        now=now,
    )


# --- time ---------------------------------------------------------------------------------------------------


def _local_tz() -> tzinfo:
    tz = datetime.now().astimezone().tzinfo
    assert tz is not None
    return tz


def _utc_offset_minutes(tz: tzinfo, now: float) -> int:
    offset = datetime.fromtimestamp(now, tz).utcoffset() or timedelta(0)
    return int(offset.total_seconds() // 60)


def _tz_label(minutes: int) -> str:
    sign = "+" if minutes >= 0 else "-"
    return f"UTC{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


def _bucket_kind(span_s: float) -> Bucket:
    if span_s < 2 * 86400:
        return "hour"
    return "day" if span_s <= 90 * 86400 else "week"


def _floor_dt(moment: datetime, bucket: Bucket) -> datetime:
    if bucket == "hour":
        return moment.replace(minute=0, second=0, microsecond=0)
    day = moment.replace(hour=0, minute=0, second=0, microsecond=0)
    return day - timedelta(days=day.weekday()) if bucket == "week" else day


def _floor(ts: float, bucket: Bucket, tz: tzinfo) -> str:
    return _floor_dt(datetime.fromtimestamp(ts, tz), bucket).isoformat()


def _bucket_starts(start: float, end: float, bucket: Bucket, tz: tzinfo) -> list[str]:
    step = {"hour": timedelta(hours=1), "day": timedelta(days=1), "week": timedelta(weeks=1)}[bucket]
    current = _floor_dt(datetime.fromtimestamp(start, tz), bucket)
    last = _floor_dt(datetime.fromtimestamp(end, tz), bucket)
    out = []
    while current <= last:
        out.append(current.isoformat())
        current = _floor_dt(current + step, bucket)  # re-floored: a DST change keeps whole buckets
    return out


# --- volume, actions, feedback --------------------------------------------------------------------------


def _key(value: str | None) -> str:
    return value or NONE


def _volume(records: list[AnswerRecord], slot: list[int], starts: list[str], top_n: int) -> Volume:
    n = len(starts)
    topic_totals = Counter(_key(r.topic) for r in records)
    ranked = sorted(topic_totals, key=lambda t: (-topic_totals[t], t))
    kept = ranked if len(ranked) <= top_n + 1 else ranked[:top_n]
    by_audience = {a: [0] * n for a in AUDIENCES}
    by_topic = {t: [0] * n for t in kept}
    if len(kept) < len(ranked):
        by_topic[OTHER] = [0] * n
    for r, i in zip(records, slot, strict=True):
        by_audience.setdefault(_key(r.audience), [0] * n)[i] += 1
        topic = _key(r.topic)
        by_topic[topic if topic in kept else OTHER][i] += 1
    return Volume(
        bucket_starts=starts,
        by_audience=by_audience,
        by_topic=by_topic,
        audience_totals={a: sum(v) for a, v in by_audience.items()},
        topic_totals={t: topic_totals[t] for t in ranked},
        channel_totals=dict(Counter(r.channel for r in records).most_common()),
    )


def _rate(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def _actions(records: list[AnswerRecord], slot: list[int], n: int) -> Actions:
    counts = Counter(r.action for r in records)
    per_bucket: list[Counter[str]] = [Counter() for _ in range(n)]
    channels: dict[str, Counter[str]] = defaultdict(Counter)
    for r, i in zip(records, slot, strict=True):
        per_bucket[i][r.action] += 1
        channels[r.channel][r.action] += 1
    return Actions(
        counts={a: counts[a] for a in ACTIONS},
        rates={a: _rate(counts[a], len(records)) for a in ACTIONS},
        over_time={a: [_rate(c[a], sum(c.values())) for c in per_bucket] for a in ("handoff", "clarify")},
        by_channel=[
            ChannelActions(channel=ch, total=sum(c.values()), **{a: c[a] for a in ACTIONS})
            for ch, c in sorted(channels.items(), key=lambda kv: (-sum(kv[1].values()), kv[0]))
        ],
    )


def _feedback(
    records: list[AnswerRecord], latest: dict[str, FeedbackRecord], superseded: int, outside: int
) -> FeedbackSummary:
    answers: Counter[str] = Counter()
    ratings: dict[str, Counter[str]] = defaultdict(Counter)
    for r in records:
        topic = _key(r.topic)
        answers[topic] += 1
        if (f := latest.get(r.id)) is not None:
            ratings[topic][f.rating] += 1
            ratings[topic]["down_handoff"] += f.rating == "down" and r.action == "handoff"
    rows = []
    for topic, c in ratings.items():
        rated = c["up"] + c["down"]
        rows.append(
            TopicFeedback(
                topic=topic,
                answers=answers[topic],
                rated=rated,
                up=c["up"],
                down=c["down"],
                down_handoffs=c["down_handoff"],
                down_rate=_rate(c["down"], rated),
                interval=wilson(c["down"], rated),
            )
        )
    rows.sort(key=lambda t: (-t.down, -(t.down_rate or 0.0), t.topic))
    downs = [f for f in latest.values() if f.rating == "down"]
    reasons = Counter((f.reason or "").strip() for f in downs if (f.reason or "").strip())
    ups = sum(f.rating == "up" for f in latest.values())
    return FeedbackSummary(
        events=len(latest) + superseded,
        rated=ups + len(downs),
        up=ups,
        down=len(downs),
        superseded=superseded,
        outside_period=outside,
        by_topic=rows,
        down_reasons=[ReasonCount(reason=k, count=v) for k, v in reasons.most_common(10)],
    )
