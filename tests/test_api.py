"""The HTTP API end to end: the real engine on knowledge/, real HTTP through TestClient and uvicorn."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from kb_engine.api import create_app
from kb_engine.runtime import Runtime
from tests.conftest import ROOT, article, served, write

SELLER_ONLY = ("seller",)


@pytest.fixture(scope="module")
def client(knowledge_rt: Runtime) -> Iterator[TestClient]:
    with TestClient(create_app(knowledge_rt.settings, knowledge_rt)) as c:
        yield c


def answer(client: TestClient, **body: object) -> dict:  # type: ignore[type-arg]
    response = client.post("/v1/answer", json=body)
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def test_answer_is_grounded_in_cited_passages(client: TestClient) -> None:
    data = answer(client, question="Сколько дней заказ хранится в пункте выдачи?", audience="buyer")
    assert data["action"] == "answer" and data["confidence"] >= 0.45 and data["topic"] == "delivery"
    assert "7 календарных дней" in data["answer"]
    numbers = {c["n"] for c in data["citations"]}
    assert numbers and numbers == {int(n) for n in __import__("re").findall(r"\[(\d+)\]", data["answer"])}
    for citation in data["citations"]:
        assert citation["url"].startswith("https://help.samobranka.example/") and citation["quote"]
    # every cited sentence is a sentence of its cited passage
    quotes = {c["n"]: c["quote"] for c in data["citations"]}
    for sentence, n in __import__("re").findall(r"(.+?) \[(\d+)\]", data["answer"]):
        assert sentence.strip().lstrip("- ") in quotes[int(n)].replace("\n", " "), sentence
    assert set(data["timings_ms"]) >= {"retrieve", "draft", "total"}


def test_audience_never_crosses(client: TestClient) -> None:
    buyer = answer(client, question="Когда продавцу приходят выплаты и какая комиссия?", audience="buyer")
    seller = answer(client, question="Как вернуть товар надлежащего качества покупателю?", audience="seller")
    hits = client.post(
        "/v1/search", json={"query": "выплаты продавцам по средам", "audience": "buyer", "top_k": 20}
    ).json()["passages"]
    assert all(not c["doc_id"].startswith("seller-") for c in buyer["citations"])
    assert all(not c["doc_id"].startswith("buyer-") for c in seller["citations"])
    assert hits and all(not h["doc_id"].startswith("seller-") for h in hits)


def test_expired_policy_is_used_only_for_its_dates(client: TestClient) -> None:
    today = client.post("/v1/search", json={"query": "политика возврата товаров", "top_k": 20}).json()
    assert "policy-returns-2024" not in {p["doc_id"] for p in today["passages"]}
    back = client.post(
        "/v1/search", json={"query": "политика возврата товаров", "top_k": 20, "as_of": "2025-05-01"}
    ).json()
    ids = {p["doc_id"] for p in back["passages"]}
    assert "policy-returns-2024" in ids and "policy-returns" not in ids
    old = answer(
        client,
        question="Сколько дней на возврат товара надлежащего качества по политике возврата?",
        as_of=date(2025, 5, 1).isoformat(),
    )
    assert "policy-returns" not in {c["doc_id"] for c in old["citations"]}


def test_vague_and_unanswerable_questions(client: TestClient) -> None:
    vague = answer(client, question="не работает")
    assert vague["action"] == "clarify" and not vague["citations"] and "Уточните" in vague["answer"]
    off = answer(client, question="Как приготовить борщ со сметаной?")
    assert off["action"] == "handoff" and not off["citations"] and "специалисту" in off["answer"]


def test_follow_up_is_condensed_with_history(client: TestClient) -> None:
    data = answer(
        client,
        question="а если картой платил?",
        audience="buyer",
        history=[
            {"role": "user", "content": "Через сколько вернут деньги за возврат?"},
            {"role": "assistant", "content": "Зависит от способа оплаты."},
        ],
    )
    assert "вернут деньги" in data["query"] and data["action"] == "answer"
    assert "10 рабочих дней" in data["answer"]


def test_channels(client: TestClient) -> None:
    question = "Как отменить заказ?"
    voice = answer(client, question=question, audience="buyer", channel="voice")["answer"]
    assert "[" not in voice and "http" not in voice and "→" not in voice and "\n" not in voice
    email = answer(client, question=question, audience="buyer", channel="email")["answer"]
    assert email.startswith("Здравствуйте!") and "[1]" in email
    chat = answer(client, question=question, audience="buyer")["answer"]
    assert chat.startswith("1. ") and "Отменить заказ" in chat


def test_stream_sends_deltas_then_citations_then_done(client: TestClient) -> None:
    with client.stream(
        "POST",
        "/v1/answer",
        json={"question": "Как активировать подарочную карту?", "audience": "buyer", "stream": True},
    ) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        raw = "".join(response.iter_text())
    events = [
        (block.split("\n")[0][7:], json.loads(block.split("\n", 1)[1][6:]))
        for block in raw.strip().split("\n\n")
    ]
    names = [name for name, _ in events]
    assert names[-2:] == ["citations", "done"] and names.count("delta") >= 2
    done = events[-1][1]
    assert "".join(d["text"] for n, d in events if n == "delta") == done["answer"]
    assert events[-2][1] == done["citations"] and done["action"] == "answer"


def test_search_suggest_and_feedback(client: TestClient, knowledge_rt: Runtime) -> None:
    hits = client.post("/v1/search", json={"query": "комиссия одежда FBO", "audience": "seller", "top_k": 3})
    assert hits.status_code == 200
    passage = hits.json()["passages"][0]
    assert set(passage) >= {"doc_id", "source", "title", "section", "text", "score"}

    suggestion = client.post(
        "/v1/suggest",
        json={
            "audience": "buyer",
            "conversation": [
                {"role": "user", "content": "Здравствуйте, заказ пришёл разбитый"},
                {"role": "agent", "content": "Здравствуйте! Уточните, вы уже забрали заказ?"},
                {"role": "user", "content": "Да, дома открыл коробку, товар повреждён. Что делать?"},
            ],
        },
    )
    assert suggestion.status_code == 200, suggestion.text
    data = suggestion.json()
    assert 1 <= len(data["drafts"]) <= 3 and data["articles"]
    assert data["drafts"][0]["text"].startswith("Здравствуйте!") and data["drafts"][0]["citations"]
    assert "3 дней" in " ".join(d["text"] for d in data["drafts"])

    rated = client.post(
        "/v1/feedback",
        json={
            "answer_id": data["answer_id"],
            "rating": "down",
            "reason": "неполный",
            "edited_reply": "Исправленный ответ",
        },
    )
    assert rated.status_code == 201 and rated.json()["status"] == "recorded"
    store = client.app.state.store  # type: ignore[attr-defined]
    assert store.feedback_for(data["answer_id"]) == [
        {"rating": "down", "reason": "неполный", "edited_reply": "Исправленный ответ"}
    ]
    (logged,) = [r for r in store.answers() if r.id == data["answer_id"]]
    assert logged.channel == "suggest" and logged.answer and logged.latency_ms is not None
    with sqlite3.connect(knowledge_rt.settings.data_dir / "kb.sqlite") as db:  # the whole answer logged
        (body,) = db.execute("SELECT body FROM answers WHERE id = ?", (data["answer_id"],)).fetchone()
    timings = json.loads(body)["timings_ms"]  # the retrieval counts in the draft's latency
    assert 0 < timings["retrieve"] <= timings["total"] == logged.latency_ms
    missing = client.post("/v1/feedback", json={"answer_id": "ans_nope", "rating": "up"})
    assert missing.status_code == 404 and "ans_nope" in missing.json()["error"]["message"]


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({"question": ""}, "question"),
        ({"question": "   "}, "empty"),
        ({"question": "а" * 20_000}, "limit"),
        ({"question": "где заказ", "audience": "courier"}, "audience"),
        ({"question": "где заказ", "channel": "fax"}, "channel"),
        ({"question": "где заказ", "surprise": 1}, "surprise"),
        ({"question": "где заказ", "history": [{"role": "user"}]}, "content"),
        ({"question": "где заказ", "as_of": "вчера"}, "as_of"),
    ],
)
def test_bad_requests_get_a_clear_json_error(client: TestClient, body: dict, fragment: str) -> None:  # type: ignore[type-arg]
    response = client.post("/v1/answer", json=body)
    assert response.status_code == 422
    error = response.json()["error"]
    assert fragment in error["message"] and error["type"] == "invalid_request"


def test_malformed_json_is_a_4xx_with_a_message(client: TestClient) -> None:
    response = client.post("/v1/answer", content=b"{not json", headers={"Content-Type": "application/json"})
    assert response.status_code == 422 and "JSON" in response.json()["error"]["message"]


def test_health_readiness_metrics(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz").json()
    assert ready["status"] == "ready" and ready["chunks"] > 500
    answer(client, question="Сколько стоит курьерская доставка?", audience="buyer")
    metrics = client.get("/metrics").text
    assert "kb_http_requests_total" in metrics and 'kb_answers_total{action="answer"}' in metrics
    assert (
        client.get("/docs").status_code == 200 and "/v1/answer" in client.get("/openapi.json").json()["paths"]
    )


def test_api_keys_and_roles(knowledge_rt: Runtime) -> None:
    settings = knowledge_rt.settings.model_copy(update={"api_keys": {"bot-key": "bot", "agent-key": "agent"}})
    with TestClient(create_app(settings, knowledge_rt)) as c:
        body = {"question": "где мой заказ"}
        assert c.post("/v1/answer", json=body).status_code == 401
        wrong = c.post("/v1/answer", json=body, headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401 and wrong.json()["error"]["message"] == "invalid API key"
        assert c.post("/v1/answer", json=body, headers={"Authorization": "Bearer bot-key"}).status_code == 200
        conversation = {"conversation": [{"role": "user", "content": "где мой заказ"}]}
        forbidden = c.post("/v1/suggest", json=conversation, headers={"X-API-Key": "bot-key"})
        assert forbidden.status_code == 403 and "agent" in forbidden.json()["error"]["message"]
        assert c.post("/v1/suggest", json=conversation, headers={"X-API-Key": "agent-key"}).status_code == 200
        assert c.get("/healthz").status_code == 200  # probes need no key


@pytest.fixture(scope="module")
def live_url(knowledge_rt: Runtime) -> Iterator[str]:
    """uvicorn on a loopback port in this process: real sockets for the openai SDK."""
    with served(create_app(knowledge_rt.settings, knowledge_rt)) as (host, port):
        yield f"http://{host}:{port}"


def test_openai_sdk_against_the_chat_completions_facade(live_url: str) -> None:
    import openai

    client = openai.OpenAI(base_url=f"{live_url}/v1", api_key="unused")
    completion = client.chat.completions.create(
        model="kb-engine",
        messages=[{"role": "user", "content": "Сколько стоит курьерская доставка?"}],
        extra_body={"audience": "buyer"},
    )
    content = completion.choices[0].message.content or ""
    assert "199 ₽" in content and "\n\n[1] " in content and completion.choices[0].finish_reason == "stop"
    extra = completion.model_extra or {}
    assert extra["kb"]["action"] == "answer" and extra["citations"][0]["n"] == 1

    stream = client.chat.completions.create(
        model="kb-engine",
        stream=True,
        messages=[
            {"role": "system", "content": "Ты бот поддержки."},
            {"role": "user", "content": "Как отменить заказ?"},
        ],
    )
    pieces, finish = [], None
    for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            pieces.append(chunk.choices[0].delta.content)
        if chunk.choices and chunk.choices[0].finish_reason:
            finish = chunk.choices[0].finish_reason
    text = "".join(pieces)
    assert finish == "stop" and len(pieces) > 2 and "Отменить заказ" in text and "[1] " in text


def test_live_http_answer_and_errors(live_url: str) -> None:
    r = httpx.post(
        f"{live_url}/v1/answer",
        json={"question": "Как сменить номер телефона?", "audience": "buyer"},
        timeout=30,
    )
    assert r.status_code == 200 and r.json()["action"] == "answer"
    bad = httpx.post(f"{live_url}/v1/answer", json={"question": 5}, timeout=30)
    assert bad.status_code == 422 and bad.json()["error"]["message"].startswith("invalid request")


def test_serve_refuses_to_listen_beyond_loopback_without_keys(tmp_path: object) -> None:
    env = {**os.environ, "KB_DATA_DIR": str(tmp_path)}
    env.pop("KB_API_KEYS", None)
    run = subprocess.run(
        [sys.executable, "-m", "kb_engine.cli", "serve", "--host", "0.0.0.0"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 2 and "KB_API_KEYS" in run.stderr and "Traceback" not in run.stderr


def test_admin_ingest_while_serving(knowledge_rt: Runtime, tmp_path: Path) -> None:
    from ingest.pipeline import Ingestor

    def runner(paths: list[Path]) -> dict[str, object]:
        rt = knowledge_rt
        return Ingestor(rt.settings, rt.index, rt.embedder, rt.sparse).run(paths).as_dict()

    source = tmp_path / "news"
    write(
        source / "tea.md",
        article(
            "news-tea",
            "Чайная церемония в пунктах выдачи",
            "В пунктах выдачи «Самобранки» по пятницам проходит чайная церемония. " * 5,
        ),
    )
    keys = {"admin-key": "admin", "bot-key": "bot"}
    settings = knowledge_rt.settings.model_copy(update={"api_keys": keys})
    with TestClient(create_app(settings, knowledge_rt, runner)) as c:
        admin = {"X-API-Key": "admin-key"}
        assert c.post("/v1/admin/ingest", json={}, headers={"X-API-Key": "bot-key"}).status_code == 403
        missing = c.post("/v1/admin/ingest", json={"paths": ["/nope"]}, headers=admin)
        assert missing.status_code == 422 and "/nope" in missing.json()["error"]["message"]

        def run(paths: list[str]) -> dict:  # type: ignore[type-arg]
            job = c.post("/v1/admin/ingest", json={"paths": paths}, headers=admin)
            assert job.status_code == 202, job.text
            for _ in range(600):
                state = c.get(f"/v1/admin/ingest/{job.json()['id']}", headers=admin).json()
                if state["status"] != "running":
                    return state  # type: ignore[no-any-return]
                time.sleep(0.1)
            raise AssertionError("ingestion did not finish")

        done = run([str(source)])
        assert done["status"] == "done" and done["report"]["new"] == 1
        hits = c.post("/v1/search", json={"query": "чайная церемония", "top_k": 1}, headers=admin).json()
        assert hits["passages"][0]["doc_id"] == "news-tea"
        (source / "tea.md").unlink()
        write(source / "other.md", article("news-other", "Другое", "Совсем другой текст про постаматы. " * 8))
        again = run([str(source)])
        assert again["report"]["deleted"] == 1 and again["report"]["new"] == 1
        assert c.get("/v1/admin/ingest/ing_nope", headers=admin).status_code == 404
    with TestClient(create_app(knowledge_rt.settings, knowledge_rt)) as plain:
        assert plain.post("/v1/admin/ingest", json={}).status_code == 501


def test_category_and_locale_filters(client: TestClient) -> None:
    only = client.post("/v1/search", json={"query": "сколько дней", "categories": ["delivery"], "top_k": 10})
    assert only.status_code == 200 and {p["category"] for p in only.json()["passages"]} == {"delivery"}
    nothing = client.post("/v1/search", json={"query": "сколько дней", "locale": "en"}).json()
    assert nothing["passages"] == []
    scoped = answer(client, question="Сколько дней хранится заказ?", categories=["delivery"], locale="ru")
    assert scoped["action"] == "answer" and scoped["topic"] == "delivery"


def test_kb_ask_cli(tmp_path: Path, knowledge_rt: Runtime) -> None:
    write(
        tmp_path / "kb/storage.md",
        article(
            "storage",
            "Хранение заказа",
            "Заказ хранится в пункте выдачи 7 календарных дней. " * 4,
            category="delivery",
        ),
    )
    env = {**os.environ, "KB_DATA_DIR": str(tmp_path / "var")}

    def kb(*args: str, data_env: dict[str, str] = env) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "kb_engine.cli", *args],
            env=data_env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=300,
        )

    assert kb("ingest", str(tmp_path / "kb")).returncode == 0
    asked = kb("ask", "Сколько дней хранится заказ в пункте выдачи?", "--json")
    assert asked.returncode == 0, asked.stderr
    data = json.loads(asked.stdout)
    assert data["action"] == "answer" and data["citations"][0]["doc_id"] == "storage"
    # the shared test index is open in this process: a second process is told who holds it
    locked = kb(
        "ask", "где заказ", data_env={**os.environ, "KB_DATA_DIR": str(knowledge_rt.settings.data_dir)}
    )
    assert (
        locked.returncode == 2 and f"pid {os.getpid()}" in locked.stderr and "Traceback" not in locked.stderr
    )
