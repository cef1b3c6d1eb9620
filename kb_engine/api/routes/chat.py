"""POST /v1/chat/completions: an OpenAI-compatible facade over the answer engine.

Any chatbot built on an OpenAI SDK plugs in by changing its base URL. The last user message is
the question, the earlier ones its history; citations come as markdown footnotes in the message
and, structured, in the extra fields ``citations`` and ``kb``.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from typing import Any, Literal

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from kb_engine.api.deps import BotRole, EngineDep, SettingsDep, StoreDep
from kb_engine.api.errors import ERRORS, internal_error, request_id_of
from kb_engine.api.models import Flag
from kb_engine.api.routes.answer import check_question
from kb_engine.drafting.base import text_pieces
from kb_engine.schema import Answer, Channel, Turn
from kb_engine.tokens import count_tokens

router = APIRouter(tags=["openai-compatible"])
log = logging.getLogger(__name__)
MODEL = "kb-engine"


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="allow")

    role: Literal["system", "user", "assistant", "developer", "tool"]
    content: str | list[dict[str, Any]] | None = None

    @property
    def text(self) -> str:
        if isinstance(self.content, str):
            return self.content
        if isinstance(self.content, list):
            return " ".join(str(p.get("text", "")) for p in self.content if p.get("type") == "text")
        return ""


class ChatRequest(BaseModel):
    model_config = ConfigDict(extra="allow")  # temperature, max_tokens… are accepted and ignored

    model: str = MODEL
    messages: list[ChatMessage] = Field(min_length=1)
    stream: Flag = False
    audience: Literal["buyer", "seller"] | None = None
    channel: Channel = "chat"


@router.post(
    "/v1/chat/completions",
    responses={
        **ERRORS,
        200: {
            "content": {"application/json": {}, "text/event-stream": {}},
            "description": "A `chat.completion`, or with `stream: true` `chat.completion.chunk` events "
            "ending in `data: [DONE]`; citations in the extra fields `citations` and `kb`.",
        },
    },
)
def chat_completions(
    body: ChatRequest, engine: EngineDep, store: StoreDep, settings: SettingsDep, _: BotRole, request: Request
) -> Any:
    users = [m for m in body.messages if m.role == "user" and m.text.strip()]
    if not users:
        raise HTTPException(422, "no user message: the last message with role 'user' is the question")
    question = users[-1].text
    check_question(question, settings.max_question_chars)
    history = [
        Turn(role="user" if m.role == "user" else "assistant", content=m.text)
        for m in body.messages[: body.messages.index(users[-1])]
        if m.role in ("user", "assistant")
    ]
    events = engine.answer_stream(question, body.audience, history, body.channel)
    created = int(time.time())

    def finish(answer: Answer) -> dict[str, Any]:
        store.log_answer(answer, body.audience, f"openai:{body.channel}")
        request.app.state.answers_total.labels(answer.action).inc()
        return {
            "citations": [c.model_dump(mode="json") for c in answer.citations],
            "kb": {
                "answer_id": answer.id,
                "action": answer.action,
                "confidence": answer.confidence,
                "topic": answer.topic,
                "drafter": answer.drafter,
                "fallback_reason": answer.fallback_reason,
            },
        }

    if not body.stream:
        final = [e for e in events if isinstance(e, Answer)][-1]
        content = final.answer + footnotes(final)
        tokens_in, tokens_out = count_tokens(question), count_tokens(content)
        return {
            "id": f"chatcmpl-{final.id}",
            "object": "chat.completion",
            "created": created,
            "model": MODEL,
            "choices": [
                {"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}
            ],
            "usage": {
                "prompt_tokens": tokens_in,
                "completion_tokens": tokens_out,
                "total_tokens": tokens_in + tokens_out,
            },
            **finish(final),
        }

    def chunks() -> Iterator[str]:
        stream_id = f"chatcmpl-{int(time.time() * 1000)}"

        def chunk(delta: dict[str, Any], finish_reason: str | None = None, **extra: Any) -> str:
            payload = {
                "id": stream_id,
                "object": "chat.completion.chunk",
                "created": created,
                "model": MODEL,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}],
                **extra,
            }
            return f"data: {json.dumps(payload, ensure_ascii=False)}\n\n"

        yield chunk({"role": "assistant", "content": ""})
        # An OpenAI stream cannot take text back: with an LLM drafter (which may fall back after
        # streaming), the answer is sent once it is checked; the extractive one streams as drafted.
        live = engine.drafter.name == engine.extractive.name
        try:
            source = events if live else iter([e for e in events if isinstance(e, Answer)])
            for event in source:
                if isinstance(event, Answer):
                    if not live:
                        for piece in text_pieces(event.answer):
                            yield chunk({"content": piece})
                    yield chunk({"content": footnotes(event)}, None)
                    yield chunk({}, "stop", **finish(event))
                elif isinstance(event, str):
                    yield chunk({"content": event})
        except Exception:  # as OpenAI does: an error object, which its SDKs raise as an APIError
            log.exception("request %s: the chat stream failed", request_id_of(request))
            yield f"data: {json.dumps({'error': internal_error(request_id_of(request))})}\n\n"
            return
        yield "data: [DONE]\n\n"

    return StreamingResponse(chunks(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"})


def footnotes(answer: Answer) -> str:
    if not answer.citations:
        return ""
    lines = [f"[{c.n}] {c.title}" + (f" — {c.url}" if c.url else "") for c in answer.citations]
    return "\n\n" + "\n".join(lines)
