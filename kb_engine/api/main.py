"""Builds the app. Routes live in ``kb_engine.api.routes``; this module only assembles them."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI, HTTPException, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from prometheus_client import CollectorRegistry, Counter, Histogram

from kb_engine.api.routes.admin import IngestRunner
from kb_engine.config import Settings
from kb_engine.drafting.factory import make_drafter
from kb_engine.engine import AnswerEngine
from kb_engine.errors import KBError
from kb_engine.runtime import Runtime, open_runtime
from kb_engine.store import RecordStore

log = logging.getLogger(__name__)


def create_app(
    settings: Settings, runtime: Runtime | None = None, ingest_runner: IngestRunner | None = None
) -> FastAPI:
    """The API over ``runtime`` (opened from settings at start-up when not given). ``ingest_runner``
    enables `POST /v1/admin/ingest`: the CLI passes the ingestors in, the core never imports them."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        owned = runtime is None
        rt = open_runtime(settings) if owned else runtime
        assert rt is not None
        engine = AnswerEngine(settings, rt.index, rt.embedder, rt.sparse, drafter=make_drafter(settings))
        engine.retrieve("прогрев: сроки доставки заказа")  # page-ins and caches, not the first user
        app.state.engine = engine
        try:
            yield
        finally:
            app.state.engine = None
            if owned:
                rt.close()

    app = FastAPI(
        title="kb-engine",
        version="0.1.0",
        description="Grounded answers with citations from the help centre, for the chatbot, the agents' "
        "desk and the content team.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.engine = None
    app.state.ingest_runner = ingest_runner
    app.state.store = RecordStore(settings.data_dir / "kb.sqlite")
    _install_metrics(app)
    _install_error_handlers(app)

    from kb_engine.api.routes import admin, answer, chat, feedback, health, search, suggest

    for module in (answer, search, suggest, feedback, chat, admin, health):
        app.include_router(module.router)
    return app


def _install_metrics(app: FastAPI) -> None:
    registry = CollectorRegistry()
    app.state.metrics_registry = registry
    requests = Counter(
        "kb_http_requests_total", "HTTP requests", ["route", "method", "status"], registry=registry
    )
    latency = Histogram(
        "kb_http_request_seconds",
        "HTTP request latency",
        ["route"],
        registry=registry,
        buckets=(0.005, 0.01, 0.02, 0.03, 0.05, 0.08, 0.1, 0.2, 0.5, 1, 2, 5),
    )
    app.state.answers_total = Counter("kb_answers_total", "Answers by action", ["action"], registry=registry)

    @app.middleware("http")
    async def measure(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        started = time.perf_counter()
        response = await call_next(request)
        route = getattr(request.scope.get("route"), "path", "unmatched")
        requests.labels(route, request.method, str(response.status_code)).inc()
        latency.labels(route).observe(time.perf_counter() - started)
        return response


def _install_error_handlers(app: FastAPI) -> None:
    """Every error is JSON: {"error": {"message", "type", "details"?}}."""

    @app.exception_handler(HTTPException)
    async def http_error(_: Request, exc: HTTPException) -> JSONResponse:
        kind = {
            400: "bad_request",
            401: "unauthorized",
            403: "forbidden",
            404: "not_found",
            422: "invalid_request",
            503: "unavailable",
        }.get(exc.status_code, "error")
        return JSONResponse(
            {"error": {"message": str(exc.detail), "type": kind}},
            status_code=exc.status_code,
            headers=exc.headers,
        )

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        broken = next((e for e in exc.errors() if e["type"] == "json_invalid"), None)
        if broken is not None:
            where = broken.get("ctx", {}).get("error", "")
            message = (
                f"the request body is not valid JSON: {where}"
                if where
                else "the request body is not valid JSON"
            )
            return JSONResponse({"error": {"message": message, "type": "invalid_json"}}, status_code=422)
        details = [
            {"field": ".".join(str(p) for p in e["loc"] if p != "body"), "problem": e["msg"]}
            for e in exc.errors()
        ]
        summary = "; ".join(f"{d['field'] or 'body'}: {d['problem']}" for d in details[:5])
        return JSONResponse(
            {
                "error": {
                    "message": f"invalid request: {summary}",
                    "type": "invalid_request",
                    "details": details,
                }
            },
            status_code=422,
        )

    @app.exception_handler(KBError)
    async def kb_error(_: Request, exc: KBError) -> JSONResponse:
        log.warning("request failed: %s", exc)
        return JSONResponse({"error": {"message": str(exc), "type": type(exc).__name__}}, status_code=503)
