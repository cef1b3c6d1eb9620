"""Dependencies of the routes: the engine, the record store, and API-key roles."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Literal

from fastapi import Depends, HTTPException, Request

from kb_engine.config import Settings
from kb_engine.engine import AnswerEngine
from kb_engine.store import RecordStore

Role = Literal["bot", "agent", "admin"]
_RANK = {"bot": 0, "agent": 1, "admin": 2}


def get_settings_dep(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def get_engine(request: Request) -> AnswerEngine:
    engine: AnswerEngine | None = getattr(request.app.state, "engine", None)
    if engine is None:
        raise HTTPException(503, "the service is starting: the index and model are not loaded yet")
    return engine


def get_store(request: Request) -> RecordStore:
    store: RecordStore = request.app.state.store
    return store


SettingsDep = Annotated[Settings, Depends(get_settings_dep)]
EngineDep = Annotated[AnswerEngine, Depends(get_engine)]
StoreDep = Annotated[RecordStore, Depends(get_store)]


def require(role: Role) -> Callable[[Request], Role | None]:
    """A dependency admitting keys whose role is ``role`` or above. No keys configured: local demo."""

    def check(request: Request) -> Role | None:
        keys: dict[str, Role] = request.app.state.settings.api_keys
        if not keys:
            return None
        key = _key_of(request)
        if key is None:
            raise HTTPException(
                401, "missing API key: send 'Authorization: Bearer <key>' or 'X-API-Key: <key>'"
            )
        granted = keys.get(key)
        if granted is None:
            raise HTTPException(401, "invalid API key")
        if _RANK[granted] < _RANK[role]:
            raise HTTPException(403, f"this key has role '{granted}'; this endpoint needs '{role}' or above")
        return granted

    return check


def _key_of(request: Request) -> str | None:
    auth = request.headers.get("authorization", "")
    if auth.lower().startswith("bearer "):
        return auth[7:].strip() or None
    return request.headers.get("x-api-key") or None


BotRole = Annotated[Role | None, Depends(require("bot"))]
AgentRole = Annotated[Role | None, Depends(require("agent"))]
AdminRole = Annotated[Role | None, Depends(require("admin"))]
