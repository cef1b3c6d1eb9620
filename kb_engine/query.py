"""From what the user typed to what is searched: normalising, history, vagueness.

Cheap rules only (microseconds, no model): users type fast, on the wrong keyboard layout, in
transliteration, with slang; and a follow-up («а если картой платил?») means nothing without the
question before it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from kb_engine.schema import Turn
from kb_engine.text import morph, terms, words

# Slang and frequent misspellings of support questions → the word the articles use.
_TYPOS = {
    "скока": "сколько",
    "скоко": "сколько",
    "сколька": "сколько",
    "скольк": "сколько",
    "щас": "сейчас",
    "чё": "что",
    "че": "что",
    "шо": "что",
    "чо": "что",
    "мона": "можно",
    "низя": "нельзя",
    "незя": "нельзя",
    "пжл": "",
    "пж": "",
    "плз": "",
    "плиз": "",
    "пожалуйста": "",
    "возрат": "возврат",
    "вазврат": "возврат",
    "возвррат": "возврат",
    "денги": "деньги",
    "деньгт": "деньги",
    "доствка": "доставка",
    "достaвка": "доставка",
    "заказа": "заказа",
    "пвз": "пункт выдачи",
    "пункт-выдачи": "пункт выдачи",
    "курер": "курьер",
    "курьерр": "курьер",
    "прамокод": "промокод",
    "промо-код": "промокод",
    "подписька": "подписка",
    "акаунт": "аккаунт",
    "акк": "аккаунт",
    "оплотить": "оплатить",
    "вернуь": "вернуть",
}

_QWERTY = "qwertyuiop[]asdfghjkl;'zxcvbnm,.`"
_JCUKEN = "йцукенгшщзхъфывапролджэячсмитьбюё"
_LAYOUT = str.maketrans(_QWERTY + _QWERTY.upper(), _JCUKEN + _JCUKEN.upper())

_TRANSLIT = [
    ("shch", "щ"),
    ("sch", "щ"),
    ("yo", "ё"),
    ("zh", "ж"),
    ("kh", "х"),
    ("ts", "ц"),
    ("ch", "ч"),
    ("sh", "ш"),
    ("yu", "ю"),
    ("ya", "я"),
    ("ye", "е"),
    ("a", "а"),
    ("b", "б"),
    ("v", "в"),
    ("g", "г"),
    ("d", "д"),
    ("e", "е"),
    ("z", "з"),
    ("i", "и"),
    ("y", "ы"),
    ("k", "к"),
    ("l", "л"),
    ("m", "м"),
    ("n", "н"),
    ("o", "о"),
    ("p", "п"),
    ("r", "р"),
    ("s", "с"),
    ("t", "т"),
    ("u", "у"),
    ("f", "ф"),
    ("h", "х"),
    ("c", "к"),
    ("w", "в"),
    ("x", "кс"),
    ("j", "й"),
    ("'", "ь"),
]
# Latin words the help centre itself uses: never "fix" them.
_LATIN_TERMS = {
    "fbo",
    "fbs",
    "dbs",
    "sms",
    "qr",
    "e-mail",
    "email",
    "id",
    "excel",
    "jpg",
    "png",
    "webp",
    "mp4",
    "visa",
    "mastercard",
    "cvc",
    "cvv",
    "ean",
    "push",
    "pdf",
}

_ANAPHORA = {
    "его",
    "ее",
    "её",
    "их",
    "это",
    "этот",
    "эта",
    "эти",
    "там",
    "туда",
    "тогда",
    "так",
    "такой",
    "он",
    "она",
    "они",
    "оно",
    "него",
    "нее",
    "неё",
    "ним",
    "ней",
}
_FOLLOW_UP = re.compile(
    r"^\s*(а|и|но|ещё|еще|тогда|также|а\s+если|а\s+что|а\s+как|а\s+когда|а\s+где)\b", re.IGNORECASE
)
# Terms that say something is wrong but not what: alone they cannot be searched.
_GENERIC_TERMS = {
    "работать",
    "помочь",
    "помощь",
    "вопрос",
    "проблема",
    "сделать",
    "здравствуйте",
    "привет",
    "добрый",
    "день",
    "вечер",
    "утро",
    "нужно",
    "надо",
    "хотеть",
    "подсказать",
    "сказать",
    "можно",
    "случиться",
    "что",
    "почему",
    "ничто",
    "ошибка",
    "сломаться",
    "получаться",
    "спасибо",
    "ок",
    "хорошо",
    "срочно",
    "оператор",
    "человек",
    "где",
    "как",
    "какой",
}


def normalise_query(text: str) -> str:
    """Whitespace, punctuation runs, slang, wrong keyboard layout and transliteration fixed."""
    text = " ".join(text.split())
    text = re.sub(r"([?!.,])\1+", r"\1", text)
    if re.search(r"[a-zA-Z]", text) and not re.search(r"[а-яА-ЯёЁ]", text):
        text = _fix_latin(text)
    fixed = []
    for token in text.split(" "):
        key = token.lower().strip("?!.,;:«»\"'()")
        if key in _TYPOS:
            replacement = _TYPOS[key]
            if replacement:
                fixed.append(token.lower().replace(key, replacement))
        else:
            fixed.append(token)
    return " ".join(fixed).strip()


def _fix_latin(text: str) -> str:
    """A Latin-only query: typed on the wrong layout (djpdhfn) or transliterated (vozvrat)?"""
    tokens = re.findall(r"[\w'\[\];,.`-]+|\S", text)
    if all(t.lower().strip(".,?!") in _LATIN_TERMS for t in tokens if re.search(r"[a-zA-Z]", t)):
        return text
    candidates = [text.translate(_LAYOUT), _transliterate(text)]
    best, best_known = text, _known_share(text)
    for candidate in candidates:
        share = _known_share(candidate)
        if share > best_known + 0.2 and share >= 0.5:
            best, best_known = candidate, share
    return best


def _transliterate(text: str) -> str:
    out, i, low = [], 0, text.lower()
    while i < len(low):
        for latin, cyr in _TRANSLIT:
            if low.startswith(latin, i):
                out.append(cyr)
                i += len(latin)
                break
        else:
            out.append(low[i])
            i += 1
    return "".join(out)


def _known_share(text: str) -> float:
    found = [w for w in words(text) if not w[0].isdigit()]
    if not found:
        return 0.0
    analyzer = morph()
    known = sum(1 for w in found if ("а" <= w[0] <= "я" and analyzer.word_is_known(w)) or w in _LATIN_TERMS)
    return known / len(found)


def content_terms(text: str) -> list[str]:
    return [t for t in terms(text) if t not in _GENERIC_TERMS]


def is_vague(text: str) -> bool:
    """Too little to search: «не работает», «помогите», «здравствуйте»."""
    return not content_terms(text)


def condense(history: Sequence[Turn], question: str, max_turns: int = 2) -> str:
    """A standalone query from a follow-up and the user's recent questions (rules, no model)."""
    previous = [t.content for t in history if t.role == "user" and t.content.strip()][-max_turns:]
    if not previous:
        return question
    own = content_terms(question)
    lowered = {w for w in words(question)}
    elliptical = bool(_FOLLOW_UP.match(question)) or bool(lowered & _ANAPHORA) or len(own) < 2
    if not elliptical:
        return question
    context = normalise_query(previous[-1])
    return f"{context} {question}"
