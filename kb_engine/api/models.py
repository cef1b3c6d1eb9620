"""Request and response bodies of the HTTP API (the OpenAPI schema at /docs is built from these)."""

from __future__ import annotations

import re
from datetime import date
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, Strict

from kb_engine.schema import Answer, Channel, Citation, Turn


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _not_blank(text: str) -> str:
    if not text.strip():
        raise ValueError("empty: only whitespace")
    return text


# The pattern is for the schema's readers (and fuzzers); the validator says it in words.
# Its maxLength is KB_MAX_QUESTION_CHARS, added to the schema by create_app.
Question = Annotated[
    str, Field(min_length=1, json_schema_extra={"pattern": r"\S"}), AfterValidator(_not_blank)
]


def _iso_day(value: Any) -> Any:
    if isinstance(value, str) and not re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
        raise ValueError("a date is written YYYY-MM-DD")
    if not isinstance(value, str | date):
        raise ValueError("a date is a string YYYY-MM-DD")
    return value


def _whole_number(value: Any) -> Any:
    if isinstance(value, float) and value.is_integer():  # 5.0 is an integer to JSON Schema
        return int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError("a whole number")
    return value


# What the schema says and no more: pydantic alone would also take 0/1 for a flag, "5" for a number
# and a Unix time for a date.
Flag = Annotated[bool, Strict()]
Count = Annotated[int, BeforeValidator(_whole_number)]
Day = Annotated[date, BeforeValidator(_iso_day)]


class AnswerRequest(_Request):
    question: Question = Field(examples=["Как вернуть товар, если не подошёл размер?"])
    audience: Literal["buyer", "seller"] | None = None
    history: list[Turn] = Field(default_factory=list, max_length=50)
    channel: Channel = "chat"
    as_of: Day | None = None
    stream: Flag = False
    locale: str | None = Field(None, description="Only documents in this locale (e.g. `ru`).")
    categories: list[str] = Field(default_factory=list, description="Only documents of these categories.")


class SearchRequest(_Request):
    query: Question = Field(examples=["срок хранения в пункте выдачи"])
    audience: Literal["buyer", "seller"] | None = None
    top_k: Count = Field(5, ge=1, le=50)
    as_of: Day | None = None
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
    audience: Literal["buyer", "seller", "all"]
    valid_from: date | None = None
    valid_until: date | None = None


class SearchResponse(BaseModel):
    query: str
    passages: list[SearchHit]


class SuggestRequest(_Request):
    conversation: list[Turn] = Field(min_length=1, max_length=100)
    audience: Literal["buyer", "seller"] | None = None
    as_of: Day | None = None


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
    request_id: str | None = Field(None, description="For a 500: quote it when reporting the failure.")


class ErrorResponse(BaseModel):
    error: ErrorBody


__all__ = ["Answer", "AnswerRequest", "ErrorResponse", "FeedbackRequest", "SearchRequest", "SuggestRequest"]
