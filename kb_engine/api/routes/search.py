"""POST /v1/search: passages for a query, for checking and for tools."""

from __future__ import annotations

from fastapi import APIRouter

from kb_engine.api.deps import AgentRole, EngineDep, SettingsDep
from kb_engine.api.errors import ERRORS
from kb_engine.api.models import SearchHit, SearchRequest, SearchResponse
from kb_engine.api.routes.answer import check_question

router = APIRouter(tags=["search"])


@router.post("/v1/search", response_model=SearchResponse, responses=ERRORS)
def search(body: SearchRequest, engine: EngineDep, settings: SettingsDep, _: AgentRole) -> SearchResponse:
    check_question(body.query, settings.max_question_chars)
    passages = engine.search(
        body.query, body.audience, body.top_k, body.as_of, tuple(body.categories), body.locale
    )
    return SearchResponse(
        query=body.query,
        passages=[
            SearchHit(
                doc_id=p.doc_id,
                source=p.source,
                title=p.title,
                section=list(p.section),
                text=p.text,
                score=p.score,
                url=p.url,
                category=p.category,
                audience=p.audience,
                valid_from=p.valid_from,
                valid_until=p.valid_until,
            )
            for p in passages
        ],
    )
