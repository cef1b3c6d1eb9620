"""ASGI middleware around every request, outermost first:

    Metrics        counts requests by route, method and status (including 413s and 500s), and times them
    ErrorBoundary  tags the request with an id (``X-Request-ID``); an unexpected exception becomes a
                   500 JSON body with that id, the traceback goes to the log only
    BodySizeLimit  refuses bodies over KB_MAX_BODY_BYTES with 413, by Content-Length before anything
                   is read, and by counting while a body without one (chunked) streams in

Plain ASGI rather than ``@app.middleware("http")``: they see exceptions and response starts as they
happen, and do not buffer bodies.
"""

from __future__ import annotations

import logging
import re
import time
import uuid

from prometheus_client import Counter, Histogram
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from kb_engine.api.errors import APIError, error_response, internal_error

log = logging.getLogger(__name__)

_CLIENT_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class Metrics:
    def __init__(self, app: ASGIApp, requests: Counter, latency: Histogram) -> None:
        self.app = app
        self.requests = requests
        self.latency = latency

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500

        async def send_and_note(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        started = time.perf_counter()
        try:
            await self.app(scope, receive, send_and_note)
        finally:
            # Label values stay few whatever clients send: route templates, known methods.
            route = getattr(scope.get("route"), "path", "unmatched")
            method = scope["method"] if scope["method"] in _METHODS else "other"
            self.requests.labels(route, method, str(status)).inc()
            self.latency.labels(route).observe(time.perf_counter() - started)


class ErrorBoundary:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = _request_id(scope)
        scope["kb.request_id"] = request_id
        started = False

        async def send_with_id(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                headers = [*message.get("headers", []), (b"x-request-id", request_id.encode())]
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception:
            log.exception("request %s: %s %s failed", request_id, scope["method"], scope["path"])
            if started:  # a stream broke off midway (the routes' own streams end in an error event)
                return
            response = JSONResponse({"error": internal_error(request_id)}, status_code=500)
            await response(scope, receive, send_with_id)


def _request_id(scope: Scope) -> str:
    """The caller's ``X-Request-ID`` when it is a sane token (so logs correlate), else a new one."""
    for name, value in scope.get("headers", []):
        if name == b"x-request-id":
            given = value.decode("latin-1")
            if _CLIENT_ID.fullmatch(given):
                return given
    return f"req_{uuid.uuid4().hex[:16]}"


class BodyTooLarge(APIError):
    def __init__(self, limit: int, size: int | None = None) -> None:
        size_text = f"is {size} bytes, over" if size is not None else "is larger than"
        super().__init__(
            413,
            f"the request body {size_text} the limit of {limit} bytes (KB_MAX_BODY_BYTES)",
            details=[{"limit_bytes": limit}],
        )


class BodySizeLimit:
    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.max_bytes:
            await _refuse(BodyTooLarge(self.max_bytes, declared), scope, receive, send)
            return
        received = 0
        started = False

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    # An HTTPException: FastAPI's body reader passes it on to the JSON error handler.
                    raise BodyTooLarge(self.max_bytes)
            return message

        async def noting_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counting_receive, noting_send)
        except BodyTooLarge as exc:  # read by code that let it through (a route reading the stream)
            if started:
                raise
            await _refuse(exc, scope, receive, send)


async def _refuse(exc: BodyTooLarge, scope: Scope, receive: Receive, send: Send) -> None:
    response = error_response(413, str(exc.detail), details=exc.details)
    await response(scope, receive, send)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", []):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None  # the server rejects it; here the body is counted instead
    return None
