"""The offline drafter: an answer made only of sentences and steps of the passages, each cited.

Nothing is generated, so nothing can be invented: every factual sentence is a sentence of a
passage, followed by its marker ``[n]``. The choice of sentences is lexical (the query's lemma
terms, see ``kb_engine.text``), which costs microseconds. A "how to" question gets the numbered
steps of the best passage, in their order.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from dataclasses import dataclass, replace
from functools import lru_cache

from kb_engine.drafting.base import text_pieces
from kb_engine.schema import Channel, Draft, Passage
from kb_engine.text import terms

_SENTENCE_END = re.compile(r"(?<=[.!?…])\s+(?=[«\"(A-ZА-ЯЁ0-9—-])")
# A period after an initial («Уильяма Э. Саймона») or an abbreviation that never ends a sentence
# («ул. Ленина», «д. 5», «см. раздел», «т. е.») is not the end of one.
_NOT_AN_END = re.compile(r"(?:^|[\s(«\"])(?:[A-ZА-ЯЁ]|ул|д|им|см|стр|т\.\s?е)\.$")
# «Сколько / когда / какой срок…» is answered by a number: a sentence with one matches one more term.
_ASKS_NUMBER = re.compile(
    r"\b(сколько|скока|когда|как долго|как быстро|во сколько|до какого|срок|стоимост|стоит|цена|сумм|процент"
    r"|комисси|лимит|максимальн|минимальн)",
    re.IGNORECASE,
)
_DIGIT = re.compile(r"\d")
_NUMBER = "#number"
_STEP = re.compile(r"^\d{1,2}[.)]\s")
_BULLET = re.compile(r"^[-•–]\s+")
_HOW = re.compile(r"\b(как|каким образом|что нужно|что делать|оформить|порядок|шаги|инструкц)", re.IGNORECASE)
_UNIT_LIMIT = {"chat": 5, "email": 6, "voice": 3}
_STEP_LIMIT = 8

EMAIL_GREETING = "Здравствуйте!"
EMAIL_CLOSING = "Если останутся вопросы, ответьте на это письмо.\n\nС уважением,\nслужба поддержки"


@dataclass(frozen=True)
class _Unit:
    passage: int  # 1-based
    order: int
    text: str
    kind: str  # "sentence" | "step" | "bullet" | "row"
    terms: frozenset[str]
    heading: frozenset[str] = frozenset()  # terms of the section heading the unit stands under
    line: int = 0  # paragraph (line) of the passage the unit comes from


class ExtractiveDrafter:
    name = "extractive"

    def draft(self, question: str, passages: list[Passage], channel: Channel) -> Draft:
        if not passages:
            return Draft(text="", drafter=self.name)
        chosen = self._choose(question, passages, channel)
        text = _render(chosen, channel)
        cited = tuple(dict.fromkeys(u.passage for u in chosen))
        return Draft(text=text, cited=cited, grounded=bool(chosen), drafter=self.name)

    def stream(self, question: str, passages: list[Passage], channel: Channel) -> Iterator[str | Draft]:
        draft = self.draft(question, passages, channel)
        yield from text_pieces(draft.text)
        yield draft

    def _choose(self, question: str, passages: list[Passage], channel: Channel) -> list[_Unit]:
        query = _terms(question) | ({_NUMBER} if _ASKS_NUMBER.search(question) else frozenset())
        limit = _UNIT_LIMIT[channel]
        units = [u for n, p in enumerate(passages, start=1) for u in _units(n, p.text, _heading_terms(p))]
        if not units:
            return []
        groups = _groups(units)
        bonus = _bonus(passages)
        ranked = sorted(groups, key=lambda g: (-_group_score(g, query, bonus), g[0].passage, g[0].order))
        if _HOW.search(question):
            # "How do I…": the numbered steps of the best passage that has relevant steps, in order,
            # unless some other piece answers the question clearly better.
            first_docs = list(dict.fromkeys(p.doc_id for p in passages))[:3]
            allowed = [n for n, p in enumerate(passages, start=1) if p.doc_id in first_docs]
            best_other = _group_score(ranked[0], query, bonus)
            for n in allowed:
                steps = [u for u in units if u.passage == n and u.kind == "step"]
                if steps and max(_score(u, query) for u in steps) + bonus.get(n, 0) >= 0.75 * best_other:
                    lead = [
                        u
                        for u in units
                        if u.passage == n and u.kind == "sentence" and u.order < steps[0].order
                    ]
                    best_lead = max(lead, key=lambda u: _score(u, query), default=None)
                    intro = [best_lead] if best_lead is not None and _score(best_lead, query) > 0 else []
                    return intro + steps[:_STEP_LIMIT]

        # A single step means nothing without the others: steps come only as a whole (above).
        ranked = [g for g in ranked if g[0].kind != "step"]
        chosen: list[_Unit] = []
        seen_text: set[str] = set()
        top = _group_score(ranked[0], query, bonus) if ranked else 0.0
        for group in ranked:
            score = _group_score(group, query, bonus)
            weak = score <= bonus.get(group[0].passage, 0) or score < 0.5 * top
            if chosen and (len(chosen) >= limit or weak):
                break
            fresh = [u for u in group if u.text not in seen_text]
            if not fresh:
                continue
            chosen.extend(fresh)
            seen_text.update(u.text for u in fresh)
        # Read in the passages' own order: a sentence keeps the context of the one before it.
        return sorted(chosen, key=lambda u: (u.passage, u.order))


_RANK_BONUS = {1: 0.6, 2: 0.3, 3: 0.15}


def _bonus(passages: list[Passage]) -> dict[int, float]:
    """The retriever's order is a prior: the best passages' sentences win ties of wording."""
    return {n: _RANK_BONUS.get(n, 0.0) for n in range(1, len(passages) + 1)}


_POINTER = re.compile(r"^(Подробнее|Полный список|Смотрите|См\.|Читайте|Об этом)", re.IGNORECASE)
_TITLE = re.compile(r"^«[^»]+»\.?$")
_WEAK_TERMS = {"самобранка"}  # names every document: says nothing about which one answers
_BARE = {
    "да",
    "нет",
    "можно",
    "нельзя",
    "конечно",
    "не всегда",
    "зависит",
}  # a bare yes/no answers an FAQ's own question, which may not be the user's
_LIST_KINDS = ("step", "bullet", "row")


def _score(unit: _Unit, query: frozenset[str]) -> float:
    if not unit.terms:
        return 0.0
    common = unit.terms & query
    if common == {_NUMBER}:  # a number alone answers nothing: every row of a price list has one
        common = frozenset()
    overlap = sum(0.3 if t in _WEAK_TERMS else 1.0 for t in common)
    score = overlap / math.sqrt(len(unit.terms))
    if unit.heading:  # under a heading that names the question's subject
        score += 0.5 * len(unit.heading & query) / math.sqrt(len(unit.heading))
    if unit.kind == "sentence" and _POINTER.match(unit.text):
        score *= 0.3  # "see the article X": a pointer, not an answer
    if unit.kind == "sentence" and unit.text.rstrip(".!").lower() in _BARE:
        return 0.0
    if unit.kind in ("sentence", "bullet") and (
        (len(unit.terms) < 3 and not unit.text.endswith(":")) or _TITLE.match(unit.text)
    ):
        score *= 0.3  # a fragment: a caption, an article's title
    return score


def _group_score(group: list[_Unit], query: frozenset[str], bonus: dict[int, float]) -> float:
    if group[0].kind == "row" and len(group) == 2:  # a row under its header: the row must match
        best = _score(group[1], query) + 0.5 * _score(group[0], query)
    elif len(group) > 1 and group[0].text.endswith(":"):  # a whole list: its lead or most of it must match
        items = [_score(u, query) for u in group[1:]]
        best = max(_score(group[0], query), sum(items) / len(items))
    else:
        best = max(_score(u, query) for u in group)
    return best + bonus.get(group[0].passage, 0)


def _groups(units: list[_Unit]) -> list[list[_Unit]]:
    """What can be quoted as one piece: a sentence, a list item, or a lead ending in ':' with its list
    (a lead alone says nothing); a table row travels with the table's header row (a header alone
    says nothing either); an FAQ-style question is not an answer, the sentence after it is, and that
    sentence is found by the question's words."""
    groups: list[list[_Unit]] = []
    header: _Unit | None = None
    i = 0
    while i < len(units):
        unit = units[i]
        if unit.kind == "row":
            if header is None or header.passage != unit.passage or units[i - 1].kind != "row":
                header = unit  # the first row of a table: its header
            else:
                groups.append([header, unit])
            i += 1
            continue
        if unit.kind == "sentence" and unit.text.endswith("?"):
            answer: list[_Unit] = []
            j = i + 1
            while (
                j < len(units)
                and units[j].passage == unit.passage
                and units[j].line == unit.line
                and not units[j].text.endswith("?")
            ):
                if units[j].text.rstrip(".!").lower() not in _BARE:  # "Да." may not answer the user
                    answer.append(units[j])
                j += 1
            if answer:  # the rest of the paragraph answers it; found by the question's words
                groups.append([replace(answer[0], terms=answer[0].terms | unit.terms), *answer[1:3]])
            i = max(j, i + 1)
            continue
        if unit.kind == "sentence" and unit.text.endswith(":"):
            items = []
            j = i + 1
            while j < len(units) and units[j].passage == unit.passage and units[j].kind in _LIST_KINDS:
                items.append(units[j])
                j += 1
            if items:
                groups.append([unit, *items[:6]])
                groups.extend([item] for item in items)  # an item can also answer alone
                i = j
                continue
        groups.append([unit])
        i += 1
    return groups


def _heading_terms(p: Passage) -> frozenset[str]:
    return _terms(" ".join(p.section))


@lru_cache(maxsize=65536)
def _terms(text: str) -> frozenset[str]:
    """The same chunks answer many questions: their sentences are analysed once per process."""
    return frozenset(terms(text))


def _units(passage: int, text: str, heading: frozenset[str] = frozenset()) -> list[_Unit]:
    out: list[_Unit] = []
    for line_no, raw_line in enumerate(text.splitlines()):
        line = raw_line.strip()
        if not line:
            continue
        if _STEP.match(line):
            pieces = [(line, "step")]
        elif _BULLET.match(line):
            pieces = [(line, "bullet")]
        elif " | " in line:
            pieces = [(line, "row")]
        else:
            pieces = [(s, "sentence") for s in sentences(line)]
        for piece, kind in pieces:
            found = _terms(piece) | ({_NUMBER} if _DIGIT.search(piece) else frozenset())
            out.append(_Unit(passage, len(out), piece, kind, found, heading, line_no))
    return out


def sentences(line: str) -> list[str]:
    """The sentences of a line of text, not cut after initials or common abbreviations."""
    out: list[str] = []
    for piece in (p.strip() for p in _SENTENCE_END.split(line)):
        if not piece:
            continue
        if out and _NOT_AN_END.search(out[-1]):
            out[-1] = f"{out[-1]} {piece}"
        else:
            out.append(piece)
    return out


def _render(units: list[_Unit], channel: Channel) -> str:
    if channel == "voice":
        spoken = [_plain(u.text) for u in units]
        return " ".join(s if s.endswith((".", "!", "?")) else s + "." for s in spoken)
    lines: list[str] = []
    for unit in units:
        piece = f"{unit.text} [{unit.passage}]"
        if unit.kind in ("step", "bullet", "row") or not lines or lines[-1].endswith("\n"):
            lines.append(piece)
        else:
            lines[-1] = f"{lines[-1]} {piece}"
        if unit.kind in ("step", "bullet", "row"):
            lines[-1] += "\n"
    body = "\n".join(line.rstrip("\n") for line in lines)
    if channel == "email":
        return f"{EMAIL_GREETING}\n\n{body}\n\n{EMAIL_CLOSING}"
    return body


def _plain(text: str) -> str:
    """For voice: no markdown, no links, no arrows a speech engine would read out."""
    text = _BULLET.sub("", text)
    text = re.sub(r"https?://\S+", "", text)
    text = re.sub(r"[*_`#]", "", text)
    text = text.replace(" → ", ", ").replace("→", ",").replace(" | ", ", ")
    return " ".join(text.split())
