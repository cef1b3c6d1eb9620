"""The answer engine: the one object the API, the CLI and the eval call.

question ─▶ normalise ─▶ condense history ─▶ hybrid retrieve (filters) ─▶ collapse per document,
expand short hits ─▶ answerability (confidence, clarify) ─▶ draft (LLM │ extractive) ─▶ citations.
"""

from __future__ import annotations

import math
import re
import time
import uuid
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Literal

from kb_engine.config import Settings
from kb_engine.curated import CuratedAnswer, CuratedMatcher
from kb_engine.drafting.base import Drafter, text_pieces
from kb_engine.drafting.extractive import ExtractiveDrafter
from kb_engine.embedding import Embedder
from kb_engine.index import Index
from kb_engine.query import condense, content_terms, is_vague, normalise_query
from kb_engine.schema import Answer, Channel, Citation, Draft, Passage, SearchFilter, Turn
from kb_engine.sparse import SparseEncoder
from kb_engine.text import terms

AudienceArg = Literal["buyer", "seller"] | None

CLARIFY_TEXT = (
    "Уточните, пожалуйста, вопрос: что именно случилось — с заказом, доставкой, оплатой, возвратом "
    "или входом в аккаунт? Если можно, напишите номер заказа и что вы видите на экране."
)
HANDOFF_TEXT = (
    "К сожалению, в справочном центре нет точного ответа на этот вопрос. Я передам его специалисту поддержки."
)
SHORT_HIT_CHARS = 350  # a hit shorter than this is read with its neighbours from the same section


@dataclass(frozen=True)
class Rewrite:
    """In a stream: the text shown so far is not the answer; show this instead."""

    text: str


@dataclass
class Retrieval:
    query: str
    passages: list[Passage]
    confidence: float
    vague: bool
    signals: dict[str, float] = field(default_factory=dict)
    curated: tuple[CuratedAnswer, float] | None = None  # a pinned answer to serve instead of drafting


class AnswerEngine:
    def __init__(
        self,
        settings: Settings,
        index: Index,
        embedder: Embedder,
        sparse: SparseEncoder,
        drafter: Drafter | None = None,
    ) -> None:
        self.settings = settings
        self.index = index
        self.embedder = embedder
        self.sparse = sparse
        self.extractive = ExtractiveDrafter()
        self.drafter: Drafter = drafter or self.extractive
        self.curated = CuratedMatcher(embedder)

    # --- retrieval ---
    def search(
        self,
        query: str,
        audience: AudienceArg = None,
        top_k: int = 5,
        as_of: date | None = None,
        categories: tuple[str, ...] = (),
        locale: str | None = None,
    ) -> list[Passage]:
        """Raw hybrid search (chunks, not collapsed): what `/v1/search` and `kb search` show."""
        flt = SearchFilter(
            audience=audience, as_of=as_of or date.today(), categories=categories, locale=locale
        )
        text = normalise_query(query)
        dense = self.embedder.embed_query(text)
        return self.index.hybrid_query(
            dense.tolist(),
            self.sparse.encode_query(text),
            flt,
            limit=top_k,
            prefetch=max(self.settings.prefetch_k, top_k),
        )

    def retrieve(
        self,
        question: str,
        audience: AudienceArg = None,
        history: Sequence[Turn] = (),
        as_of: date | None = None,
        categories: tuple[str, ...] = (),
        locale: str | None = None,
    ) -> Retrieval:
        query = self._standalone(history, normalise_query(question))
        if is_vague(query):
            return Retrieval(query, [], 0.0, vague=True)
        hits = self.search(
            query,
            audience,
            top_k=self.settings.answer_passages * 5,
            as_of=as_of,
            categories=categories,
            locale=locale,
        )
        passages = self._expand(_collapse(hits, self.settings.answer_passages))
        if passages:  # the confidence reads the best chunk's closeness, wherever RRF put it
            best = max(p.similarity or 0.0 for p in passages)
            passages[0] = passages[0].model_copy(update={"similarity": best})
        signals = answer_signals(query, passages)
        confidence = answerability(signals, self.settings.answerability_weights)
        curated = self._curated(query, audience)
        return Retrieval(query, passages, confidence, vague=False, signals=signals, curated=curated)

    def _curated(self, query: str, audience: AudienceArg) -> tuple[CuratedAnswer, float] | None:
        """The pinned answer closest to the query, if close enough and all it cites is still indexed."""
        if not len(self.curated):
            return None
        found = self.curated.match(query, audience, self.settings.curated_threshold)
        if found is None:
            return None
        docs = {c.doc_id for c in found[0].citations}
        if not all(self.index.count(SearchFilter(doc_ids=(d,), as_of=date.today())) for d in docs):
            return None  # a cited document was deleted or has expired: draft afresh
        return found

    def _standalone(self, history: Sequence[Turn], question: str) -> str:
        """The question on its own: the LLM rewrites it when one is configured, else the rules do."""
        if history:
            llm_condense = getattr(self.drafter, "condense", None)
            if llm_condense is not None:
                rewritten = llm_condense(list(history), question)
                if rewritten:
                    return normalise_query(rewritten)
        return condense(history, question)

    def _expand(self, passages: list[Passage]) -> list[Passage]:
        """A short hit reads badly alone: join it with its neighbours from the same section."""
        taken = {(p.doc_id, p.position) for p in passages}
        short = [p for p in passages if len(p.text) < SHORT_HIT_CHARS]
        wanted = {(p.doc_id, p.position + d) for p in short for d in (-1, 1)} - taken
        found = {(c.doc_id, c.position): c for c in self.index.chunks(sorted(wanted))} if wanted else {}
        out = []
        for p in passages:
            if len(p.text) >= SHORT_HIT_CHARS:
                out.append(p)
                continue
            neighbours = [found.get((p.doc_id, p.position - 1)), p, found.get((p.doc_id, p.position + 1))]
            around = [
                c for c in neighbours if c is not None and c.section == p.section and c.version == p.version
            ]
            if len(around) <= 1:
                out.append(p)
                continue
            text = "\n".join(c.text for c in around)
            out.append(p.model_copy(update={"text": text}))
        return out

    # --- answers ---
    def answer(
        self,
        question: str,
        audience: AudienceArg = None,
        history: Sequence[Turn] = (),
        channel: Channel = "chat",
        as_of: date | None = None,
        categories: tuple[str, ...] = (),
        locale: str | None = None,
    ) -> Answer:
        return _final(self.answer_stream(question, audience, history, channel, as_of, categories, locale))

    def answer_from(
        self,
        found: Retrieval,
        question: str,
        channel: Channel = "chat",
        timings: dict[str, float] | None = None,
        started: float | None = None,
    ) -> Answer:
        """An answer drafted from a retrieval already made (one retrieval, several drafts).
        ``started``/``timings``: when the retrieval began and what it took, so that the answer's
        ``timings_ms.total`` covers it too."""
        return _final(self.respond(found, question, channel, timings, started))

    def answer_stream(
        self,
        question: str,
        audience: AudienceArg = None,
        history: Sequence[Turn] = (),
        channel: Channel = "chat",
        as_of: date | None = None,
        categories: tuple[str, ...] = (),
        locale: str | None = None,
    ) -> Iterator[str | Rewrite | Answer]:
        """Pieces of the answer text as they are drafted (a ``Rewrite`` when what was shown must be
        replaced, e.g. an LLM fell back), then the complete ``Answer``."""
        started = time.perf_counter()
        found = self.retrieve(question, audience, history, as_of, categories, locale)
        yield from self.respond(found, question, channel, {"retrieve": _ms(started)}, started)

    def respond(
        self,
        found: Retrieval,
        question: str,
        channel: Channel = "chat",
        timings: dict[str, float] | None = None,
        started: float | None = None,
    ) -> Iterator[str | Rewrite | Answer]:
        """Decide and draft from a retrieval: pieces of text, maybe a ``Rewrite``, then the ``Answer``."""
        started = started if started is not None else time.perf_counter()
        timings = dict(timings or {})
        base = {
            "id": f"ans_{uuid.uuid4().hex[:16]}",
            "question": question,
            "query": found.query,
            "confidence": round(found.confidence, 3),
        }
        if found.curated is not None:
            item, similarity = found.curated
            yield from text_pieces(item.answer)
            timings["total"] = _ms(started)
            yield Answer(
                **{**base, "confidence": round(similarity, 3)},
                answer=item.answer,
                action="answer",
                topic=_topic(item.citations, found.passages),
                citations=item.citations,
                drafter="curated",
                timings_ms=timings,
            )
            return
        if found.vague or found.confidence < self.settings.answer_threshold or not found.passages:
            text = CLARIFY_TEXT if found.vague else HANDOFF_TEXT
            yield text
            timings["total"] = _ms(started)
            topic = found.passages[0].category if found.passages else None
            yield Answer(
                **base,
                answer=text,
                action="clarify" if found.vague else "handoff",
                topic=topic,
                timings_ms=timings,
            )
            return

        draft_started = time.perf_counter()
        asked = found.query  # normalised (layout, transliteration, slang) and condensed
        shown: list[str] = []
        draft: Draft | None
        if self.drafter.name == self.extractive.name:
            draft = self.drafter.draft(asked, found.passages, channel)  # instant: stream the final text
        else:
            draft = None
            for piece in self.drafter.stream(asked, found.passages, channel):
                if isinstance(piece, Draft):
                    draft = piece
                else:
                    shown.append(piece)
                    yield piece
            assert draft is not None
            if not draft.grounded:
                fallback = self.extractive.draft(found.query, found.passages, channel)
                draft = fallback.model_copy(
                    update={"fallback_reason": "LLM answer had no valid citation; extractive answer"}
                )
        assert draft is not None
        timings["draft"] = _ms(draft_started)
        action: Literal["answer", "handoff"] = "answer" if draft.grounded else "handoff"
        cited: list[int]
        renumbered = draft.grounded and draft.drafter == self.extractive.name
        if not draft.grounded:
            text, cited = HANDOFF_TEXT, []
        elif renumbered:
            text, cited = _renumber(draft.text, draft.cited)
        else:  # an LLM's markers were streamed as they are: keep them
            text, cited = draft.text, list(draft.cited)
        if not shown:
            yield from text_pieces(text)
        elif "".join(shown) != text:
            yield Rewrite(text)  # what was streamed is not the answer (a fallback): replace it
        citations = [_citation(i if renumbered else n, found.passages[n - 1]) for i, n in enumerate(cited, 1)]
        timings["total"] = _ms(started)
        yield Answer(
            **base,
            answer=text,
            action=action,
            topic=_topic(citations, found.passages),
            citations=citations,
            drafter=draft.drafter,
            fallback_reason=draft.fallback_reason,
            timings_ms=timings,
        )


def _final(events: Iterator[str | Rewrite | Answer]) -> Answer:
    final: Answer | None = None
    for event in events:
        if isinstance(event, Answer):
            final = event
    assert final is not None
    return final


def _collapse(hits: list[Passage], docs: int, per_doc: int = 3) -> list[Passage]:
    """Results by document: the ``docs`` best documents, each with its best ``per_doc`` chunks,
    grouped so that a document's chunks stand together, best document first."""
    order: list[str] = []
    kept: dict[str, list[Passage]] = {}
    for hit in hits:
        if hit.doc_id not in kept:
            if len(order) >= docs:
                continue
            order.append(hit.doc_id)
            kept[hit.doc_id] = []
        # While a document is being replaced, its old and new chunks are both searchable: an answer
        # reads the version of the document's best hit only, never half of each.
        same = kept[hit.doc_id]
        if len(same) < per_doc and (not same or hit.version == same[0].version):
            same.append(hit)
    return [p for doc_id in order for p in kept[doc_id]]


def answer_signals(query: str, passages: list[Passage]) -> dict[str, float]:
    """What answerability is read from: how close the best passage is (e5 cosine), how much of the
    question the top passage covers (lemma terms of its title, section and text), and how much dense
    and sparse search agree on it (its RRF score: highest when both rank it first)."""
    if not passages:
        return {"similarity": 0.0, "coverage": 0.0, "agreement": 0.0}
    top = passages[0]
    wanted = set(content_terms(query))
    seen = set(terms(" ".join((top.title, *top.section, top.text))))
    return {
        "similarity": max(p.similarity or 0.0 for p in passages),
        "coverage": len(wanted & seen) / len(wanted) if wanted else 1.0,
        "agreement": top.score,
    }


def answerability(signals: dict[str, float], weights: dict[str, float]) -> float:
    """Confidence in [0, 1] that the passages answer the question: a logistic model over the signals,
    fitted on the golden set's dev split (``kb eval calibrate``). No one signal is enough: e5 finds
    *something* close for any question, and words alone miss paraphrases."""
    if not signals.get("similarity"):
        return 0.0
    z = weights.get("bias", 0.0) + sum(w * signals.get(name, 0.0) for name, w in weights.items())
    return round(1 / (1 + math.exp(-max(min(z, 50.0), -50.0))), 4)


def _renumber(text: str, cited: Sequence[int]) -> tuple[str, list[int]]:
    """Markers as the reader sees them: [1], [2]… in order of first use, not passage numbers."""
    mapping = {n: i for i, n in enumerate(cited, start=1)}
    renumbered = re.sub(r"\[(\d+)\]", lambda m: f"[{mapping.get(int(m.group(1)), m.group(1))}]", text)
    return renumbered, list(cited)


def _citation(n: int, p: Passage) -> Citation:
    quote = p.text if len(p.text) <= 600 else p.text[:600].rsplit(" ", 1)[0] + " …"
    return Citation(
        n=n, doc_id=p.doc_id, source=p.source, title=p.title, url=p.url, section=list(p.section), quote=quote
    )


def _topic(citations: list[Citation], passages: list[Passage]) -> str | None:
    by_doc = {p.doc_id: p.category for p in passages}
    cats = [by_doc[c.doc_id] for c in citations if c.doc_id in by_doc]
    if not cats:
        return passages[0].category if passages else None
    return Counter(cats).most_common(1)[0][0]


def _ms(since: float) -> float:
    return round((time.perf_counter() - since) * 1000, 2)
