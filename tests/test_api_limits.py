"""Who may call what, how often, how big, and what a caller sees when something fails.

The real engine on knowledge/ behind TestClient, and uvicorn on loopback where a socket matters.
"""

from __future__ import annotations

import json
import logging
import socket
import time
from collections.abc import Iterator
from typing import Any

import anyio
import pytest
from fastapi import FastAPI
from fastapi.routing import iter_route_contexts
from fastapi.testclient import TestClient
from hypothesis import given, settings
from hypothesis import strategies as st

from kb_engine.api import create_app
from kb_engine.api.deps import get_engine
from kb_engine.api.errors import internal_error
from kb_engine.api.limits import Clock, RateLimiter
from kb_engine.api.middleware import BodySizeLimit
from kb_engine.config import Settings
from kb_engine.runtime import Runtime
from tests.conftest import KNOWLEDGE, served

KEYS = {"bot-key": "bot", "agent-key": "agent", "admin-key": "admin"}
RANK = {"bot": 0, "agent": 1, "admin": 2}
UNLIMITED = {"bot": 0, "agent": 0, "admin": 0}

# The access policy, one row per route and method. A route missing here fails test_roles_on_every_route.
POLICY: dict[tuple[str, str], str] = {
    ("GET", "/healthz"): "public",
    ("GET", "/readyz"): "public",
    ("GET", "/openapi.json"): "public",
    ("HEAD", "/openapi.json"): "public",
    ("GET", "/docs"): "public",
    ("HEAD", "/docs"): "public",
    ("GET", "/docs/oauth2-redirect"): "public",
    ("HEAD", "/docs/oauth2-redirect"): "public",
    ("GET", "/redoc"): "public",
    ("HEAD", "/redoc"): "public",
    ("POST", "/v1/answer"): "bot",
    ("POST", "/v1/chat/completions"): "bot",
    ("POST", "/v1/feedback"): "bot",
    ("POST", "/v1/suggest"): "agent",
    ("POST", "/v1/search"): "agent",
    ("POST", "/v1/admin/ingest"): "admin",
    ("GET", "/v1/admin/ingest/{job_id}"): "admin",
    ("GET", "/metrics"): "admin",
    ("POST", "/v1/admin/curated"): "admin",
    ("GET", "/v1/admin/curated"): "admin",
    ("DELETE", "/v1/admin/curated/{curated_id}"): "admin",
    ("GET", "/v1/admin/stats"): "admin",
    ("GET", "/v1/admin/eval/latest"): "admin",
    ("GET", "/v1/whoami"): "bot",
    ("GET", "/"): "public",
    ("GET", "/agent"): "public",
    ("GET", "/content"): "public",
}
QUESTION = "Сколько дней заказ хранится в пункте выдачи?"
BODIES: dict[str, dict[str, Any]] = {
    "/v1/answer": {"question": QUESTION},
    "/v1/chat/completions": {"messages": [{"role": "user", "content": QUESTION}]},
    "/v1/suggest": {"conversation": [{"role": "user", "content": QUESTION}]},
    "/v1/search": {"query": QUESTION, "top_k": 1},
    "/v1/admin/ingest": {"paths": [str(KNOWLEDGE)]},
    # A question no other test asks: the pin lives in the session's answer store.
    "/v1/admin/curated": {
        "question": "проверка ролей: закреплённый ответ номер 000",
        "answer": "Заказ хранится в пункте выдачи 7 дней [1].",
        "citations": ["buyer-delivery-storage"],
    },
}


def no_ingestion(paths: object) -> dict[str, object]:
    return {"new": 0}


def keyed(knowledge_rt: Runtime, clock: Clock = time.monotonic, **update: Any) -> FastAPI:
    """The app with a key of each role, no rate limits, and an ingestion that does nothing."""
    settings = knowledge_rt.settings.model_copy(
        update={"api_keys": KEYS, "rate_limit_per_minute": UNLIMITED, **update}
    )
    return create_app(settings, knowledge_rt, no_ingestion, clock=clock)


def endpoints(app: FastAPI) -> list[tuple[str, str]]:
    """Every (method, path) the app routes, included routers flattened."""
    return sorted((m, r.path) for r in iter_route_contexts(app.routes) for m in (r.methods or ()) if r.path)


def call(client: TestClient, method: str, path: str, key: str | None, ids: dict[str, str]) -> int:
    body = dict(BODIES.get(path, {}))
    if path == "/v1/feedback":
        body = {"answer_id": ids["answer_id"], "rating": "up"}
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    url = path.replace("{job_id}", ids["job_id"])
    if "{curated_id}" in path:  # each call deletes a pin of its own
        pinned = client.post(
            "/v1/admin/curated", json=BODIES["/v1/admin/curated"], headers={"X-API-Key": "admin-key"}
        )
        url = path.replace("{curated_id}", pinned.json()["id"])
    response = client.request(method, url, json=body if method == "POST" else None, headers=headers)
    if path == "/v1/admin/ingest" and response.status_code == 202:
        wait_for_job(client, response.json()["id"], headers)
    return response.status_code


def wait_for_job(client: TestClient, job_id: str, headers: dict[str, str]) -> None:
    for _ in range(200):
        if client.get(f"/v1/admin/ingest/{job_id}", headers=headers).json()["status"] != "running":
            return
        time.sleep(0.02)
    raise AssertionError(f"job {job_id} did not finish")


def made_ids(client: TestClient, headers: dict[str, str]) -> dict[str, str]:
    """An answer to give feedback on and a finished ingestion job to look up."""
    answer_id = client.post("/v1/answer", json={"question": QUESTION}, headers=headers).json()["id"]
    job = client.post("/v1/admin/ingest", json=BODIES["/v1/admin/ingest"], headers=headers).json()
    wait_for_job(client, job["id"], headers)
    return {"answer_id": answer_id, "job_id": job["id"]}


def test_roles_on_every_route(knowledge_rt: Runtime) -> None:
    app = keyed(knowledge_rt)
    with TestClient(app) as c:
        ids = made_ids(c, {"X-API-Key": "admin-key"})
        wrong: list[str] = []
        for method, path in endpoints(app):
            rule = POLICY.get((method, path))
            if rule is None:
                wrong.append(f"{method} {path}: no rule in POLICY (decide who may call it)")
                continue
            callers = {"no key": None, "wrong key": "nope", **{role: f"{role}-key" for role in RANK}}
            for caller, key in callers.items():
                if rule == "public":
                    expected = "2xx"
                elif caller in ("no key", "wrong key"):
                    expected = "401"
                else:
                    expected = "2xx" if RANK[caller] >= RANK[rule] else "403"
                status = call(c, method, path, key, ids)
                got = "2xx" if 200 <= status < 300 else str(status)
                if got != expected:
                    wrong.append(f"{method} {path} as {caller}: {status}, expected {expected}")
    assert not wrong, "\n".join(wrong)


def test_without_keys_every_route_is_open(knowledge_rt: Runtime) -> None:
    app = create_app(knowledge_rt.settings, knowledge_rt, no_ingestion)
    with TestClient(app) as c:
        ids = made_ids(c, {})
        statuses = {f"{m} {p}": call(c, m, p, None, ids) for m, p in endpoints(app)}
    assert all(200 <= s < 300 for s in statuses.values()), statuses


def test_a_route_without_an_access_rule_is_refused_at_start(knowledge_rt: Runtime) -> None:
    from fastapi import APIRouter

    from kb_engine.api.main import _check_access_rules

    app = keyed(knowledge_rt)
    router = APIRouter()

    @router.get("/v1/forgotten")
    def forgotten() -> dict[str, str]:
        return {}

    app.include_router(router)
    with pytest.raises(RuntimeError, match="/v1/forgotten must declare exactly one access rule"):
        _check_access_rules(app)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_burst_over_the_limit_is_429_until_retry_after(knowledge_rt: Runtime) -> None:
    clock = FakeClock()
    keys = {**KEYS, "agent-2": "agent"}
    app = keyed(knowledge_rt, api_keys=keys, rate_limit_per_minute={**UNLIMITED, "agent": 3}, clock=clock)
    with TestClient(app) as c:

        def search(key: str) -> Any:
            return c.post("/v1/search", json={"query": "возврат", "top_k": 1}, headers={"X-API-Key": key})

        assert [search("agent-key").status_code for _ in range(3)] == [200, 200, 200]
        over = search("agent-key")
        assert over.status_code == 429 and over.headers["Retry-After"] == "20"
        error = over.json()["error"]
        assert error["type"] == "rate_limited" and "3 requests per minute" in error["message"]
        assert error["details"] == [{"role": "agent", "limit_per_minute": 3, "retry_after_s": 20}]
        assert search("agent-2").status_code == 200  # a bucket per key
        bot = c.post("/v1/answer", json={"question": QUESTION}, headers={"X-API-Key": "bot-key"})
        assert bot.status_code == 200  # roles whose limit is 0 are not limited

        clock.now += 19
        early = search("agent-key")
        assert early.status_code == 429 and early.headers["Retry-After"] == "1"
        clock.now += 1
        assert search("agent-key").status_code == 200
        assert search("agent-key").status_code == 429  # one token earned, one spent
        clock.now += 3600  # a long pause refills the bucket, never beyond its size
        assert [search("agent-key").status_code for _ in range(4)] == [200, 200, 200, 429]
        assert 'status="429"' in c.get("/metrics", headers={"X-API-Key": "admin-key"}).text


@settings(max_examples=60, deadline=None)
@given(
    limit=st.integers(1, 120),
    gaps=st.lists(st.floats(0, 30, allow_nan=False), min_size=1, max_size=200),
)
def test_a_bucket_admits_at_most_its_size_plus_what_time_earns(limit: int, gaps: list[float]) -> None:
    clock = FakeClock()
    limiter = RateLimiter(clock)
    allowed = 0
    for gap in gaps:
        clock.now += gap
        wait = limiter.acquire("k", limit)
        allowed += wait is None
        assert wait is None or 1 <= wait <= 60
    assert allowed <= limit + limit * sum(gaps) / 60 + 1e-6


@pytest.fixture(scope="module")
def small(knowledge_rt: Runtime) -> Iterator[TestClient]:
    """Keys configured, no rate limits, bodies up to 4 KiB."""
    with TestClient(keyed(knowledge_rt, max_body_bytes=4096)) as c:
        c.headers["X-API-Key"] = "admin-key"
        yield c


def test_a_body_over_the_limit_is_413_by_content_length(small: TestClient) -> None:
    big = json.dumps({"question": "а" * 5000}).encode()
    response = small.post("/v1/answer", content=big, headers={"Content-Type": "application/json"})
    assert response.status_code == 413
    error = response.json()["error"]
    assert error["type"] == "too_large" and f"{len(big)} bytes" in error["message"]
    assert "KB_MAX_BODY_BYTES" in error["message"] and error["details"] == [{"limit_bytes": 4096}]


def test_a_chunked_body_over_the_limit_is_413(small: TestClient) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"question": "'
        for _ in range(10):
            yield "а".encode() * 512
        yield b'"}'

    response = small.post("/v1/answer", content=chunks(), headers={"Content-Type": "application/json"})
    assert response.request.headers.get("Transfer-Encoding") == "chunked"
    assert "Content-Length" not in response.request.headers
    assert response.status_code == 413 and "4096 bytes" in response.json()["error"]["message"]


def test_the_body_guard_stops_reading_a_stream_at_the_limit() -> None:
    """Fed an endless chunked body, the app gets 413 after reading just past the limit."""
    reads = 0

    async def endless() -> dict[str, Any]:
        nonlocal reads
        reads += 1
        return {"type": "http.request", "body": b"x" * 1000, "more_body": True}

    async def reads_everything(scope: Any, receive: Any, send: Any) -> None:
        while (await receive()).get("more_body"):
            pass
        raise AssertionError("the stream never ends")

    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "POST", "path": "/", "headers": []}
    anyio.run(BodySizeLimit(reads_everything, max_bytes=10_000), scope, endless, send)
    assert sent[0]["status"] == 413 and reads == 11
    assert json.loads(sent[1]["body"])["error"]["type"] == "too_large"


@pytest.fixture(scope="module")
def client_default(knowledge_rt: Runtime) -> Iterator[TestClient]:
    with TestClient(create_app(knowledge_rt.settings, knowledge_rt)) as c:
        yield c


def test_bodies_of_real_size_pass_the_default_limit(client_default: TestClient) -> None:
    answer_id = client_default.post("/v1/answer", json={"question": QUESTION}).json()["id"]
    reply = "Исправленный ответ оператора. " * 700  # Cyrillic: 6 bytes a letter when \u-escaped
    body = json.dumps({"answer_id": answer_id, "rating": "down", "edited_reply": reply[:20000]})
    assert 64 * 1024 < len(body) < Settings().max_body_bytes  # why the default is 256 KiB, not 64
    rated = client_default.post("/v1/feedback", content=body, headers={"Content-Type": "application/json"})
    assert rated.status_code == 201, rated.text


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/v1/answer", lambda q: {"question": q}),
        ("/v1/search", lambda q: {"query": q}),
        ("/v1/chat/completions", lambda q: {"messages": [{"role": "user", "content": q}]}),
        ("/v1/suggest", lambda q: {"conversation": [{"role": "user", "content": q}]}),
    ],
)
def test_a_question_over_max_question_chars_is_422(client_default: TestClient, path: str, body: Any) -> None:
    limit = client_default.app.state.settings.max_question_chars  # type: ignore[attr-defined]
    response = client_default.post(path, json=body("где заказ " * (limit // 10 + 1)))
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["type"] == "invalid_request" and "KB_MAX_QUESTION_CHARS" in error["message"]


def test_unknown_routes_and_wrong_methods_are_json(client_default: TestClient) -> None:
    missing = client_default.get("/v1/nope")
    assert missing.status_code == 404
    assert missing.json() == {"error": {"message": "Not Found", "type": "not_found"}}
    wrong = client_default.get("/v1/answer")
    assert wrong.status_code == 405 and wrong.headers["Allow"] == "POST"
    assert wrong.json()["error"]["type"] == "method_not_allowed"
    for response in (missing, wrong):
        assert response.headers["content-type"] == "application/json" and response.headers["X-Request-ID"]
    for n in range(3):  # made-up methods and paths do not grow the metrics
        assert client_default.request(f"BREW{n}", f"/pot/{n}").status_code == 404
    metrics = client_default.get("/metrics").text
    assert 'method="other",route="unmatched",status="404"} 3.0' in metrics and "BREW" not in metrics


@pytest.mark.parametrize(
    ("content", "content_type", "kind"),
    [
        ('{"question": "где'.encode(), "application/json", "invalid_json"),
        (b"", "application/json", "invalid_request"),
        (b"[1, 2]", "application/json", "invalid_request"),
        (b'{"question": "\\ud800"}', "application/json", "invalid_request"),
        ("question=где".encode(), "application/x-www-form-urlencoded", "invalid_request"),
    ],
)
def test_malformed_bodies_are_a_json_422(
    client_default: TestClient, content: bytes, content_type: str, kind: str
) -> None:
    response = client_default.post("/v1/answer", content=content, headers={"Content-Type": content_type})
    assert response.status_code == 422, response.text
    assert response.json()["error"]["type"] == kind


def test_an_unexpected_failure_is_a_500_with_a_request_id_and_no_traceback(
    knowledge_rt: Runtime, caplog: pytest.LogCaptureFixture
) -> None:
    app = create_app(knowledge_rt.settings, knowledge_rt)

    def broken_engine() -> None:
        raise RuntimeError("connection string postgres://secret@db")

    app.dependency_overrides[get_engine] = broken_engine
    with TestClient(app) as c, caplog.at_level(logging.ERROR, logger="kb_engine.api.middleware"):
        response = c.post("/v1/answer", json={"question": QUESTION}, headers={"X-Request-ID": "ticket-42"})
        fresh = c.post("/v1/search", json={"query": QUESTION})
    assert response.status_code == 500 and response.headers["content-type"] == "application/json"
    error = response.json()["error"]
    assert error == {
        "message": "internal error: the service could not handle this request; "
        "quote request id ticket-42 when reporting it",
        "type": "internal_error",
        "request_id": "ticket-42",
    }
    assert "Traceback" not in response.text and "secret" not in response.text
    assert fresh.status_code == 500 and fresh.json()["error"]["request_id"] == fresh.headers["X-Request-ID"]
    logged = [r for r in caplog.records if "ticket-42" in r.getMessage()]
    assert logged and logged[0].exc_info is not None  # the traceback goes to the log, with the id


@pytest.fixture(scope="module")
def live_small(knowledge_rt: Runtime) -> Iterator[tuple[str, int]]:
    """uvicorn on a loopback port, bodies up to 4 KiB."""
    settings = knowledge_rt.settings.model_copy(update={"max_body_bytes": 4096})
    with served(create_app(settings, knowledge_rt)) as address:
        yield address


def test_a_chunked_upload_over_a_real_socket_is_cut_off_with_413(live_small: tuple[str, int]) -> None:
    """The client keeps a chunked body open; the server answers 413 once the limit is passed."""
    with socket.create_connection(live_small, timeout=10) as sock:
        sock.sendall(
            b"POST /v1/answer HTTP/1.1\r\nHost: kb\r\nContent-Type: application/json\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n"
        )
        for _ in range(6):  # 6 KiB sent, the body never finished
            sock.sendall(b"400\r\n" + b" " * 1024 + b"\r\n")
        received = b""
        while b"\r\n\r\n" not in received or not received.rstrip().endswith(b"}"):
            data = sock.recv(65536)
            if not data:
                break
            received += data
    head, _, body = received.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 413"), head
    assert b"application/json" in head.lower()
    assert json.loads(body)["error"]["type"] == "too_large"


class FailingMidway:
    """An engine whose answer breaks off after its first words."""

    drafter = extractive = type("Drafter", (), {"name": "extractive"})()

    def answer_stream(self, *args: object) -> Iterator[str]:
        yield "Заказ хранится"
        raise RuntimeError("index file vanished: /srv/secret/path")


@pytest.mark.parametrize(
    ("path", "body", "name", "wrap"),
    [
        ("/v1/answer", {"question": QUESTION, "stream": True}, "event: error", None),
        (
            "/v1/chat/completions",
            {"messages": [{"role": "user", "content": QUESTION}], "stream": True},
            "data: {",
            "error",  # OpenAI's error chunk, which its SDKs raise as an APIError
        ),
    ],
)
def test_a_stream_that_fails_midway_ends_with_an_error_event(
    knowledge_rt: Runtime, path: str, body: dict[str, Any], name: str, wrap: str | None
) -> None:
    app = create_app(knowledge_rt.settings, knowledge_rt)
    app.dependency_overrides[get_engine] = FailingMidway
    with TestClient(app) as c, c.stream("POST", path, json=body) as response:
        assert response.status_code == 200
        events = "".join(response.iter_text()).strip().split("\n\n")
        request_id = response.headers["X-Request-ID"]
    assert "Заказ хранится" in events[-2] and events[-1].startswith(name)
    error = json.loads(events[-1].split("data: ", 1)[1])
    assert error == ({wrap: internal_error(request_id)} if wrap else internal_error(request_id))
    assert not any("secret" in e or "Traceback" in e or "[DONE]" in e for e in events)
