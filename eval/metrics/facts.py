"""Key-fact recall: does the answer contain each fact a correct answer must contain? And how much
of the reference answer it says (``reference_overlap``).

Russian-aware matching, in order: (1) the fact's normalised text (case, ё/е, spaces, non-breaking
spaces and thin spaces in numbers like «3 000») is a substring of the answer's; (2) otherwise every
search term of the fact (lemmas and word families, see ``kb_engine.text``) is among the answer's
terms, so «вернуть в течение 14 дней» matches «возврат возможен в течение 14 дней».
"""

from __future__ import annotations

import re

from kb_engine.text import normalise, terms


def _flat(text: str) -> str:
    text = normalise(text).replace("\u00a0", " ").replace("\u202f", " ").replace("\u2009", " ")
    text = re.sub(r"(?<=\d) (?=\d{3}\b)", "", text)  # 3 000 → 3000
    text = re.sub(r"[«»\"“”]", "", text)
    return " ".join(text.split())


def contains_fact(answer: str, fact: str) -> bool:
    if _flat(fact) in _flat(answer):
        return True
    wanted = set(terms(_flat(fact)))
    return bool(wanted) and wanted <= set(terms(_flat(answer)))


def key_fact_recall(answer: str, facts: list[str]) -> float | None:
    if not facts:
        return None
    return sum(contains_fact(answer, f) for f in facts) / len(facts)


def reference_overlap(answer: str, reference: str) -> float | None:
    """Correctness against the reference answer, offline: F1 of the two texts' content terms
    (lemmas, so word forms meet). Lexical, so it rewards the reference's wording; an LLM judge
    reads meaning, this reads overlap."""
    ref = set(terms(_flat(reference)))
    if not ref:
        return None
    got = set(terms(_flat(answer)))
    common = len(ref & got)
    if not common:
        return 0.0
    precision, recall = common / len(got), common / len(ref)
    return round(2 * precision * recall / (precision + recall), 4)
