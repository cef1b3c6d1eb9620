"""Russian text to search terms: normalisation, lemmas (pymorphy3) and word families.

Lemmas join the inflected forms of a word (верну, вернёте → вернуть). Support questions also
swap parts of speech for the same idea («как вернуть» / «возврат товара»), which lemmas alone
do not join, so a small table of word families maps the lemmas of one idea to one term.
The table covers the vocabulary of marketplace support; extend it when the eval shows a miss.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from functools import lru_cache
from typing import Any

_WORD_RE = re.compile(r"[0-9]+(?:[.,][0-9]+)?|[^\W\d_]+(?:-[^\W\d_]+)*", re.UNICODE)

# Parts of speech that carry no topic: prepositions, conjunctions, particles, interjections,
# pronouns. Decided by pymorphy3's tag, so no hand-kept stop list to grow stale.
_FUNCTION_POS = frozenset({"PREP", "CONJ", "PRCL", "INTJ", "NPRO"})
_STOP_LEMMAS = frozenset({"быть", "это", "весь", "свой", "который", "такой", "мочь", "тот", "этот"})

# One idea, several lemmas. The first word names the family.
_FAMILIES: tuple[tuple[str, ...], ...] = (
    (
        "возврат",
        "вернуть",
        "возвратить",
        "возвращать",
        "возвращение",
        "возвратный",
        "возвращаться",
        "вернуться",
    ),
    ("доставка", "доставить", "доставлять", "доставщик"),
    (
        "оплата",
        "оплатить",
        "оплачивать",
        "платить",
        "заплатить",
        "платёж",
        "платеж",
        "платный",
        "плата",
        "уплатить",
        "уплата",
    ),
    ("отмена", "отменить", "отменять", "отменённый", "отменить"),
    ("замена", "заменить", "заменять", "поменять", "менять", "обмен", "обменять", "обменивать"),
    ("изменение", "изменить", "изменять"),
    ("получение", "получить", "получать", "получатель"),
    ("выплата", "выплатить", "выплачивать"),
    ("списание", "списать", "списывать", "списаться", "списываться"),
    ("заказ", "заказать", "заказывать", "заказчик"),
    ("покупка", "купить", "покупать", "покупатель", "выкуп", "выкупить"),
    ("продажа", "продать", "продавать", "продавец", "реализация"),
    ("хранение", "хранить", "храниться"),
    ("продление", "продлить", "продлевать"),
    ("регистрация", "зарегистрироваться", "зарегистрировать", "регистрироваться"),
    ("удаление", "удалить", "удалять"),
    ("блокировка", "заблокировать", "блокировать", "заблокированный", "разблокировать"),
    ("ремонт", "починить", "ремонтировать", "отремонтировать"),
    ("гарантия", "гарантийный"),
    ("брак", "бракованный", "дефект", "неисправный", "неисправность", "сломанный", "сломаться"),
    ("повреждение", "повредить", "повреждённый", "повреждать", "разбитый", "разбить", "помятый"),
    ("штраф", "оштрафовать", "штрафной"),
    ("комиссия", "комиссионный"),
    ("поставка", "поставить", "поставлять", "поставщик"),
    ("приёмка", "приёмка", "принять", "принимать", "приём"),
    ("упаковка", "упаковать", "упаковывать"),
    ("маркировка", "маркировать", "промаркировать"),
    ("модерация", "модератор", "модерировать"),
    ("отклонение", "отклонить", "отклонять", "отклонённый"),
    ("подписка", "подписаться", "подписываться", "отписаться"),
    ("отключение", "отключить", "отключать"),
    ("активация", "активировать"),
    ("проверка", "проверить", "проверять"),
    ("отказ", "отказаться", "отказываться"),
    ("примерка", "примерить", "примерять", "примерочная"),
    ("задержка", "задержать", "задерживать", "задерживаться", "опоздание", "опаздывать", "опоздать"),
    ("ожидание", "ждать", "ожидать", "подождать"),
    ("сборка", "собрать", "собирать", "собираться"),
    ("начисление", "начислить", "начислять", "начисляться"),
    ("сгорание", "сгореть", "сгорать"),
    ("пополнение", "пополнить", "пополнять"),
    ("вывод", "вывести", "выводить"),
    ("скидка", "уценка"),
    ("стоимость", "стоить", "цена", "расценка", "тариф"),
    ("рассрочка", "частями"),
    ("отзыв", "отозвать", "отзывать"),
    ("обращение", "обратиться", "обращаться"),
    ("курьер", "курьерский"),
    ("вход", "войти", "входить", "авторизация", "авторизоваться", "залогиниться"),
    ("смена", "сменить"),
    ("мошенник", "мошенничество", "мошеннический"),
    ("налог", "налоговый"),
    ("реклама", "рекламный", "продвижение", "продвигать"),
    ("фото", "фотография", "снимок", "фотка"),
)


def _family_table() -> dict[str, str]:
    table: dict[str, str] = {}
    for family in _FAMILIES:
        head = family[0].replace("ё", "е")
        for word in family:
            table[word.replace("ё", "е")] = head
    return table


_FAMILY = _family_table()


def normalise(text: str) -> str:
    """Lower case and ё→е: the forms users type and the forms articles use must meet."""
    return text.lower().replace("ё", "е")


def words(text: str) -> Iterator[str]:
    """Words and numbers of a text, normalised, in order."""
    for match in _WORD_RE.finditer(normalise(text)):
        yield match.group(0).replace(",", ".")


@lru_cache(maxsize=1)
def morph() -> Any:
    import pymorphy3

    return pymorphy3.MorphAnalyzer(lang="ru")


@lru_cache(maxsize=200_000)
def term_of(word: str) -> str | None:
    """The search term of one normalised word, or None for a word that carries no topic."""
    if word[0].isdigit():
        return word
    if not ("а" <= word[0] <= "я"):
        return word if len(word) > 1 else None  # Latin (FBO, QR, e-mail): kept as is
    parse = morph().parse(word)[0]
    if parse.tag.POS in _FUNCTION_POS or "Apro" in parse.tag:
        return None
    lemma = parse.normal_form.replace("ё", "е")
    if lemma in _STOP_LEMMAS or len(lemma) < 2:
        return None
    return _FAMILY.get(lemma, lemma)


def terms(text: str) -> list[str]:
    """Search terms of a text, in order, repeats kept (for term frequencies)."""
    out: list[str] = []
    for word in words(text):
        term = term_of(word)
        if term is not None:
            out.append(term)
    return out
