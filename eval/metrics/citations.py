"""Citation validity and support.

Validity: every cited document was among the retrieved passages, is allowed for the asker's audience
(`all` or the same audience), and is valid on the question's date. Support (offline, lexical): for each
answer sentence with a marker [n], the share of its search terms found in the quote of citation n; a
sentence is supported when the share is at least 0.8. Both are None for answers without citations.
"""

from __future__ import annotations

import re
from datetime import date

from kb_engine.schema import Answer, Passage
from kb_engine.text import terms

SUPPORT_MIN_SHARE = 0.8
_CITED = re.compile(r"(.+?)((?:\s*\[\d+\])+)")


def citation_validity(
    answer: Answer, retrieved: list[Passage], audience: str | None, as_of: date
) -> float | None:
    if not answer.citations:
        return None
    known = {p.doc_id: p for p in retrieved}
    valid = 0
    for c in answer.citations:
        p = known.get(c.doc_id)
        ok = p is not None and (audience is None or p.audience in (audience, "all"))
        if ok and p is not None:
            ok = (p.valid_from is None or p.valid_from <= as_of) and (
                p.valid_until is None or p.valid_until >= as_of
            )
        valid += ok
    return valid / len(answer.citations)


def citation_support(answer: Answer) -> float | None:
    quotes = {c.n: set(terms(c.quote)) for c in answer.citations}
    if not quotes:
        return None
    sentences = [
        (text, [int(n) for n in re.findall(r"\d+", marks)]) for text, marks in _CITED.findall(answer.answer)
    ]
    scored = []
    for text, numbers in sentences:
        wanted = set(terms(text))
        if not wanted:
            continue
        share = max(len(wanted & quotes.get(n, set())) / len(wanted) for n in numbers)
        scored.append(share >= SUPPORT_MIN_SHARE)
    return sum(scored) / len(scored) if scored else None
