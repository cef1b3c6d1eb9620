"""The sections of the support stats that need more than counting: content gaps (clustered with the
embedding model), articles (most, never and thumbs-down cited), agents' drafts (accepted, edited,
rejected) and latency. The counting rules are in ``kb_engine.analytics``; each function adds its own.
"""

from __future__ import annotations

import math
import re
from collections import Counter, defaultdict
from collections.abc import Callable, Mapping, Sequence
from difflib import SequenceMatcher

import numpy as np
from pydantic import BaseModel

from kb_engine.embedding.base import Embedder
from kb_engine.errors import KBError
from kb_engine.gaps import cluster_gaps
from kb_engine.store import AnswerRecord, FeedbackRecord

# A greeting says nothing about the question and pulls unrelated questions together.
_GREETING = re.compile(
    r"^(?:\s*(?:здравствуйте|здрасте|добрый\s+(?:день|вечер)|доброе\s+утро|доброго\s+времени\s+суток|"
    r"привет(?:ствую)?|hello|hi)\b[\s,.!]*)+",
    re.IGNORECASE,
)
# Average-linkage cut for gap clusters. kb_engine.gaps measured 0.85-0.87 as right on its test set (0.86 its
# default); on the demo traffic 0.86 still joins «хочу устроиться курьером» with «как работать с
# продавцами из Китая» (0.867), 0.87 keeps them apart and keeps the test set's three topics whole.
GAP_SIMILARITY = 0.87
MOST_CITED = 15
MOST_CITED_DOWN = 10
SUGGEST = "suggest"


def latest_feedback(
    feedback: Sequence[FeedbackRecord], answers: Mapping[str, AnswerRecord]
) -> tuple[dict[str, FeedbackRecord], int, int]:
    """(answer id → its latest up/down feedback, superseded records, records on other answers)."""
    latest: dict[str, FeedbackRecord] = {}
    superseded = outside = 0
    for f in sorted(feedback, key=lambda f: f.id):
        if f.answer_id not in answers:
            outside += 1
        elif f.rating in ("up", "down"):
            superseded += f.answer_id in latest
            latest[f.answer_id] = f
    return latest, superseded, outside


def wilson(successes: int, n: int, z: float = 1.96) -> tuple[float, float] | None:
    """The Wilson score interval of successes / n (95% by default); None when n is 0."""
    if n == 0:
        return None
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def percentile(values: Sequence[float], q: float) -> float | None:
    """Nearest-rank percentile (the definition of eval/stats.py's p95), None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[int(q * (len(ordered) - 1))]


# --- content gaps -----------------------------------------------------------------------------------------


class GapCluster(BaseModel):
    label: str  # its most central question
    count: int  # questions in it, repeats included
    examples: list[str]  # up to 5 distinct questions, most central first
    handoffs: int
    low_confidence: int  # answered, but below the confidence cutoff
    audiences: dict[str, int]
    nearest_topic: str | None  # the commonest topic of its questions (the best passage's category)
    first_seen: float
    last_seen: float
    answer_ids: list[str]


class Gaps(BaseModel):
    questions: int  # gap candidates in the period
    clustered: int  # in a cluster of 2 or more
    confidence_cutoff: float
    similarity_threshold: float
    clusters: list[GapCluster]  # most questions first
    note: str | None = None  # why there are no clusters when there could be


def content_gaps(
    records: Sequence[AnswerRecord],
    embedder: Embedder | None,
    cutoff: float,
    progress: Callable[[int, int], None] | None = None,
    threshold: float = GAP_SIMILARITY,
) -> Gaps:
    """Handed-off questions and answers below ``cutoff`` confidence, grouped by meaning
    (``kb_engine.gaps``: average linkage at ``threshold`` cosine; one-offs are not a cluster).
    A clarifying question is not a gap: the question was too vague to search, not uncovered."""
    candidates = [
        r for r in records if r.action == "handoff" or (r.action == "answer" and r.confidence < cutoff)
    ]
    gaps = Gaps(
        questions=len(candidates),
        clustered=0,
        confidence_cutoff=cutoff,
        similarity_threshold=threshold,
        clusters=[],
    )
    if not candidates:
        return gaps
    if embedder is None:
        gaps.note = "модель эмбеддингов не загружена: вопросы не сгруппированы"
        return gaps
    asked = [without_greeting(r.question) for r in candidates]
    texts = list(dict.fromkeys(asked))
    vectors: dict[str, np.ndarray] = {}
    try:
        for done, text in enumerate(texts, 1):
            vectors[text] = np.asarray(embedder.embed_query(text), dtype=np.float32)
            if progress:
                progress(done, len(texts))
    except KBError as exc:  # an embeddings API that is down: the rest of the report still stands
        gaps.note = f"вопросы не сгруппированы: модель эмбеддингов недоступна ({exc})"
        return gaps
    found = cluster_gaps(
        [(r.id, text) for r, text in zip(candidates, asked, strict=True)],
        np.stack([vectors[text] for text in asked]),
        threshold,
    )
    by_id = {r.id: r for r in candidates}
    for gap in found:
        members = [by_id[i] for i in gap.question_ids]
        topics = Counter(r.topic for r in members if r.topic)
        gaps.clusters.append(
            GapCluster(
                label=gap.label,
                count=gap.count,
                examples=_distinct(gap.examples),
                handoffs=sum(r.action == "handoff" for r in members),
                low_confidence=sum(r.action != "handoff" for r in members),
                audiences=dict(Counter(r.audience or "none" for r in members).most_common()),
                nearest_topic=topics.most_common(1)[0][0] if topics else None,
                first_seen=min(r.created for r in members),
                last_seen=max(r.created for r in members),
                answer_ids=list(gap.question_ids),
            )
        )
    gaps.clustered = sum(c.count for c in gaps.clusters)
    return gaps


def without_greeting(question: str) -> str:
    """The question without the greetings it opens with («Здравствуйте! Добрый день, …»)."""
    return _GREETING.sub("", question).strip() or question.strip()


def _distinct(examples: Sequence[str]) -> list[str]:
    """Examples that differ in more than case and punctuation («…возможна?» and «…возможна» are one)."""
    seen: dict[str, str] = {}
    for text in examples:
        seen.setdefault(" ".join(re.sub(r"[^\w]+", " ", text.lower()).split()), text)
    return list(seen.values())


# --- articles ---------------------------------------------------------------------------------------------


class ArticleStat(BaseModel):
    doc_id: str
    title: str
    url: str | None
    answers: int  # answers of the period citing it
    rated: int  # of those, rated
    down: int  # of those, rated down


class IndexedDoc(BaseModel):
    doc_id: str
    title: str


class Articles(BaseModel):
    answers_citing: int  # answers with at least one citation
    distinct_cited: int
    most_cited: list[ArticleStat]  # most answers first
    most_cited_down: list[ArticleStat]  # most thumbs-down answers first
    indexed: int | None  # documents in the index; None when it could not be read
    never_cited: list[IndexedDoc] | None  # indexed, not cited by any answer of the period; by title
    never_cited_note: str | None = None  # why never_cited is None


def article_stats(
    records: Sequence[AnswerRecord],
    latest: Mapping[str, FeedbackRecord],
    indexed_docs: Mapping[str, str] | None,
    missing_index_reason: str | None,
) -> Articles:
    """Per document: the answers citing it (an answer counts once per document), how many of those
    were rated and rated down. A thumbs-down is on the answer, so a document cited in it is a
    suspect to read, not a culprit."""
    stats: dict[str, ArticleStat] = {}
    citing = 0
    for r in records:
        docs = {d.doc_id: d for d in r.cited}
        citing += bool(docs)
        rating = latest[r.id].rating if r.id in latest else None
        for doc in docs.values():
            s = stats.get(doc.doc_id) or ArticleStat(
                doc_id=doc.doc_id, title="", url=None, answers=0, rated=0, down=0
            )
            s.title, s.url = doc.title, doc.url  # the latest title wins
            s.answers += 1
            s.rated += rating is not None
            s.down += rating == "down"
            stats[doc.doc_id] = s
    ranked = sorted(stats.values(), key=lambda s: (-s.answers, s.doc_id))
    downs = sorted(
        (s for s in stats.values() if s.down), key=lambda s: (-s.down, -s.down / max(s.rated, 1), s.doc_id)
    )
    never: list[IndexedDoc] | None = None
    if indexed_docs is not None:
        never = [
            IndexedDoc(doc_id=d, title=t)
            for d, t in sorted(indexed_docs.items(), key=lambda kv: (kv[1].lower(), kv[0]))
            if d not in stats
        ]
    return Articles(
        answers_citing=citing,
        distinct_cited=len(stats),
        most_cited=ranked[:MOST_CITED],
        most_cited_down=downs[:MOST_CITED_DOWN],
        indexed=len(indexed_docs) if indexed_docs is not None else None,
        never_cited=never,
        never_cited_note=None if indexed_docs is not None else missing_index_reason or "индекс не прочитан",
    )


# --- agents' drafts ---------------------------------------------------------------------------------------


class Suggestions(BaseModel):
    requests: int  # /v1/suggest calls in the period
    with_draft: int  # of those, with a reply draft (action answer)
    rated: int  # drafts whose latest feedback is up or down
    accepted: int  # up, no edited reply: sent as drafted
    edited: int  # an edited reply (whatever the rating): the agent rewrote it
    rejected: int  # down, no edited reply
    mean_edit_size: float | None  # mean of 1 − difflib ratio(draft, edited reply) over edited drafts
    edits_measured: int  # edited drafts whose draft text the log holds
    without_draft_rated: int  # handed-off or clarifying suggestions that were rated anyway


def suggestion_stats(records: Sequence[AnswerRecord], latest: Mapping[str, FeedbackRecord]) -> Suggestions:
    """Agents' drafts (channel ``suggest``). Accepted, edited and rejected split the rated drafts;
    their rates are over rated drafts. Edit size: 0 = sent unchanged, 1 = nothing kept; the draft is
    the answer as logged (without the greeting and closing the API wraps around it), so a small edit
    of a short draft reads a little larger than it was."""
    suggestions = [r for r in records if r.channel == SUGGEST]
    drafts = [r for r in suggestions if r.action == "answer"]
    counts: Counter[str] = Counter()
    sizes: list[float] = []
    for r in drafts:
        f = latest.get(r.id)
        if f is None:
            continue
        if f.edited_reply:
            counts["edited"] += 1
            if r.answer:  # the short draft as logged; the agent saw it between a greeting and a closing
                sent = _without_frame(f.edited_reply)
                sizes.append(1 - SequenceMatcher(None, r.answer, sent, autojunk=False).ratio())
        else:
            counts["accepted" if f.rating == "up" else "rejected"] += 1
    return Suggestions(
        requests=len(suggestions),
        with_draft=len(drafts),
        rated=sum(counts.values()),
        accepted=counts["accepted"],
        edited=counts["edited"],
        rejected=counts["rejected"],
        mean_edit_size=sum(sizes) / len(sizes) if sizes else None,
        edits_measured=len(sizes),
        without_draft_rated=sum(r.id in latest for r in suggestions if r.action != "answer"),
    )


# --- latency ----------------------------------------------------------------------------------------------


class LatencyRow(BaseModel):
    channel: str
    count: int
    p50_ms: float | None
    p95_ms: float | None


class Latency(BaseModel):
    count: int  # answers with a measured total time (agents' drafts aside)
    p50_ms: float | None
    p95_ms: float | None
    by_channel: list[LatencyRow]


def latency_stats(records: Sequence[AnswerRecord]) -> Latency:
    """The engine's total time per answer (retrieval + drafting, as the answer reports it),
    nearest-rank p50 and p95, overall and per channel. For agents' drafts: the retrieval and the
    short draft (``/v1/suggest`` drafts a detailed one after logging)."""
    by_channel: dict[str, list[float]] = defaultdict(list)
    for r in records:
        if r.latency_ms is not None:
            by_channel[r.channel].append(r.latency_ms)
    values = [v for vs in by_channel.values() for v in vs]
    rows = [
        LatencyRow(channel=ch, count=len(vs), p50_ms=percentile(vs, 0.5), p95_ms=percentile(vs, 0.95))
        for ch, vs in sorted(by_channel.items(), key=lambda kv: (-len(kv[1]), kv[0]))
    ]
    return Latency(
        count=len(values),
        p50_ms=percentile(values, 0.5),
        p95_ms=percentile(values, 0.95),
        by_channel=rows,
    )


def _without_frame(reply: str) -> str:
    """An agent's sent reply without the draft's greeting and closing (`/v1/suggest` adds them)."""
    from kb_engine.api.routes.suggest import AGENT_CLOSING, AGENT_GREETING

    text = reply.strip()
    text = text.removeprefix(AGENT_GREETING).strip()
    return text.removesuffix(AGENT_CLOSING).strip()
