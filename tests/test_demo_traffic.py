"""Demo traffic: a deterministic, varied plan, and a run through a real uvicorn that lands in the store."""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from kb_engine.api import create_app
from kb_engine.demo_traffic import DemoRequest, PlannedFeedback, generate, send
from kb_engine.runtime import Runtime
from kb_engine.store import RecordStore
from tests.conftest import ROOT, article, served, write


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


def _serve_with_demo(env: dict[str, str], log: Path, until: str) -> str:
    """`kb serve --demo-traffic 12` in its own process until its log shows ``until``; the log's text."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with log.open("w") as sink:
        proc = subprocess.Popen(
            [sys.executable, "-m", "kb_engine.cli", "serve", "--port", str(port), "--demo-traffic", "12"],
            env=env,
            cwd=ROOT,
            stdout=sink,
            stderr=sink,
        )
        try:
            deadline = time.time() + 180
            while until not in log.read_text() and time.time() < deadline:
                assert proc.poll() is None, log.read_text()
                time.sleep(0.3)
            return log.read_text()
        finally:
            proc.terminate()
            proc.wait(timeout=30)


def test_serve_fills_an_empty_log_with_demo_traffic_once(tmp_path: Path) -> None:
    """The README's run command: a new user's analytics are filled; a restart adds nothing."""
    for n, (title, text) in enumerate(
        [
            ("Возврат товара", "Вернуть товар можно в течение 14 дней со дня получения."),
            ("Доставка", "Курьер привезёт заказ в выбранный интервал времени."),
        ]
    ):
        write(tmp_path / "kb" / f"a{n}.md", article(f"k{n}", title, (text + "\n\n") * 6))
    env = {
        **os.environ,
        "KB_DATA_DIR": str(tmp_path / "var"),
        "KB_API_KEYS": json.dumps({"bot-key": "bot", "admin-key": "admin"}),  # the demo takes the admin's
    }
    ingest = subprocess.run(
        [sys.executable, "-m", "kb_engine.cli", "ingest", str(tmp_path / "kb")],
        env=env,
        cwd=ROOT,
        capture_output=True,
        timeout=300,
    )
    assert ingest.returncode == 0, ingest.stderr

    first = _serve_with_demo(env, tmp_path / "first.log", until="Sent 12 demo questions")
    assert "Sent 12 demo questions" in first and "No errors" in first, first
    store = RecordStore(tmp_path / "var/kb.sqlite")
    try:
        logged = store.answer_count()
        assert 0 < logged <= 12 and store.feedback()
    finally:
        store.close()

    second = _serve_with_demo(env, tmp_path / "second.log", until="demo traffic skipped")
    assert f"the answer log already has {logged} answers" in second, second
