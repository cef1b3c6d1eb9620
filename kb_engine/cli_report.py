"""`kb report`: the support report from the answer log, as one HTML page (or JSON)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from kb_engine.cli_base import _fail, _progress, _settings, err, out
from kb_engine.config import Settings
from kb_engine.errors import KBError

if TYPE_CHECKING:
    from rich.progress import Progress


def report(
    since: Annotated[
        str | None, typer.Option(help="From: 24h, 7d, 2w back from now, or a date 2026-11-01 (default: all).")
    ] = None,
    until: Annotated[str | None, typer.Option(help="Before: the same forms (default: now).")] = None,
    out_path: Annotated[
        Path | None, typer.Option("--out", help="The HTML file (default: KB_DATA_DIR/report.html).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the numbers as JSON instead.")] = False,
) -> None:
    """The support report of the answer log, as one HTML page: volume, handoffs, ratings by topic,
    content gaps, articles, agents' drafts (the same as GET /v1/admin/stats)."""
    from kb_engine.analytics import parse_when, stats_from_store
    from kb_engine.analytics_report import render
    from kb_engine.embedding import make_embedder
    from kb_engine.store import open_store

    settings = _settings()
    try:
        start = parse_when(since) if since else None
        end = parse_when(until) if until else None
    except KBError as exc:
        _fail(f"--since/--until: {exc}")
        return
    if start is not None and end is not None and start >= end:
        _fail(f"--since ({since}) must be before --until ({until})")
    index, why = _report_index(settings)
    progress = _LateProgress("grouping content gaps")
    try:
        store = open_store(settings)
        try:
            stats = stats_from_store(
                store,
                embedder=make_embedder(settings),
                index=index,
                missing_index_reason=why,
                since=start,
                until=end,
                low_confidence=settings.answer_threshold,
                gap_similarity=settings.gap_similarity,
                progress=progress,
            )
        finally:
            store.close()
    except KBError as exc:
        _fail(str(exc))
        return
    finally:
        progress.close()
        if index is not None:
            index.close()
    if as_json:
        typer.echo(stats.model_dump_json(indent=2))
        return
    target = out_path or settings.data_dir / "report.html"
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(render(stats), encoding="utf-8")
    except OSError as exc:
        _fail(f"cannot write the report to {target}: {exc.strerror or exc}")
    if not stats.answers:
        err.print("no answers logged in this period: with `kb serve` running, `kb demo-traffic` sends some")
    out.print(
        f"{stats.answers} questions, {stats.actions.counts['handoff']} handed off, {stats.feedback.rated} "
        f"rated, {len(stats.gaps.clusters)} content gaps: file://{target.resolve()}",
        highlight=False,
        soft_wrap=True,
    )


def _report_index(settings: Settings) -> tuple[Any, str | None]:
    """The index, for the documents never cited; or None and why (in Russian: the report's words)."""
    from kb_engine.errors import IndexLockedError
    from kb_engine.index import open_index

    if not settings.qdrant_url and not settings.index_dir.exists():
        return None, "индекс ещё не создан: kb ingest knowledge/"
    try:
        index = open_index(settings)
    except IndexLockedError:
        return None, (
            "индекс сейчас открыт запущенным сервисом (kb serve); этот раздел есть в отчёте самого сервиса: "
            "GET /v1/admin/stats"
        )
    except KBError as exc:
        return None, f"индекс недоступен: {exc}"
    return index, None


class _LateProgress:
    """A progress bar on stderr that shows up only once the work has taken more than a second."""

    def __init__(self, description: str) -> None:
        self.description = description
        self.started = time.monotonic()
        self.bar: Progress | None = None
        self.task: Any = None

    def __call__(self, done: int, total: int) -> None:
        if self.bar is None:
            if time.monotonic() - self.started < 1.0:
                return
            self.bar = _progress(enabled=True)
            self.bar.start()
            self.task = self.bar.add_task(self.description, total=total)
        self.bar.update(self.task, completed=done, total=total)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()
