"""GET /healthz (the process answers), /readyz (index open, model loaded), /metrics (Prometheus).

The probes are open; /metrics needs an admin key once keys are configured (route names, traffic and
answer mix are not for everyone), and is open in the keyless loopback demo like everything else.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel

from kb_engine.api.deps import AdminRole, Public
from kb_engine.api.errors import ERRORS, OPEN_ERRORS
from kb_engine.api.models import ErrorResponse

router = APIRouter(tags=["operations"])


class Health(BaseModel):
    status: str


class Readiness(BaseModel):
    status: str
    index: str
    embedder: str
    drafter: str
    chunks: int


class Starting(BaseModel):
    status: str


@router.get("/healthz", response_model=Health, dependencies=[Public], responses=OPEN_ERRORS)
def healthz() -> Health:
    return Health(status="ok")


_READY_RESPONSES: dict[int | str, dict[str, Any]] = {
    **OPEN_ERRORS,
    503: {"model": Starting | ErrorResponse, "description": "Starting: the index and model are loading."},
}


@router.get("/readyz", response_model=Readiness, dependencies=[Public], responses=_READY_RESPONSES)
def readyz(request: Request) -> Readiness | JSONResponse:
    engine = request.app.state.engine
    if engine is None:
        return JSONResponse({"status": "starting"}, status_code=503)
    return Readiness(
        status="ready",
        index=engine.index.backend,
        embedder=engine.embedder.name,
        drafter=engine.drafter.name,
        chunks=engine.index.count(),
    )


@router.get(
    "/metrics",
    response_class=Response,
    responses={
        **ERRORS,
        200: {"content": {CONTENT_TYPE_LATEST.split(";")[0]: {}}, "description": "Prometheus text"},
    },
)
def metrics(request: Request, _: AdminRole) -> Response:
    return Response(generate_latest(request.app.state.metrics_registry), media_type=CONTENT_TYPE_LATEST)
