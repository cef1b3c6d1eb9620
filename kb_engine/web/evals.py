"""GET /v1/admin/eval/latest: the latest golden-set eval run, for the content team.

`kb eval run` writes each run into a folder of KB_DATA_DIR/eval/ (``summary.json``, ``results.jsonl``,
``report.html``). The latest run is the one whose summary was written last; runs of external
datasets (`kb eval external`: their summary names a ``dataset``) measure something else and are
skipped, and so is a summary that is not readable JSON (a run still being written, a stray file).
``?format=html`` returns that run's report.html, a self-contained page with no scripts.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from fastapi import APIRouter, HTTPException
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, Field

from kb_engine.api.deps import AdminRole, SettingsDep
from kb_engine.api.errors import ERRORS
from kb_engine.api.models import ErrorResponse
from kb_engine.goals import GOALS, margin

router = APIRouter(tags=["admin"])
log = logging.getLogger(__name__)

REPORT_HEADERS = {  # the report has inline styles and SVG, and must not run or load anything
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; img-src data:",
    "X-Content-Type-Options": "nosniff",
}


class GoalStatus(BaseModel):
    metric: str
    op: Literal[">=", "<=", "=="]
    goal: float
    value: float | None = Field(description="The run's value over all questions; null if not measured.")
    met: bool | None = Field(description="null when the value is missing.")
    gap: float | None = Field(description="By how much the goal is met (>= 0) or missed (< 0).")


class EvalRun(BaseModel):
    name: str = Field(description="The run's folder under KB_DATA_DIR/eval.")
    finished: datetime = Field(description="When its summary was written (UTC).")
    has_report: bool = Field(description="Whether report.html exists (`?format=html`).")
    goals: list[GoalStatus]
    summary: dict[str, Any] = Field(
        description="summary.json as written by `kb eval run`: overall metrics, `split_summaries`, "
        "`peers` (when run with --peers)."
    )


class LatestEval(BaseModel):
    runs: int = Field(description="Golden-set runs found.")
    latest: EvalRun | None = Field(description="null until `kb eval run` has been run.")


def goal_status(summary: dict[str, Any]) -> list[GoalStatus]:
    rows = []
    for metric, (op, goal) in GOALS.items():
        value = summary.get(metric)
        if not isinstance(value, int | float):
            rows.append(GoalStatus(metric=metric, op=op, goal=goal, value=None, met=None, gap=None))
            continue
        met, gap = margin(op, goal, value)
        rows.append(GoalStatus(metric=metric, op=op, goal=goal, value=value, met=met, gap=gap))
    return rows


def golden_runs(eval_dir: Path) -> list[tuple[float, Path, dict[str, Any]]]:
    """(mtime, folder, summary) of every readable golden-set run, newest first."""
    runs = []
    for path in eval_dir.glob("*/summary.json"):
        try:
            summary = json.loads(path.read_text(encoding="utf-8"))
            mtime = path.stat().st_mtime
        except (OSError, ValueError) as exc:
            log.warning("skipping eval summary %s: %s", path, exc)
            continue
        if isinstance(summary, dict) and "dataset" not in summary:
            runs.append((mtime, path.parent, summary))
    return sorted(runs, key=lambda run: (run[0], run[1].name), reverse=True)


_RESPONSES: dict[int | str, dict[str, Any]] = {
    **ERRORS,
    200: {
        "content": {"application/json": {}, "text/html": {}},
        "description": "The latest run (`latest` null before the first), or with `format=html` its report.",
    },
    404: {"model": ErrorResponse, "description": "`format=html`: no run, or the run has no report.html."},
}


@router.get("/v1/admin/eval/latest", response_model=LatestEval, responses=_RESPONSES)
def latest_eval(
    settings: SettingsDep, _: AdminRole, format: Literal["json", "html"] = "json"
) -> LatestEval | HTMLResponse:
    runs = golden_runs(settings.data_dir / "eval")
    if format == "html":
        report = runs[0][1] / "report.html" if runs else None
        if report is None or not report.is_file():
            raise HTTPException(
                404, "no eval run with a report yet: run `kb eval run` (it writes report.html)"
            )
        return HTMLResponse(report.read_text(encoding="utf-8"), headers=REPORT_HEADERS)
    if not runs:
        return LatestEval(runs=0, latest=None)
    mtime, folder, summary = runs[0]
    return LatestEval(
        runs=len(runs),
        latest=EvalRun(
            name=folder.name,
            finished=datetime.fromtimestamp(mtime, UTC),
            has_report=(folder / "report.html").is_file(),
            goals=goal_status(summary),
            summary=summary,
        ),
    )
