"""Builds the app. Routes live in ``kb_engine.api.routes``; this module only assembles them."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.routing import APIRoute, iter_route_contexts
from prometheus_client import CollectorRegistry, Counter, Histogram

from kb_engine.api.deps import access_rules
from kb_engine.api.errors import install_error_handlers
from kb_engine.api.limits import Clock, RateLimiter
from kb_engine.api.middleware import BodySizeLimit, ErrorBoundary, Metrics
from kb_engine.api.routes.admin import IngestRunner
from kb_engine.config import Settings
from kb_engine.drafting.factory import make_drafter
from kb_engine.engine import AnswerEngine
from kb_engine.redact import install_log_redaction
from kb_engine.runtime import Runtime, open_runtime
from kb_engine.store import open_store


def create_app(
    settings: Settings,
    runtime: Runtime | None = None,
    ingest_runner: IngestRunner | None = None,
    *,
    clock: Clock = time.monotonic,
) -> FastAPI:
    """The API over ``runtime`` (opened from settings at start-up when not given). ``ingest_runner``
    enables `POST /v1/admin/ingest`: the CLI passes the ingestors in, the core never imports them.
    ``clock`` drives the rate limits (tests pass a fake one)."""
    install_log_redaction()  # however the app is served (kb serve, uvicorn --factory, gunicorn)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        owned = runtime is None
        rt = open_runtime(settings) if owned else runtime
        assert rt is not None
        engine = AnswerEngine(settings, rt.index, rt.embedder, rt.sparse, drafter=make_drafter(settings))
        engine.retrieve("прогрев: сроки доставки заказа")  # page-ins and caches, not the first user
        app.state.store = open_store(settings)
        engine.curated.load(app.state.store.curated())
        app.state.engine = engine
        try:
            yield
        finally:
            app.state.engine = None
            app.state.store.close()
            app.state.store = None
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
    app.state.store = None  # opened at start-up: building the app (e.g. for its schema) writes nothing
    app.state.rate_limiter = RateLimiter(clock)
    install_error_handlers(app)
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    app.add_middleware(ErrorBoundary)
    _install_metrics(app)

    from kb_engine.api.routes import admin, answer, chat, curated, feedback, health, search, stats, suggest
    from kb_engine.web import routes as console

    for module in (answer, search, suggest, feedback, chat, admin, curated, stats, health):
        app.include_router(module.router)
    app.include_router(console.router)  # the web console: /, /agent, /content
    _check_access_rules(app)
    _document_question_limit(app, settings.max_question_chars)
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
    app.add_middleware(Metrics, requests=requests, latency=latency)  # outermost: sees 413s and 500s


def _document_question_limit(app: FastAPI, limit: int) -> None:
    """The schema states KB_MAX_QUESTION_CHARS, a setting the static models cannot know."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        spec = build()
        for model, field in (("AnswerRequest", "question"), ("SearchRequest", "query")):
            spec["components"]["schemas"][model]["properties"][field]["maxLength"] = limit
        return spec

    app.openapi = openapi  # type: ignore[method-assign]  # FastAPI's documented way to extend it


def _check_access_rules(app: FastAPI) -> None:
    """Every route says who may call it, so a new route cannot be open by accident."""
    for route in iter_route_contexts(app.routes):  # flattens included routers
        if isinstance(route.original_route, APIRoute) and len(rules := access_rules(route.dependant)) != 1:
            raise RuntimeError(
                f"route {sorted(route.methods or ())} {route.path} must declare exactly one access rule "
                f"(BotRole, AgentRole, AdminRole or Public from kb_engine.api.deps), has {rules}"
            )
