"""The answer log's contract, run on both backends: SQLite in the data dir and a real PostgreSQL server
(started by the test run; skipped with the reason where the machine has none)."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from kb_engine.api.main import create_app
from kb_engine.config import Settings
from kb_engine.curated import CuratedAnswer
from kb_engine.errors import ConfigError
from kb_engine.runtime import Runtime
from kb_engine.schema import Answer, Citation
from kb_engine.store import RecordStore, StoreError, database_url
from tests.conftest import served


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[RecordStore]:
    target = tmp_path / "kb.sqlite" if request.param == "sqlite" else request.getfixturevalue("postgres_url")
    opened = RecordStore(target)
    yield opened
    opened.close()


def answer(
    answer_id: str,
    question: str = "как вернуть товар",
    *,
    docs: tuple[str, ...] = ("returns",),
    action: str = "answer",
    total_ms: float = 12.5,
) -> Answer:
    return Answer(
        id=answer_id,
        question=question,
        query=question,
        answer="Вернуть товар можно в течение 14 дней. [1]",
        action=action,  # type: ignore[arg-type]
        confidence=0.71,
        topic="returns",
        citations=[
            Citation(n=i, doc_id=d, source=f"{d}.md", title=f"О {d}", url=f"https://help/{d}", quote="…")
            for i, d in enumerate(docs, 1)
        ],
        timings_ms={"retrieve": 10.0, "total": total_ms},
    )


def test_an_answer_round_trips_redacted_with_its_citations_and_latency(store: RecordStore) -> None:
    store.log_answer(
        answer("a1", "верну куртку, тел +7 912 345-67-89", docs=("returns", "returns", "pvz")),
        "buyer",
        "chat",
    )
    (record,) = store.answers()
    assert record.id == "a1" and record.audience == "buyer" and record.channel == "chat"
    assert record.question == "верну куртку, тел [телефон]"
    assert (record.action, record.topic, record.drafter) == ("answer", "returns", "extractive")
    assert record.latency_ms == 12.5
    assert [(c.doc_id, c.title, c.url) for c in record.cited] == [
        ("returns", "О returns", "https://help/returns"),
        ("pvz", "О pvz", "https://help/pvz"),
    ]  # one per document, in citation order
    assert record.confidence == pytest.approx(0.71)
    assert store.has_answer("a1") and not store.has_answer("nope")


def test_logging_the_same_answer_again_replaces_it(store: RecordStore) -> None:
    store.log_answer(answer("a1"), "buyer", "chat")
    store.log_answer(answer("a1", action="handoff", docs=()), "seller", "suggest")
    (record,) = store.answers()
    assert (record.action, record.audience, record.channel, record.cited) == (
        "handoff",
        "seller",
        "suggest",
        (),
    )


def test_feedback_is_redacted_ordered_and_windowed(store: RecordStore) -> None:
    store.log_answer(answer("a1"), "buyer", "chat")
    first = store.add_feedback("a1", "down", "пишите на ivan@mail.ru", None)
    second = store.add_feedback("a1", "up", None, "Вернуть можно за 14 дней, ул. Ленина, д. 5")
    assert second > first
    assert store.feedback_for("a1") == [
        {"rating": "down", "reason": "пишите на [email]", "edited_reply": None},
        {"rating": "up", "reason": None, "edited_reply": "Вернуть можно за 14 дней, [адрес]"},
    ]
    records = store.feedback()
    assert [(f.id, f.answer_id, f.rating) for f in records] == [(first, "a1", "down"), (second, "a1", "up")]
    cut = records[1].created
    assert [f.id for f in store.feedback(since=cut)] == [second]
    assert [f.id for f in store.feedback(until=cut)] == [first]


def test_answers_are_windowed_by_time_oldest_first(store: RecordStore) -> None:
    for n in range(3):
        store.log_answer(answer(f"a{n}"), "buyer", "chat")
        time.sleep(0.01)
    records = store.answers()
    assert [r.id for r in records] == ["a0", "a1", "a2"]
    assert [r.id for r in store.answers(since=records[1].created)] == ["a1", "a2"]
    assert [r.id for r in store.answers(until=records[1].created)] == ["a0"]
    assert store.answers(since=time.time() + 60) == []


def test_feedback_cases_take_the_latest_feedback_per_answer(store: RecordStore) -> None:
    for n in range(3):
        store.log_answer(answer(f"a{n}"), "buyer", "chat")
    store.add_feedback("a0", "down", "не то", None)
    store.add_feedback("a1", "down", None, None)
    store.add_feedback("a1", "up", None, None)  # changed their mind: not a case
    store.add_feedback("a2", "up", None, "Переписанный ответ")
    assert [(c["answer_id"], c["rating"], c["cited"]) for c in store.feedback_cases()] == [
        ("a0", "down", ["returns"]),
        ("a2", "up", ["returns"]),
    ]


def test_curated_answers_are_stored_replaced_and_deleted(store: RecordStore) -> None:
    pin = CuratedAnswer(
        id="cur_1", question="как вернуть товар", answer="За 14 дней. [1]", citations=[], created=1.0
    )
    store.add_curated(pin)
    store.add_curated(pin.model_copy(update={"answer": "За 14 дней в ПВЗ. [1]"}))
    assert [c.answer for c in store.curated()] == ["За 14 дней в ПВЗ. [1]"]
    assert store.delete_curated("cur_1") and not store.delete_curated("cur_1")
    assert store.curated() == []


def test_concurrent_writers_lose_nothing(store: RecordStore) -> None:
    def write(worker: int) -> None:
        for n in range(20):
            store.log_answer(answer(f"w{worker}-{n}"), "buyer", "chat")
            store.add_feedback(f"w{worker}-{n}", "up", None, None)

    threads = [threading.Thread(target=write, args=(w,)) for w in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(store.answers()) == 80 and len(store.feedback()) == 80


def test_a_log_written_before_the_new_columns_is_upgraded_in_place(tmp_path: Path) -> None:
    path = tmp_path / "kb.sqlite"
    old = answer("old", docs=("returns",), total_ms=40.0)
    with sqlite3.connect(path) as db:  # the first release's schema
        db.executescript(
            "CREATE TABLE answers (id TEXT PRIMARY KEY, created REAL, question TEXT, query TEXT, audience "
            "TEXT, channel TEXT, action TEXT, confidence REAL, topic TEXT, drafter TEXT, body TEXT);"
        )
        db.execute(
            "INSERT INTO answers VALUES (?,?,?,?,?,?,?,?,?,?,?)",
            (
                "old",
                1.0,
                "q",
                "q",
                "buyer",
                "chat",
                "answer",
                0.7,
                "returns",
                "extractive",
                old.model_dump_json(),
            ),
        )
    store = RecordStore(path)
    store.log_answer(answer("new", total_ms=5.0), "buyer", "chat")
    old_record, new_record = store.answers()
    store.close()
    assert (old_record.id, old_record.latency_ms) == ("old", 40.0)
    assert [c.doc_id for c in old_record.cited] == ["returns"]
    assert (new_record.id, new_record.latency_ms) == ("new", 5.0)


def test_bad_database_urls_fail_with_one_line_reasons(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not a database URL"):
        RecordStore("not a url at all")
    with pytest.raises(StoreError) as unreachable:
        RecordStore("postgresql://kb:secret@127.0.0.1:1/kb")  # nothing listens on port 1
    message = str(unreachable.value)
    assert "127.0.0.1" in message and "secret" not in message and "\n" not in message
    assert database_url(Settings(data_dir=tmp_path)) == f"sqlite:///{tmp_path / 'kb.sqlite'}"


def test_two_replicas_share_one_log_on_postgresql(
    postgres_url: str, tmp_path: Path, knowledge_rt: Runtime
) -> None:
    """Stateless API replicas: an answer given by one can be rated through the other, and both see
    the same curated answers once restarted."""
    settings = Settings(data_dir=tmp_path, database_url=postgres_url)
    with (
        served(create_app(settings, knowledge_rt)) as (h1, p1),
        served(create_app(settings, knowledge_rt)) as (
            h2,
            p2,
        ),
    ):
        one, two = f"http://{h1}:{p1}", f"http://{h2}:{p2}"
        given = httpx.post(
            f"{one}/v1/answer",
            json={"question": "Сколько дней на возврат товара?", "audience": "buyer"},
            timeout=60,
        )
        assert given.status_code == 200, given.text
        answer_id = given.json()["id"]
        rated = httpx.post(
            f"{two}/v1/feedback",
            json={"answer_id": answer_id, "rating": "down", "reason": "не тот срок"},
            timeout=30,
        )
        assert rated.status_code == 201, rated.text
    check = RecordStore(postgres_url)
    try:
        assert [r.id for r in check.answers()] == [answer_id]
        assert check.feedback_for(answer_id) == [
            {"rating": "down", "reason": "не тот срок", "edited_reply": None}
        ]
    finally:
        check.close()
