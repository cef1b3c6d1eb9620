"""Demo traffic: a few hundred realistic questions and ratings sent through the HTTP API, so a fresh
install has an analytics report worth opening.

The questions are written here by hand, never taken from eval/datasets: the analytics that this traffic
fills may later seed golden-set candidates, and the eval must not grade itself on its own questions.
"""

from __future__ import annotations

import random
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from typing import Any, Literal, NamedTuple

import httpx
from rich.console import Console

Kind = Literal["answer", "suggest"]
Audience = Literal["buyer", "seller"]
DemoChannel = Literal["chat", "email", "voice"]

# (audience, covered by a marketplace help centre?, question as a user types it)
_BASE: tuple[tuple[Audience, bool, str], ...] = (
    # buyer: orders
    ("buyer", True, "Как отменить заказ если он уже собран?"),
    ("buyer", True, "где посмотреть статус заказа"),
    ("buyer", True, "Можно ли поменять адрес доставки после оформления заказа?"),
    ("buyer", True, "заказ пришел не полностью, одного товара нет. что делать"),
    ("buyer", True, "почему мой заказ отменили без моего ведома??"),
    # buyer: delivery
    ("buyer", True, "Сколько дней заказ хранится в пункте выдачи?"),
    ("buyer", True, "сколько стоит курьерская доставка"),
    ("buyer", True, "курьер не приехал в выбранный интервал, кому жаловаться"),
    ("buyer", True, "Можно ли продлить срок хранения в ПВЗ? не успеваю забрать"),
    # buyer: returns
    ("buyer", True, "Как вернуть товар, если не подошёл размер?"),
    ("buyer", True, "через сколько вернут деньги за возврат на карту"),
    ("buyer", True, "пришел брак, экран разбит. как оформить возврат"),
    ("buyer", True, "Можно вернуть товар без чека и бирок?"),
    # buyer: payments
    ("buyer", True, "деньги списались два раза за один заказ"),
    ("buyer", True, "Какие способы оплаты есть? можно наличными курьеру?"),
    ("buyer", True, "как активировать подарочную карту"),
    ("buyer", True, "Почему не проходит оплата картой, пишет ошибка банка"),
    # buyer: warranty
    ("buyer", True, "сломался пылесос через 3 месяца, гарантия как работает"),
    ("buyer", True, "Куда обращаться по гарантии, в магазин или к производителю?"),
    # buyer: loyalty and account
    ("buyer", True, "как потратить баллы при оплате"),
    ("buyer", True, "баллы сгорели, почему так"),
    ("buyer", True, "Как сменить номер телефона в аккаунте?"),
    ("buyer", True, "промокод не применяется к заказу"),
    # seller: cards
    ("seller", True, "Как создать карточку товара?"),
    ("seller", True, "карточку заблокировали за нарушение, как узнать за какое"),
    ("seller", True, "как добавить размерную сетку в карточку"),
    ("seller", True, "Требования к фото товара: размер, фон?"),
    # seller: logistics
    ("seller", True, "чем FBO отличается от FBS"),
    ("seller", True, "Как создать поставку на склад?"),
    ("seller", True, "поставку не приняли на складе, что делать"),
    ("seller", True, "сколько стоит хранение товара на складе маркетплейса"),
    # seller: payouts
    ("seller", True, "Когда приходят выплаты продавцам?"),
    ("seller", True, "выплата не пришла уже неделю, где деньги"),
    ("seller", True, "как поменять реквизиты для выплат"),
    # seller: commissions
    ("seller", True, "какая комиссия на одежду по FBO"),
    ("seller", True, "Удерживается ли комиссия при возврате товара покупателем?"),
    ("seller", True, "регистрация продавца платная?"),
    # seller: ads
    ("seller", True, "как запустить рекламу товара"),
    ("seller", True, "Сколько стоит продвижение в поиске и как списываются деньги?"),
    ("seller", True, "рекламная кампания остановилась сама, почему"),
    ("seller", True, "Как участвовать в акциях маркетплейса?"),
    ("seller", True, "Добрый день. Прошу разъяснить порядок маркировки товаров «Честным знаком»."),
    ("seller", True, "покупатель оставил несправедливый отзыв, можно удалить"),
    ("seller", True, "как подключить ЭДО"),
    ("seller", True, "Можно ли продавать как самозанятый?"),
    # what a help centre typically does not cover: the report's content gaps
    ("buyer", False, "доставляете ли вы в Казахстан или Беларусь"),
    ("buyer", False, "Можно ли оплатить заказ криптовалютой (USDT)?"),
    ("buyer", False, "хочу устроиться к вам курьером, куда писать"),
    ("buyer", False, "есть ли вакансии в пункте выдачи в Казани"),
    ("buyer", False, "Как открыть пункт выдачи по франшизе? Какие вложения?"),
    ("buyer", False, "можно купить оптом 200 штук со скидкой"),
    ("buyer", False, "Здравствуйте. Оформим ли мы заказ как юрлицо с НДС и закрывающими документами?"),
    ("buyer", False, "доставка в германию возможна?"),
    ("buyer", False, "можно ли сдать старый телефон в trade-in"),
    ("buyer", False, "Как приготовить борщ со сметаной?"),
    ("seller", False, "продаю за границу, как работать с продавцами из Китая через вас"),
    ("seller", False, "можно получать выплаты в криптовалюте?"),
    ("seller", False, "есть ли у вас кредит для селлеров на закупку товара"),
    ("seller", False, "Как стать партнёром-франчайзи и открыть ПВЗ?"),
    ("seller", False, "можно ли выгрузить товары через API 1С Бухгалтерии 7.7"),
)

_GREETINGS = ("Здравствуйте! ", "добрый день, ", "привет ", "Добрый вечер. ", "здравствуйте ")
_UP_REASONS = (None, None, None, "помогло, спасибо", "всё понятно")
_DOWN_REASONS = (
    "не ответил на мой вопрос",
    "ответ не про то",
    "слишком общий ответ",
    "информация устарела",
    None,
)
# What an agent sends instead of a draft it rated down.
_AGENT_REWRITES = (
    "Здравствуйте! Проверил ваш вопрос вручную: передал его в профильный отдел, ответ придёт в течение "
    "1 рабочего дня в этот чат.",
    "Здравствуйте! К сожалению, это мы сейчас не поддерживаем. Если остались вопросы, напишите — я помогу.",
    "Здравствуйте! Уточните, пожалуйста, номер заказа — без него я не смогу проверить детали.",
)


class PlannedFeedback(NamedTuple):
    rating: Literal["up", "down"]
    reason: str | None
    edited_reply: str | None


@dataclass(frozen=True)
class DemoRequest:
    kind: Kind
    audience: Audience
    channel: DemoChannel  # what /v1/answer gets; a suggest has no channel
    question: str
    feedback: PlannedFeedback | None = None
    covered: bool = True  # whether a help centre would cover the question (False: a content gap)


@dataclass
class DemoReport:
    sent: int = 0
    kinds: Counter[str] = field(default_factory=Counter)
    actions: Counter[str] = field(default_factory=Counter)  # answer / clarify / handoff
    statuses: Counter[int] = field(default_factory=Counter)  # of every HTTP call, feedback included
    feedback: Counter[str] = field(default_factory=Counter)  # up / down / edited, as recorded
    retries: int = 0
    errors: list[str] = field(default_factory=list)
    elapsed_s: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.errors


@dataclass
class _Outcome:
    kind: Kind
    action: str | None = None
    statuses: list[int] = field(default_factory=list)
    feedback: list[str] = field(default_factory=list)
    retries: int = 0
    errors: list[str] = field(default_factory=list)


def generate(n: int, seed: int = 0) -> list[DemoRequest]:
    """``n`` requests, the same for the same seed: ~75% to /v1/answer, ~25% to /v1/suggest; feedback on
    ~30% (about two ups for each down), some downs of drafts carrying the agent's rewrite."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        audience, covered, base = rng.choice(_BASE)
        kind: Kind = "suggest" if rng.random() < 0.25 else "answer"
        channel: DemoChannel = rng.choices(("chat", "email", "voice"), (0.7, 0.2, 0.1))[0]
        question, planned = _vary(base, rng), _plan_feedback(kind, covered, rng)
        out.append(DemoRequest(kind, audience, channel, question, planned, covered))
    return out


def _vary(text: str, rng: random.Random) -> str:
    if rng.random() < 0.15:
        text = _swap_letters(text, rng)
    if rng.random() < 0.3:
        text = text.rstrip("?!.")
    if rng.random() < 0.25:
        text = text.lower()
    if rng.random() < 0.2:
        greeting = rng.choice(_GREETINGS)
        text = greeting + (text[0].lower() + text[1:] if greeting[-2] not in ".!" else text)
    return text


def _swap_letters(text: str, rng: random.Random) -> str:
    """A typo: two neighbouring letters of one longer word swapped."""
    words = text.split(" ")
    long = [i for i, w in enumerate(words) if len(w) >= 5 and w.isalpha()]
    if not long:
        return text
    i = rng.choice(long)
    j = rng.randrange(1, len(words[i]) - 2)
    w = words[i]
    words[i] = w[:j] + w[j + 1] + w[j] + w[j + 2 :]
    return " ".join(words)


def _plan_feedback(kind: Kind, covered: bool, rng: random.Random) -> PlannedFeedback | None:
    roll = rng.random()
    down = 0.10 if covered else 0.20  # unanswered questions annoy more
    if roll < down:
        edited = rng.choice(_AGENT_REWRITES) if kind == "suggest" and rng.random() < 0.6 else None
        return PlannedFeedback("down", rng.choice(_DOWN_REASONS), edited)
    if roll < down + 0.20:
        return PlannedFeedback("up", rng.choice(_UP_REASONS), None)
    return None


def send(
    base_url: str,
    requests: list[DemoRequest],
    api_key: str | None = None,
    concurrency: int = 4,
    progress: Callable[[int, int], None] | None = None,
) -> DemoReport:
    """Send ``requests`` (``concurrency`` at a time), then each planned rating with the id the API
    returned. Failures are counted in the report, never raised; ``progress(done, total)`` is called from
    this thread."""
    headers = {"X-API-Key": api_key} if api_key else {}
    report = DemoReport()
    started = time.monotonic()
    with (
        httpx.Client(base_url=base_url.rstrip("/"), headers=headers, timeout=120) as client,
        ThreadPoolExecutor(max_workers=max(1, concurrency)) as pool,
    ):
        futures = [pool.submit(_send_one, client, r) for r in requests]
        for done, future in enumerate(as_completed(futures), 1):
            outcome = future.result()
            report.sent += 1
            report.kinds[outcome.kind] += 1
            if outcome.action:
                report.actions[outcome.action] += 1
            report.statuses.update(outcome.statuses)
            report.feedback.update(outcome.feedback)
            report.retries += outcome.retries
            report.errors.extend(outcome.errors)
            if progress:
                progress(done, len(requests))
    report.elapsed_s = time.monotonic() - started
    return report


def _send_one(client: httpx.Client, request: DemoRequest) -> _Outcome:
    outcome = _Outcome(request.kind)
    path = f"/v1/{request.kind}"
    body: dict[str, Any]
    if request.kind == "answer":
        body = {"question": request.question, "audience": request.audience, "channel": request.channel}
    else:
        body = {"conversation": [{"role": "user", "content": request.question}], "audience": request.audience}
    data = _post(client, path, body, outcome)
    if data is None:
        return outcome
    outcome.action = str(data.get("action"))
    answer_id = data.get("answer_id") if request.kind == "suggest" else data.get("id")
    planned = request.feedback
    if planned is None or not answer_id:
        return outcome
    rating = {
        "answer_id": answer_id,
        "rating": planned.rating,
        "reason": planned.reason,
        "edited_reply": planned.edited_reply,
    }
    if _post(client, "/v1/feedback", rating, outcome) is not None:
        outcome.feedback.append(planned.rating)
        if planned.edited_reply:
            outcome.feedback.append("edited")
    return outcome


def _post(client: httpx.Client, path: str, body: dict[str, Any], outcome: _Outcome) -> dict[str, Any] | None:
    """The JSON of a 2xx response, or None with the failure noted in ``outcome``. A 429 is retried once,
    after its Retry-After."""
    for attempt in (1, 2):
        try:
            response = client.post(path, json=body)
        except httpx.HTTPError as exc:
            outcome.errors.append(f"POST {path}: {type(exc).__name__}: {exc or 'no response'}")
            return None
        outcome.statuses.append(response.status_code)
        if response.status_code == 429 and attempt == 1:
            outcome.retries += 1
            time.sleep(_retry_after(response))
            continue
        if response.is_success:
            try:
                data = response.json()
            except ValueError:
                outcome.errors.append(f"POST {path}: {response.status_code} with a body that is not JSON")
                return None
            return data if isinstance(data, dict) else {}
        outcome.errors.append(f"POST {path}: {response.status_code} {_error_message(response)}")
        return None
    return None


def _retry_after(response: httpx.Response) -> float:
    try:
        return min(max(float(response.headers.get("Retry-After", "1")), 0.0), 60.0)
    except ValueError:  # an HTTP date: not worth parsing for a demo
        return 1.0


def _error_message(response: httpx.Response) -> str:
    try:
        return str(response.json()["error"]["message"])
    except (ValueError, KeyError, TypeError):
        return response.text[:200] or response.reason_phrase


def summarize(report: DemoReport, base_url: str) -> str:
    kinds, actions, rated = report.kinds, report.actions, report.feedback
    text = (
        f"Sent {report.sent} demo questions to {base_url} in {report.elapsed_s:.1f} s "
        f"({kinds['answer']} to /v1/answer, {kinds['suggest']} to /v1/suggest): "
        f"{actions['answer']} answered, {actions['clarify']} clarifying questions, "
        f"{actions['handoff']} handed off; {rated['up'] + rated['down']} ratings recorded "
        f"({rated['up']} up, {rated['down']} down, {rated['edited']} with an agent's rewrite)"
    )
    if report.retries:
        text += f"; {report.retries} rate-limited calls retried"
    if not report.errors:
        return text + ". No errors: the analytics report now has traffic to show."
    distinct = list(dict.fromkeys(report.errors))
    shown = "; ".join(distinct[:3])
    return text + f". {len(report.errors)} errors ({len(distinct)} distinct), e.g.: {shown}"


def main(
    base_url: str, n: int = 300, seed: int = 0, api_key: str | None = None, console: Console | None = None
) -> int:
    """Generate and send ``n`` demo requests, print a one-paragraph summary; 0 if no call failed."""
    console = console or Console()
    requests = generate(n, seed)
    with console.status(f"sending {n} demo questions to {base_url}…") as status:

        def progress(done: int, total: int) -> None:
            status.update(f"sending demo questions to {base_url}: {done}/{total}")

        report = send(base_url, requests, api_key=api_key, progress=progress)
    console.print(summarize(report, base_url), highlight=False, markup=False)
    return 0 if report.ok else 1
