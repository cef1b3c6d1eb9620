"""POST /v1/answer: the chatbot's endpoint, plain or as server-sent events."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import StreamingResponse

from kb_engine.api.deps import BotRole, EngineDep, SettingsDep, StoreDep
from kb_engine.api.errors import ERRORS, internal_error, request_id_of
from kb_engine.api.models import AnswerRequest
from kb_engine.engine import Rewrite
from kb_engine.schema import Answer

router = APIRouter(tags=["answers"])
log = logging.getLogger(__name__)


def check_question(text: str, limit: int) -> None:
    if not text.strip():
        raise HTTPException(422, "the question is empty")
    if len(text) > limit:
        raise HTTPException(
            422, f"the question is {len(text)} characters long; the limit is {limit} (KB_MAX_QUESTION_CHARS)"
        )


@router.post(
    "/v1/answer",
    response_model=Answer,
    responses={
        **ERRORS,
        200: {
            "content": {"text/event-stream": {}},
            "description": "The answer, or with `stream: true` a stream of "
            "events: `delta` (text), `replace` (the text shown so far is to be replaced, e.g. after an LLM "
            "fallback), `citations`, `done` (the whole answer); or, if it fails midway, `error` (with a "
            "request id).",
        },
    },
)
def answer(
    body: AnswerRequest,
    engine: EngineDep,
    store: StoreDep,
    settings: SettingsDep,
    _: BotRole,
    request: Request,
) -> Answer | StreamingResponse:
    check_question(body.question, settings.max_question_chars)
    events = engine.answer_stream(
        body.question,
        body.audience,
        body.history,
        body.channel,
        body.as_of,
        tuple(body.categories),
        body.locale,
    )
    counter = request.app.state.answers_total

    def finish(result: Answer) -> None:
        store.log_answer(result, body.audience, body.channel)
        counter.labels(result.action).inc()

    if not body.stream:
        final = [e for e in events if isinstance(e, Answer)][-1]
        finish(final)
        return final

    def sse() -> Iterator[str]:
        try:
            for event in events:
                if isinstance(event, Answer):
                    finish(event)
                    citations = [c.model_dump(mode="json") for c in event.citations]
                    yield _event("citations", citations)
                    yield _event("done", event.model_dump(mode="json"))
                elif isinstance(event, Rewrite):
                    yield _event("replace", {"text": event.text})
                else:
                    yield _event("delta", {"text": event})
        except Exception:  # the 200 is sent: the failure becomes the last event, not a cut connection
            log.exception("request %s: the answer stream failed", request_id_of(request))
            yield _event("error", internal_error(request_id_of(request)))

    return StreamingResponse(
        sse(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


def _event(name: str, data: object) -> str:
    return f"event: {name}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"
