"""Dependencies of the routes: the engine, the record store, and who may call what.

Every route declares exactly one access rule (``create_app`` refuses to build an app where one
does not): ``Public``, or a role that a key must have or outrank — bot < agent < admin.

    rule     routes
    Public   /healthz, /readyz (probes); FastAPI's /docs, /redoc, /openapi.json; the web console's
             pages /, /agent, /content and /static/… (shells without data: their calls need keys)
    bot      /v1/answer, /v1/chat/completions, /v1/feedback, /v1/whoami
    agent    /v1/suggest, /v1/search
    admin    /v1/admin/ingest, /v1/admin/ingest/{id}, /v1/admin/curated…, /v1/admin/stats,
             /v1/admin/eval/latest, /metrics

With no keys configured (the loopback demo) every route is open. A key is sent as
``Authorization: Bearer <key>`` or ``X-API-Key: <key>``; each key then draws on its own rate limit.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, Literal

from fastapi import Depends, HTTPException, Request
from fastapi.dependencies.models import Dependant
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from kb_engine.api.errors import APIError
from kb_engine.api.limits import RateLimiter
from kb_engine.config import Settings
from kb_engine.engine import AnswerEngine
from kb_engine.store import RecordStore

Role = Literal["bot", "agent", "admin"]
_RANK = {"bot": 0, "agent": 1, "admin": 2}
_RULES: dict[Callable[..., Any], str] = {}  # dependency → access rule, for `access_rules`

_bearer = HTTPBearer(auto_error=False, description="`Authorization: Bearer <key>` (KB_API_KEYS)")
_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="`X-API-Key: <key>` (KB_API_KEYS)")
BearerDep = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
HeaderKeyDep = Annotated[str | None, Depends(_header)]


def get_settings_dep(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


_STARTING = "the service is starting: the index and model are not loaded yet"


def get_engine(request: Request) -> AnswerEngine:
    engine: AnswerEngine | None = getattr(request.app.state, "engine", None)
    if engine is None:
        raise HTTPException(503, _STARTING)
    return engine


def get_store(request: Request) -> RecordStore:
    store: RecordStore | None = getattr(request.app.state, "store", None)
    if store is None:
        raise HTTPException(503, _STARTING)
    return store


SettingsDep = Annotated[Settings, Depends(get_settings_dep)]
EngineDep = Annotated[AnswerEngine, Depends(get_engine)]
StoreDep = Annotated[RecordStore, Depends(get_store)]


def require(role: Role) -> Callable[..., Role | None]:
    """A dependency admitting keys whose role is ``role`` or above, within their rate limit."""

    def check(request: Request, bearer: BearerDep, header_key: HeaderKeyDep) -> Role | None:
        keys: dict[str, Role] = request.app.state.settings.api_keys
        if not keys:
            return None
        key = (bearer.credentials if bearer else None) or header_key
        if not key:
            raise APIError(
                401,
                "missing API key: send 'Authorization: Bearer <key>' or 'X-API-Key: <key>'",
                headers={"WWW-Authenticate": "Bearer"},
            )
        granted = keys.get(key)
        if granted is None:
            raise APIError(401, "invalid API key", headers={"WWW-Authenticate": "Bearer"})
        if _RANK[granted] < _RANK[role]:
            raise APIError(403, f"this key has role '{granted}'; this endpoint needs '{role}' or above")
        limiter: RateLimiter = request.app.state.rate_limiter
        limit = request.app.state.settings.rate_limit_per_minute.get(granted, 0)
        wait = limiter.acquire(key, limit)
        if wait is not None:
            raise APIError(
                429,
                f"rate limit exceeded: keys of role '{granted}' may make {limit} requests per minute "
                f"(KB_RATE_LIMIT_PER_MINUTE); retry in {wait} s",
                details=[{"role": granted, "limit_per_minute": limit, "retry_after_s": wait}],
                headers={"Retry-After": str(wait)},
            )
        return granted

    _RULES[check] = role
    return check


def public() -> None:
    """Open to anyone, keys or not: the probes."""


_RULES[public] = "public"


def access_rules(dependant: Dependant) -> list[str]:
    """The access rules a route's dependencies declare (exactly one in a well-formed app)."""
    found: list[str] = []
    pending = list(dependant.dependencies)
    while pending:
        dependant = pending.pop()
        if dependant.call in _RULES:
            found.append(_RULES[dependant.call])
        pending.extend(dependant.dependencies)
    return found


BotRole = Annotated[Role | None, Depends(require("bot"))]
AgentRole = Annotated[Role | None, Depends(require("agent"))]
AdminRole = Annotated[Role | None, Depends(require("admin"))]
Public = Depends(public)
