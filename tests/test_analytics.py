"""Support analytics over a real answer log (SQLite in tmp_path) seeded with records whose numbers are
known, and content gaps clustered by the real e5 model."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta, timezone
from difflib import SequenceMatcher
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

import kb_engine.store as store_module
from kb_engine.analytics import SupportStats, compute_stats, parse_when, stats_from_store
from kb_engine.config import Settings
from kb_engine.embedding import CachedEmbedder, EmbeddingCache
from kb_engine.embedding.e5 import E5Embedder
from kb_engine.errors import ConfigError, EmbeddingError
from kb_engine.schema import Answer, Citation
from kb_engine.store import RecordStore, open_store

T0 = datetime(2026, 11, 2, tzinfo=UTC).timestamp()  # a Monday
H, DAY = 3600.0, 86400.0
DOCS = {  # doc id → (title, category)
    "pickup": ("Как получить заказ в пункте выдачи", "delivery"),
    "courier": ("Курьерская доставка", "delivery"),
    "returns": ("Политика возврата", "returns"),
    "pay": ("Способы оплаты", "payment"),
    "warranty": ("Гарантия", "warranty"),
}
INDEXED = {d: title for d, (title, _) in DOCS.items()} | {"unused": "Архив акций"}
DRAFT = "Верните товар в течение 14 дней: Профиль → Заказы → «Вернуть». [1]"
EDITED_BODY = "Верните товар в течение 14 дней через раздел «Заказы»."
# as sent: the agent kept the draft's greeting and closing (`/v1/suggest` adds them), which are not edits
EDITED = f"Здравствуйте! {EDITED_BODY}\n\nЕсли остались вопросы, напишите — я помогу."

# id, seconds after T0, audience, channel, action, confidence, topic, cited, latency ms, question
ROWS: list[tuple[str, float, str | None, str, str, float, str | None, list[str], float, str]] = [
    (
        "a1",
        1 * H,
        "buyer",
        "chat",
        "answer",
        0.9,
        "delivery",
        ["pickup"],
        100,
        "сколько хранится заказ в пвз",
    ),
    (
        "a2",
        2 * H,
        "buyer",
        "chat",
        "answer",
        0.8,
        "delivery",
        ["pickup", "courier"],
        200,
        "когда приедет курьер",
    ),
    (
        "a3",
        3 * H,
        "buyer",
        "email",
        "handoff",
        0.2,
        "delivery",
        [],
        300,
        "Здравствуйте! доставляете в казахстан?",
    ),
    ("a4", 4 * H, "seller", "chat", "answer", 0.7, "returns", ["returns"], 400, "комиссия при возврате"),
    ("a5", DAY + 1 * H, "seller", "voice", "clarify", 0.0, None, [], 50, "не работает"),
    ("a6", DAY + 2 * H, "buyer", "suggest", "answer", 0.9, "returns", ["returns"], 5, "как вернуть товар"),
    ("a7", DAY + 3 * H, "buyer", "suggest", "answer", 0.9, "returns", ["returns"], 5, "как оформить возврат"),
    ("a8", DAY + 4 * H, "buyer", "suggest", "answer", 0.8, "payment", ["pay"], 5, "какие способы оплаты"),
    ("a9", DAY + 5 * H, "buyer", "suggest", "handoff", 0.1, "payment", [], 5, "можно оплатить биткоином?"),
    (
        "a10",
        2 * DAY + 1 * H,
        "buyer",
        "chat",
        "handoff",
        0.2,
        "delivery",
        [],
        500,
        "можно заказать доставку в Алматы",
    ),
    (
        "a11",
        2 * DAY + 2 * H,
        None,
        "chat",
        "handoff",
        0.2,
        "delivery",
        [],
        600,
        "а в казахстан доставка есть вообще",
    ),
    (
        "a12",
        2 * DAY + 3 * H,
        "buyer",
        "chat",
        "answer",
        0.5,
        "delivery",
        ["courier"],
        700,
        "доставка в казахстан сколько стоит",
    ),
    (
        "a13",
        2 * DAY + 4 * H,
        "buyer",
        "chat",
        "handoff",
        0.2,
        "payment",
        [],
        800,
        "оплата криптовалютой есть?",
    ),
    (
        "a14",
        2 * DAY + 5 * H,
        "seller",
        "chat",
        "handoff",
        0.1,
        "account",
        [],
        900,
        "почему приложение вылетает на айфоне",
    ),
    (
        "a15",
        2 * DAY + 6 * H,
        "buyer",
        "chat",
        "handoff",
        0.1,
        "payment",
        [],
        1000,
        "принимаете оплату в биткоинах или usdt?",
    ),
]
# answer id, seconds after T0, rating, reason, edited reply
FEEDBACK: list[tuple[str, float, str, str | None, str | None]] = [
    ("a1", 1 * H + 60, "up", None, None),
    ("a2", 2 * H + 60, "down", "ответ не про то", None),
    ("a2", 2 * H + 120, "up", None, None),  # the latest wins
    ("a3", 3 * H + 60, "down", "не ответил на мой вопрос", None),
    ("a4", 4 * H + 60, "down", "информация устарела", None),
    ("a6", DAY + 2 * H + 60, "up", None, EDITED),
    ("a7", DAY + 3 * H + 60, "up", None, None),
    ("a8", DAY + 4 * H + 60, "down", "не то", None),
    ("a14", 3 * DAY, "down", None, None),  # given a day after its answer
]


def answer_of(row: tuple[Any, ...]) -> Answer:
    qid, _, _, _, action, confidence, topic, cited, latency, question = row
    citations = [
        Citation(
            n=n,
            doc_id=d,
            source=f"{d}.md",
            title=DOCS[d][0],
            url=f"https://help.samobranka.example/{d}",
            quote="…",
        )
        for n, d in enumerate(cited, 1)
    ]
    text = DRAFT if qid == "a6" else "Передаю ваш вопрос оператору." if action == "handoff" else "Ответ. [1]"
    return Answer(
        id=qid,
        question=question,
        query=question,
        answer=text,
        action=action,
        confidence=confidence,
        topic=topic,
        citations=citations,
        timings_ms={"total": latency},
    )


def seed(
    store: RecordStore,
    monkeypatch: pytest.MonkeyPatch,
    rows: list[Any] = ROWS,
    feedback: list[Any] = FEEDBACK,
) -> None:
    """Log ``rows`` and ``feedback`` through the store's own API, each at its moment after T0."""
    clock = SimpleNamespace(now=T0)
    monkeypatch.setattr(store_module, "time", SimpleNamespace(time=lambda: clock.now))
    for row in rows:
        clock.now = T0 + row[1]
        store.log_answer(answer_of(row), row[2], row[3])
    for answer_id, at, rating, reason, edited in feedback:
        clock.now = T0 + at
        store.add_feedback(answer_id, rating, reason, edited)
    monkeypatch.undo()


@pytest.fixture(scope="module")
def embedder(e5: E5Embedder, tmp_path_factory: pytest.TempPathFactory) -> Iterator[CachedEmbedder]:
    """The real model, each distinct question embedded once per module (as the API's embedder does)."""
    cache = EmbeddingCache(tmp_path_factory.mktemp("cache") / "embeddings.sqlite")
    yield CachedEmbedder(e5, cache, query_cache_size=1000)
    cache.close()


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RecordStore]:
    records = open_store(Settings(data_dir=tmp_path_factory.mktemp("log") / "var"))
    with pytest.MonkeyPatch.context() as monkeypatch:
        seed(records, monkeypatch)
    yield records
    records.close()


@pytest.fixture(scope="module")
def stats(store: RecordStore, embedder: CachedEmbedder) -> SupportStats:
    return stats_from_store(
        store, embedder=embedder, index=None, low_confidence=0.6, tz=UTC, now=T0 + 10 * DAY
    )


def test_actions_and_their_rates(stats: SupportStats) -> None:
    assert stats.answers == 15
    assert stats.actions.counts == {"answer": 7, "clarify": 1, "handoff": 7}
    assert stats.actions.rates == {"answer": 7 / 15, "clarify": 1 / 15, "handoff": 7 / 15}
    chat = next(c for c in stats.actions.by_channel if c.channel == "chat")
    assert (chat.total, chat.answer, chat.clarify, chat.handoff) == (9, 4, 0, 5)
    assert [c.channel for c in stats.actions.by_channel] == ["chat", "suggest", "email", "voice"]
    # per day: 1 handoff of 4, then 1 of 5 (and 1 clarify), then 5 of 6
    assert stats.actions.over_time == {"handoff": [1 / 4, 1 / 5, 5 / 6], "clarify": [0.0, 1 / 5, 0.0]}


def test_volume_by_day_audience_and_topic(stats: SupportStats) -> None:
    v = stats.volume
    assert stats.period.bucket == "day" and stats.period.timezone == "UTC+00:00"
    assert v.bucket_starts == [
        "2026-11-02T00:00:00+00:00",
        "2026-11-03T00:00:00+00:00",
        "2026-11-04T00:00:00+00:00",
    ]
    assert v.by_audience == {"buyer": [3, 4, 4], "seller": [1, 1, 1], "none": [0, 0, 1]}
    assert v.topic_totals == {"delivery": 6, "payment": 4, "returns": 3, "account": 1, "none": 1}
    assert v.by_topic["delivery"] == [3, 0, 3] and v.by_topic["none"] == [0, 1, 0]
    assert v.channel_totals == {"chat": 9, "suggest": 4, "email": 1, "voice": 1}


def test_the_busiest_topics_are_kept_and_the_rest_summed(store: RecordStore) -> None:
    stats = compute_stats(store.answers(), [], embedder=None, indexed_docs=None, top_topics=2, tz=UTC)
    assert list(stats.volume.by_topic) == ["delivery", "payment", "other"]
    assert stats.volume.by_topic["other"] == [1, 3, 1]  # returns 3, account 1, none 1


def test_thumbs_down_by_topic_counts_the_latest_rating_with_an_interval(stats: SupportStats) -> None:
    f = stats.feedback
    assert (f.events, f.rated, f.up, f.down, f.superseded, f.outside_period) == (9, 8, 4, 4, 1, 0)
    rows = {t.topic: t for t in f.by_topic}
    assert [t.topic for t in f.by_topic] == ["account", "payment", "delivery", "returns"]
    assert (rows["delivery"].rated, rows["delivery"].down, rows["delivery"].down_handoffs) == (3, 1, 1)
    assert (rows["returns"].answers, rows["returns"].rated, rows["returns"].down) == (3, 3, 1)
    one_of_one = rows["payment"]
    assert one_of_one.down_rate == 1.0 and one_of_one.interval is not None
    assert one_of_one.interval[0] == pytest.approx(0.2065, abs=1e-3) and one_of_one.interval[1] == 1.0
    assert [(r.reason, r.count) for r in f.down_reasons] == [
        ("не ответил на мой вопрос", 1),
        ("информация устарела", 1),
        ("не то", 1),
    ]  # «ответ не про то» was replaced by a later «up»


def test_articles_most_cited_never_cited_and_cited_in_thumbs_down(store: RecordStore) -> None:
    stats = compute_stats(store.answers(), store.feedback(), embedder=None, indexed_docs=INDEXED)
    a = stats.articles
    assert (a.answers_citing, a.distinct_cited, a.indexed) == (7, 4, 6)
    assert [(s.doc_id, s.answers, s.rated, s.down) for s in a.most_cited] == [
        ("returns", 3, 3, 1),
        ("courier", 2, 1, 0),
        ("pickup", 2, 2, 0),
        ("pay", 1, 1, 1),
    ]
    assert a.most_cited[0].url == "https://help.samobranka.example/returns"
    assert [(s.doc_id, s.down, s.rated) for s in a.most_cited_down] == [("pay", 1, 1), ("returns", 1, 3)]
    assert a.never_cited is not None
    assert [(d.doc_id, d.title) for d in a.never_cited] == [
        ("unused", "Архив акций"),
        ("warranty", "Гарантия"),
    ]


def test_never_cited_says_why_when_the_index_cannot_be_read(store: RecordStore) -> None:
    reason = "индекс сейчас открыт запущенным сервисом"
    stats = stats_from_store(store, embedder=None, index=None, missing_index_reason=reason)
    assert stats.articles.never_cited is None and stats.articles.never_cited_note == reason


def test_agents_drafts_accepted_edited_rejected(stats: SupportStats) -> None:
    s = stats.suggestions
    assert (s.requests, s.with_draft, s.rated) == (4, 3, 3)
    assert (s.accepted, s.edited, s.rejected, s.without_draft_rated) == (1, 1, 1, 0)
    assert s.edits_measured == 1
    assert s.mean_edit_size == pytest.approx(1 - SequenceMatcher(None, DRAFT, EDITED_BODY).ratio())


def test_latency_percentiles_overall_and_per_channel(stats: SupportStats) -> None:
    lat = stats.latency
    assert (lat.count, lat.p50_ms, lat.p95_ms) == (15, 300, 900)  # sorted 5 ×4, 50, 100…1000: items 8, 14
    assert {r.channel: (r.count, r.p50_ms) for r in lat.by_channel} == {
        "chat": (9, 600),
        "suggest": (4, 5),
        "email": (1, 300),
        "voice": (1, 50),
    }


def test_content_gaps_are_clustered_by_meaning_and_ranked_by_volume(stats: SupportStats) -> None:
    g = stats.gaps
    assert (g.questions, g.clustered, g.confidence_cutoff) == (8, 7, 0.6)  # a clarify is not a gap
    assert [sorted(c.answer_ids) for c in g.clusters] == [["a10", "a11", "a12", "a3"], ["a13", "a15", "a9"]]
    kz, crypto = g.clusters
    assert (kz.count, kz.handoffs, kz.low_confidence, crypto.count) == (4, 3, 1, 3)
    assert kz.audiences == {"buyer": 3, "none": 1} and kz.nearest_topic == "delivery"
    assert "доставляете в казахстан?" in kz.examples  # the greeting is not part of the question
    assert not any("Здравствуйте" in e for e in kz.examples) and kz.label in kz.examples
    assert (kz.first_seen, kz.last_seen) == (T0 + 3 * H, T0 + 2 * DAY + 3 * H)


def test_a_window_counts_its_answers_and_their_ratings_whenever_given(store: RecordStore) -> None:
    day2 = stats_from_store(store, embedder=None, index=None, since=T0 + DAY, until=T0 + 2 * DAY, tz=UTC)
    assert day2.answers == 5 and day2.actions.counts == {"answer": 3, "clarify": 1, "handoff": 1}
    assert (day2.feedback.rated, day2.feedback.outside_period) == (3, 1)  # a14 is rated after `since`
    assert day2.period.bucket == "hour" and len(day2.volume.bucket_starts) == 23  # 01:00 … 23:00
    assert sum(sum(v) for v in day2.volume.by_audience.values()) == 5
    last = stats_from_store(store, embedder=None, index=None, since=T0 + 2 * DAY, until=T0 + 2 * DAY + 6 * H)
    assert last.answers == 5 and last.feedback.rated == 1  # a14's rating came a day later: it counts


def test_buckets_follow_the_time_zone_and_widen_to_weeks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = open_store(Settings(data_dir=tmp_path / "var"))
    late = ("late", 22.5 * H, "buyer", "chat", "answer", 0.9, "delivery", ["pickup"], 10, "вопрос")
    later = ("later", 100 * DAY, "buyer", "chat", "answer", 0.9, "delivery", ["pickup"], 10, "вопрос")
    seed(store, monkeypatch, [late], [])
    msk = timezone(timedelta(hours=3))
    one = compute_stats(store.answers(), [], embedder=None, indexed_docs=None, tz=msk)
    assert one.period.timezone == "UTC+03:00" and one.volume.bucket_starts == ["2026-11-03T01:00:00+03:00"]
    seed(store, monkeypatch, [later], [])
    weeks = compute_stats(store.answers(), [], embedder=None, indexed_docs=None, tz=UTC)
    assert weeks.period.bucket == "week" and len(weeks.volume.bucket_starts) == 15
    assert all(datetime.fromisoformat(s).weekday() == 0 for s in weeks.volume.bucket_starts)
    assert sum(weeks.volume.by_audience["buyer"]) == 2
    store.close()


def test_an_empty_log_has_zeros_not_errors() -> None:
    stats = compute_stats([], [], embedder=None, indexed_docs={}, now=T0)
    assert stats.answers == 0 and stats.actions.rates["handoff"] is None
    assert stats.gaps.clusters == [] and stats.latency.p50_ms is None and stats.articles.never_cited == []
    assert SupportStats.model_validate_json(stats.model_dump_json()) == stats


class BrokenEmbedder:
    """An embeddings API that is down (the one external edge here)."""

    name, dim = "broken", 384

    def embed_passages(self, texts: list[str]) -> np.ndarray:
        raise EmbeddingError("embeddings API at http://embed.invalid: connection refused")

    def embed_query(self, text: str) -> np.ndarray:
        raise EmbeddingError("embeddings API at http://embed.invalid: connection refused")


def test_gaps_say_why_they_are_not_clustered_and_the_rest_stands(store: RecordStore) -> None:
    stats = stats_from_store(store, embedder=BrokenEmbedder(), index=None)
    assert stats.gaps.questions == 8 and stats.gaps.clusters == []
    assert "connection refused" in (stats.gaps.note or "") and stats.answers == 15


NOW = datetime(2026, 11, 25, 12, tzinfo=UTC).timestamp()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("24h", NOW - DAY),
        ("7d", NOW - 7 * DAY),
        (" 2W ", NOW - 14 * DAY),
        ("2026-11-01", datetime(2026, 11, 1, tzinfo=UTC).timestamp()),
        ("2026-11-01T09:30:00+03:00", datetime(2026, 11, 1, 6, 30, tzinfo=UTC).timestamp()),
        ("2026-11-01 09:30", datetime(2026, 11, 1, 9, 30, tzinfo=UTC).timestamp()),
        (date(2026, 11, 1), datetime(2026, 11, 1, tzinfo=UTC).timestamp()),
    ],
)
def test_since_and_until_forms(text: str | date, expected: float) -> None:
    assert parse_when(text, now=NOW, tz=UTC) == expected


@pytest.mark.parametrize("text", ["7x", "", "вчера", "2026-13-01", "7", "d7", "123456d"])
def test_a_bad_since_says_what_it_expected(text: str) -> None:
    with pytest.raises(
        ConfigError, match="expected a duration like 7d, 24h or 2w, or a date like 2026-11-01"
    ):
        parse_when(text, now=NOW, tz=UTC)
