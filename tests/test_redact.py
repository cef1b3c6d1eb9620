"""Personal data is redacted from stored questions and from every log line, uvicorn's access log included."""

from __future__ import annotations

import io
import logging
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st
from uvicorn.logging import AccessFormatter

from kb_engine.redact import RedactingFilter, install_log_redaction, redact, redact_log_text
from kb_engine.schema import Answer
from kb_engine.store import RecordStore

ROOT = Path(__file__).resolve().parent.parent

FOUND = [
    # phones
    ("Мой телефон +7 (912) 345-67-89, перезвоните", "Мой телефон [телефон], перезвоните"),
    ("звоните 8 912 345 67 89 после обеда", "звоните [телефон] после обеда"),
    ("номер 89123456789 или +79123456789", "номер [телефон] или [телефон]"),
    ("горячая линия 8-800-555-35-35", "горячая линия [телефон]"),
    ("т. 8(912)345-67-89", "т. [телефон]"),
    ("мобильный 9123456789", "мобильный [телефон]"),
    ("городской (495) 123-45-67 или 123-45-67", "городской [телефон] или [телефон]"),
    ("из Минска +375 29 123-45-67", "из Минска [телефон]"),
    ("UK +44 20 7946 0958", "UK [телефон]"),
    ("для заказа 89123456789 перезвоните", "для заказа [телефон] перезвоните"),
    # e-mails
    ("пишите на ivan.petrov+shop@mail.ru", "пишите на [email]"),
    ("почта иван@почта.рф.", "почта [email]."),
    # cards (Luhn-valid, payment-card prefixes)
    ("карта 4111 1111 1111 1111", "карта [карта]"),
    ("Мир 2200 7001 2345 6781, заказ 48213-77", "Мир [карта], заказ 48213-77"),
    ("номер карты 2200700123456781", "номер карты [карта]"),
    ("картой 5536-9137-7675-5304 в 14:30", "картой [карта] в 14:30"),
    ("Amex 3782 822463 10005", "Amex [карта]"),
    ("4111 1111 1111 1111 8 800 555 35 35", "[карта] [телефон]"),
    # passports
    ("паспорт 4510 123456 выдан", "паспорт [паспорт] выдан"),
    ("Паспорт: 45 10 123456", "Паспорт: [паспорт]"),
    ("серия 45 10 номер 123456", "[паспорт]"),
    ("серия 4510 № 123456", "[паспорт]"),
    ("мои паспортные данные: 4510123456", "мои паспортные данные: [паспорт]"),
    ("4510 123456 — это мой паспорт", "[паспорт] — это мой паспорт"),
    ("загранпаспорт 75 1234567", "загранпаспорт [паспорт]"),
    # СНИЛС, ИНН
    ("СНИЛС 123-456-789 01", "[СНИЛС]"),
    ("просто 123-456-789 01", "просто [СНИЛС]"),
    ("снилс: 12345678901", "[СНИЛС]"),
    ("мой ИНН 771234567890", "мой [ИНН]"),
    ("ИНН продавца: 7707083893", "[ИНН]"),
    # addresses
    ("доставьте на ул. Ленина, д. 5, кв. 12, пожалуйста", "доставьте на [адрес], пожалуйста"),
    ("живу: улица Гагарина 12", "живу: [адрес]"),
    ("пр-т Мира 1, проспект Вернадского 86к2 кв 5", "[адрес], [адрес]"),
    ("г. Москва, ул. Маршала Жукова, д. 12, корп. 2, кв. 45", "г. Москва, [адрес]"),
    ("ул ленина 5 кв 7 звонить", "[адрес] звонить"),
    ("ул.Ленина,д.5,кв.12", "[адрес]"),
    ("ул. 8 Марта 5", "[адрес]"),
    ("живу на ул. Ленина", "живу на [адрес]"),
    ("д. 5 кв. 7 и дом 12 корпус 2", "[адрес] и [адрес]"),
    ("квартира 5, этаж 3", "[адрес], этаж 3"),
    ("Тверская ул., д. 7", "[адрес]"),
    ("1-я Тверская-Ямская ул., 5", "[адрес]"),
    ("на Ленинском проспекте 12 не могу найти пункт", "на [адрес] не могу найти пункт"),
    ("Варшавское ш., д. 5, кв. 1", "[адрес]"),
    ("мкр. Солнечный, д. 5", "[адрес]"),
]

KEPT = [
    "заказ 48213-77 и 7730-115",
    "арт. 448812",
    "цена 19 990 ₽, было 1 299 990 ₽, бонус +12 500 ₽",
    "доставка 2026-11-05 в 14:30, 05.11.2026, с 9:00 до 21:00",
    "вернём деньги за 14 дней",
    "до 5 рабочих дней, 3-5 дней, 10-15 дней",
    "карта 4111 1111 1111 1112 не проходит",  # fails Luhn
    "трек 80081234567890 и заказ 1234567890123",  # 14 and 13 digits, not card prefixes / Luhn
    "заказ 4111111111111111",  # a Luhn-valid order number
    "заказ 9123456789, № 9123456789, арт. 9123456789",
    "ID заказа 87654321-0012",
    "во 2 кв. 2026 года, 50 кв. м",
    "улыбка; улица была мокрой; на улице 5 градусов",
    "и пр. товары, т. д.",
    "паспорт гражданина РФ, а также заказ 4821 377301",
    "ИНН продавца указан в карточке товара",
    "версия 2.31.4, ГОСТ 12345-78, IP 192.168.100.200:51234",
    "скидка 15%, размер 42-44",
    "Как вернуть товар, если не подошёл размер?",
]


@pytest.mark.parametrize(("text", "expected"), FOUND)
def test_personal_data_is_replaced_by_a_token(text: str, expected: str) -> None:
    assert redact(text) == expected


@pytest.mark.parametrize("text", KEPT)
def test_numbers_that_are_not_personal_data_stay(text: str) -> None:
    assert redact(text) == text


@pytest.mark.parametrize("text", [t for t, _ in FOUND] + KEPT)
def test_redaction_is_idempotent(text: str) -> None:
    once = redact(text)
    assert redact(once) == once


_FRAGMENTS = [
    *(t for t, _ in FOUND),
    *KEPT,
    *["паспорт", "серия", "номер", "СНИЛС", "ИНН", "ул.", "улица", "д.", "дом", "кв.", "корп."],
    *["заказ", "№", "Ленина", "Мира", "5", "12", "4510", "123456"],
    "%2B7",
    "?q=",
    "&",
    "[телефон]",
    "[адрес]",
]


@given(st.lists(st.tuples(st.sampled_from(_FRAGMENTS), st.sampled_from(["", " ", ", ", "-", "\n"]))))
def test_redaction_is_idempotent_on_any_mix(parts: list[tuple[str, str]]) -> None:
    text = "".join(a + b for a, b in parts)
    once, logged = redact(text), redact_log_text(text)
    assert redact(once) == once and redact_log_text(logged) == logged


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("GET /v1/search?q=%2B7%20912%20345-67-89&top_k=5", "GET /v1/search?q=[телефон]&top_k=5"),
        ("GET /v1/search?q=8+912+345+67+89", "GET /v1/search?q=[телефон]"),
        ("GET /v1/search?email=ivan%40mail.ru", "GET /v1/search?email=[email]"),
        ("GET /v1/users/%2B79123456789/orders", "GET /v1/users/[телефон]/orders"),
        (
            "GET /v1/search?q=%D0%BC%D0%BE%D0%B9+%2B79123456789",
            "GET /v1/search?q=%D0%BC%D0%BE%D0%B9+[телефон]",
        ),
        ("GET /v1/search?q=%D0%B7%D0%B0%D0%BA%D0%B0%D0%B7+48213-77", None),  # «заказ 48213-77»: as it was
        ("скидка 50%? да", None),
    ],
)
def test_url_encoded_personal_data_in_log_text(line: str, expected: str | None) -> None:
    assert redact_log_text(line) == (expected or line)


# --- logging ---


@pytest.fixture
def record_factory() -> Iterator[None]:
    """`install_log_redaction` is process-wide: put the record factory back afterwards."""
    factory = logging.getLogRecordFactory()
    yield
    logging.setLogRecordFactory(factory)


def _logger(name: str, handler: logging.Handler) -> logging.Logger:
    logger = logging.getLogger(name)
    logger.handlers = [handler]
    logger.propagate = False
    logger.setLevel(logging.INFO)
    return logger


def test_filter_redacts_message_and_arguments() -> None:
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.addFilter(RedactingFilter())
    log = _logger("test_redact.filter", handler)
    log.info("question from %s: %s (%d chars)", "ivan@mail.ru", "мой номер 8 912 345 67 89", 27)
    log.info("card %s", 4111111111111111)  # personal data in a non-string argument
    log.info({"phone": "+79123456789"})  # a message that is not a string
    lines = out.getvalue().splitlines()
    assert lines == [
        "question from [email]: мой номер [телефон] (27 chars)",
        "card [карта]",
        "{'phone': '[телефон]'}",
    ]


def test_filter_redacts_the_traceback() -> None:
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.addFilter(RedactingFilter())
    log = _logger("test_redact.traceback", handler)
    try:
        raise ValueError("no such customer: ivan@mail.ru, +7 912 345-67-89")
    except ValueError:
        log.exception("lookup failed")
    text = out.getvalue()
    assert "ValueError: no such customer: [email], [телефон]" in text
    assert "ivan@mail.ru" not in text and "345-67-89" not in text


def test_uvicorn_access_record_keeps_its_shape() -> None:
    """uvicorn's AccessFormatter unpacks ``record.args``: they stay a 5-tuple, the path redacted."""
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(
        AccessFormatter('%(client_addr)s - "%(request_line)s" %(status_code)s', use_colors=False)
    )
    handler.addFilter(RedactingFilter())
    log = _logger("test_redact.access", handler)
    path = "/v1/search?q=%D0%BC%D0%BE%D0%B9%20%2B7%20%28912%29%20345-67-89&top_k=5"
    log.info('%s - "%s %s HTTP/%s" %d', "127.0.0.1:51234", "GET", path, "1.1", 200)
    assert out.getvalue() == (
        '127.0.0.1:51234 - "GET /v1/search?q=%D0%BC%D0%BE%D0%B9+[телефон]&top_k=5 HTTP/1.1" 200 OK\n'
    )


def test_install_covers_every_logger_and_handler(record_factory: None) -> None:
    install_log_redaction()
    install_log_redaction()  # idempotent: wrapped once
    out = io.StringIO()
    log = _logger(
        "test_redact.later", logging.StreamHandler(out)
    )  # like uvicorn's: no filter, no propagation
    log.warning("callback to %s", "+7 912 345-67-89")
    assert out.getvalue() == "callback to [телефон]\n"


def test_cli_main_installs_redaction(record_factory: None, monkeypatch: pytest.MonkeyPatch) -> None:
    from kb_engine import cli

    logging.setLogRecordFactory(logging.LogRecord)
    monkeypatch.setattr(logging, "basicConfig", lambda **_: None)  # keep the test run's handlers
    monkeypatch.setattr(sys, "argv", ["kb", "--help"])
    with pytest.raises(SystemExit):
        cli.main()
    record = logging.getLogger("test_redact.cli").makeRecord(
        "test_redact.cli", logging.INFO, __file__, 1, "from %s", ("ivan@mail.ru",), None
    )
    assert record.getMessage() == "from [email]"


_SERVER = """
import sys
import uvicorn
from kb_engine.redact import install_log_redaction

async def app(scope, receive, send):
    await send({"type": "http.response.start", "status": 404, "headers": []})
    await send({"type": "http.response.body", "body": b""})

install_log_redaction()
uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="info", lifespan="off")
"""


def test_real_uvicorn_access_log_is_redacted(tmp_path: Path) -> None:
    """uvicorn configures its loggers itself when it starts (propagate=False): still redacted."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log_file = tmp_path / "uvicorn.log"
    with log_file.open("w") as sink:
        server = subprocess.Popen(
            [sys.executable, "-c", _SERVER, str(port)], cwd=ROOT, stdout=sink, stderr=subprocess.STDOUT
        )
        try:
            deadline = time.monotonic() + 30
            while "Uvicorn running" not in log_file.read_text() and time.monotonic() < deadline:
                assert server.poll() is None, log_file.read_text()
                time.sleep(0.05)
            query = {"q": "мой телефон +7 (912) 345-67-89, почта ivan@mail.ru"}
            assert httpx.get(f"http://127.0.0.1:{port}/v1/search", params=query).status_code == 404
            while "/v1/search" not in log_file.read_text() and time.monotonic() < deadline:
                time.sleep(0.05)
        finally:
            server.terminate()
            server.wait(timeout=10)
    access = next(line for line in log_file.read_text().splitlines() if "/v1/search" in line)
    assert '"GET /v1/search?q=' in access and "[телефон]" in access and "[email]" in access
    assert "345-67-89" not in access and "mail.ru" not in access and "%40" not in access


# --- the answer log ---


def _answer(question: str, answer: str = "Перезвоним по номеру из заказа.") -> Answer:
    return Answer(
        id="ans_pii", question=question, query=question, answer=answer, action="answer", confidence=0.8
    )


def test_answer_log_stores_no_personal_data(tmp_path: Path) -> None:
    question = "Курьер не дозвонился на +7 912 345-67-89, почта ivan@mail.ru, карта 4111 1111 1111 1111"
    store = RecordStore(tmp_path / "kb.sqlite")
    store.log_answer(_answer(question, "Мы перезвоним на +7 912 345-67-89."), "buyer", "chat")
    store.add_feedback("ans_pii", "down", "пишите на ivan@mail.ru", "Доставим на ул. Ленина, д. 5, кв. 12")
    store.close()

    with sqlite3.connect(tmp_path / "kb.sqlite") as db:
        stored = db.execute("SELECT question, query, body FROM answers").fetchone()
        feedback = db.execute("SELECT reason, edited_reply FROM feedback").fetchone()
    everything = " ".join([*stored, *feedback])
    for secret in ("345-67-89", "ivan@mail.ru", "4111", "Ленина"):
        assert secret not in everything
    assert stored[0] == "Курьер не дозвонился на [телефон], почта [email], карта [карта]"
    assert feedback == ("пишите на [email]", "Доставим на [адрес]")


_WRITER = """
import sys, time
from pathlib import Path
from kb_engine.schema import Answer
from kb_engine.store import RecordStore

store = RecordStore(Path(sys.argv[1]))
store.log_answer(Answer(id="ans_kill", question="где заказ", query="где заказ", answer="в пути",
                        action="answer", confidence=0.9), None, "chat")
print("logged", flush=True)
time.sleep(60)
"""


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")
def test_logged_answer_survives_a_killed_process(tmp_path: Path) -> None:
    """WAL, synchronous=NORMAL: a write that has returned is in the WAL file, not lost with the process."""
    path = tmp_path / "kb.sqlite"
    writer = subprocess.Popen(
        [sys.executable, "-c", _WRITER, str(path)], cwd=ROOT, stdout=subprocess.PIPE, text=True
    )
    try:
        assert writer.stdout is not None and writer.stdout.readline() == "logged\n"
    finally:
        writer.kill()  # SIGKILL: no atexit, no close()
        writer.wait(timeout=10)
        if writer.stdout is not None:
            writer.stdout.close()
    assert writer.returncode == -signal.SIGKILL
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT question FROM answers WHERE id = 'ans_kill'").fetchone() == ("где заказ",)
