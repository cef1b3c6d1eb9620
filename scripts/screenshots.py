"""Screenshots of the web console for the README: docs/screenshots/{chat,agent,content,chat-phone}.png.

Serves the app over the indexed help centre of KB_DATA_DIR (default var/: run `kb ingest knowledge/`
first, and stop `kb serve`, which holds the embedded index) on a free loopback port, drives each view
in Debian's chromium (/usr/bin/chromium, through Playwright; nothing is downloaded) and writes the PNGs.
The answers and feedback it causes go to a scratch data directory, not to the service's answer log;
the latest eval run of KB_DATA_DIR/eval is copied there, and `kb demo-traffic`'s questions are sent
first, so the content view has an eval run and content gaps to show.

    .venv/bin/python scripts/screenshots.py [--out docs/screenshots] [--chromium /usr/bin/chromium]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from playwright.sync_api import Page, ViewportSize, expect, sync_playwright

from kb_engine import demo_traffic
from kb_engine.api import create_app
from kb_engine.config import Settings
from kb_engine.runtime import open_runtime
from kb_engine.web.evals import golden_runs

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run as a file: the tests' server helper and browser flags come from the root
from tests.conftest import CHROMIUM_ARGS, served  # noqa: E402

TICKET = (
    "Клиент: Здравствуйте, заказ пришёл разбитый\n"
    "Оператор: Здравствуйте! Уточните, вы уже забрали заказ?\n"
    "Клиент: Да, дома открыл коробку, товар повреждён. Что делать?"
)


def ask(page: Page, question: str) -> None:
    done = page.locator('.msg.bot[aria-busy="false"]')
    before = done.count()
    page.get_by_label("Ваш вопрос").fill(question)
    page.get_by_label("Ваш вопрос").press("Enter")
    expect(done).to_have_count(before + 1)


def chat(page: Page, out: Path) -> None:
    page.goto("/")
    ask(page, "Сколько дней заказ хранится в пункте выдачи?")
    ask(page, "Вы доставляете в Казахстан?")  # not in the help centre: handed to a person
    page.get_by_label("Ваш вопрос").fill("")
    page.get_by_label("Ваш вопрос").blur()
    page.screenshot(path=out / "chat.png", full_page=True)


def chat_phone(page: Page, out: Path) -> None:
    page.goto("/")
    ask(page, "Как вернуть товар, если не подошёл размер?")
    page.locator("button.fn").first.click()
    page.get_by_role("dialog").wait_for()
    page.screenshot(path=out / "chat-phone.png")


def agent(page: Page, out: Path) -> None:
    page.goto("/agent")
    page.get_by_label("Переписка с клиентом").fill(TICKET)
    page.get_by_label("Клиент —").select_option("buyer")
    page.get_by_role("button", name="Получить черновики").click()
    page.locator("article.draft").first.wait_for()
    page.get_by_label("Переписка с клиентом").blur()
    page.screenshot(path=out / "agent.png", full_page=True)


def content(page: Page, out: Path) -> None:
    page.goto("/content")
    page.locator("#eval-panel table").first.wait_for()
    page.get_by_label("Запрос").fill("срок хранения заказа в постамате")
    page.get_by_label("Сколько").select_option("5")
    page.get_by_role("button", name="Найти").click()
    page.locator(".passage").first.wait_for()
    page.get_by_label("Запрос").blur()
    page.screenshot(path=out / "content.png", full_page=True)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots")
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    parser.add_argument("--demo-traffic", type=int, default=200, help="questions sent first (0: none)")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)

    settings = Settings()
    scratch = Path(tempfile.mkdtemp(prefix="kb-screens-"))
    runs = golden_runs(settings.data_dir / "eval")
    if runs:
        shutil.copytree(runs[0][1], scratch / "eval" / runs[0][1].name)  # copy2 keeps its time
    with (
        open_runtime(settings) as runtime,
        served(create_app(settings.model_copy(update={"data_dir": scratch}), runtime)) as (host, port),
        sync_playwright() as pw,
    ):
        url = f"http://{host}:{port}"
        # an answer log for the content view's gaps: demo questions, some the help centre does not cover
        demo_traffic.send(url, demo_traffic.generate(args.demo_traffic, seed=7), concurrency=2)
        browser = pw.chromium.launch(executable_path=args.chromium, args=CHROMIUM_ARGS)
        expect.set_options(timeout=30_000)
        scenes: tuple[tuple[Callable[[Page, Path], None], ViewportSize], ...] = (
            (chat, {"width": 1100, "height": 900}),
            (agent, {"width": 1280, "height": 900}),
            (content, {"width": 1280, "height": 900}),
            (chat_phone, {"width": 390, "height": 844}),
        )
        for shoot, viewport in scenes:
            context = browser.new_context(
                base_url=url, locale="ru-RU", viewport=viewport, color_scheme="light"
            )
            shoot(context.new_page(), args.out)
            context.close()
            print(f"{shoot.__name__}: done")
        browser.close()
    shutil.rmtree(scratch, ignore_errors=True)
    print(f"screenshots in {args.out}")


if __name__ == "__main__":
    main()
