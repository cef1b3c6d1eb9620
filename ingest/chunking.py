"""Sections to chunks: heading-aware (a chunk never spans two sections), token-bounded, lossless.

Blocks (paragraphs, list items, table rows) are packed into a chunk up to ``target`` tokens; a
block over ``max_tokens`` is split at sentence ends, and a sentence over it at word boundaries.
The chunks' texts partition the document (the words of all chunks, in order, are the words of
the document); the tail of the previous chunk of the same section rides along as ``context`` for
the models, not as chunk text, so a quote never repeats across chunks.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ingest.parse import ParsedDocument, Section
from kb_engine.schema import Chunk, content_hash
from kb_engine.tokens import count_tokens

_SENTENCE_END = re.compile(r"(?<=[.!?…»)])\s+(?=[«(\"A-ZА-ЯЁ0-9—-])")


@dataclass(frozen=True)
class ChunkingParams:
    target: int = 220
    max_tokens: int = 380
    overlap: int = 40
    tokenizer: str = "cl100k_base"

    def __post_init__(self) -> None:
        if not 0 < self.target <= self.max_tokens:
            raise ValueError("chunking needs 0 < target <= max_tokens")
        if not 0 <= self.overlap < self.target:
            raise ValueError("chunking needs 0 <= overlap < target")


def chunk_document(doc: ParsedDocument, params: ChunkingParams, raw_hash: str = "") -> list[Chunk]:
    pieces: list[tuple[tuple[str, ...], str, str, int]] = []
    for section in doc.sections:
        pieces.extend(_chunk_section(section, params))
    meta_key = doc.meta.model_dump_json()
    seen: dict[str, int] = {}
    ids = []
    for path, text, _, _ in pieces:
        key = f"{path}\x00{text}"
        occurrence = seen[key] = seen.get(key, -1) + 1
        ids.append(Chunk.make_id(doc.meta.doc_id, path, text, occurrence))
    doc_hash = content_hash(meta_key, *ids)
    return [
        Chunk(
            id=chunk_id,
            doc=doc.meta,
            doc_hash=doc_hash,
            doc_chunks=len(pieces),
            position=i,
            section=path,
            text=text,
            context=context,
            tokens=tokens,
            raw_hash=raw_hash,
        )
        for i, (chunk_id, (path, text, context, tokens)) in enumerate(zip(ids, pieces, strict=True))
    ]


def _chunk_section(section: Section, p: ChunkingParams) -> list[tuple[tuple[str, ...], str, str, int]]:
    units: list[tuple[str, int]] = []
    for block in section.blocks:
        units.extend(_bounded_units(block, p))
    chunks: list[list[tuple[str, int]]] = []
    current: list[tuple[str, int]] = []
    size = 0
    for text, tokens in units:
        if current and size + 1 + tokens > p.target:
            chunks.append(current)
            current, size = [], 0
        current.append((text, tokens))
        size += tokens + (1 if len(current) > 1 else 0)
    if current:
        chunks.append(current)
    # A small tail joins the previous chunk when the two still fit under the hard bound.
    if (
        len(chunks) > 1
        and _size(chunks[-1]) < p.target // 4
        and _size(chunks[-2] + chunks[-1]) <= p.max_tokens
    ):
        chunks[-2:] = [chunks[-2] + chunks[-1]]

    out = []
    previous = ""
    for units_of_chunk in chunks:
        text = "\n".join(t for t, _ in units_of_chunk)
        tokens = count_tokens(text, p.tokenizer)
        if tokens > p.max_tokens:  # separator estimate was off: split once more, exactly
            for part in _split_words(text, p.max_tokens, p.tokenizer):
                out.append((section.path, part, _tail(previous, p), count_tokens(part, p.tokenizer)))
                previous = part
            continue
        out.append((section.path, text, _tail(previous, p), tokens))
        previous = text
    return out


def _size(units: list[tuple[str, int]]) -> int:
    return sum(t for _, t in units) + max(len(units) - 1, 0)


def _bounded_units(block: str, p: ChunkingParams) -> list[tuple[str, int]]:
    tokens = count_tokens(block, p.tokenizer)
    if tokens <= p.max_tokens:
        return [(block, tokens)]
    units = []
    for sentence in _SENTENCE_END.split(block):
        n = count_tokens(sentence, p.tokenizer)
        if n <= p.max_tokens:
            units.append((sentence, n))
        else:
            units.extend(
                (part, count_tokens(part, p.tokenizer))
                for part in _split_words(sentence, p.max_tokens, p.tokenizer)
            )
    return _merge_small(units, p)


def _merge_small(units: list[tuple[str, int]], p: ChunkingParams) -> list[tuple[str, int]]:
    """Sentences of one split block go back together up to the target, joined by a space."""
    merged: list[tuple[str, int]] = []
    for text, n in units:
        if merged and merged[-1][1] + 1 + n <= p.target:
            prev_text, _ = merged[-1]
            joined = f"{prev_text} {text}"
            merged[-1] = (joined, count_tokens(joined, p.tokenizer))
        else:
            merged.append((text, n))
    return merged


def _split_words(text: str, limit: int, tokenizer: str) -> list[str]:
    """Greedy split at whitespace so that each part has at most ``limit`` tokens."""
    parts: list[str] = []
    current: list[str] = []
    for word in text.split():
        candidate = " ".join([*current, word])
        if current and count_tokens(candidate, tokenizer) > limit:
            parts.append(" ".join(current))
            current = [word]
        else:
            current.append(word)
        if count_tokens(" ".join(current), tokenizer) > limit:  # one word over the limit
            parts.extend(_split_long_word(" ".join(current), limit, tokenizer))
            current = []
    if current:
        parts.append(" ".join(current))
    return parts


def _split_long_word(word: str, limit: int, tokenizer: str) -> list[str]:
    from kb_engine.tokens import encoding

    enc = encoding(tokenizer)
    ids = enc.encode(word, disallowed_special=())
    out, start = [], 0
    while start < len(ids):
        end = min(start + limit, len(ids))
        # back off until the piece decodes cleanly (no split inside a multi-byte character)
        while end > start + 1 and "\ufffd" in enc.decode(ids[start:end]):
            end -= 1
        out.append(enc.decode(ids[start:end]))
        start = end
    return out


def _tail(previous: str, p: ChunkingParams) -> str:
    if not previous or p.overlap == 0:
        return ""
    words = previous.split()
    tail: list[str] = []
    for word in reversed(words):
        if count_tokens(" ".join([word, *tail]), p.tokenizer) > p.overlap:
            break
        tail.insert(0, word)
    return " ".join(tail)
