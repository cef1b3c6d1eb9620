"""Demo traffic: a deterministic, varied plan, and a run through a real uvicorn that lands in the store."""

from __future__ import annotations

import sqlite3
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from kb_engine.api import create_app
from kb_engine.demo_traffic import DemoRequest, PlannedFeedback, generate, send
from kb_engine.runtime import Runtime
from kb_engine.store import RecordStore
from tests.conftest import served


def test_generate_is_deterministic_and_varied() -> None:
    plan = generate(300, seed=7)
    assert plan == generate(300, seed=7) and plan != generate(300, seed=8)
    assert len(plan) == 300 and len({r.question for r in plan}) > 100
    assert {r.audience for r in plan} == {"buyer", "seller"}
    assert {r.kind for r in plan} == {"answer", "suggest"}
    assert {r.channel for r in plan} == {"chat", "email", "voice"}
    assert 30 <= sum(not r.covered for r in plan) <= 120  # content gaps for the report
    ratings = Counter(r.feedback.rating if r.feedback else None for r in plan)
    assert 180 <= ratings[None] <= 240 and 40 <= ratings["up"] <= 90 and 15 <= ratings["down"] <= 60
    edited = [r for r in plan if r.feedback and r.feedback.edited_reply]
    assert edited and all(r.kind == "suggest" and r.feedback.rating == "down" for r in edited if r.feedback)


@pytest.fixture
def live(knowledge_rt: Runtime, tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """uvicorn on a loopback port over the shipped knowledge, recording to a fresh kb.sqlite."""
    settings = knowledge_rt.settings.model_copy(update={"data_dir": tmp_path / "var"})
    with served(create_app(settings, knowledge_rt)) as (host, port):
        yield f"http://{host}:{port}", settings.data_dir / "kb.sqlite"


def test_send_fills_the_store(live: tuple[str, Path]) -> None:
    url, db = live
    plan = generate(30, seed=1)
    # one sure rewrite of a draft, so the agents' edits show up whatever the seed gives
    rewrite = PlannedFeedback("down", "не про то", "Здравствуйте! Уточните номер заказа.")
    question = "Как вернуть товар, если не подошёл размер?"
    plan.append(DemoRequest("suggest", "buyer", "chat", question, rewrite))
    ticks: list[tuple[int, int]] = []
    report = send(url, plan, concurrency=2, progress=lambda done, total: ticks.append((done, total)))

    assert report.ok, report.errors
    assert report.sent == len(plan) and ticks[-1] == (len(plan), len(plan))
    assert sum(report.actions.values()) == len(plan)
    assert report.actions["answer"] > 0 and report.actions["handoff"] > 0
    planned = Counter(r.feedback.rating for r in plan if r.feedback)
    assert report.feedback["up"] == planned["up"] and report.feedback["down"] == planned["down"]

    with sqlite3.connect(db) as conn:
        (answers,) = conn.execute("SELECT COUNT(*) FROM answers").fetchone()
        ratings = dict(conn.execute("SELECT rating, COUNT(*) FROM feedback GROUP BY rating").fetchall())
    assert 0 < answers <= len(plan)  # the same question twice may be one answer id
    assert ratings == {k: v for k, v in planned.items() if v}
    store = RecordStore(db)
    try:
        cases = store.feedback_cases()
    finally:
        store.close()
    assert any(c["edited_reply"] == rewrite.edited_reply for c in cases)
    assert sum(c["rating"] == "down" for c in cases) >= 1


def test_send_reports_errors_instead_of_raising() -> None:
    plan = generate(3, seed=2)
    report = send("http://127.0.0.1:9", plan)  # the discard port: nothing listens
    assert not report.ok and report.sent == 3 and len(report.errors) == 3
    assert all("ConnectError" in e for e in report.errors)
