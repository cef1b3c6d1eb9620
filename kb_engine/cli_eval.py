"""`kb eval …`: answer-quality evals over a golden set (the `eval` package does the work)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from kb_engine.cli_base import _engine, _fail, _progress, _settings, err, out
from kb_engine.errors import KBError

eval_app = typer.Typer(no_args_is_help=True, help="Answer-quality evals over a golden set.")


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
