"""Every failure of the API is JSON, ``{"error": {"message", "type", ...}}``, never a traceback.

Where each failure becomes that body:

    unknown route 404, wrong method 405,
    HTTPException / APIError (401 403 404 409 429…)  → http_error, here
    a body that is not JSON or fails the schema       → invalid, here (422)
    KBError (index locked, Qdrant unreachable…)       → kb_error, here (503)
    a body over KB_MAX_BODY_BYTES                     → middleware.BodySizeLimit (413)
    any other exception                               → middleware.ErrorBoundary (500 + request id)
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import iter_route_contexts
from starlette.exceptions import HTTPException
from starlette.routing import Match

from kb_engine.api.models import ErrorResponse
from kb_engine.errors import KBError

log = logging.getLogger(__name__)

KINDS = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "too_large",
    422: "invalid_request",
    429: "rate_limited",
    500: "internal_error",
    501: "not_implemented",
    503: "unavailable",
}

_ERROR = {"model": ErrorResponse}
# `responses=` of the routes, so the OpenAPI schema documents every error body a client can get.
OPEN_ERRORS: dict[int | str, dict[str, Any]] = {500: _ERROR, 503: _ERROR}
ERRORS: dict[int | str, dict[str, Any]] = {
    **{status: _ERROR for status in (401, 403, 413, 422, 429)},
    **OPEN_ERRORS,
}


class APIError(HTTPException):
    """An HTTP error with details for the JSON body."""

    def __init__(
        self,
        status_code: int,
        message: str,
        *,
        details: list[dict[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(status_code, message, headers)
        self.details = details


def error_response(
    status: int, message: str, kind: str | None = None, headers: Mapping[str, str] | None = None, **extra: Any
) -> JSONResponse:
    body = {"message": message, "type": kind or KINDS.get(status, "error"), **extra}
    return JSONResponse({"error": body}, status_code=status, headers=headers)


def internal_error(request_id: str) -> dict[str, str]:
    """The body of an unexpected failure: the id to quote, nothing of its cause."""
    return {
        "message": "internal error: the service could not handle this request; "
        f"quote request id {request_id} when reporting it",
        "type": "internal_error",
        "request_id": request_id,
    }


def request_id_of(request: Request) -> str:
    return str(request.scope.get("kb.request_id", ""))  # set by middleware.ErrorBoundary


def _allowed(request: Request) -> list[str]:
    """Every method some route serves at this path (GET and POST of one path are two routes)."""
    methods: set[str] = set()
    for context in iter_route_contexts(request.app.routes):  # flattens included routers
        match, _ = context.route.matches({**request.scope, "method": "GET"})
        if match != Match.NONE:
            methods.update(context.methods or ())
    return sorted(methods)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(HTTPException)  # Starlette's: the router's 404 and 405 are JSON too
    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        if exc.status_code == 405:  # Starlette lists the first matching route's methods only
            exc.headers = {**(exc.headers or {}), "Allow": ", ".join(_allowed(request))}
        if exc.status_code == 400 and isinstance(exc.__cause__, UnicodeDecodeError):  # FastAPI's body reader
            return error_response(422, f"the request body is not UTF-8 JSON: {exc.__cause__}", "invalid_json")
        extra: dict[str, Any] = {"details": exc.details} if isinstance(exc, APIError) and exc.details else {}
        return error_response(exc.status_code, str(exc.detail), headers=exc.headers, **extra)

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
            return error_response(422, message, "invalid_json")
        details = [
            {"field": ".".join(str(p) for p in e["loc"] if p != "body"), "problem": e["msg"]}
            for e in exc.errors()
        ]
        summary = "; ".join(f"{d['field'] or 'body'}: {d['problem']}" for d in details[:5])
        return error_response(422, f"invalid request: {summary}", details=details)

    @app.exception_handler(KBError)
    async def kb_error(_: Request, exc: KBError) -> JSONResponse:
        log.warning("request failed: %s", exc)
        return error_response(503, str(exc), type(exc).__name__)
