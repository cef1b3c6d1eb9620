"""POST /v1/suggest: reply drafts for an agent working a ticket, and the articles worth opening."""

from __future__ import annotations

import time

from fastapi import APIRouter, HTTPException, Request

from kb_engine.api.deps import AgentRole, EngineDep, SettingsDep, StoreDep
from kb_engine.api.errors import ERRORS
from kb_engine.api.models import ArticleLink, ReplyDraft, SuggestRequest, SuggestResponse
from kb_engine.api.routes.answer import check_question

router = APIRouter(tags=["agents"])

AGENT_GREETING = "Здравствуйте!"
AGENT_CLOSING = "Если остались вопросы, напишите — я помогу."


@router.post("/v1/suggest", response_model=SuggestResponse, responses=ERRORS)
def suggest(
    body: SuggestRequest,
    engine: EngineDep,
    store: StoreDep,
    settings: SettingsDep,
    _: AgentRole,
    request: Request,
) -> SuggestResponse:
    customer = [t for t in body.conversation if t.role == "user"]
    if not customer:
        raise HTTPException(422, "the conversation has no customer message (role 'user')")
    question = customer[-1].content
    check_question(question, settings.max_question_chars)
    history = body.conversation[: body.conversation.index(customer[-1])]
    started = time.perf_counter()
    found = engine.retrieve(question, body.audience, history, body.as_of)  # once, for every draft
    retrieved = {"retrieve": round((time.perf_counter() - started) * 1000, 1)}
    short = engine.answer_from(found, question, "chat", retrieved, started)  # logged: retrieval included
    store.log_answer(short, body.audience, "suggest")
    request.app.state.answers_total.labels(short.action).inc()
    articles = list(
        {
            p.doc_id: ArticleLink(doc_id=p.doc_id, title=p.title, url=p.url, source=p.source)
            for p in found.passages
        }.values()
    )[:5]
    drafts: list[ReplyDraft] = []
    if short.action == "answer":
        block = short.answer[:1].isdigit() or short.answer.startswith(("- ", "|"))  # a list or a table
        joint = "\n\n" if block else " "
        text = f"{AGENT_GREETING}{joint}{short.answer}\n\n{AGENT_CLOSING}"
        drafts.append(ReplyDraft(style="short", text=text, citations=short.citations))
        detailed = engine.answer_from(found, question, "email")
        if detailed.action == "answer" and short.answer not in detailed.answer:  # more than a re-wrap
            drafts.append(ReplyDraft(style="detailed", text=detailed.answer, citations=detailed.citations))
    return SuggestResponse(
        answer_id=short.id,
        action=short.action,
        confidence=short.confidence,
        topic=short.topic,
        drafts=drafts[:3],
        articles=articles,
    )
