"""The shared vocabulary: frozen models that cross package boundaries.

Library types (qdrant points, unstructured elements, llama-index nodes) never leave the adapter
that uses them; everything else speaks in these.
"""

from __future__ import annotations

import hashlib
import uuid
from datetime import date
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Audience = Literal["buyer", "seller", "all"]

# A fixed namespace, so chunk ids are the same on every machine and every run.
_CHUNK_NAMESPACE = uuid.UUID("5b0f3a4e-2f7c-4c1e-9d55-6f2b8f0c9a11")


def content_hash(*parts: str) -> str:
    """sha256 over the parts, separated so that ("ab", "c") and ("a", "bc") differ."""
    h = hashlib.sha256()
    for part in parts:
        h.update(part.encode("utf-8"))
        h.update(b"\x00")
    return h.hexdigest()


class DocMeta(BaseModel):
    """What a document says about itself (front matter, meta tags, sidecar), normalised."""

    model_config = ConfigDict(frozen=True)

    doc_id: str
    source: str = Field(description="Path relative to the ingested root, or export path + line.")
    title: str
    audience: Audience = "all"
    category: str = "general"
    doc_type: str = "article"
    url: str | None = None
    locale: str = "ru"
    updated: date | None = None
    valid_from: date | None = None
    valid_until: date | None = None


class Chunk(BaseModel):
    """One token-bounded piece of a document section: the unit that is embedded and cited."""

    model_config = ConfigDict(frozen=True)

    id: str = Field(description="UUID derived from doc id, section and text: stable across runs.")
    doc: DocMeta
    doc_hash: str = Field(description="Hash of the whole document's content and metadata.")
    doc_chunks: int = Field(description="How many chunks the document has in this version.")
    position: int = Field(description="0-based order of the chunk within its document.")
    section: tuple[str, ...] = Field(description="Heading path, outermost first.")
    text: str = Field(description="The chunk's own text; the chunks of a document partition it.")
    context: str = Field("", description="Tail of the previous chunk of the same section (overlap).")
    tokens: int
    raw_hash: str = Field("", description="Fingerprint of the source bytes and pipeline settings.")

    @staticmethod
    def make_id(doc_id: str, section: tuple[str, ...], text: str, occurrence: int = 0) -> str:
        digest = content_hash(doc_id, " > ".join(section), text, str(occurrence))
        return str(uuid.uuid5(_CHUNK_NAMESPACE, digest))

    @property
    def embed_text(self) -> str:
        """What the models see: title and heading path give a short chunk its meaning."""
        heading = " > ".join(self.section)
        head = f"{self.doc.title}. {heading}".strip(". ") if heading else self.doc.title
        body = f"{self.context} {self.text}".strip() if self.context else self.text
        return f"{head}\n{body}"


class SparseVector(BaseModel):
    model_config = ConfigDict(frozen=True)

    indices: list[int]
    values: list[float]


class IndexedChunk(BaseModel):
    """A chunk with its vectors, ready for the index."""

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    chunk: Chunk
    dense: list[float]
    sparse: SparseVector


class Passage(BaseModel):
    """A retrieved chunk as search returns it."""

    model_config = ConfigDict(frozen=True)

    chunk_id: str
    doc_id: str
    source: str
    title: str
    section: tuple[str, ...]
    text: str
    score: float
    audience: Audience
    category: str
    url: str | None = None
    position: int = 0
    valid_from: date | None = None
    valid_until: date | None = None
    similarity: float | None = Field(None, description="Cosine of the query and the chunk (dense).")
    version: str | None = Field(
        None,
        description="The document version (content hash) the chunk belongs to: while a document is "
        "being replaced both versions are in the index, and one answer never mixes them.",
    )


class SearchFilter(BaseModel):
    """Filters every backend understands. ``audience`` buyer also admits documents for ``all``."""

    model_config = ConfigDict(frozen=True)

    audience: Literal["buyer", "seller"] | None = None
    categories: tuple[str, ...] = ()
    locale: str | None = None
    as_of: date | None = None
    doc_ids: tuple[str, ...] = ()


class DocState(BaseModel):
    """What the index holds of one document: enough to decide whether to re-ingest it."""

    doc_hashes: set[str] = Field(default_factory=set)
    doc_chunks: set[int] = Field(default_factory=set)
    sources: set[str] = Field(default_factory=set, description="Files the points came from.")
    raw_hashes: set[str] = Field(default_factory=set)
    points: int = 0

    def is_current(self, doc_hash: str) -> bool:
        return self.doc_hashes == {doc_hash} and self.doc_chunks == {self.points}

    def is_complete(self) -> bool:
        """One version, all of its chunks: what a finished write leaves."""
        return len(self.doc_hashes) == 1 and self.doc_chunks == {self.points}


Channel = Literal["chat", "email", "voice"]
Action = Literal["answer", "clarify", "handoff"]


class Turn(BaseModel):
    """One message of a conversation, as the bot or the agents' desk sends it."""

    model_config = ConfigDict(frozen=True)

    role: Literal["user", "assistant", "agent", "system"]
    content: str


class Draft(BaseModel):
    """What a drafter wrote: text with ``[n]`` markers into the passages it was given (1-based)."""

    model_config = ConfigDict(frozen=True)

    text: str
    cited: tuple[int, ...] = ()
    grounded: bool = False
    drafter: str = "extractive"
    fallback_reason: str | None = Field(None, description="Why the configured drafter was not used.")


class Citation(BaseModel):
    model_config = ConfigDict(frozen=True)

    n: int
    doc_id: str
    source: str
    title: str
    url: str | None = None
    section: list[str] = Field(default_factory=list)
    quote: str


class Answer(BaseModel):
    """The response of the answer engine: what the API, the CLI and the eval all see."""

    id: str
    question: str
    query: str = Field(description="The standalone query that was searched (after history and normalising).")
    answer: str
    action: Action
    confidence: float
    topic: str | None = None
    citations: list[Citation] = Field(default_factory=list)
    drafter: str = "extractive"
    fallback_reason: str | None = None
    timings_ms: dict[str, float] = Field(default_factory=dict)
