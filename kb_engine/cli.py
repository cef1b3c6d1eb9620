"""`kb`: the command line. The one place that wires the core and the ingestors together.

Exit codes: 0 done; 1 done, but some files failed (listed in the report); 2 a usage or
configuration error, or the index cannot be used (a one-line reason on stderr).
"""

from __future__ import annotations

import json
import logging
import sys
import threading
import time
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from kb_engine.cli_base import _as_of, _engine, _fail, _progress, _settings, err, out
from kb_engine.cli_eval import eval_app
from kb_engine.cli_report import report
from kb_engine.config import Settings, get_settings
from kb_engine.errors import KBError

if TYPE_CHECKING:
    from ingest.pipeline import IngestReport

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="kb-engine: help-centre ingestion and hybrid search (offline by default).",
)


class AudienceOpt(StrEnum):
    buyer = "buyer"
    seller = "seller"


@app.command()
def ingest(
    paths: Annotated[
        list[Path],
        typer.Argument(
            help="Directories (recursive) or files (.md, .html, .docx, .pdf, .txt, .jsonl export)."
        ),
    ],
    keep_missing: Annotated[
        bool,
        typer.Option("--keep-missing", help="Do not delete documents that disappeared from a directory."),
    ] = False,
    include: Annotated[list[str] | None, typer.Option(help="Glob of files to take (repeatable).")] = None,
    exclude: Annotated[list[str] | None, typer.Option(help="Glob of files to skip (repeatable).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Sync files into the index: new and changed documents are embedded, unchanged ones skipped,
    removed ones deleted."""
    from ingest.pipeline import Ingestor
    from kb_engine.runtime import open_runtime

    settings = _settings()
    updates = {k: v for k, v in {"include": include, "exclude": exclude}.items() if v}
    if updates:
        settings = settings.model_copy(update=updates)
    try:
        with open_runtime(settings) as rt, _progress(enabled=not as_json) as progress:
            parse_task = progress.add_task("parsing", total=None)
            embed_task = progress.add_task("embedding + indexing", total=None)

            def report_progress(stage: str, done: int, total: int) -> None:
                if stage == "parse":
                    progress.update(parse_task, completed=done, total=total)
                else:
                    progress.update(embed_task, completed=done)

            report = Ingestor(settings, rt.index, rt.embedder, rt.sparse, report_progress).run(
                paths, delete_missing=False if keep_missing else None
            )
    except KBError as exc:
        _fail(str(exc))
        return
    if as_json:
        typer.echo(json.dumps(report.as_dict(), ensure_ascii=False, indent=2))
    else:
        _print_report(report)
    if report.failed:
        err.print(f"{len(report.failed)} file(s) failed: see the report above", highlight=False)
        raise typer.Exit(1)


def _print_report(report: IngestReport) -> None:
    table = Table(title="kb ingest", show_header=True, header_style="bold")
    for column in ("new", "changed", "unchanged", "deleted", "failed", "chunks", "tokens", "seconds"):
        table.add_column(column, justify="right")
    table.add_row(
        str(len(report.new)),
        str(len(report.changed)),
        str(len(report.unchanged)),
        str(len(report.deleted)),
        str(len(report.failed)),
        str(report.chunks_written),
        str(report.tokens_written),
        f"{report.seconds:.1f}",
    )
    out.print(table)
    out.print(
        f"index: {report.index_points} chunks; model computed {report.chunks_embedded} embeddings, "
        f"the rest came from the cache or were unchanged",
        highlight=False,
    )
    if report.failed:
        failed = Table(title="failed files", header_style="bold red")
        failed.add_column("file")
        failed.add_column("reason")
        failed.add_column("details")
        for f in report.failed:
            failed.add_row(f.source, f.reason, f.message)
        out.print(failed)


@app.command()
def search(
    query: Annotated[str, typer.Argument(help="The question, as a user would type it.")],
    audience: Annotated[
        AudienceOpt | None, typer.Option(help="Only documents for this audience (and for all).")
    ] = None,
    top_k: Annotated[
        int | None,
        typer.Option("--top-k", "-k", min=1, max=100, help="Passages to show (default KB_SEARCH_TOP_K)."),
    ] = None,
    as_of: Annotated[str | None, typer.Option(help="Validity date YYYY-MM-DD (default: today).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print passages as JSON.")] = False,
) -> None:
    """Print the top passages for a query, with scores and sources."""
    settings = _settings()
    when = _as_of(as_of)
    if not query.strip():
        _fail("the query is empty")
    try:
        with _engine(settings) as searcher:
            passages = searcher.search(
                query, audience.value if audience else None, top_k or settings.search_top_k, when
            )
    except KBError as exc:
        _fail(str(exc))
        return
    if as_json:
        typer.echo(json.dumps([p.model_dump(mode="json") for p in passages], ensure_ascii=False, indent=2))
        return
    out.print(f"[bold]{query}[/]" + (f"  (audience: {audience.value})" if audience else ""))
    if not passages:
        out.print("nothing found")
    for rank, p in enumerate(passages, start=1):
        section = " > ".join(p.section)
        out.print(
            f"\n[bold cyan]{rank}. {p.title}[/]"
            + (f" > {section}" if section else "")
            + f"  [dim]score {p.score:.4f} · {p.source} · {p.audience}/{p.category}[/]"
        )
        text = p.text if len(p.text) <= 600 else p.text[:600].rsplit(" ", 1)[0] + " …"
        out.print(text, highlight=False)


@app.command()
def ask(
    question: Annotated[str, typer.Argument(help="The question, as a customer or seller would ask it.")],
    audience: Annotated[AudienceOpt | None, typer.Option(help="Who asks: buyer or seller.")] = None,
    channel: Annotated[str, typer.Option(help="chat | email | voice")] = "chat",
    as_of: Annotated[str | None, typer.Option(help="Validity date YYYY-MM-DD (default: today).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the /v1/answer response as JSON.")] = False,
) -> None:
    """Answer a question from the help centre, with citations (or say that it cannot)."""
    settings = _settings()
    if channel not in ("chat", "email", "voice"):
        _fail(f"--channel must be chat, email or voice, got {channel!r}")
    when = _as_of(as_of)
    if not question.strip():
        _fail("the question is empty")
    try:
        with _engine(settings) as engine:
            result = engine.answer(question, audience.value if audience else None, (), channel, when)  # type: ignore[arg-type]
    except KBError as exc:
        _fail(str(exc))
        return
    if as_json:
        typer.echo(result.model_dump_json(indent=2))
        return
    out.print(
        f"[bold]{result.action}[/] · confidence {result.confidence:.2f} · topic {result.topic}",
        highlight=False,
    )
    out.print(result.answer, highlight=False)
    for c in result.citations:
        section = " > ".join(c.section)
        out.print(
            f"[dim][{c.n}] {c.title}{' > ' + section if section else ''} · {c.url or c.source}[/]",
            highlight=False,
        )


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Bind address (default KB_HOST, 127.0.0.1).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default KB_PORT, 8000).")] = None,
    demo_traffic: Annotated[
        int,
        typer.Option(
            help="Once serving, send this many demo questions and ratings (`kb demo-traffic`) if the answer "
            "log is still empty, so the analytics report has something to show. 0: none."
        ),
    ] = 0,
) -> None:
    """Serve the HTTP API and the web console (at /; API docs at /docs). Holds the embedded index."""
    import uvicorn

    from kb_engine.api import create_app

    settings = _settings()
    host = host or settings.host
    port = port or settings.port
    loopback = host in ("127.0.0.1", "localhost", "::1") or host.startswith("127.")
    if not loopback and not settings.api_keys:
        _fail(
            f"refusing to listen on {host} without API keys: set KB_API_KEYS (e.g. "
            '\'{"<secret>": "bot"}\') or bind to 127.0.0.1'
        )
    if not settings.api_keys:
        err.print(
            f"local demo: no API keys configured (KB_API_KEYS), listening on loopback {host} only",
            highlight=False,
        )
    base = f"http://{'127.0.0.1' if host in ('0.0.0.0', '::') else host}:{port}"
    auth = "" if not settings.api_keys else " -H 'Authorization: Bearer <key>'"
    err.print(
        f"kb-engine on {base}: the web console at {base}/, the API docs at {base}/docs. Try:\n"
        f"  curl -s {base}/v1/answer{auth} -H 'Content-Type: application/json' \\\n"
        """    -d '{"question": "Как вернуть товар, если не подошёл размер?", "audience": "buyer"}'""",
        highlight=False,
        soft_wrap=True,
    )
    from kb_engine.runtime import open_runtime

    try:
        runtime = open_runtime(settings)  # here, not in the server: a locked index is a one-line error
    except KBError as exc:
        _fail(str(exc))
        return

    def ingest_runner(paths: list[Path]) -> dict[str, object]:
        from ingest.pipeline import Ingestor

        return Ingestor(settings, runtime.index, runtime.embedder, runtime.sparse).run(paths).as_dict()

    if demo_traffic > 0:
        threading.Thread(target=_demo_when_up, args=(settings, base, demo_traffic), daemon=True).start()
    try:
        application = create_app(settings, runtime, ingest_runner)
        # Keep-alive longer than HTTP clients' pools keep idle connections (httpx: 5 s, uvicorn's own
        # default): otherwise the server may close a connection just as a client reuses it.
        uvicorn.run(
            application, host=host, port=port, log_level=settings.log_level.lower(), timeout_keep_alive=75
        )
    finally:
        runtime.close()


def _demo_when_up(settings: Settings, base: str, n: int) -> None:
    """`kb serve --demo-traffic`: wait for the server, then fill an empty answer log with demo traffic."""
    import httpx

    from kb_engine.demo_traffic import main as demo_main
    from kb_engine.store import open_store

    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/readyz", timeout=2).is_success:
                break
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    else:
        err.print("demo traffic not sent: the server did not become ready in 5 minutes", highlight=False)
        return
    store = open_store(settings)
    try:
        logged = store.answer_count()
    finally:
        store.close()
    if logged:
        err.print(f"demo traffic skipped: the answer log already has {logged} answers", highlight=False)
        return
    key = next((k for k, role in settings.api_keys.items() if role == "admin"), None) or next(
        (k for k, role in settings.api_keys.items() if role == "agent"), None
    )
    demo_main(base, n=n, api_key=key, console=err)


app.add_typer(eval_app, name="eval")
app.command()(report)


@app.command("demo-traffic")
def demo_traffic(
    url: Annotated[str, typer.Option(help="The running service.")] = "http://127.0.0.1:8000",
    n: Annotated[int, typer.Option(help="Requests to send.")] = 300,
    seed: Annotated[int, typer.Option(help="The same seed sends the same requests.")] = 0,
    api_key: Annotated[
        str | None, typer.Option(help="An agent (or admin) key, when the service has keys.")
    ] = None,
) -> None:
    """Send a few hundred realistic questions (some the help centre does not cover) and feedback
    through the API, so the analytics have something to show. Exit 1 if any request failed."""
    from kb_engine.demo_traffic import main as demo_main

    raise typer.Exit(demo_main(url, n=n, seed=seed, api_key=api_key, console=out))


@app.command()
def info() -> None:
    """Show where the index is and what it holds."""
    from kb_engine.index import open_index

    settings = _settings()
    try:
        index = open_index(settings)
        try:
            data = index.info()
        finally:
            index.close()
    except KBError as exc:
        _fail(str(exc))
        return
    typer.echo(data.model_dump_json(indent=2))


@app.command("config")
def show_config(
    markdown: Annotated[bool, typer.Option(help="As a Markdown table (for the README).")] = False,
) -> None:
    """Show every setting, its environment variable, default and current value."""
    settings = _settings()
    rows = []
    for name, field in Settings.model_fields.items():
        default = field.get_default(call_default_factory=True)
        rows.append(
            (
                f"KB_{name.upper()}",
                json.dumps(default, default=str, ensure_ascii=False),
                field.description or "",
                json.dumps(getattr(settings, name), default=str, ensure_ascii=False),
            )
        )
    if markdown:
        out.print("| variable | default | meaning |\n|---|---|---|", highlight=False)
        for var, default, desc, _ in rows:
            out.print(f"| `{var}` | `{default}` | {desc} |", highlight=False, soft_wrap=True)
        return
    table = Table(header_style="bold")
    for column in ("variable", "default", "current", "meaning"):
        table.add_column(column)
    for var, default, desc, current in rows:
        table.add_row(var, default, current, desc)
    out.print(table)


def main() -> None:
    try:
        level = get_settings().log_level.upper()
    except ValueError:
        level = "WARNING"  # the command itself reports the invalid setting
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    from kb_engine.redact import install_log_redaction

    install_log_redaction()  # every record, uvicorn's access log included: no personal data in logs
    try:
        app()
    except KeyboardInterrupt:
        err.print("interrupted: the index stays consistent; run the same command again to finish")
        sys.exit(130)


if __name__ == "__main__":
    main()
