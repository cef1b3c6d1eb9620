"""The answer engine with the LLM drafter configured: grounding checks and fallbacks end to end.

The LLM is the one external edge, faked at the HTTP layer (tests/fake_llm.py) so the openai SDK runs.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from kb_engine.api import create_app
from kb_engine.drafting.extractive import ExtractiveDrafter
from kb_engine.drafting.llm import LLMDrafter
from kb_engine.engine import AnswerEngine
from kb_engine.runtime import Runtime
from kb_engine.schema import Turn
from tests.fake_llm import FakeLLM, Reply


@pytest.fixture
def llm() -> Iterator[FakeLLM]:
    with FakeLLM() as server:
        yield server


def engine_with(rt: Runtime, llm: FakeLLM, timeout_s: float = 5.0) -> AnswerEngine:
    drafter = LLMDrafter(llm.url, "test-model", timeout_s=timeout_s, fallback=ExtractiveDrafter())
    return AnswerEngine(rt.settings, rt.index, rt.embedder, rt.sparse, drafter=drafter)


QUESTION = "Сколько дней заказ хранится в пункте выдачи?"


def test_llm_answer_with_valid_citations(knowledge_rt: Runtime, llm: FakeLLM) -> None:
    llm.push(Reply(text="Заказ хранится 7 календарных дней [1], продлить можно на 3 дня [2]."))
    result = engine_with(knowledge_rt, llm).answer(QUESTION, "buyer")
    assert result.action == "answer" and result.drafter == "llm" and result.fallback_reason is None
    assert [c.n for c in result.citations] == [1, 2] and "[1]" in result.answer
    sent = json.dumps(llm.requests[-1], ensure_ascii=False)
    assert "7 календарных дней" in sent  # the passages went to the model


def test_llm_answer_without_valid_citation_falls_back_to_extractive(
    knowledge_rt: Runtime, llm: FakeLLM
) -> None:
    llm.push(Reply(text="Заказ хранится 30 дней [9]."))  # invented number, invented marker
    result = engine_with(knowledge_rt, llm).answer(QUESTION, "buyer")
    assert result.drafter == "extractive" and "30 дней" not in result.answer
    assert result.fallback_reason and result.action == "answer" and result.citations


def test_llm_error_and_timeout_fall_back_and_say_so(knowledge_rt: Runtime, llm: FakeLLM) -> None:
    llm.push(Reply(status=500))
    failed = engine_with(knowledge_rt, llm).answer(QUESTION, "buyer")
    assert failed.drafter == "extractive" and "500" in (failed.fallback_reason or "")
    llm.push(Reply(text="поздно [1]", delay_s=3))
    slow = engine_with(knowledge_rt, llm, timeout_s=1).answer(QUESTION, "buyer")
    assert "timed out" in (slow.fallback_reason or "") and "7 календарных дней" in slow.answer


def test_history_is_condensed_by_the_llm(knowledge_rt: Runtime, llm: FakeLLM) -> None:
    llm.push(Reply(text="срок возврата денег на банковскую карту"))
    llm.push(Reply(text="На карту деньги зачисляются до 10 рабочих дней [1]."))
    result = engine_with(knowledge_rt, llm).answer(
        "а если картой?", "buyer", history=[Turn(role="user", content="Когда вернут деньги за возврат?")]
    )
    assert result.query == "срок возврата денег на банковскую карту" and result.action == "answer"


def test_api_stream_with_the_llm(knowledge_rt: Runtime, llm: FakeLLM) -> None:
    settings = knowledge_rt.settings.model_copy(update={"llm_base_url": llm.url, "llm_model": "m"})
    llm.push(Reply(text="Хранение — 7 календарных дней [1].", chunks=4))
    with TestClient(create_app(settings, knowledge_rt)) as client:
        assert client.get("/readyz").json()["drafter"] == "llm"
        raw = client.post("/v1/answer", json={"question": QUESTION, "stream": True}).text
    events = [block.split("\n", 1) for block in raw.strip().split("\n\n")]
    deltas = [json.loads(data[6:])["text"] for name, data in events if name == "event: delta"]
    done = json.loads(events[-1][1][6:])
    assert (
        len(deltas) >= 3
        and done["drafter"] == "llm"
        and done["answer"] == "Хранение — 7 календарных дней [1]."
    )


def test_streamed_llm_text_that_fails_the_check_is_replaced(knowledge_rt: Runtime, llm: FakeLLM) -> None:
    settings = knowledge_rt.settings.model_copy(update={"llm_base_url": llm.url, "llm_model": "m"})
    llm.push(Reply(text="Заказ хранится 30 дней [9].", chunks=3))  # streamed, then found ungrounded
    with TestClient(create_app(settings, knowledge_rt)) as client:
        raw = client.post("/v1/answer", json={"question": QUESTION, "stream": True}).text
    events = [block.split("\n", 1) for block in raw.strip().split("\n\n")]
    names = [name[7:] for name, _ in events]
    assert names.count("replace") == 1 and names.index("replace") > names.index("delta")
    replaced = json.loads(events[names.index("replace")][1][6:])["text"]
    done = json.loads(events[-1][1][6:])
    assert replaced == done["answer"] and "30 дней" not in done["answer"] and done["fallback_reason"]


def test_openai_facade_never_streams_unchecked_llm_text(knowledge_rt: Runtime, llm: FakeLLM) -> None:
    settings = knowledge_rt.settings.model_copy(update={"llm_base_url": llm.url, "llm_model": "m"})
    llm.push(Reply(text="Заказ хранится 30 дней [9].", chunks=3))
    with TestClient(create_app(settings, knowledge_rt)) as client:
        raw = client.post(
            "/v1/chat/completions",
            json={"model": "kb", "stream": True, "messages": [{"role": "user", "content": QUESTION}]},
        ).text
    chunks = [json.loads(line[6:]) for line in raw.splitlines() if line.startswith("data: {")]
    content = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks)
    assert "30 дней" not in content and "7 календарных дней" in content
    assert chunks[-1]["kb"]["drafter"] == "extractive" and chunks[-1]["kb"]["fallback_reason"]
