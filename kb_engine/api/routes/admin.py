"""Admin: sync the help centre into the index while serving.

The embedded index allows one process per directory, so the serving process does the ingestion:
`POST /v1/admin/ingest` starts a background job (one at a time), `GET /v1/admin/ingest/{id}` reports
it. The ingestion code is handed in by whoever builds the app (the CLI), so the core does not
import the ingestors.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

from fastapi import APIRouter, HTTPException, Request
from pydantic import BaseModel, ConfigDict, Field

from kb_engine.api.deps import AdminRole
from kb_engine.api.errors import ERRORS
from kb_engine.api.models import ErrorResponse

router = APIRouter(tags=["admin"])
log = logging.getLogger(__name__)

IngestRunner = Callable[[list[Path]], dict[str, Any]]


class IngestRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    paths: list[str] = Field(
        default_factory=list, description="Files or directories; default KB_INGEST_PATHS."
    )


class IngestJob(BaseModel):
    id: str
    status: Literal["running", "done", "failed"]
    paths: list[str]
    started: float
    finished: float | None = None
    report: dict[str, Any] | None = None
    error: str | None = None


class _Jobs:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.jobs: dict[str, IngestJob] = {}
        self.running: str | None = None


def _jobs(request: Request) -> _Jobs:
    if not hasattr(request.app.state, "ingest_jobs"):
        request.app.state.ingest_jobs = _Jobs()
    jobs: _Jobs = request.app.state.ingest_jobs
    return jobs


@router.post(
    "/v1/admin/ingest",
    response_model=IngestJob,
    status_code=202,
    responses={
        **ERRORS,
        409: {"model": ErrorResponse, "description": "An ingestion is already running."},
        501: {"model": ErrorResponse, "description": "The server was started without ingestion."},
    },
)
def start_ingest(body: IngestRequest, request: Request, _: AdminRole) -> IngestJob:
    runner: IngestRunner | None = getattr(request.app.state, "ingest_runner", None)
    if runner is None:
        raise HTTPException(
            501,
            "this server was started without ingestion; run `kb ingest` against its data "
            "directory while it is stopped, or start it with `kb serve`",
        )
    paths = body.paths or request.app.state.settings.ingest_paths
    missing = [p for p in paths if not Path(p).exists()]
    if missing:
        raise HTTPException(422, f"no such file or directory on the server: {', '.join(missing)}")
    jobs = _jobs(request)
    with jobs.lock:
        if jobs.running is not None:
            raise HTTPException(409, f"an ingestion is already running (job {jobs.running}); wait for it")
        job = IngestJob(
            id=f"ing_{uuid.uuid4().hex[:12]}", status="running", paths=list(paths), started=time.time()
        )
        jobs.jobs[job.id] = job
        jobs.running = job.id

    def work() -> None:
        try:
            report = runner([Path(p) for p in paths])
            update: dict[str, Any] = {"status": "done", "report": report}
        except Exception as exc:  # reported through the job, not lost in a thread
            log.exception("ingestion job %s failed", job.id)
            update = {"status": "failed", "error": f"{type(exc).__name__}: {exc}"}
        with jobs.lock:
            jobs.jobs[job.id] = jobs.jobs[job.id].model_copy(update={**update, "finished": time.time()})
            jobs.running = None

    threading.Thread(target=work, name=f"ingest-{job.id}", daemon=True).start()
    return job


@router.get(
    "/v1/admin/ingest/{job_id}",
    response_model=IngestJob,
    responses={**ERRORS, 404: {"model": ErrorResponse, "description": "No such job."}},
)
def ingest_status(job_id: str, request: Request, _: AdminRole) -> IngestJob:
    job = _jobs(request).jobs.get(job_id)
    if job is None:
        raise HTTPException(404, f"no ingestion job {job_id!r}")
    return job
