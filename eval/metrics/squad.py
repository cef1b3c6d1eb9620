"""SQuAD-style answer metrics, Russian-aware: exact match, token F1, gold span containment.

Steps of the normalisation, applied to the answer and to every gold span alike:
1. drop our citation markers (``[1]``, ``[2][3]``), which are not part of the answer's words;
2. lower case and ё→е (``kb_engine.text.normalise``): the two spellings of one word meet;
3. every punctuation character (Unicode category P: «», —, …, quotes, commas) becomes a space;
4. whitespace of any kind (non-breaking spaces too) collapses to single spaces.
English articles are not removed: the answers are Russian.

Each metric is the maximum over the gold answers. Exact match and F1 compare the whole answer with a
span, so a full-sentence answer scores low on them even when right; ``span_contained`` asks what
matters for an extractive answer: does it contain a gold span, as whole words.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from collections.abc import Sequence

from kb_engine.text import normalise

_MARKERS = re.compile(r"\s*\[\d+\]")


def normalise_answer(text: str) -> str:
    text = normalise(_MARKERS.sub(" ", text))
    text = "".join(" " if unicodedata.category(c).startswith("P") else c for c in text)
    return " ".join(text.split())


def exact_match(prediction: str, golds: Sequence[str]) -> float:
    said = normalise_answer(prediction)
    return max((float(said == normalise_answer(g)) for g in golds), default=0.0)


def token_f1(prediction: str, golds: Sequence[str]) -> float:
    return max(
        (_f1(normalise_answer(prediction).split(), normalise_answer(g).split()) for g in golds), default=0.0
    )


def _f1(said: list[str], gold: list[str]) -> float:
    if not said or not gold:
        return float(said == gold)
    common = sum((Counter(said) & Counter(gold)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(said), common / len(gold)
    return 2 * precision * recall / (precision + recall)


def span_contained(answer_text: str, golds: Sequence[str]) -> bool:
    """A gold span appears in the answer as whole words (``308`` is not in ``3081``)."""
    said = f" {normalise_answer(answer_text)} "
    return any((span := normalise_answer(g)) and f" {span} " in said for g in golds)
