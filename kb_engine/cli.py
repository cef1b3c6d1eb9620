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
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from kb_engine.config import Settings, get_settings
from kb_engine.errors import KBError

if TYPE_CHECKING:
    from ingest.pipeline import IngestReport
    from kb_engine.engine import AnswerEngine

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="kb-engine: help-centre ingestion and hybrid search (offline by default).",
)
out = Console()
err = Console(stderr=True)


class AudienceOpt(StrEnum):
    buyer = "buyer"
    seller = "seller"


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
    """Serve the HTTP API (OpenAPI docs at /docs). Holds the embedded index while it runs."""
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


eval_app = typer.Typer(no_args_is_help=True, help="Answer-quality evals over a golden set.")
app.add_typer(eval_app, name="eval")


@eval_app.command("run")
def eval_run(
    dataset: Annotated[
        Path | None, typer.Option(help="A golden JSONL file or folder (default: eval/datasets/golden).")
    ] = None,
    split: Annotated[str | None, typer.Option(help="dev | heldout (default: both, reported apart)")] = None,
    out_dir: Annotated[
        Path | None, typer.Option("--out", help="Output folder (default: KB_DATA_DIR/eval/<time>).")
    ] = None,
    limit: Annotated[int | None, typer.Option(help="Only the first N questions.")] = None,
    peers: Annotated[
        bool,
        typer.Option(help="Also run the peers (BM25 only, dense only, LlamaIndex) on the same questions."),
    ] = False,
    judge: Annotated[
        bool, typer.Option(help="Also judge citation support with the LLM of KB_LLM_BASE_URL / KB_LLM_MODEL.")
    ] = False,
) -> None:
    """Answer every question; score retrieval, answers, citations, refusals; write results.jsonl,
    summary.json and report.html."""
    from eval import dataset as ds
    from eval.report import goal_status, write
    from eval.runner import run, summarise_splits

    settings = _settings()
    peer_metrics: dict[str, Any] | None = None
    llm_judge = None
    if judge:
        if not settings.llm_base_url:
            _fail("--judge needs an LLM: set KB_LLM_BASE_URL (and KB_LLM_MODEL, KB_LLM_API_KEY)")
        from eval.metrics.judge import LLMJudge

        assert settings.llm_base_url is not None
        llm_judge = LLMJudge(
            settings.llm_base_url, settings.llm_model, settings.llm_api_key, settings.llm_timeout_s
        )
    try:
        items = ds.load(dataset or ds.GOLDEN, split)[:limit]
        with _engine(settings) as engine, _progress(enabled=True) as progress:
            task = progress.add_task("evaluating", total=len(items))
            results = run(engine, items, lambda done, total: progress.update(task, completed=done), llm_judge)
            if peers:
                from eval.peers import default_peers, run_peers

                out.print("building the peers (LlamaIndex embeds its own chunks: minutes the first time)")
                retrievers = default_peers(engine, settings, [Path(p) for p in settings.ingest_paths])
                task = progress.add_task("peers", total=len(items) * len(retrievers))
                peer_metrics = run_peers(
                    retrievers, items, lambda done, total: progress.update(task, completed=done, total=total)
                )
    except KBError as exc:
        _fail(str(exc))
        return
    summary = summarise_splits(results, settings.answer_threshold)
    target = out_dir or settings.data_dir / "eval" / time.strftime("%Y%m%d-%H%M%S")
    target.mkdir(parents=True, exist_ok=True)
    with (target / "results.jsonl").open("w", encoding="utf-8") as fh:
        for row in results:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
    if peer_metrics is not None:
        summary["peers"] = {
            name: {k: v for k, v in m.items() if k != "per_question"} for name, m in peer_metrics.items()
        }
    (target / "summary.json").write_text(json.dumps(summary, ensure_ascii=False, indent=2), encoding="utf-8")
    write(target / "report.html", summary, results, peers=peer_metrics, title=f"kb eval · {target.name}")
    _print_summary(summary, goal_status(summary))
    if llm_judge is not None and llm_judge.errors:
        err.print(f"[yellow]the judge failed on {llm_judge.errors} answers (not scored)[/]", highlight=False)
    out.print(f"results, summary and report.html in {target}", highlight=False)


def _print_summary(summary: dict[str, Any], goals: list[dict[str, Any]]) -> None:
    splits = summary.get("split_summaries") or {}
    table = Table(title=f"kb eval: {summary['questions']} questions", header_style="bold")
    table.add_column("metric")
    table.add_column("all", justify="right")
    for name in splits:
        table.add_column(name, justify="right")
    table.add_column("goal")
    verdict = {g["metric"]: g for g in goals}
    for key, value in summary.items():
        if key in ("refusal_curve", "split_summaries", "peers"):
            continue
        goal = verdict.get(key)
        mark = ""
        if goal is not None:
            mark = f"{goal['op']} {goal['goal']} " + ("[green]met[/]" if goal["met"] else "[red]missed[/]")
        table.add_row(key, str(value), *(str(s.get(key, "")) for s in splits.values()), mark)
    out.print(table)
    for name, metrics in (summary.get("peers") or {}).items():
        out.print(
            f"peer {name}: hit@5 {metrics.get('hit@5')} · mrr@10 {metrics.get('mrr@10')} · "
            f"ndcg@10 {metrics.get('ndcg@10')}",
            highlight=False,
        )


@eval_app.command("compare")
def eval_compare(
    base: Annotated[Path, typer.Argument(help="The baseline run folder (or its results.jsonl).")],
    new: Annotated[Path, typer.Argument(help="The new run folder (or its results.jsonl).")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the comparison as JSON.")] = False,
) -> None:
    """Per-metric deltas with paired bootstrap 95% CIs and the questions that got worse.
    Exit 1 on a significant regression (to gate CI), 2 on bad input."""
    from eval.compare import main as compare_main

    try:
        code = compare_main(base, new, out, as_json=as_json)
    except KBError as exc:
        _fail(str(exc))
        return
    raise typer.Exit(code)


@eval_app.command("external")
def eval_external(
    kind: Annotated[str, typer.Argument(help="squad | beir")],
    path: Annotated[
        Path, typer.Argument(help="A SQuAD JSON file, or a BEIR folder (corpus, queries, qrels).")
    ],
    out_dir: Annotated[
        Path | None, typer.Option("--out", help="Output folder (default: KB_DATA_DIR/eval/external-<time>).")
    ] = None,
    limit: Annotated[int | None, typer.Option(help="Only the first N questions.")] = None,
    split: Annotated[str, typer.Option(help="BEIR qrels split.")] = "test",
    data_dir: Annotated[
        Path | None,
        typer.Option(
            help="Where its own index lives (default: KB_DATA_DIR/external/<dataset>; kept for re-runs)."
        ),
    ] = None,
) -> None:
    """A dataset nobody here wrote, through the real engine: its passages are ingested into their own
    index, its questions asked; gold-passage hit@k, citation of the gold passage, EM / F1 / span."""
    from eval.external import main as external_main

    if kind not in ("squad", "beir"):
        _fail(f"kind must be squad or beir, got {kind!r}")
    settings = _settings()
    target = out_dir or settings.data_dir / "eval" / f"external-{time.strftime('%Y%m%d-%H%M%S')}"
    code = external_main(
        "squad" if kind == "squad" else "beir",
        path,
        target,
        limit,
        out,
        split=split,
        data_dir=data_dir,
        settings=settings,
    )
    raise typer.Exit(code)


@eval_app.command("add-from-feedback")
def eval_add_from_feedback(
    out_path: Annotated[
        Path | None,
        typer.Option(
            "--out", help="Candidates file (default: eval/datasets/candidates/feedback-<date>.jsonl)."
        ),
    ] = None,
    since_days: Annotated[int | None, typer.Option(help="Only answers of the last N days.")] = None,
) -> None:
    """Answers rated down or rewritten by agents → golden-set candidates for the content team to review
    (cited documents as gold, the agent's rewrite as reference; key facts left to write)."""
    from eval import candidates as cand
    from kb_engine.store import open_store

    settings = _settings()
    db = settings.data_dir / "kb.sqlite"
    if not settings.database_url and not db.exists():
        _fail(f"no answer log at {db}: serve some answers first (`kb serve`), or set KB_DATA_DIR")
    try:
        store = open_store(settings)
    except KBError as exc:
        _fail(str(exc))
        return
    try:
        since = time.time() - since_days * 86400 if since_days else None
        cases = store.feedback_cases(since)
        items = cand.candidates(cases, cand.golden_questions())
        if not items:
            out.print(f"{len(cases)} rated-down or rewritten answers, none new to the golden set")
            return
        target = cand.write(items, out_path or cand.default_out())
    except KBError as exc:
        _fail(str(exc))
        return
    finally:
        store.close()
    out.print(
        f"{len(items)} candidates from {len(cases)} rated-down or rewritten answers in {target}: check the "
        "gold documents, write key facts, then move the file into eval/datasets/golden/",
        highlight=False,
    )


@eval_app.command("calibrate")
def eval_calibrate(
    run_dir: Annotated[
        Path, typer.Argument(help="An eval run folder (its results.jsonl) over dev + heldout.")
    ],
    max_false_handoff: Annotated[
        float, typer.Option(help="Budget of answerable questions handed off at the chosen threshold.")
    ] = 0.05,
) -> None:
    """Fit the answerability model on the run's dev split; choose the threshold; score held-out."""
    from eval.calibrate import fit
    from eval.compare import load_run

    try:
        result = fit(load_run(run_dir), max_false_handoff)
    except KBError as exc:
        _fail(str(exc))
        return
    out.print_json(
        json.dumps(
            {
                "KB_ANSWERABILITY_WEIGHTS": result.weights,
                "KB_ANSWER_THRESHOLD": result.threshold,
                "dev": result.dev,
                "heldout": result.heldout,
            },
            ensure_ascii=False,
        )
    )


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
