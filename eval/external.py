"""Run a dataset nobody here wrote (SQuAD JSON, BEIR folder) through the real engine.

The passages are written as a corpus folder (``eval.importers.write_corpus``) and ingested into their
own data dir (index and embedding cache under it, never the help centre's), then every question is:

- searched (hybrid, top 50 chunks → distinct documents in rank order): gold hit@1/5/10, MRR@10;
- retrieved and answered as the engine acts (``retrieve`` + ``answer_from``, chat channel): whether
  the answer cites the gold passage, SQuAD exact match / token F1, gold span containment, action;
- checked for where the gold span is: in the passages the drafter was given (the ceiling of an
  extractive answer), in the first document's passages, and in the extractive draft made from the
  same passages without the handoff threshold (what the drafter picks when it has to answer).

Span metrics are counted as acted (a handoff is a miss) and over the answered questions only.
The data dir is kept between runs: an unchanged corpus is not parsed or embedded again.
"""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from eval.importers import ExternalDataset, ExternalQuestion, load_beir, load_squad, slugify, write_corpus
from eval.metrics.retrieval import hit_at, mrr_at
from eval.metrics.squad import exact_match, span_contained, token_f1
from eval.stats import mean
from ingest.pipeline import Ingestor
from ingest.pipeline import Progress as IngestProgress
from kb_engine.config import Settings
from kb_engine.drafting.base import Drafter
from kb_engine.engine import AnswerEngine, Retrieval
from kb_engine.errors import ConfigError, KBError
from kb_engine.runtime import Runtime, open_runtime
from kb_engine.schema import Answer

QuestionProgress = Callable[[int, int], None]  # (done, total), as eval.runner.run
OpenRuntime = Callable[[Settings], Runtime]

SEARCH_TOP_K = 50
GOALS = {"hit@5": 0.95, "span_contained": 0.6}


def run_external(
    questions: Sequence[ExternalQuestion],
    corpus_dir: Path,
    data_dir: Path,
    *,
    settings: Settings | None = None,
    open_rt: OpenRuntime = open_runtime,
    drafter: Drafter | None = None,
    progress: QuestionProgress | None = None,
    ingest_progress: IngestProgress | None = None,
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Ingest ``corpus_dir`` into ``data_dir`` and score every question: (rows, summary).

    ``settings`` are the base (default: from the environment); the data dir, the ingested path and
    the embedded index are always set here, so a configured Qdrant server is never touched.
    ``open_rt`` builds the runtime (tests pass one that reuses their loaded model)."""
    base = settings if settings is not None else Settings()
    run_settings = base.model_copy(
        update={"data_dir": data_dir, "ingest_paths": [str(corpus_dir)], "qdrant_url": None}
    )
    with open_rt(run_settings) as rt:
        started = time.perf_counter()
        report = Ingestor(run_settings, rt.index, rt.embedder, rt.sparse, ingest_progress).run(
            [corpus_dir], delete_missing=True
        )
        ingest_seconds = time.perf_counter() - started
        engine = AnswerEngine(run_settings, rt.index, rt.embedder, rt.sparse, drafter=drafter)
        started = time.perf_counter()
        rows = []
        for done, question in enumerate(questions, start=1):
            rows.append(evaluate(engine, question))
            if progress:
                progress(done, len(questions))
        eval_seconds = time.perf_counter() - started
    summary = summarise(rows, run_settings.answer_threshold)
    summary["ingest"] = report.as_dict()
    summary["ingest_seconds"] = round(ingest_seconds, 1)
    summary["eval_seconds"] = round(eval_seconds, 1)
    return rows, summary


def evaluate(engine: AnswerEngine, question: ExternalQuestion) -> dict[str, Any]:
    started = time.perf_counter()
    found = engine.retrieve(question.question)
    retrieved = time.perf_counter()
    answer = engine.answer_from(found, question.question, "chat")
    answered_at = time.perf_counter()
    hits = engine.search(question.question, top_k=SEARCH_TOP_K) if not found.vague else []
    ranked = list(dict.fromkeys(h.doc_id for h in hits))[:10]
    gold, spans = set(question.gold), list(question.answers)
    answered = answer.action == "answer"
    said = answer.answer if answered else ""
    forced = engine.extractive.draft(found.query, found.passages, "chat").text
    row: dict[str, Any] = {
        "id": question.id,
        "question": question.question,
        "answerable": question.answerable,
        "gold": sorted(gold),
        "answers": spans,
        "ranked": ranked,
        "action": answer.action,
        "confidence": answer.confidence,
        "signals": {name: round(value, 4) for name, value in found.signals.items()},
        "answer": answer.answer,
        "cited": [c.doc_id for c in answer.citations],
        "passages": [p.doc_id for p in found.passages],
        "forced_answer": forced,
        "timings_ms": {
            "retrieve": _ms(retrieved - started),
            "draft": _ms(answered_at - retrieved),
            "total": _ms(answered_at - started),
        },
    }
    if question.answerable:
        row.update(
            {
                "hit@1": hit_at(ranked, gold, 1),
                "hit@5": hit_at(ranked, gold, 5),
                "hit@10": hit_at(ranked, gold, 10),
                "mrr@10": mrr_at(ranked, gold),
                "cites_gold": float(any(c.doc_id in gold for c in answer.citations)),
            }
        )
    if question.answerable and spans:
        row.update(_span_metrics(said, spans, found, answer, forced))
    return row


def _span_metrics(
    said: str, spans: list[str], found: Retrieval, answer: Answer, forced: str
) -> dict[str, Any]:
    first_doc = found.passages[0].doc_id if found.passages else None
    return {
        "exact_match": exact_match(said, spans),
        "f1": token_f1(said, spans),
        "span_contained": span_contained(said, spans),
        "span_in_passages": span_contained("\n".join(p.text for p in found.passages), spans),
        "span_in_top_doc": span_contained(
            "\n".join(p.text for p in found.passages if p.doc_id == first_doc), spans
        ),
        "span_forced": span_contained(forced, spans),
        "answer_chars": len(answer.answer) if answer.action == "answer" else 0,
    }


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 2)


def summarise(rows: list[dict[str, Any]], threshold: float) -> dict[str, Any]:
    answerable = [r for r in rows if r["answerable"]]
    spanned = [r for r in answerable if "span_contained" in r]
    answered = [r for r in spanned if r["action"] == "answer"]
    unanswerable = [r for r in rows if not r["answerable"]]
    summary: dict[str, Any] = {
        "questions": len(rows),
        "answerable": len(answerable),
        "unanswerable": len(unanswerable),
        "threshold": threshold,
    }
    for metric in ("hit@1", "hit@5", "hit@10", "mrr@10", "cites_gold"):
        summary[metric] = mean(r.get(metric) for r in answerable)
    for metric in ("exact_match", "f1", "span_contained"):
        summary[metric] = mean(r[metric] for r in spanned)
    summary["span_contained_answered"] = mean(r["span_contained"] for r in answered)
    summary["f1_answered"] = mean(r["f1"] for r in answered)
    summary["span_in_passages"] = mean(r["span_in_passages"] for r in spanned)
    summary["span_in_top_doc"] = mean(r["span_in_top_doc"] for r in spanned)
    summary["span_forced"] = mean(r["span_forced"] for r in spanned)
    summary["handoff_rate"] = mean(r["action"] != "answer" for r in answerable)
    summary["correct_handoff"] = mean(r["action"] != "answer" for r in unanswerable)
    summary["answer_chars_p50"] = statistics.median(r["answer_chars"] for r in answered) if answered else None
    confidences = sorted(r["confidence"] for r in answerable)
    summary["confidence_p50"] = round(statistics.median(confidences), 3) if confidences else None
    for stage in ("retrieve", "draft", "total"):
        times = sorted(t for r in rows if (t := r["timings_ms"].get(stage)) is not None)
        if times:
            summary[f"{stage}_p50_ms"] = round(statistics.median(times), 2)
    return summary


# --- the command ---


def main(
    kind: Literal["squad", "beir"],
    path: Path,
    out_dir: Path,
    limit: int | None,
    console: Console,
    *,
    split: str = "test",
    data_dir: Path | None = None,
    settings: Settings | None = None,
) -> int:
    """Import, ingest, evaluate; write ``results.jsonl`` and ``summary.json`` into ``out_dir`` and
    print the summary. The index lives in ``data_dir`` (default ``KB_DATA_DIR/external/<dataset>``),
    kept between runs. Exit code 0 done, 1 some passages failed to ingest, 2 a bad dataset or setting."""
    try:
        base = settings if settings is not None else Settings()
    except ValueError as exc:  # pydantic's ValidationError: a bad KB_ variable
        return _error(console, f"invalid configuration: {exc}")
    if limit is not None and limit < 1:
        return _error(console, f"--limit must be at least 1, got {limit}")
    try:
        dataset = load_squad(path) if kind == "squad" else load_beir(path, split)
        if not dataset.passages or not dataset.questions:
            raise ConfigError(f"{path}: the dataset has no passages or no questions")
        data_dir = data_dir or base.data_dir / "external" / (slugify(dataset.name) or "dataset")
        corpus_dir = data_dir / "corpus"
        write_corpus(dataset.passages, corpus_dir, category=slugify(dataset.name) or "external")
        questions = dataset.questions[:limit]
        rows, summary = _run_with_progress(dataset, questions, corpus_dir, data_dir, base, console)
    except KBError as exc:
        return _error(console, str(exc))
    summary = {"dataset": dataset.name, "passages": len(dataset.passages), **summary}
    out_dir.mkdir(parents=True, exist_ok=True)
    with (out_dir / "results.jsonl").open("w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
    (out_dir / "summary.json").write_text(json.dumps(summary, ensure_ascii=False, indent=2), encoding="utf-8")
    console.print(summary_table(summary))
    console.print(f"results and summary in {out_dir}; index in {data_dir}", highlight=False)
    return 1 if summary["ingest"]["failed"] else 0


def _error(console: Console, message: str) -> int:
    console.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    return 2


def _run_with_progress(
    dataset: ExternalDataset,
    questions: list[ExternalQuestion],
    corpus_dir: Path,
    data_dir: Path,
    settings: Settings,
    console: Console,
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    from kb_engine.drafting.factory import make_drafter

    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=True) as bar:
        parse_task = bar.add_task("parsing", total=len(dataset.passages))
        embed_task = bar.add_task("embedding + indexing", total=None)
        ask_task = bar.add_task("asking", total=len(questions))

        def on_ingest(stage: str, done: int, total: int) -> None:
            bar.update(parse_task if stage == "parse" else embed_task, completed=done)

        return run_external(
            questions,
            corpus_dir,
            data_dir,
            settings=settings,
            drafter=make_drafter(settings),
            progress=lambda done, total: bar.update(ask_task, completed=done),
            ingest_progress=on_ingest,
        )


def summary_table(summary: dict[str, Any]) -> Table:
    table = Table(
        title=f"kb eval external: {summary.get('dataset', '')}, {summary['questions']} questions",
        header_style="bold",
    )
    table.add_column("metric")
    table.add_column("value", justify="right")
    table.add_column("goal", justify="right")
    for key, value in summary.items():
        if key in ("ingest", "dataset"):
            continue
        goal = GOALS.get(key)
        mark = "" if goal is None or value is None else f"≥ {goal:.2f} {'✓' if value >= goal else '✗'}"
        table.add_row(key, str(value), mark)
    return table
