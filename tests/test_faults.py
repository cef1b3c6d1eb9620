"""Faults: a killed server loses no acknowledged record and leaves a consistent index; a full disk is
a clear error that leaves the index as it was; an unfinished index create is redone."""

from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from kb_engine.config import Settings
from kb_engine.embedding.e5 import E5Embedder
from kb_engine.index.edge import EdgeIndex
from tests.conftest import ROOT, article, ingest, make_runtime, write

BODY = (
    "Вернуть товар надлежащего качества можно в течение 14 дней со дня получения.\n\n## Как оформить\n\n"
    "1. Откройте Профиль → Покупки.\n2. Нажмите «Вернуть товар».\n3. Отнесите товар в пункт выдачи.\n"
)
ADMIN = {"X-API-Key": "admin-key"}


def corpus(root: Path, n: int) -> None:
    for i in range(n):
        write(root / f"a{i}.md", article(f"k{i}", f"Возврат {i}", (f"Раздел {i}. " + BODY) * 4))


def kb(*args: str, env: dict[str, str], timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "kb_engine.cli", *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@contextmanager
def server(env: dict[str, str]) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    """`kb serve` in its own process on a free loopback port, ready to answer."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [sys.executable, "-m", "kb_engine.cli", "serve", "--port", str(port)],
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 120
        while time.time() < deadline:
            try:
                if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert proc.poll() is None, "kb serve exited during start-up"
            time.sleep(0.2)
        else:
            raise AssertionError("kb serve did not become ready")
        yield proc, url
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()


def test_killed_server_loses_no_acknowledged_record(tmp_path: Path) -> None:
    corpus(tmp_path / "kb", 3)
    env = {
        **os.environ,
        "KB_DATA_DIR": str(tmp_path / "var"),
        "KB_API_KEYS": json.dumps({"admin-key": "admin"}),
    }
    assert kb("ingest", str(tmp_path / "kb"), env=env).returncode == 0
    acknowledged = []
    with server(env) as (proc, url):
        for i in range(5):
            answer = httpx.post(
                f"{url}/v1/answer",
                json={"question": f"сколько дней на возврат {i}"},
                headers=ADMIN,
                timeout=30,
            )
            assert answer.status_code == 200
            answer_id = answer.json()["id"]
            rated = httpx.post(
                f"{url}/v1/feedback", json={"answer_id": answer_id, "rating": "up"}, headers=ADMIN, timeout=30
            )
            assert rated.status_code == 201
            acknowledged.append(answer_id)
        os.kill(proc.pid, signal.SIGKILL)  # no shutdown, no checkpoint, no close
        proc.wait()
    with sqlite3.connect(tmp_path / "var/kb.sqlite") as db:
        answers = {row[0] for row in db.execute("SELECT id FROM answers")}
        rated = {row[0] for row in db.execute("SELECT answer_id FROM feedback")}
    assert set(acknowledged) <= answers and set(acknowledged) <= rated
    with server(env) as (_, url):  # and it starts again on the same directory
        again = httpx.post(
            f"{url}/v1/answer", json={"question": "сколько дней на возврат"}, headers=ADMIN, timeout=30
        )
        assert again.status_code == 200 and again.json()["action"] == "answer"


def test_killed_server_during_an_admin_ingest_converges(tmp_path: Path, e5: E5Embedder) -> None:
    corpus(tmp_path / "kb", 2)
    env = {
        **os.environ,
        "KB_DATA_DIR": str(tmp_path / "var"),
        "KB_API_KEYS": json.dumps({"admin-key": "admin"}),
    }
    assert kb("ingest", str(tmp_path / "kb"), env=env).returncode == 0
    corpus(tmp_path / "more", 30)
    with server(env) as (proc, url):
        job = httpx.post(f"{url}/v1/admin/ingest", json={"paths": [str(tmp_path / "more")]}, headers=ADMIN)
        assert job.status_code == 202
        time.sleep(4)  # into embedding and writing
        state = httpx.get(f"{url}/v1/admin/ingest/{job.json()['id']}", headers=ADMIN).json()
        assert state["status"] == "running", state
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    rt = make_runtime(Settings(data_dir=tmp_path / "var"), e5)
    try:
        key = f"dir:{(tmp_path / 'more').resolve()}"
        for state, ids in rt.index.documents(key).values():  # whole chunks of known versions only
            assert len(ids) == state.points
        report = ingest(rt, tmp_path / "more")
        assert report.ok
        states = rt.index.documents(key)
        assert len(states) == 30 and all(s.is_complete() for s, _ in states.values())
        assert len(ingest(rt, tmp_path / "more").unchanged) == 30
    finally:
        rt.close()


def _can_mount() -> bool:
    probe = subprocess.run(["unshare", "-m", "mount", "-t", "tmpfs", "tmpfs", "/mnt"], capture_output=True)
    return probe.returncode == 0


@pytest.mark.skipif(
    not Path("/usr/bin/unshare").exists() or not _can_mount(), reason="needs unshare -m + mount"
)
def test_a_full_disk_is_a_clear_error_and_the_rerun_converges(tmp_path: Path) -> None:
    corpus(tmp_path / "kb", 4)
    data = tmp_path / "small"
    data.mkdir()
    ingest_cmd = f"KB_DATA_DIR={data}/var {sys.executable} -m kb_engine.cli ingest {tmp_path / 'kb'}"
    script = f"""
set -u
mount -t tmpfs -o size=3m tmpfs {data}
{ingest_cmd}
echo "rc=$?"
mount -o remount,size=300m {data}
{ingest_cmd} --json > {tmp_path}/second.json
echo "rc=$?"
"""
    run = subprocess.run(
        ["unshare", "-m", "sh", "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=600
    )
    codes = [line for line in run.stdout.splitlines() if line.startswith("rc=")]
    assert codes == ["rc=2", "rc=0"], run.stdout[-2000:] + run.stderr[-2000:]
    assert "KB_MIN_FREE_MB" in run.stderr and "Traceback" not in run.stderr
    second = json.loads((tmp_path / "second.json").read_text())
    assert second["new"] == 4 and not second["failed"] and second["index_points"] == 20


def test_an_unfinished_index_create_is_redone(tmp_path: Path) -> None:
    first = EdgeIndex(tmp_path / "index")
    first.ensure_schema("e5", 384, "lemma-bm25")
    first.close()
    (tmp_path / "index/kb-index.json").unlink()  # as if killed after the shard was made, before the meta
    index = EdgeIndex(tmp_path / "index")
    try:
        index.ensure_schema("e5", 384, "lemma-bm25")
        assert index.count() == 0 and (tmp_path / "index/kb-index.json").exists()
    finally:
        index.close()


@pytest.mark.skipif(
    not Path("/usr/bin/unshare").exists() or not _can_mount(), reason="needs unshare -m + mount"
)
def test_a_read_only_data_dir_is_a_clear_error(tmp_path: Path) -> None:
    corpus(tmp_path / "kb", 1)
    data = tmp_path / "ro"
    (data / "var").mkdir(parents=True)
    script = f"""
mount --bind {data} {data} && mount -o remount,bind,ro {data} || exit 99
KB_DATA_DIR={data}/var {sys.executable} -m kb_engine.cli ingest {tmp_path / "kb"}
"""
    run = subprocess.run(
        ["unshare", "-m", "sh", "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert run.returncode == 2, run.stdout[-2000:] + run.stderr[-2000:]
    assert (
        "Read-only file system" in run.stderr
        and "KB_DATA_DIR" in run.stderr
        and "Traceback" not in run.stderr
    )
