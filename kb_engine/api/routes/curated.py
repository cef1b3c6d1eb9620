"""Admin: curated answers — the content team pins an approved answer to a question and its paraphrases.

`POST /v1/admin/curated` checks the answer's markers against the documents it cites and pins it;
`GET` lists the pinned answers; `DELETE /v1/admin/curated/{id}` unpins one. A question close enough
to a pinned one (KB_CURATED_THRESHOLD) is answered with it, marked ``"drafter": "curated"``.
"""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, HTTPException, Response
from pydantic import BaseModel, ConfigDict, Field

from kb_engine.api.deps import AdminRole, EngineDep, StoreDep
from kb_engine.api.errors import ERRORS
from kb_engine.api.models import ErrorResponse
from kb_engine.curated import CuratedAnswer
from kb_engine.drafting.citations import validate_citations
from kb_engine.engine import _citation

router = APIRouter(tags=["admin"])


class CuratedRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    question: str = Field(min_length=1, max_length=2000, pattern=r"\S")
    paraphrases: list[str] = Field(default_factory=list, max_length=50)
    answer: str = Field(
        min_length=1, max_length=5000, description="The approved text; markers [1], [2]… into `citations`."
    )
    citations: list[str] = Field(min_length=1, max_length=10, description="Document ids, in marker order.")
    audience: Literal["buyer", "seller"] | None = None


@router.post("/v1/admin/curated", response_model=CuratedAnswer, status_code=201, responses=ERRORS)
def pin(body: CuratedRequest, engine: EngineDep, store: StoreDep, _: AdminRole) -> CuratedAnswer:
    text, cited = validate_citations(body.answer, len(body.citations))
    if text != body.answer or not cited:
        raise HTTPException(
            422,
            f"every marker of the answer must point into its {len(body.citations)} citations "
            "([1]…), and it needs at least one",
        )
    first = {p.doc_id: p for p in engine.index.chunks([(d, 0) for d in body.citations])}
    missing = [d for d in body.citations if d not in first]
    if missing:
        raise HTTPException(422, f"no such documents in the index: {', '.join(missing)}")
    item = CuratedAnswer(
        question=body.question.strip(),
        paraphrases=[p.strip() for p in body.paraphrases if p.strip()],
        answer=body.answer,
        citations=[_citation(n, first[d]) for n, d in enumerate(body.citations, start=1)],
        audience=body.audience,
    )
    store.add_curated(item)
    engine.curated.load(store.curated())
    return item


@router.get("/v1/admin/curated", response_model=list[CuratedAnswer], responses=ERRORS)
def pinned(store: StoreDep, _: AdminRole) -> list[CuratedAnswer]:
    return store.curated()


@router.delete(
    "/v1/admin/curated/{curated_id}",
    status_code=204,
    responses={**ERRORS, 404: {"model": ErrorResponse, "description": "No curated answer with that id."}},
)
def unpin(curated_id: str, engine: EngineDep, store: StoreDep, _: AdminRole) -> Response:
    if not store.delete_curated(curated_id):
        raise HTTPException(404, f"no curated answer with id {curated_id!r}")
    engine.curated.load(store.curated())
    return Response(status_code=204)
