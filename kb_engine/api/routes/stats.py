"""Admin: `GET /v1/admin/stats`, the support report of the answer log — HTML (default) or JSON.

The same numbers as `kb report` (``kb_engine.analytics``), with what the CLI cannot read while the
service holds the embedded index: the documents never cited. A sync route: clustering the content
gaps runs in the threadpool, not on the event loop.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Query, Response
from fastapi.responses import HTMLResponse
from pydantic import BeforeValidator, StringConstraints

from kb_engine.analytics import DURATION, SupportStats, parse_when, stats_from_store
from kb_engine.analytics_report import render
from kb_engine.api.deps import AdminRole, EngineDep, SettingsDep, StoreDep
from kb_engine.api.errors import ERRORS
from kb_engine.errors import ConfigError

router = APIRouter(tags=["admin"])

Duration = Annotated[str, StringConstraints(pattern=f"^{DURATION.pattern}$")]
_ISO = "[0-9]{4}-[0-9]{2}-[0-9]{2}([T ].*)?"  # a date, maybe with a time: parsed (and checked) by pydantic
_WHEN_TEXT = re.compile(rf"{DURATION.pattern}|{_ISO}")


def _duration_or_iso(value: object) -> object:
    """Only the forms the schema states: pydantic alone would also read "0.5" as a unix time."""
    if isinstance(value, str) and not _WHEN_TEXT.fullmatch(value):
        raise ValueError("expected a duration like 7d, 24h or 2w, or a date like 2026-11-01")
    return value


When = Annotated[Duration | date | datetime, BeforeValidator(_duration_or_iso)]
_WHEN = (
    "a duration back from now (`24h`, `7d`, `2w`), a date (`2026-11-01`, its midnight in the server's "
    "time zone) or a date-time (`2026-11-01T09:00:00+03:00`)"
)
HTML: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The report: a self-contained HTML page (default), or `SupportStats` as JSON.",
        "content": {"text/html": {"schema": {"type": "string"}}},
    }
}


@router.get("/v1/admin/stats", response_model=SupportStats, responses={**ERRORS, **HTML})
def stats(
    engine: EngineDep,
    store: StoreDep,
    settings: SettingsDep,
    _: AdminRole,
    since: Annotated[When | None, Query(description=f"Answers from {_WHEN}. Default: all.")] = None,
    until: Annotated[When | None, Query(description=f"Answers before {_WHEN}. Default: now.")] = None,
    output: Annotated[Literal["html", "json"], Query(alias="format", description="html or json.")] = "html",
) -> Response:
    try:
        start = parse_when(since) if since is not None else None
        end = parse_when(until) if until is not None else None
    except (ConfigError, OverflowError, ValueError) as exc:  # a date-time the platform cannot place
        raise HTTPException(422, f"since/until: {exc}") from None
    report = stats_from_store(
        store,
        embedder=engine.embedder,
        index=engine.index,
        since=start,
        until=end,
        low_confidence=settings.answer_threshold,
        gap_similarity=settings.gap_similarity,
    )
    if output == "json":
        return Response(report.model_dump_json(), media_type="application/json")
    return HTMLResponse(render(report))
