"""What the user typed → what is searched: slang, keyboard layout, transliteration, follow-ups."""

from __future__ import annotations

import pytest

from kb_engine.query import condense, is_vague, normalise_query
from kb_engine.schema import Turn


@pytest.mark.parametrize(
    ("typed", "searched"),
    [
        ("скока стоит доставка???", "сколько стоит доставка?"),
        ("djpdhfn ltytu", "возврат денег"),  # typed on the English layout
        ("vozvrat tovara", "возврат товара"),  # transliterated
        ("  где   мой заказ  ", "где мой заказ"),
        ("FBO или FBS", "FBO или FBS"),  # Latin terms of the help centre stay
        ("Возрат денег пжл", "возврат денег"),
    ],
)
def test_normalise(typed: str, searched: str) -> None:
    assert normalise_query(typed) == searched


@pytest.mark.parametrize(
    ("text", "vague"),
    [
        ("не работает", True),
        ("Помогите!", True),
        ("Здравствуйте, у меня вопрос", True),
        ("где мой заказ", False),
        ("возврат", False),
        ("не работает оплата картой", False),
    ],
)
def test_vague(text: str, vague: bool) -> None:
    assert is_vague(text) is vague


def test_follow_up_joins_the_previous_question() -> None:
    history = [
        Turn(role="user", content="Как вернуть деньги за возврат?"),
        Turn(role="assistant", content="Деньги возвращаются тем же способом."),
    ]
    assert (
        condense(history, "а если картой платил?") == "Как вернуть деньги за возврат? а если картой платил?"
    )
    assert condense(history, "Сколько стоит курьерская доставка?") == "Сколько стоит курьерская доставка?"
    assert condense([], "а если картой?") == "а если картой?"
