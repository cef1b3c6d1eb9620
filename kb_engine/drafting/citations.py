"""Citation markers: keep those that point at a passage that was given, drop the rest."""

from __future__ import annotations

import re

_MARKER = re.compile(r"\s*\[(\d{1,3}(?:\s*,\s*\d{1,3})*)\]")


def validate_citations(text: str, passages: int) -> tuple[str, tuple[int, ...]]:
    """Remove markers to passages that do not exist; return the text and the valid numbers, in order.

    ``[2, 5]`` with 3 passages becomes ``[2]``; ``[7]`` disappears. A text left with no valid marker
    is not grounded: the caller decides what to do with it.
    """
    cited: list[int] = []

    def keep(match: re.Match[str]) -> str:
        numbers = [int(x) for x in re.split(r"\s*,\s*", match.group(1))]
        valid = [n for n in numbers if 1 <= n <= passages]
        for n in valid:
            if n not in cited:
                cited.append(n)
        return "".join(f" [{n}]" for n in valid) if valid else ""

    cleaned = _MARKER.sub(keep, text)
    cleaned = re.sub(r"[ \t]+([.,;:!?])", r"\1", cleaned)
    return cleaned.strip(), tuple(cited)
