from __future__ import annotations

import socket
import threading
import time
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
