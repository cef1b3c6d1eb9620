"""Schemathesis fuzzes every operation of the OpenAPI schema against the real engine on knowledge/.

Each response must be no 5xx, and have a status code, content type, headers and body that the
schema documents; invalid data must be rejected with a 4xx and schema-valid data accepted; an
operation that needs a key must refuse a request without one (schemathesis' default checks).
Bounded: 15 examples per operation, no deadline (the real model answers); derandomized, so a red run
is a regression and not the luck of the draw (run with `--hypothesis-seed=N` to explore further).

Not fuzzed: `POST /v1/admin/ingest` (it starts ingestion jobs writing the shared test index).
Streaming (`stream: true`) is fuzzed like any body; its events are documented as text/event-stream,
their content is tested in tests/test_api.py. For /v1/suggest and /v1/chat/completions, a 422 for
schema-valid data is expected: "the last user message is the question, and it is not blank" is a
rule about a conversation that JSON Schema cannot state; so is "every marker of a curated answer
points into its citations, which name indexed documents" for POST /v1/admin/curated.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance
from starlette.types import ASGIApp, Receive, Scope, Send

from kb_engine.api import create_app
from kb_engine.config import Settings
from kb_engine.runtime import Runtime

KEYS = {"fuzz-admin-key": "admin", "fuzz-bot-key": "bot"}
ADMIN = {"Authorization": "Bearer fuzz-admin-key"}
SEMANTIC_422 = {"/v1/suggest", "/v1/chat/completions", "/v1/admin/curated"}


class LateApp:
    """The app under test, bound by the `app` fixture: the schema is needed at collection, the
    session's indexed runtime only later."""

    app: ASGIApp | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        assert self.app is not None, "use the `app` fixture"
        await self.app(scope, receive, send)


LATE = LateApp()
# The schema does not depend on the data: an app that is never started gives it.
schema = schemathesis.openapi.from_dict(create_app(Settings(api_keys=KEYS)).openapi())
schema.app = LATE
schema.config.update(base_url="http://testserver")
schema = schema.exclude(method="POST", path="/v1/admin/ingest")


@pytest.fixture(scope="module")
def app(knowledge_rt: Runtime) -> Iterator[FastAPI]:
    unlimited = {"bot": 0, "agent": 0, "admin": 0}
    fuzzed = knowledge_rt.settings.model_copy(update={"api_keys": KEYS, "rate_limit_per_minute": unlimited})
    LATE.app = create_app(fuzzed, knowledge_rt)
    yield LATE.app
    LATE.app = None


@schema.parametrize()
@settings(max_examples=15, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
def test_every_operation_keeps_to_its_schema(app: FastAPI, case: schemathesis.Case) -> None:
    semantic = [positive_data_acceptance] if case.operation.path in SEMANTIC_422 else []
    case.call_and_validate(headers=ADMIN, excluded_checks=semantic)
