from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Protocol

from kb_engine.schema import Channel, Draft, Passage


class Drafter(Protocol):
    """Passages + question + channel → a draft whose markers ``[n]`` point into ``passages`` (1-based).

    ``stream`` yields pieces of text as they are drafted and, last, the final ``Draft`` (whose text is
    the validated whole: a consumer that showed the pieces should replace them with it if they differ).
    """

    name: str

    def draft(self, question: str, passages: list[Passage], channel: Channel) -> Draft: ...

    def stream(self, question: str, passages: list[Passage], channel: Channel) -> Iterator[str | Draft]: ...


def text_pieces(text: str) -> Iterator[str]:
    """A finished text in stream-sized pieces: lines, and sentences after their markers."""
    for piece in re.split(r"(?<=\n)|(?<=\] )", text):
        if piece:
            yield piece


def number_passages(passages: list[Passage]) -> str:
    """Passages as the LLM sees them: numbered, with title and section, as data."""
    blocks = []
    for n, p in enumerate(passages, start=1):
        heading = " > ".join((p.title, *p.section))
        blocks.append(f"[{n}] {heading}\n{p.text}")
    return "\n\n".join(blocks)
