"""Personal data out of logs and the answer log: phones, e-mails, cards, passports, СНИЛС, ИНН, addresses.

`redact` replaces each finding by a token (``[телефон]``, ``[email]``, ``[карта]``, ``[паспорт]``,
``[СНИЛС]``, ``[ИНН]``, ``[адрес]``) and keeps the rest of the sentence, so a redacted question still
reads as a question. It is tuned for Russian support text, where numbers that are *not* personal data
are everywhere: order numbers (48213-77), article numbers (арт. 448812), prices (19 990 ₽), dates,
times, «14 дней». So a card must pass the Luhn check and start like a payment card, a passport number
needs the word «паспорт» (or «серия … номер») next to it, an ИНН its label. `redact` is idempotent and
costs 3-30 µs per question (precompiled patterns; text without a long number skips most of them).

`install_log_redaction` makes every log record pass through `redact_log_text`, which also decodes
percent-encoded URLs (an access log line for ``GET /v1/search?q=%2B7%20912…``).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import quote, quote_plus, unquote, unquote_plus

__all__ = ["RedactingFilter", "install_log_redaction", "redact", "redact_log_text", "redact_record"]

PHONE, EMAIL, CARD, PASSPORT, SNILS, INN, ADDRESS = (
    "[телефон]",
    "[email]",
    "[карта]",
    "[паспорт]",
    "[СНИЛС]",
    "[ИНН]",
    "[адрес]",
)
_TOKEN = re.compile(r"(\[(?:телефон|email|карта|паспорт|СНИЛС|ИНН|адрес)\])")

# Every pattern that scans all of the text starts with one character class and looks behind only
# after it: Python's re then skips ahead by that class, about ten times faster than a pattern that
# opens with a lookbehind. ``(?<![\w+].)`` right after the first character checks the one before it.
_SP = r"[ \u00a0]"  # spaces, never a newline: findings stay within a line
_SEP = r"[ \u00a0-]{0,2}"  # between the digit groups of a phone
_END = r"(?!-\d|\w)"  # not followed by more of a longer number or word

# At least 6 digits in one number: every finding but an e-mail and an address has one.
_NUMBER = re.compile(r"[0-9](?:[ \u00a0()\-]{0,2}[0-9]){5}")

_EMAIL = re.compile(r"(?<![\w.+])\w[\w.+-]*@[\w-]+(?:\.[\w-]+)*\.[^\W\d_]{2,}(?!\w)")

# Starting like a payment card (Mir 2200-2204, Mastercard 2/5, Amex/JCB/Diners 3, Visa 4, Maestro 6):
# 13-19 digits in one run, or 4-4-4-4(-3) / 4-6-5 groups with one separator; Luhn decides.
_CARD = re.compile(
    r"[2-6](?<![\w+-].)(?:\d{12,18}"
    r"|\d{3}(?P<s>[ \u00a0-])\d{4}(?P=s)\d{4}(?P=s)\d{1,4}(?:(?P=s)\d{1,3})?"
    r"|\d{3}[ \u00a0-]\d{6}[ \u00a0-]\d{4,5})" + _END
)
_SNILS = re.compile(r"\d(?<![\w-].)\d{2}([ -])\d{3}\1\d{3}[ -]\d{2}" + _END)  # 123-456-789 01
_SNILS_LABELLED = re.compile(
    r"[сС](?<!\w.)(?i:нилс)(?!\w)[\s:№#-]{0,3}\d{3}[ -]?\d{3}[ -]?\d{3}[ -]?\d{2}(?!\d)"
)
_INN = re.compile(r"[иИ](?<!\w.)(?i:нн)(?!\w)(?:[ \u00a0]+[а-яё]+){0,2}[\s:№#-]{0,3}(?:\d{12}|\d{10})(?!\d)")

# Series (4 digits, often written 2+2) and number (6 digits); or a foreign passport, 2 + 7 digits.
_PASSPORT_NUMBER = (
    rf"(?:сери[яиюей]{_SP}*)?\d{{2}}{_SP}?\d{{2}}[ \u00a0,]*(?:(?:номер|№|N){_SP}*)?\d{{6}}(?!\w)"
    rf"|\d{{2}}{_SP}?(?:№{_SP}?)?\d{{7}}(?!\w)"
)
# «паспорт» within 40 characters before or after; the gap holds no digit, '@' or token, so that
# what an earlier pass replaced cannot bring a number into reach on the next one (idempotence).
_PASSPORT = re.compile(
    rf"(?P<pre>(?<!\[)паспорт[^\d\n@\[]{{0,40}}?)(?:{_PASSPORT_NUMBER}|(?:№|номер){_SP}*\d{{6}}(?!\w))"
    rf"|(?<![\w-])(?:{_PASSPORT_NUMBER})(?=[^\d\n@\[]{{0,40}}паспорт)"
    rf"|(?<!\w)сери[яи]{_SP}*\d{{2}}{_SP}?\d{{2}}[ \u00a0,]*(?:номер|№){_SP}*\d{{6}}(?!\w)",
    re.IGNORECASE,
)

# +7 / 8 / 7 and a 3-digit code, (code), or a bare 9xx mobile; then 3-2-2 digits. Or a local 123-45-67.
_CODE = r"\(?[3-9]\d{2}\)?"
_LINE = rf"{_SEP}\d{{3}}{_SEP}\d{{2}}{_SEP}\d{{2}}{_END}"
_PHONE_RU = re.compile(
    r"[+(0-9]"
    rf"(?:(?<=\+)(?<![^\W\d]\+)(?<!\+\+){_SP}?7{_SEP}{_CODE}{_LINE}"
    rf"|(?<=[78])(?<![\w+].)(?<!\d-.){_SEP}{_CODE}{_LINE}"
    rf"|(?<=\()(?<![\w+].)[3-9]\d{{2}}\){_LINE}"
    rf"|(?<=9)(?<![\w+].)(?<!\d-.)\d{{2}}{_LINE}"
    rf"|(?<=\d)(?<![\w+-].)\d{{2}}-\d{{2}}-\d{{2}}{_END})"
)
# Any other country code: 8 to 15 digits in all; not an amount («+12 500 ₽»). «…89+375…» is two numbers.
_PHONE_INTL = re.compile(
    r"\+(?<![^\W\d]\+)(?<!\+\+)[ \u00a0]?(?!7)[1-9](?:[ \u00a0\-().]{0,2}\d){7,14}(?!\d)"
    r"(?![ \u00a0]?(?:₽|руб|р\.|\$|€))"
)
# «заказ 9123456789», «№ 9123456789»: a number labelled as an order, article or parcel is an identifier
_IDENTIFIER_LABEL = re.compile(
    r"(?:№|#|(?<!\w)(?:N|заказ\w*|арт\w*\.?|трек[\w-]*|посылк\w*|отправлени\w*))[ \u00a0:]*$", re.I
)

# Addresses: a street marker and what follows it, or a house with its flat.
_NAME = r"[А-ЯЁ](?:[а-яё]+|[А-ЯЁ]+)(?:-[А-ЯЁа-яё]+)?"  # Ленина, Римского-Корсакова, ЛЕНИНА
_NUM_NAME = r"\d{1,3}(?:-?(?:я|й|е|го|ого|ая|ий|ой))?"  # 8 (Марта), 1-я (Парковая)
_CAP_STREET = rf"(?:{_NUM_NAME}{_SP}+)?{_NAME}(?:{_SP}+{_NAME}){{0,2}}"
_ANY_STREET = rf"(?:{_NUM_NAME}{_SP}+)?(?:{_NAME}|[а-яё]+(?:-[а-яё]+)?)(?:{_SP}+{_NAME}){{0,2}}"
_HOUSE_NO = r"\d{1,4}(?:[а-яА-Я](?![а-яё]))?(?:[ \u00a0]?/[ \u00a0]?\d{1,4})?"
_BUILDING = (
    rf"(?:,?{_SP}*(?:корп(?:ус)?\.?{_SP}*|к\.?{_SP}?|стр(?:оение)?\.?{_SP}*|лит(?:ера)?\.?{_SP}*)"
    r"\d{1,3}[а-я]?)"
)
_FLAT = rf"(?:,?{_SP}*(?:кв(?:артира)?\.?|оф(?:ис)?\.?|пом(?:ещение)?\.?){_SP}*№?{_SP}*\d{{1,5}}[а-я]?(?!\w))"
_ENTRANCE = rf"(?:,?{_SP}*(?:под(?:ъезд)?\.?|эт(?:аж)?\.?){_SP}*\d{{1,3}}(?!\w))"
_HOUSE = rf"(?:,?{_SP}*(?:(?:д|дом)\.?{_SP}*)?{_HOUSE_NO}{_BUILDING}*{_FLAT}?{_ENTRANCE}*(?!\w))"
# street types written after the name, as well as before it
_POSTFIX_ABBREVIATIONS = (r"ул\.", r"пр-к?т\.?", r"просп\.", r"пер\.", r"ш\.", "б-р", r"наб\.")
_POSTFIX_WORDS = (
    "улиц[аеуы]",
    "проспект(?:а|е|у|ом)?",
    "переул(?:ок|ка|ке|ком)",
    "шоссе",
    "бульвар(?:а|е|у|ом)?",
    "набережн(?:ая|ой|ую)",
    "проезд(?:а|е|у)?",
)
_STREET_WORDS = (*_POSTFIX_WORDS, "площад[ьи]", "тупик(?:а|е|у)?", "микрорайон(?:а|е|у)?", "алле[яиюе]")
_ADDRESS_FORMS: list[tuple[str, str, str]] = [
    # (marker, a guard checked right after its first letter, what follows the marker)
    # abbreviations that are never ordinary words: any street name
    *(
        (marker, "", rf"(?:\.{_SP}*|{_SP}+){_ANY_STREET}{_HOUSE}?")
        for marker in ("ул", "пр-к?т", "просп", "мкр", "б-р", "пр-д")
    ),
    # ambiguous abbreviations («и пр.» is «и прочее») and words: a capitalised street name
    *(
        (marker, "", rf"{_SP}*{_CAP_STREET}{_HOUSE}?")
        for marker in (r"пер\.", r"наб\.", r"пл\.", r"ш\.", r"бул\.", r"туп\.", r"пр\.")
    ),
    *((marker, "", rf"{_SP}+{_CAP_STREET}{_HOUSE}?") for marker in _STREET_WORDS),
    # after the street name («Тверская ул., д. 7»): `_redact_addresses` takes the name before it
    *((marker, "", rf"(?!\w){_HOUSE}") for marker in (*_POSTFIX_ABBREVIATIONS, *_POSTFIX_WORDS)),
    # «д. 5, кв. 7», «дом 3 корпус 2»: a house number alone is too ambiguous («д. 5» may be a day)
    ("д(?:ом)?", "", rf"\.?{_SP}*{_HOUSE_NO}(?:{_BUILDING}+{_FLAT}?|{_FLAT}){_ENTRANCE}*"),
    # a flat alone; not «во 2 кв. 2026» (a quarter)
    ("кв(?:артир[аеуы])?", rf"(?<!\d{_SP}.)", rf"\.?{_SP}*№?{_SP}*\d{{1,5}}"),
]


def _address_pattern(forms: list[tuple[str, str, str]]) -> re.Pattern[str]:
    """One class of first letters, then per letter the forms starting with it (see the note above)."""
    by_letter: dict[str, list[str]] = {}
    for marker, guard, rest in forms:
        by_letter.setdefault(marker[0], []).append(f"{guard}(?i:{marker[1:]}){rest}")
    letters = "".join(f"{c}{c.upper()}" for c in by_letter)
    branches = "|".join(f"(?<=[{c}{c.upper()}])(?:{'|'.join(alts)})" for c, alts in by_letter.items())
    return re.compile(rf"[{letters}](?<![\w.-].)(?:{branches}){_END}")


_ADDRESS = _address_pattern(_ADDRESS_FORMS)
_POSTFIX_ABBREVIATION_FORM = re.compile(rf"(?i:{'|'.join(_POSTFIX_ABBREVIATIONS)})(?!\w){_HOUSE}")
_POSTFIX_WORD_FORM = re.compile(rf"(?i:{'|'.join(_POSTFIX_WORDS)})(?!\w){_HOUSE}")
_NAME_BEFORE = re.compile(rf"(?<![\w-]){_CAP_STREET}{_SP}+\Z")
_ANY_NAME_BEFORE = re.compile(rf"(?<![\w-])(?:{_CAP_STREET}|[а-яё]+(?:-[а-яё]+)?){_SP}+\Z")

# a run of non-space characters holding a '%' or '?', matched from its start only (linear time)
_URLISH = re.compile(r"(?<![^\s\"'<>])[^\s\"'<>%?]*[%?][^\s\"'<>]*")
_QUERY_SEPARATOR = re.compile(r"([&;])")


def redact(text: str) -> str:
    """``text`` with personal data replaced by tokens; everything else as it was. Idempotent: a
    replacement can expose more (an address that took the label «заказ» off a card number), so
    what changed is redacted again until nothing does."""
    for _ in range(3):
        clean = _redact_once(text)
        if clean == text:
            break
        text = clean
    return text


def _redact_once(text: str) -> str:
    if "@" in text:
        text = _EMAIL.sub(EMAIL, text)
    if _NUMBER.search(text):
        text = _CARD.sub(_card_or_not, text)
        if "нилс" in text or "НИЛС" in text:
            text = _SNILS_LABELLED.sub(SNILS, text)
        text = _SNILS.sub(SNILS, text)
        if "ИНН" in text or "инн" in text or "Инн" in text:
            text = _INN.sub(INN, text)
        if "аспорт" in text or "АСПОРТ" in text or "ери" in text or "ЕРИ" in text:
            text = _PASSPORT.sub(_passport, text)
        text = _PHONE_INTL.sub(_phone_or_not, text)  # first: «+375 29 123-45-67» ends like a local one
        text = _PHONE_RU.sub(_phone_or_not, text)
    return _redact_addresses(text)


def redact_log_text(text: str) -> str:
    """`redact`, and first the same inside percent-encoded URLs (paths and query strings)."""
    if "%" in text or "?" in text:
        text = _URLISH.sub(_redact_url, text)
    return redact(text)


def _labelled_identifier(match: re.Match[str]) -> bool:
    return _IDENTIFIER_LABEL.search(match.string, max(0, match.start() - 16), match.start()) is not None


def _phone_or_not(match: re.Match[str]) -> str:
    """A phone, unless a bare 10-digit or 7-digit number is labelled as an order or article: with
    +7 / 8 and 11 digits, or a country code, it is a phone whatever the label says."""
    found = match.group()
    if found[0] == "+" or sum(ch.isdigit() for ch in found) == 11:
        return PHONE
    return found if _labelled_identifier(match) else PHONE


def _card_or_not(match: re.Match[str]) -> str:
    found = match.group()
    if _luhn_ok(re.sub(r"\D", "", found)):
        return found if found.isdigit() and _labelled_identifier(match) else CARD
    groups = re.split(r"[ \u00a0-]", found)
    if len(groups) == 5:  # «4111 1111 1111 1111 8 800 …»: a card, then another number
        head = len(found) - len(groups[-1]) - 1
        if _luhn_ok("".join(groups[:4])):
            return CARD + found[head:]
    return found


def _luhn_ok(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def _passport(match: re.Match[str]) -> str:
    before = match.group("pre") or ""
    number_at = match.start() + len(before)
    if _IDENTIFIER_LABEL.search(
        match.string, max(0, number_at - 16), number_at
    ):  # «паспорт…, заказ 4821 377301»
        return match.group()
    return before + PASSPORT


def _redact_addresses(text: str) -> str:
    pieces: list[str] = []
    done = 0
    for match in _ADDRESS.finditer(text):
        start, found = match.start(), match.group()
        # after the street name: «Тверская ул., д. 7», «на Ленинском проспекте 12»
        if _POSTFIX_WORD_FORM.fullmatch(found):
            name = _NAME_BEFORE.search(text, max(done, start - 60), start)
            if name is None:  # «на улице 5 градусов»
                continue
            start = name.start()
        elif _POSTFIX_ABBREVIATION_FORM.fullmatch(found):
            name = _ANY_NAME_BEFORE.search(text, max(done, start - 60), start)
            start = name.start() if name else start
        pieces += (text[done:start], ADDRESS)
        done = match.end()
    if not pieces:
        return text
    pieces.append(text[done:])
    return "".join(pieces)


def _redact_url(match: re.Match[str]) -> str:
    path, mark, query = match.group().partition("?")
    if "%" in path:
        path = _redact_encoded(path, unquote, lambda s: quote(s, safe="/:@"))
    if query:
        pieces = _QUERY_SEPARATOR.split(query)
        for i in range(0, len(pieces), 2):
            key, eq, value = pieces[i].partition("=")
            pieces[i] = _redact_encoded(key, unquote_plus, quote_plus) + eq
            pieces[i] += _redact_encoded(value, unquote_plus, quote_plus)
        query = "".join(pieces)
    return path + mark + query


def _redact_encoded(raw: str, decode: Callable[[str], str], encode: Callable[[str], str]) -> str:
    """``raw`` unchanged unless its decoded text holds personal data; then re-encoded around the
    tokens, which stay literal so the log line says what was removed."""
    text = decode(raw)
    clean = redact(text)
    if clean == text:
        return raw
    return "".join(p if i % 2 else encode(p) for i, p in enumerate(_TOKEN.split(clean)))


# --- logging -------------------------------------------------------------------------------------

_TRACEBACKS = logging.Formatter()
_WITHHELD = "[log message withheld: it could not be checked for personal data]"


def redact_record(record: logging.LogRecord) -> None:
    """Redacts ``record`` in place: message, arguments, exception and stack text.

    The arguments keep their shape where that is enough (uvicorn's access formatter unpacks
    ``record.args``); when personal data spans the format string and its arguments, or hides in a
    non-string argument, the record gets the redacted message and no arguments.
    """
    try:
        _redact_message(record)
        if record.exc_info and not record.exc_text:
            # formatted now, so the handlers' formatters use the redacted text (Formatter.format does)
            record.exc_text = _TRACEBACKS.formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact_log_text(record.exc_text)
        if record.stack_info:
            record.stack_info = redact_log_text(record.stack_info)
    except Exception:  # a log call must never raise, nor let unchecked text through
        record.msg, record.args, record.exc_info, record.exc_text = _WITHHELD, None, None, None


def _redact_message(record: logging.LogRecord) -> None:
    try:
        message = record.getMessage()
    except (TypeError, ValueError, KeyError):  # bad %-arguments: the handler reports them, redacted
        record.msg = redact_log_text(str(record.msg))
        record.args = _redact_args(record.args)
        return
    clean = redact_log_text(message)
    if clean == message:
        return
    if isinstance(record.msg, str) and record.args:
        msg, args = redact_log_text(record.msg), _redact_args(record.args)
        try:
            rebuilt = msg % args
        except (TypeError, ValueError, KeyError):
            rebuilt = None
        if rebuilt is not None and redact_log_text(rebuilt) == rebuilt:
            record.msg, record.args = msg, args
            return
    record.msg, record.args = clean, None


def _redact_args(args: Any) -> Any:
    if isinstance(args, tuple):
        return tuple(_redact_arg(a) for a in args)
    if isinstance(args, Mapping):
        return {k: _redact_arg(v) for k, v in args.items()}
    return args


def _redact_arg(arg: object) -> object:
    if arg is None or isinstance(arg, int | float):  # keeps %d and %f working
        return arg
    text = arg if isinstance(arg, str) else str(arg)
    clean = redact_log_text(text)
    return arg if clean == text else clean


class RedactingFilter(logging.Filter):
    """Redacts each record passing through. Attach it to a handler: a filter on a logger does not
    see the records its children propagate. `install_log_redaction` covers every handler at once."""

    def filter(self, record: logging.LogRecord) -> bool:
        redact_record(record)
        return True


class _RedactingRecordFactory:
    def __init__(self, inner: Callable[..., logging.LogRecord]) -> None:
        self.inner = inner

    def __call__(self, *args: Any, **kwargs: Any) -> logging.LogRecord:
        record = self.inner(*args, **kwargs)
        redact_record(record)
        return record


def install_log_redaction() -> None:
    """Redacts every log record from now on, whatever logger and handler it goes through. Idempotent.

    It wraps the log record factory rather than filtering the root's handlers: uvicorn configures its
    own loggers when the server starts, with handlers of their own and ``propagate=False``, so a filter
    on the root's handlers would never see the access log. Records are made only for enabled levels.
    """
    current = logging.getLogRecordFactory()
    if not isinstance(current, _RedactingRecordFactory):
        logging.setLogRecordFactory(_RedactingRecordFactory(current))
