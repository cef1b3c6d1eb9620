from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import uvicorn
from fastapi import FastAPI

from ingest.pipeline import Ingestor, IngestReport
from kb_engine.config import Settings
from kb_engine.embedding import CachedEmbedder, EmbeddingCache
from kb_engine.embedding.e5 import E5Embedder
from kb_engine.index.edge import EdgeIndex
from kb_engine.runtime import Runtime
from kb_engine.sparse import LemmaBM25Encoder

ROOT = Path(__file__).resolve().parent.parent
KNOWLEDGE = ROOT / "knowledge"


@pytest.fixture(scope="session")
def e5() -> E5Embedder:
    """The real local model, loaded once for the whole run."""
    return E5Embedder(threads=2, batch_size=16)


def make_runtime(settings: Settings, e5: E5Embedder) -> Runtime:
    cache = EmbeddingCache(settings.cache_dir / "embeddings.sqlite")
    return Runtime(settings, EdgeIndex(settings.index_dir), CachedEmbedder(e5, cache), LemmaBM25Encoder())


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "var")


@pytest.fixture
def runtime(settings: Settings, e5: E5Embedder) -> Iterator[Runtime]:
    rt = make_runtime(settings, e5)
    yield rt
    rt.close()


def ingest(rt: Runtime, *paths: Path, **kw: object) -> IngestReport:
    return Ingestor(rt.settings, rt.index, rt.embedder, rt.sparse).run(list(paths), **kw)  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def knowledge_rt(tmp_path_factory: pytest.TempPathFactory, e5: E5Embedder) -> Iterator[Runtime]:
    """The shipped help centre, indexed once per test run with the real model and engine."""
    settings = Settings(data_dir=tmp_path_factory.mktemp("knowledge") / "var")
    rt = make_runtime(settings, e5)
    report = ingest(rt, KNOWLEDGE)
    assert report.ok, report.failed
    yield rt
    rt.close()


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any attempt to open a network connection fails loudly."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError(f"network access attempted: {args!r}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)


def write(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding=encoding)
    return path


def article(
    doc_id: str, title: str, body: str, audience: str = "buyer", category: str = "returns", extra: str = ""
) -> str:
    return (
        f"---\nid: {doc_id}\ntitle: {title}\naudience: {audience}\ncategory: {category}\n"
        f"url: https://help.samobranka.example/{doc_id}\nupdated: 2026-05-01\n{extra}---\n{body}\n"
    )


# Debian's chromium, headless, for the browser tests and scripts/screenshots.py. Without the
# background-networking flags it keeps trying to reach Google's services.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@contextmanager
def served(app: FastAPI) -> Iterator[tuple[str, int]]:
    """``app`` under uvicorn on a free loopback port, in a thread of this process: (host, port)."""
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.time() + 30
    while not server.started and time.time() < deadline:
        time.sleep(0.05)
    try:
        yield "127.0.0.1", server.servers[0].sockets[0].getsockname()[1]
    finally:
        server.should_exit = True
        thread.join(timeout=10)


# --- a real PostgreSQL server for the answer log's second backend -------------------------------------


def _postgres_bin() -> Path | None:
    for candidate in (shutil.which("initdb"), *sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))[::-1]):
        if candidate and Path(candidate).exists():
            return Path(candidate).resolve().parent
    return None


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """A throwaway PostgreSQL cluster on a loopback port, for the whole run; yields its base URL.
    Skipped, with the reason, where the machine has no PostgreSQL binaries or cannot run them."""
    bindir = _postgres_bin()
    if bindir is None:
        pytest.skip("no PostgreSQL here (initdb not found): the PostgreSQL backend is not tested")
    run_as: dict[str, int] = {}
    if os.geteuid() == 0:  # postgres refuses to run as root: run it as the postgres (or nobody) user
        try:
            user = pwd.getpwnam("postgres")
        except KeyError:
            pytest.skip("running as root and there is no 'postgres' user to run PostgreSQL as")
        run_as = {"user": user.pw_uid, "group": user.pw_gid}
    home = Path(tempfile.mkdtemp(prefix="kb-pg-"))
    if run_as:
        os.chown(home, run_as["user"], run_as["group"])
    data = home / "data"
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]

    def pg(*argv: str | Path, **kw: object) -> subprocess.CompletedProcess[str]:
        return subprocess.run(  # type: ignore[call-overload,no-any-return]
            [str(a) for a in argv], capture_output=True, text=True, timeout=120, **run_as, **kw
        )

    init = pg(bindir / "initdb", "-D", data, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync")
    if init.returncode != 0:
        shutil.rmtree(home, ignore_errors=True)
        pytest.skip(f"initdb failed: {init.stderr.strip().splitlines()[-1:]}")
    options = f"-p {port} -k {home} -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off"
    start = pg(bindir / "pg_ctl", "-D", data, "-o", options, "-l", home / "log", "-w", "start")
    if start.returncode != 0:
        log = (home / "log").read_text(errors="replace") if (home / "log").exists() else start.stderr
        shutil.rmtree(home, ignore_errors=True)
        pytest.skip(f"PostgreSQL did not start: {log.strip().splitlines()[-1:]}")
    try:
        yield f"postgresql://postgres@127.0.0.1:{port}"
    finally:
        pg(bindir / "pg_ctl", "-D", data, "-m", "immediate", "stop")
        shutil.rmtree(home, ignore_errors=True)


@pytest.fixture
def postgres_url(postgres_server: str) -> str:
    """A fresh, empty database on the test server."""
    import sqlalchemy as sa

    name = f"kb_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(f"{postgres_server}/postgres".replace("postgresql:", "postgresql+psycopg:"))
    with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as db:
        db.execute(sa.text(f"CREATE DATABASE {name}"))
    admin.dispose()
    return f"{postgres_server}/{name}"
