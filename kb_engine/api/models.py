"""Request and response bodies of the HTTP API (the OpenAPI schema at /docs is built from these)."""

from __future__ import annotations

from datetime import date
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from kb_engine.schema import Answer, Channel, Citation, Turn


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid")


class AnswerRequest(_Request):
    question: str = Field(min_length=1, examples=["Как вернуть товар, если не подошёл размер?"])
    audience: Literal["buyer", "seller"] | None = None
    history: list[Turn] = Field(default_factory=list, max_length=50)
    channel: Channel = "chat"
    as_of: date | None = None
    stream: bool = False
    locale: str | None = Field(None, description="Only documents in this locale (e.g. `ru`).")
    categories: list[str] = Field(default_factory=list, description="Only documents of these categories.")


class SearchRequest(_Request):
    query: str = Field(min_length=1, examples=["срок хранения в пункте выдачи"])
    audience: Literal["buyer", "seller"] | None = None
    top_k: int = Field(5, ge=1, le=50)
    as_of: date | None = None
    locale: str | None = None
    categories: list[str] = Field(default_factory=list)


class SearchHit(BaseModel):
    doc_id: str
    source: str
    title: str
    section: list[str]
    text: str
    score: float
    url: str | None = None
    category: str


class SearchResponse(BaseModel):
    query: str
    passages: list[SearchHit]


class SuggestRequest(_Request):
    conversation: list[Turn] = Field(min_length=1, max_length=100)
    audience: Literal["buyer", "seller"] | None = None
    as_of: date | None = None


class ReplyDraft(BaseModel):
    style: Literal["short", "detailed"]
    text: str
    citations: list[Citation]


class ArticleLink(BaseModel):
    doc_id: str
    title: str
    url: str | None
    source: str


class SuggestResponse(BaseModel):
    answer_id: str
    action: Literal["answer", "clarify", "handoff"]
    confidence: float
    topic: str | None
    drafts: list[ReplyDraft]
    articles: list[ArticleLink]


class FeedbackRequest(_Request):
    answer_id: str = Field(min_length=1)
    rating: Literal["up", "down"]
    reason: str | None = Field(None, max_length=2000)
    edited_reply: str | None = Field(None, max_length=20000)


class FeedbackResponse(BaseModel):
    id: int
    answer_id: str
    status: Literal["recorded"] = "recorded"


class ErrorBody(BaseModel):
    message: str
    type: str
    details: list[dict[str, object]] | None = None


class ErrorResponse(BaseModel):
    error: ErrorBody


__all__ = ["Answer", "AnswerRequest", "ErrorResponse", "FeedbackRequest", "SearchRequest", "SuggestRequest"]
