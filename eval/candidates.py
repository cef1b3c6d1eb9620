"""Golden-set candidates from feedback: answers rated down or rewritten by an agent become questions
for the content team to review (`kb eval add-from-feedback`).

A candidate is a valid golden item (so a reviewed file can be moved into ``datasets/golden/`` as it
is), with what is known filled in and what needs a person left for them: the gold documents are the
ones the answer cited (right or wrong: check them), the reference is the agent's rewrite when there
is one, the key facts are empty (write 1–3), and an answer that was handed off is marked unanswerable
(flip it if the help centre should answer it). The questions are stored redacted.
"""

from __future__ import annotations

import json
from datetime import date, datetime
from pathlib import Path
from typing import Any

from eval.dataset import Gold, GoldenItem, load
from kb_engine.errors import ConfigError

CANDIDATES = Path(__file__).resolve().parent / "datasets" / "candidates"


def candidates(cases: list[dict[str, Any]], known: set[str] | None = None) -> list[GoldenItem]:
    """One golden item per case whose question is not already in the set (``known``: questions)."""
    seen = {q.strip().lower() for q in known or set()}
    items = []
    for case in cases:
        question = case["question"].strip()
        if not question or question.lower() in seen:
            continue
        seen.add(question.lower())
        answerable = case["action"] == "answer"
        items.append(
            GoldenItem(
                id=f"fb-{case['answer_id'].removeprefix('ans_')[:12]}",
                question=question,
                audience=case["audience"] if case["audience"] in ("buyer", "seller") else None,
                as_of=datetime.fromtimestamp(case["created"]).date(),
                style="feedback",
                answerable=answerable,
                gold=[Gold(doc_id=d) for d in case["cited"]] if answerable else [],
                key_facts=[],
                reference=case.get("edited_reply") or "",
                topic=case.get("topic"),
                split="dev",
            )
        )
    return items


def write(items: list[GoldenItem], out: Path) -> Path:
    if out.exists():
        raise ConfigError(f"{out} exists: review and move it first, or pass another --out")
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", encoding="utf-8") as fh:
        for item in items:
            fh.write(json.dumps(item.model_dump(mode="json"), ensure_ascii=False) + "\n")
    return out


def default_out() -> Path:
    return CANDIDATES / f"feedback-{date.today():%Y%m%d}.jsonl"


def golden_questions() -> set[str]:
    return {i.question for i in load()}
