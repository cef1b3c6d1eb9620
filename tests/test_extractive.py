"""The extractive drafter on hand-made passages: nothing but quoted text, each piece cited."""

from __future__ import annotations

import re

import pytest

from kb_engine.drafting.extractive import ExtractiveDrafter, sentences
from kb_engine.schema import Draft, Passage


def passage(doc_id: str, text: str, section: tuple[str, ...] = (), title: str = "Статья") -> Passage:
    return Passage(
        chunk_id=doc_id,
        doc_id=doc_id,
        source=f"{doc_id}.md",
        title=title,
        section=section,
        text=text,
        score=1.0,
        audience="buyer",
        category="returns",
    )


RETURNS = passage(
    "returns",
    (
        "Товар надлежащего качества можно вернуть в течение 14 календарных дней со дня получения. "
        "Стоимость доставки при этом не возвращается.\n"
        "Чтобы оформить возврат:\n"
        "1. Откройте Профиль → Покупки → товар → «Вернуть товар».\n"
        "2. Выберите причину возврата.\n"
        "3. Отнесите товар в пункт выдачи в течение 7 дней.\n"
        "Подробнее — в статье «Возврат товара с браком»."
    ),
    section=("Как вернуть",),
)
REFUNDS = passage(
    "refunds",
    (
        "Способ оплаты | Срок зачисления\n"
        "Банковская карта | до 10 рабочих дней\n"
        "СБП | до 3 рабочих дней\n"
        "Кошелёк | до 1 часа\n"
        "Можно ли вернуть деньги наличными? Да. Наличные возвращаются на Кошелёк или по реквизитам счёта."
    ),
    section=("Сроки возврата денег",),
)
PASSAGES = [RETURNS, REFUNDS]
DRAFTER = ExtractiveDrafter()


def pieces(draft: Draft) -> list[tuple[str, int]]:
    return [(text.strip(), int(n)) for text, n in re.findall(r"(.+?) \[(\d+)\]", draft.text)]


@pytest.mark.parametrize(
    "question",
    [
        "Сколько дней на возврат товара?",
        "Как вернуть товар?",
        "Когда деньги придут на карту?",
        "Можно ли вернуть деньги наличными?",
        "Доставку вернут при возврате?",
    ],
)
def test_every_piece_is_a_quote_of_the_passage_it_cites(question: str) -> None:
    draft = DRAFTER.draft(question, PASSAGES, "chat")
    assert draft.grounded and draft.cited
    for text, n in pieces(draft):
        source = PASSAGES[n - 1].text
        assert text.lstrip("- ") in source.replace("\n", " ") or text in source.splitlines(), text
    assert set(draft.cited) == {n for _, n in pieces(draft)}


def test_how_to_gets_the_steps_in_order() -> None:
    draft = DRAFTER.draft("Как оформить возврат товара?", PASSAGES, "chat")
    steps = [line for line in draft.text.splitlines() if re.match(r"\d\. ", line)]
    assert [s[0] for s in steps] == ["1", "2", "3"] and all(s.endswith("[1]") for s in steps)


def test_a_table_row_comes_with_its_header_and_only_matching_rows() -> None:
    draft = DRAFTER.draft("Сколько идут деньги на банковскую карту?", PASSAGES, "chat")
    assert "Способ оплаты | Срок зачисления [2]\nБанковская карта | до 10 рабочих дней [2]" in draft.text
    assert "СБП" not in draft.text


def test_faq_question_is_answered_by_what_follows_not_by_a_bare_yes() -> None:
    draft = DRAFTER.draft("Можно ли вернуть деньги наличными?", PASSAGES, "chat")
    assert "Наличные возвращаются на Кошелёк или по реквизитам счёта. [2]" in draft.text
    assert "Да." not in draft.text and "?" not in draft.text


def test_pointers_to_other_articles_are_not_answers() -> None:
    draft = DRAFTER.draft("Сколько дней на возврат товара надлежащего качества?", PASSAGES, "chat")
    assert "Подробнее" not in draft.text and "14 календарных дней" in draft.text


def test_channels() -> None:
    email = DRAFTER.draft("Как вернуть товар?", PASSAGES, "email").text
    assert email.startswith("Здравствуйте!\n\n") and "С уважением" in email
    voice = DRAFTER.draft("Как вернуть товар?", PASSAGES, "voice").text
    assert not re.search(r"\[\d\]|→|\n|^- ", voice) and "Профиль, Покупки" in voice


def test_no_passages_no_answer() -> None:
    draft = DRAFTER.draft("Как вернуть товар?", [], "chat")
    assert not draft.grounded and draft.text == ""


def test_stream_pieces_add_up_to_the_draft() -> None:
    items = list(DRAFTER.stream("Как вернуть товар?", PASSAGES, "chat"))
    final = items[-1]
    assert isinstance(final, Draft) and "".join(str(i) for i in items[:-1]) == final.text and len(items) > 2


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (
            "Никсон назначил Уильяма Э. Саймона главой. Это было давно.",
            ["Никсон назначил Уильяма Э. Саймона главой.", "Это было давно."],
        ),
        ("Приходите на ул. Ленина, д. 5. Мы ждём.", ["Приходите на ул. Ленина, д. 5.", "Мы ждём."]),
        (
            "Он построен в 1900 г. В 2000 году перестроен.",
            ["Он построен в 1900 г.", "В 2000 году перестроен."],
        ),
        ("Стоит 100 руб. Доставка бесплатна.", ["Стоит 100 руб.", "Доставка бесплатна."]),
    ],
)
def test_sentences_are_not_cut_after_initials_and_abbreviations(line: str, expected: list[str]) -> None:
    assert sentences(line) == expected
