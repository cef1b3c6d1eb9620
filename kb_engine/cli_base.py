"""What every `kb` command shares: the consoles, the settings, one-line failures, the answer engine
and progress bars."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from typing import TYPE_CHECKING

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from kb_engine.config import Settings, get_settings

if TYPE_CHECKING:
    from kb_engine.engine import AnswerEngine

out = Console()
err = Console(stderr=True)


def _settings() -> Settings:
    try:
        return get_settings()
    except ValueError as exc:  # pydantic's ValidationError is a ValueError
        _fail(f"invalid configuration: {exc}")
        raise  # unreachable


@contextmanager
def _engine(settings: Settings) -> Iterator[AnswerEngine]:
    """The answer engine over the configured index, which must not be empty."""
    from kb_engine.drafting.factory import make_drafter
    from kb_engine.engine import AnswerEngine
    from kb_engine.runtime import open_runtime

    with open_runtime(settings) as rt:
        if rt.index.count() == 0:
            _fail("the index is empty: run `kb ingest knowledge/` first")
        yield AnswerEngine(settings, rt.index, rt.embedder, rt.sparse, drafter=make_drafter(settings))


def _as_of(value: str | None) -> date | None:
    try:
        return date.fromisoformat(value) if value else None
    except ValueError:
        _fail(f"--as-of must be a date like 2026-03-01, got {value!r}")
        raise  # unreachable: _fail exits


def _fail(message: str, code: int = 2) -> None:
    err.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def _progress(enabled: bool) -> Progress:
    return Progress(
        TextColumn("{task.description:<22}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        transient=True,
        disable=not enabled,
    )
