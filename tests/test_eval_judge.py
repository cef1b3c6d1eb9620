"""The optional LLM judge of citation support, against a fake OpenAI-compatible server (real SDK)."""

from __future__ import annotations

import json
from typing import Any

from eval.metrics.judge import LLMJudge, claims_of
from kb_engine.schema import Answer, Citation
from tests.fake_llm import FakeLLM, Reply

ANSWER = Answer(
    id="a1",
    question="сколько дней на возврат",
    query="сколько дней на возврат",
    answer="Вернуть товар можно в течение 14 дней. [1] Доставка возвращается всегда. [2]",
    action="answer",
    confidence=0.9,
    citations=[
        Citation(
            n=1,
            doc_id="returns",
            source="x.md",
            title="Возврат",
            quote="Вернуть товар можно в течение 14 дней.",
        ),
        Citation(
            n=2,
            doc_id="delivery",
            source="y.md",
            title="Доставка",
            quote="Стоимость доставки не возвращается.",
        ),
    ],
)


def by_content(body: dict[str, Any]) -> Reply:
    """A judge that says 'supported' when the claim's text appears in a source — enough to see that the
    request carries both and that the verdicts are read in order."""
    user = body["messages"][-1]["content"]
    sources, claims = user.split("CLAIMS:")
    verdicts = [
        line.split(". ", 1)[1].rsplit(" (cites", 1)[0] in sources for line in claims.strip().splitlines()
    ]
    return Reply(json.dumps({"supported": verdicts}))


def test_claims_carry_their_citation_numbers() -> None:
    assert claims_of(ANSWER) == [
        ("Вернуть товар можно в течение 14 дней.", [1]),
        ("Доставка возвращается всегда.", [2]),
    ]


def test_judge_scores_the_share_of_supported_claims() -> None:
    with FakeLLM(responder=by_content) as llm:
        judge = LLMJudge(llm.url, "judge-model")
        assert judge.support(ANSWER) == 0.5
        body = llm.requests[0]
    assert body["model"] == "judge-model" and body["temperature"] == 0
    assert "Стоимость доставки не возвращается." in body["messages"][-1]["content"]
    assert judge.errors == 0


def test_a_failing_or_unreadable_judge_is_not_a_pass() -> None:
    replies = [
        Reply(status=500, text="boom"),
        Reply("I think both are fine"),
        Reply(json.dumps({"supported": [True]})),  # one verdict for two claims
        Reply(json.dumps({"supported": ["yes", "no"]})),
    ]
    with FakeLLM(*replies) as llm:
        judge = LLMJudge(llm.url, "judge-model", timeout_s=5)
        scores = [judge.support(ANSWER) for _ in range(4)]
    assert scores == [None, None, None, None]
    assert judge.errors == 4


def test_no_claims_no_request() -> None:
    with FakeLLM() as llm:
        judge = LLMJudge(llm.url, "judge-model")
        assert (
            judge.support(ANSWER.model_copy(update={"answer": "Передам специалисту.", "citations": []}))
            is None
        )
        assert llm.requests == []
