"""POST /v1/feedback: a rating of an answer, a reason, and the agent's edited reply."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException

from kb_engine.api.deps import BotRole, StoreDep
from kb_engine.api.errors import ERRORS
from kb_engine.api.models import ErrorResponse, FeedbackRequest, FeedbackResponse

router = APIRouter(tags=["feedback"])


@router.post(
    "/v1/feedback",
    response_model=FeedbackResponse,
    status_code=201,
    responses={**ERRORS, 404: {"model": ErrorResponse, "description": "No answer with that id."}},
)
def feedback(body: FeedbackRequest, store: StoreDep, _: BotRole) -> FeedbackResponse:
    if not store.has_answer(body.answer_id):
        raise HTTPException(404, f"no answer with id {body.answer_id!r}: use the id of a /v1/answer response")
    record = store.add_feedback(body.answer_id, body.rating, body.reason, body.edited_reply)
    return FeedbackResponse(id=record, answer_id=body.answer_id)
