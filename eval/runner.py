"""Run the answer engine over a golden set: per-question results and a summary.

For each question: the documents retrieved by hybrid search (distinct, in rank order, top 10) for the
retrieval metrics, and the engine's answer for the answer, citation, refusal and safety metrics.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from datetime import date
from typing import Any

from eval.dataset import GoldenItem
from eval.metrics.citations import citation_support, citation_validity
from eval.metrics.facts import key_fact_recall, reference_overlap
from eval.metrics.judge import LLMJudge
from eval.metrics.retrieval import retrieval_scores
from eval.stats import mean, p95
from kb_engine.engine import AnswerEngine
from kb_engine.tokens import count_tokens

Progress = Callable[[int, int], None]


ANSWERABLE_METRICS = (
    "hit@1",
    "hit@3",
    "hit@5",
    "hit@10",
    "mrr@10",
    "ndcg@10",
    "recall@5",
    "key_fact_recall",
    "correctness",
)


def run(
    engine: AnswerEngine,
    items: list[GoldenItem],
    progress: Progress | None = None,
    judge: LLMJudge | None = None,
) -> list[dict[str, Any]]:
    results = []
    for done, item in enumerate(items, start=1):
        results.append(evaluate(engine, item, judge))
        if progress:
            progress(done, len(items))
    return results


def evaluate(engine: AnswerEngine, item: GoldenItem, judge: LLMJudge | None = None) -> dict[str, Any]:
    as_of = item.as_of or date.today()
    started = time.perf_counter()
    found = engine.retrieve(item.question, item.audience, item.history, as_of)
    retrieve_ms = round((time.perf_counter() - started) * 1000, 2)
    hits = engine.search(found.query, item.audience, top_k=50, as_of=as_of) if not found.vague else []
    ranked = list(dict.fromkeys(h.doc_id for h in hits))[:10]
    answer = engine.answer_from(found, item.question, "chat")
    timings = {"retrieve": retrieve_ms, **answer.timings_ms}
    timings["total"] = round(retrieve_ms + timings.get("draft", 0.0), 2)
    gold = {g.doc_id for g in item.gold}
    retrieved = hits + found.passages
    leaked = [p.doc_id for p in retrieved if item.audience and p.audience not in (item.audience, "all")]
    row: dict[str, Any] = {
        "id": item.id,
        "split": item.split,
        "style": item.style,
        "audience": item.audience,
        "topic": item.topic,
        "answerable": item.answerable,
        "question": item.question,
        "query": answer.query,
        "action": answer.action,
        "confidence": answer.confidence,
        "signals": found.signals,
        "answer": answer.answer,
        "cited": [c.doc_id for c in answer.citations],
        "ranked": ranked,
        "gold": sorted(gold),
        "timings_ms": timings,
        "tokens": count_tokens(answer.answer),
        "leaks": len(leaked),
        "language_ok": _cyrillic_share(answer.answer) > 0.5,
    }
    if item.answerable:
        row.update(
            {
                **retrieval_scores(ranked, gold),
                "key_fact_recall": key_fact_recall(answer.answer, item.key_facts)
                if answer.action == "answer"
                else 0.0,
                "correctness": reference_overlap(answer.answer, item.reference)
                if answer.action == "answer"
                else 0.0,
            }
        )
    row["citation_validity"] = citation_validity(answer, retrieved, item.audience, as_of)
    row["citation_support"] = citation_support(answer)
    if judge is not None:
        row["judge_support"] = judge.support(answer)
    return row


def _cyrillic_share(text: str) -> float:
    letters = [c for c in text if c.isalpha()]
    return sum("а" <= c.lower() <= "я" or c in "ёЁ" for c in letters) / len(letters) if letters else 0.0


def summarise(results: list[dict[str, Any]], threshold: float) -> dict[str, Any]:
    """Means of every metric, refusal rates at ``threshold`` and the curve over thresholds."""
    answerable = [r for r in results if r["answerable"]]
    unanswerable = [r for r in results if not r["answerable"]]
    summary: dict[str, Any] = {
        "questions": len(results),
        "answerable": len(answerable),
        "unanswerable": len(unanswerable),
        "threshold": threshold,
    }
    for metric in ANSWERABLE_METRICS:
        summary[metric] = mean(r.get(metric) for r in answerable)
    summary["citation_validity"] = mean(r["citation_validity"] for r in results)
    summary["citation_support"] = mean(r["citation_support"] for r in results)
    if any("judge_support" in r for r in results):
        summary["judge_support"] = mean(r.get("judge_support") for r in results)
    summary["correct_handoff"] = mean(float(r["action"] != "answer") for r in unanswerable)
    summary["false_handoff"] = mean(float(r["action"] != "answer") for r in answerable)
    summary["audience_leaks"] = sum(r["leaks"] for r in results)
    summary["language_ok"] = mean(float(r["language_ok"]) for r in results)
    for stage in ("retrieve", "draft", "total"):
        times = sorted(r["timings_ms"].get(stage) for r in results if r["timings_ms"].get(stage) is not None)
        if times:
            summary[f"{stage}_p50_ms"] = round(statistics.median(times), 2)
            summary[f"{stage}_p95_ms"] = round(p95(times), 2)
    tokens = [r["tokens"] for r in results if r["action"] == "answer" and "tokens" in r]
    if tokens:
        summary["answer_tokens_mean"] = round(statistics.fmean(tokens), 1)
    summary["refusal_curve"] = refusal_curve(results)
    return summary


def summarise_splits(results: list[dict[str, Any]], threshold: float) -> dict[str, Any]:
    """The summary over every question, with each split's own summary (held-out reported apart)."""
    summary = summarise(results, threshold)
    splits = sorted({r["split"] for r in results})
    if len(splits) > 1:
        summary["split_summaries"] = {
            split: {
                k: v
                for k, v in summarise([r for r in results if r["split"] == split], threshold).items()
                if k != "refusal_curve"
            }
            for split in splits
        }
    return summary


def refusal_curve(results: list[dict[str, Any]]) -> list[dict[str, float]]:
    """For thresholds 0..1: coverage (answered share of answerable questions) and precision (answered
    questions that are answerable), from each question's confidence; vague questions never answer."""
    curve = []
    for step in range(0, 21):
        t = step / 20
        answered = [r for r in results if r["action"] != "clarify" and r["confidence"] >= t]
        answerable = [r for r in results if r["answerable"]]
        good = [r for r in answered if r["answerable"]]
        curve.append(
            {
                "threshold": t,
                "coverage": round(len(good) / len(answerable), 4) if answerable else 0.0,
                "precision": round(len(good) / len(answered), 4) if answered else 1.0,
            }
        )
    return curve
