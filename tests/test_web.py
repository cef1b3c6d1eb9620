"""The web console: its routes over HTTP, and the pages in a real browser.

Browser tests drive Debian's chromium (/usr/bin/chromium) with Playwright's Python client, which
downloads nothing, against the real app on the shipped help centre served by uvicorn on loopback:
the real engine streams the answers, the real record store keeps the feedback. Without chromium
they are skipped, saying what is missing.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.routing import iter_route_contexts
from fastapi.testclient import TestClient

from kb_engine.api import create_app
from kb_engine.api.models import SearchHit
from kb_engine.config import Settings
from kb_engine.runtime import Runtime
from kb_engine.web import evals
from kb_engine.web.routes import STATIC
from tests.conftest import CHROMIUM_ARGS, served

CHROMIUM = Path(os.environ.get("KB_TEST_CHROMIUM", "/usr/bin/chromium"))  # Debian's package
KEYS = {"bot-key": "bot", "agent-key": "agent", "admin-key": "admin"}
PAGES = ("/", "/agent", "/content")
QUESTION = "Сколько дней заказ хранится в пункте выдачи?"
TICKET = (
    "Клиент: Здравствуйте, заказ пришёл разбитый\n"
    "Оператор: Здравствуйте! Уточните, вы уже забрали заказ?\n"
    "Клиент: Да, дома открыл коробку, товар повреждён. Что делать?"
)
# A URL of another origin, absolute or protocol-relative ("//cdn.example/x.js" in an attribute, a
# string or url(…)): what an air-gapped console must not load. The SVG namespace is a name.
EXTERNAL = re.compile(r"(?:https?:|[\"'(=]\s*)//[a-z0-9-]+(?:\.[a-z0-9-]+)+", re.IGNORECASE)
SVG_NAMESPACE = "http://www.w3.org/2000/svg"


# --- eval runs on disk -----------------------------------------------------------------------------------


def summary(hit5: float = 0.97, false_handoff: float = 0.04) -> dict[str, Any]:
    split = {"questions": 10, "hit@5": hit5, "mrr@10": 0.86, "false_handoff": false_handoff}
    return {
        "questions": 20,
        "answerable": 17,
        "unanswerable": 3,
        "hit@5": hit5,
        "mrr@10": 0.86,
        "citation_validity": 1.0,
        "citation_support": 0.99,
        "key_fact_recall": 0.69,
        "correct_handoff": 0.7,
        "false_handoff": false_handoff,
        "audience_leaks": 0,
        "language_ok": 1.0,
        "total_p50_ms": 35.8,
        "total_p95_ms": 109.9,
        "split_summaries": {"dev": split, "heldout": split},
        "peers": {
            "bm25": {"hit@1": 0.69, "hit@5": 0.947, "mrr@10": 0.798, "ndcg@10": 0.791},
            "hybrid (ours)": {"hit@1": 0.77, "hit@5": 0.974, "mrr@10": 0.86, "ndcg@10": 0.852},
        },
    }


def write_run(
    eval_dir: Path, name: str, body: dict[str, Any] | str, age_s: float, report: bool = False
) -> None:
    folder = eval_dir / name
    folder.mkdir(parents=True)
    path = folder / "summary.json"
    path.write_text(body if isinstance(body, str) else json.dumps(body), encoding="utf-8")
    if report:
        (folder / "report.html").write_text(f"<!doctype html><title>{name}</title><h1>kb eval · {name}</h1>")
    stamp = time.time() - age_s
    os.utime(path, (stamp, stamp))


def write_runs(eval_dir: Path) -> None:
    """An older golden run, the latest golden run (with a report), a newer external one, a broken one."""
    write_run(eval_dir, "old-run", summary(hit5=0.5), age_s=3000, report=True)
    write_run(eval_dir, "latest-run", summary(false_handoff=0.053), age_s=2000, report=True)
    write_run(eval_dir, "xquad", {"dataset": "xquad.ru", "questions": 1190, "hit@5": 0.99}, age_s=1000)
    write_run(eval_dir, "half-written", "{", age_s=10)


# --- routes, without a browser ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def web_settings(knowledge_rt: Runtime, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """The shared index, and a data directory of this module's own: its answer log and eval runs."""
    data_dir = tmp_path_factory.mktemp("web") / "var"
    write_runs(data_dir / "eval")
    return knowledge_rt.settings.model_copy(update={"data_dir": data_dir})


@pytest.fixture(scope="module")
def plain(web_settings: Settings, knowledge_rt: Runtime) -> TestClient:
    """The app without its start-up (no engine): pages, files and settings-only routes need none."""
    return TestClient(create_app(web_settings, knowledge_rt))


@pytest.fixture(scope="module")
def keyed(web_settings: Settings, knowledge_rt: Runtime) -> TestClient:
    unlimited = {"bot": 0, "agent": 0, "admin": 0}
    settings = web_settings.model_copy(update={"api_keys": KEYS, "rate_limit_per_minute": unlimited})
    return TestClient(create_app(settings, knowledge_rt))


@pytest.mark.parametrize("path", PAGES)
def test_pages_are_russian_html_that_load_only_this_origin(plain: TestClient, path: str) -> None:
    response = plain.get(path)
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    policy = response.headers["content-security-policy"]
    assert "default-src 'self'" in policy and "script-src 'self'" in policy and "connect-src 'self'" in policy
    html = response.text
    assert '<html lang="ru">' in html and 'name="viewport"' in html
    assert not EXTERNAL.search(html), EXTERNAL.findall(html)
    for asset in re.findall(r'(?:src|href)="(/static/[^"]+)"', html):
        assert plain.get(asset).status_code == 200, asset


@pytest.mark.parametrize("path", sorted(p.name for p in STATIC.iterdir()))
def test_static_files_are_served_and_name_no_other_origin(plain: TestClient, path: str) -> None:
    response = plain.get(f"/static/{path}")
    assert response.status_code == 200
    kind = {".js": "text/javascript", ".css": "text/css", ".svg": "image/svg+xml"}[Path(path).suffix]
    assert response.headers["content-type"].startswith(kind)
    assert response.headers["x-content-type-options"] == "nosniff"
    text = response.text.replace(SVG_NAMESPACE, "")
    assert not EXTERNAL.search(text), EXTERNAL.findall(text)


def test_the_pages_are_not_in_the_api_schema_and_misses_are_json(plain: TestClient) -> None:
    paths = plain.get("/openapi.json").json()["paths"]
    assert not set(PAGES) & set(paths) and "/v1/whoami" in paths and "/v1/admin/eval/latest" in paths
    missing = plain.get("/static/nope.js")
    assert missing.status_code == 404 and missing.json()["error"]["type"] == "not_found"


def test_whoami_says_the_role_of_the_key(plain: TestClient, keyed: TestClient) -> None:
    assert plain.get("/v1/whoami").json() == {"role": None, "keys": False}
    assert keyed.get("/v1/whoami").status_code == 401
    assert keyed.get("/v1/whoami", headers={"Authorization": "Bearer nope"}).status_code == 401
    for key, role in KEYS.items():
        assert keyed.get("/v1/whoami", headers={"X-API-Key": key}).json() == {"role": role, "keys": True}


def test_latest_eval_is_the_newest_golden_run(plain: TestClient) -> None:
    data = plain.get("/v1/admin/eval/latest").json()
    latest = data["latest"]
    assert data["runs"] == 2 and latest["name"] == "latest-run" and latest["has_report"]
    assert latest["summary"]["peers"]["hybrid (ours)"]["hit@5"] == 0.974
    goals = {g["metric"]: g for g in latest["goals"]}
    assert goals["hit@5"] == {
        "metric": "hit@5",
        "op": ">=",
        "goal": 0.95,
        "value": 0.97,
        "met": True,
        "gap": 0.02,
    }
    assert goals["false_handoff"]["met"] is False and goals["false_handoff"]["gap"] == -0.003
    report = plain.get("/v1/admin/eval/latest", params={"format": "html"})
    assert report.status_code == 200 and "kb eval · latest-run" in report.text
    assert report.headers["content-security-policy"].startswith("default-src 'none'")


def test_latest_eval_before_any_run(tmp_path: Path, knowledge_rt: Runtime) -> None:
    client = TestClient(
        create_app(knowledge_rt.settings.model_copy(update={"data_dir": tmp_path}), knowledge_rt)
    )
    assert client.get("/v1/admin/eval/latest").json() == {"runs": 0, "latest": None}
    report = client.get("/v1/admin/eval/latest?format=html")
    assert report.status_code == 404 and "kb eval run" in report.json()["error"]["message"]


def test_latest_eval_needs_an_admin_key(keyed: TestClient) -> None:
    refused = keyed.get("/v1/admin/eval/latest", headers={"X-API-Key": "agent-key"})
    assert refused.status_code == 403 and "'admin'" in refused.json()["error"]["message"]
    assert keyed.get("/v1/admin/eval/latest", headers={"X-API-Key": "admin-key"}).status_code == 200


def test_goal_status_tells_missed_from_unmeasured() -> None:
    missing = {g.metric: g for g in evals.goal_status({"hit@5": 0.9})}
    assert missing["hit@5"].met is False and missing["mrr@10"].met is None


# --- in the browser --------------------------------------------------------------------------------------

try:
    from playwright.sync_api import Browser, BrowserContext, Page, Request, expect, sync_playwright
    from playwright.sync_api import Error as PlaywrightError

    NO_PLAYWRIGHT = ""
except ImportError as exc:  # pragma: no cover - the dev extra installs it
    NO_PLAYWRIGHT = f"the playwright package is missing ({exc}): pip install -e '.[dev]'"


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if NO_PLAYWRIGHT:
        pytest.skip(NO_PLAYWRIGHT)
    if not CHROMIUM.exists():
        pytest.skip(f"no chromium at {CHROMIUM}: install Debian's package (apt-get install chromium)")
    with sync_playwright() as pw:
        try:
            launched = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        except PlaywrightError as exc:
            pytest.skip(f"chromium at {CHROMIUM} did not start: {str(exc).splitlines()[0]}")
        expect.set_options(timeout=20_000)
        yield launched
        launched.close()


@pytest.fixture(scope="module")
def app(web_settings: Settings, knowledge_rt: Runtime) -> FastAPI:
    return create_app(web_settings, knowledge_rt)


@pytest.fixture(scope="module")
def base_url(app: FastAPI) -> Iterator[str]:
    with served(app) as (host, port):
        yield f"http://{host}:{port}"


def open_page(
    browser: Browser, base_url: str, width: int = 1280, height: int = 900
) -> tuple[BrowserContext, Page, list[str]]:
    """A fresh tab (its own sessionStorage) and the script errors it will raise."""
    context = browser.new_context(
        base_url=base_url, locale="ru-RU", viewport={"width": width, "height": height}
    )
    context.set_default_timeout(20_000)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    return context, page, errors


@pytest.fixture
def page(browser: Browser, base_url: str) -> Iterator[Page]:
    context, opened, errors = open_page(browser, base_url)
    yield opened
    context.close()
    assert not errors, errors


def ask(page: Page, question: str) -> Any:
    """Type a question and send it with Enter; the bot's message, once complete."""
    done = page.locator('.msg.bot[aria-busy="false"]')
    before = done.count()
    page.get_by_label("Ваш вопрос").fill(question)
    page.get_by_label("Ваш вопрос").press("Enter")
    expect(done).to_have_count(before + 1)
    return done.last


def test_chat_streams_an_answer_whose_footnote_opens_the_passage(page: Page) -> None:
    page.goto("/")
    answer = ask(page, QUESTION)
    expect(answer).to_contain_text("7 календарных дней")
    assert int(answer.get_attribute("data-deltas") or 0) > 1  # it arrived in pieces
    footnote = answer.locator("button.fn").first
    expect(footnote).to_have_text("[1]")
    footnote.click()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_be_visible()
    expect(dialog.locator("#cite-quote")).to_contain_text("7 календарных дней")
    expect(dialog.locator("#cite-section")).to_contain_text("Раздел:")
    link = dialog.get_by_role("link", name="Открыть статью")
    assert (link.get_attribute("href") or "").startswith("https://help.samobranka.example/")
    expect(link).to_be_focused()
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()


def test_thumbs_down_with_a_reason_is_stored(page: Page, app: FastAPI) -> None:
    page.goto("/")
    answer = ask(page, "Как отменить заказ?")
    answer.get_by_role("button", name="Нет, не помог").click()
    answer.get_by_text("Информация устарела").click()
    answer.get_by_placeholder("Что было не так?").fill("в приложении кнопка называется иначе")
    answer.get_by_role("button", name="Отправить").click()
    expect(answer).to_contain_text("Спасибо! Передали команде справки.")
    stored = app.state.store.feedback_for(answer.get_attribute("data-answer-id"))
    assert stored == [
        {
            "rating": "down",
            "reason": "Информация устарела: в приложении кнопка называется иначе",
            "edited_reply": None,
        }
    ]


def test_a_follow_up_carries_the_conversation(page: Page) -> None:
    bodies: list[dict[str, Any]] = []

    def note(request: Request) -> None:
        if request.url.endswith("/v1/answer"):
            bodies.append(request.post_data_json or {})

    page.on("request", note)
    page.goto("/")
    ask(page, "Через сколько вернут деньги за возврат?")
    follow_up = ask(page, "а если картой платил?")
    expect(follow_up).to_contain_text("10 рабочих дней")
    assert [t["role"] for t in bodies[-1]["history"]] == ["user", "assistant"]
    assert bodies[-1]["history"][0]["content"] == "Через сколько вернут деньги за возврат?"
    assert bodies[-1]["audience"] == "buyer" and bodies[-1]["stream"] is True
    page.reload()  # the conversation stays with the tab
    expect(page.locator(".msg.user")).to_have_count(2)
    page.get_by_role("button", name="Новый диалог").click()
    expect(page.locator(".msg")).to_have_count(0)


def test_handoff_and_clarify_look_like_a_support_widget(page: Page) -> None:
    page.goto("/")
    page.evaluate("addEventListener('kb:handoff', (e) => { window.handedOver = e.detail })")
    handoff = ask(page, "Как приготовить борщ со сметаной?")
    assert handoff.get_attribute("data-action") == "handoff"
    handoff.get_by_role("button", name="Позвать специалиста").click()
    expect(handoff).to_contain_text("Передали диалог специалисту")
    detail = page.evaluate("window.handedOver")
    assert detail["answer_id"] == handoff.get_attribute("data-answer-id") and detail["history"]
    page.get_by_role("button", name="Новый диалог").click()  # alone, not a follow-up of the borscht
    clarify = ask(page, "не работает")
    expect(clarify.locator(".tag")).to_have_text("Уточняющий вопрос")
    assert "Уточните" in (page.get_by_label("Ваш вопрос").get_attribute("placeholder") or "")
    expect(page.get_by_label("Ваш вопрос")).to_be_focused()


def test_agent_gets_drafts_beside_articles_and_an_edited_reply_is_recorded(page: Page, app: FastAPI) -> None:
    page.goto("/agent")
    page.get_by_label("Переписка с клиентом").fill(TICKET)
    expect(page.locator("#parsed")).to_have_text("Реплик: 3 (клиента — 2, оператора — 1)")
    page.get_by_label("Клиент —").select_option("buyer")
    page.get_by_label("Переписка с клиентом").press("Control+Enter")
    draft = page.locator("article.draft").first
    expect(draft).to_contain_text("Здравствуйте!")
    articles = page.locator("#articles a")
    expect(articles.first).to_have_attribute("href", re.compile(r"^https://help\.samobranka\.example/"))
    draft.locator("button.fn").first.click()
    expect(page.get_by_role("dialog")).to_be_visible()
    page.keyboard.press("Escape")

    draft.get_by_role("button", name="Изменить").click()
    editor = draft.get_by_label("Текст ответа")
    expect(editor).to_be_focused()
    edited = editor.input_value().replace("Здравствуйте!", "Здравствуйте, Анна!")
    editor.fill(edited)
    draft.get_by_role("button", name="Отметить отправленным").click()
    expect(draft).to_contain_text("Отмечено как отправленное с правками")
    answer_id = page.locator("#assist").get_attribute("data-answer-id")
    assert app.state.store.feedback_for(answer_id) == [
        {"rating": "up", "reason": "отправлен с правками", "edited_reply": edited.strip()}
    ]


def test_content_shows_the_eval_run_and_passages_with_their_metadata(page: Page, app: FastAPI) -> None:
    page.goto("/content")
    panel = page.locator("#eval-panel")
    expect(panel).to_contain_text("Прогон «latest-run»")
    expect(panel.locator("tr", has_text="Передано человеку зря")).to_contain_text("не выполнена")
    expect(panel.locator("tr.ours")).to_contain_text("гибридный (наш)")
    expect(panel.get_by_role("link", name="Полный отчёт")).to_be_visible()
    has_stats = any(r.path == "/v1/admin/stats" for r in iter_route_contexts(app.routes))
    if not has_stats:
        expect(page.locator("#gaps-body")).to_contain_text("Аналитика недоступна")

    page.get_by_label("Запрос").fill("срок хранения в пункте выдачи")
    page.get_by_label("Аудитория").select_option("buyer")
    page.get_by_role("button", name="Найти").click()
    first = page.locator(".passage").first
    expect(first.get_by_role("link")).to_have_attribute(
        "href", re.compile(r"^https://help\.samobranka\.example/")
    )
    expect(first).to_contain_text("buyer-delivery")
    expect(first.locator(".section-path")).not_to_be_empty()
    if "audience" in SearchHit.model_fields:  # the API's search hits carry audience and validity
        expect(first.locator(".badge", has_text="для:")).to_be_visible()
        expect(first.locator(".badge.validity")).to_be_visible()


def test_with_keys_a_bot_key_cannot_use_the_agent_view_and_an_agent_key_can(
    browser: Browser, web_settings: Settings, knowledge_rt: Runtime
) -> None:
    settings = web_settings.model_copy(update={"api_keys": KEYS})
    with served(create_app(settings, knowledge_rt)) as (host, port):
        context, page, errors = open_page(browser, f"http://{host}:{port}")
        page.goto("/agent")
        dialog = page.get_by_role("dialog", name="Ключ API")
        expect(dialog).to_be_visible()
        expect(dialog).to_contain_text("нужна роль «agent»")
        dialog.get_by_label("Ключ").fill("wrong")
        dialog.get_by_label("Ключ").press("Enter")
        expect(dialog).to_contain_text("Ключ не принят")
        dialog.get_by_label("Ключ").fill("bot-key")
        dialog.get_by_role("button", name="Войти").click()
        expect(dialog).to_be_hidden()
        expect(page.locator("#notice")).to_contain_text("роль «bot»")
        page.get_by_label("Переписка с клиентом").fill(TICKET)
        page.get_by_role("button", name="Получить черновики").click()
        expect(page.locator("#agent-status")).to_contain_text(
            "Недостаточно прав: у ключа роль «bot», а здесь нужна «agent»"
        )

        page.locator("#key-change").click()
        dialog.get_by_label("Ключ").fill("agent-key")
        dialog.get_by_label("Ключ").press("Enter")
        expect(page.locator("#key-role")).to_have_text("Роль ключа: agent")
        expect(page.locator("#notice")).to_be_hidden()
        page.get_by_role("button", name="Получить черновики").click()
        expect(page.locator("article.draft").first).to_be_visible()
        page.goto("/")  # the key is kept for the tab: the chat needs no second prompt
        expect(page.get_by_role("dialog", name="Ключ API")).to_be_hidden()
        expect(ask(page, QUESTION)).to_contain_text("7 календарных дней")
        page.goto("/content")  # search is an agent's; the eval run an admin's
        expect(page.locator("#notice")).to_contain_text("часть этой страницы доступна только с ролью «admin»")
        expect(page.locator("#eval-body")).to_contain_text("нужна «admin»")
        page.get_by_label("Запрос").fill("срок хранения в пункте выдачи")
        page.get_by_label("Запрос").press("Enter")
        expect(page.locator(".passage").first).to_be_visible()
        context.close()
    assert not errors, errors


@pytest.mark.parametrize("path", PAGES)
def test_a_phone_screen_needs_no_sideways_scrolling(browser: Browser, base_url: str, path: str) -> None:
    context, page, _ = open_page(browser, base_url, width=390, height=844)
    page.goto(path)
    if path == "/":
        ask(page, QUESTION).locator("button.fn").first.wait_for()
    elif path == "/agent":
        page.get_by_role("button", name="Вставить пример").click()
        page.get_by_role("button", name="Получить черновики").click()
        page.locator("article.draft").first.wait_for()
    else:
        page.locator("#eval-panel table").first.wait_for()
    width = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
    context.close()
    assert width[0] <= width[1], f"{path} is {width[0]} px wide on a {width[1]} px screen"
