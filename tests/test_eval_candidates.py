"""Golden-set candidates from feedback: rated-down and rewritten answers, through the real store."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from eval import dataset as ds
from eval.candidates import candidates, write
from kb_engine.schema import Answer, Citation
from kb_engine.store import RecordStore
from tests.conftest import ROOT


def answer(
    answer_id: str, question: str, action: str = "answer", docs: tuple[str, ...] = ("returns",)
) -> Answer:
    return Answer(
        id=answer_id,
        question=question,
        query=question,
        answer="Вернуть товар можно в течение 14 дней. [1]" if action == "answer" else "Передам специалисту.",
        action=action,  # type: ignore[arg-type]
        confidence=0.7,
        topic="returns",
        citations=[
            Citation(n=i, doc_id=d, source=f"{d}.md", title=d, quote="…") for i, d in enumerate(docs, 1)
        ],
    )


def filled_store(path: Path) -> RecordStore:
    store = RecordStore(path)
    store.log_answer(answer("ans_a1", "сколько дней на возврат, мой тел 8 912 345-67-89"), "buyer", "chat")
    store.log_answer(
        answer("ans_a2", "доставка в казахстан есть?", action="handoff", docs=()), "buyer", "chat"
    )
    store.log_answer(answer("ans_a3", "как вернуть куртку"), "buyer", "chat")
    store.log_answer(answer("ans_a4", "Где посмотреть, какая гарантия на мультиварку?"), "buyer", "chat")
    store.add_feedback("ans_a1", "down", "не то", None)
    store.add_feedback("ans_a2", "down", None, None)
    store.add_feedback("ans_a3", "up", None, None)  # liked: not a candidate
    store.add_feedback("ans_a3", "up", None, "Вернуть куртку можно в течение 14 дней в пункте выдачи.")
    store.add_feedback("ans_a4", "down", None, None)  # already in the golden set
    return store


def test_rated_down_and_rewritten_answers_become_reviewable_golden_items(tmp_path: Path) -> None:
    store = filled_store(tmp_path / "kb.sqlite")
    cases = store.feedback_cases()
    store.close()
    assert [c["answer_id"] for c in cases] == ["ans_a1", "ans_a2", "ans_a3", "ans_a4"]
    items = {i.id: i for i in candidates(cases, ds_questions())}
    assert set(items) == {"fb-a1", "fb-a2", "fb-a3"}
    assert "[телефон]" in items["fb-a1"].question and "912" not in items["fb-a1"].question
    assert items["fb-a1"].answerable and [g.doc_id for g in items["fb-a1"].gold] == ["returns"]
    assert not items["fb-a2"].answerable and items["fb-a2"].gold == []
    assert items["fb-a3"].reference.startswith("Вернуть куртку")
    out = write(list(items.values()), tmp_path / "cand.jsonl")
    assert [i.id for i in ds.load(out)] == ["fb-a1", "fb-a2", "fb-a3"]  # valid golden items


def ds_questions() -> set[str]:
    return {i.question for i in ds.load()}


def test_cli_writes_candidates_once(tmp_path: Path) -> None:
    filled_store(tmp_path / "var/kb.sqlite").close()
    env = {**os.environ, "KB_DATA_DIR": str(tmp_path / "var")}
    out = tmp_path / "candidates.jsonl"
    cmd = [sys.executable, "-m", "kb_engine.cli", "eval", "add-from-feedback", "--out", str(out)]
    first = subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert first.returncode == 0, first.stderr
    assert "3 candidates" in first.stdout and len(ds.load(out)) == 3
    again = subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert again.returncode == 2 and "exists" in again.stderr
    empty = subprocess.run(
        cmd,
        env={**env, "KB_DATA_DIR": str(tmp_path / "none")},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert empty.returncode == 2 and "no answer log" in empty.stderr
