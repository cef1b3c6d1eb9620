"""Curated answers: pinned by the content team, served before drafting to close paraphrases, checked
when pinned, unpinned on request — over real HTTP on the shipped help centre."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient

from kb_engine.api.main import create_app
from kb_engine.runtime import Runtime

PINNED = {
    "question": "Сколько дней заказ хранится в пункте выдачи?",
    "paraphrases": ["скока лежит заказ в пвз"],
    "answer": "Заказ ждёт вас в пункте выдачи 7 дней, срок можно продлить один раз [1].",
    "citations": ["buyer-delivery-storage"],
}


def client(knowledge_rt: Runtime, tmp_path: Path) -> TestClient:
    settings = knowledge_rt.settings.model_copy(update={"data_dir": tmp_path})  # its own answer store
    return TestClient(create_app(settings, knowledge_rt))


def test_a_pinned_answer_is_served_to_close_paraphrases_until_unpinned(
    knowledge_rt: Runtime, tmp_path: Path
) -> None:
    with client(knowledge_rt, tmp_path) as c:
        drafted = c.post("/v1/answer", json={"question": "сколько хранится заказ в пункте выдачи"}).json()
        assert drafted["drafter"] == "extractive"
        pinned = c.post("/v1/admin/curated", json=PINNED)
        assert pinned.status_code == 201, pinned.text
        item = pinned.json()
        assert item["citations"][0]["doc_id"] == "buyer-delivery-storage" and item["citations"][0]["quote"]
        for question in ("Сколько дней заказ хранится в пункте выдачи", "скока лежит заказ в пвз?"):
            got = c.post("/v1/answer", json={"question": question, "audience": "buyer"}).json()
            assert got["drafter"] == "curated" and got["answer"] == PINNED["answer"], question
            assert [x["doc_id"] for x in got["citations"]] == ["buyer-delivery-storage"]
            assert got["action"] == "answer" and got["confidence"] >= 0.94
        other = c.post("/v1/answer", json={"question": "как вернуть товар с браком"}).json()
        assert other["drafter"] == "extractive"  # not close: drafted as usual
        assert [x["id"] for x in c.get("/v1/admin/curated").json()] == [item["id"]]
        assert c.delete(f"/v1/admin/curated/{item['id']}").status_code == 204
        assert c.delete(f"/v1/admin/curated/{item['id']}").status_code == 404
        again = c.post("/v1/answer", json={"question": "скока лежит заказ в пвз?"}).json()
        assert again["drafter"] == "extractive"


def test_an_audience_pin_serves_only_that_audience(knowledge_rt: Runtime, tmp_path: Path) -> None:
    with client(knowledge_rt, tmp_path) as c:
        assert c.post("/v1/admin/curated", json={**PINNED, "audience": "seller"}).status_code == 201
        buyer = c.post("/v1/answer", json={"question": PINNED["question"], "audience": "buyer"}).json()
        unknown = c.post("/v1/answer", json={"question": PINNED["question"]}).json()
        seller = c.post("/v1/answer", json={"question": PINNED["question"], "audience": "seller"}).json()
    assert buyer["drafter"] != "curated" and unknown["drafter"] != "curated"
    assert seller["drafter"] == "curated"


def test_pins_survive_a_restart(knowledge_rt: Runtime, tmp_path: Path) -> None:
    with client(knowledge_rt, tmp_path) as c:
        assert c.post("/v1/admin/curated", json=PINNED).status_code == 201
    with client(knowledge_rt, tmp_path) as c:
        assert c.post("/v1/answer", json={"question": PINNED["question"]}).json()["drafter"] == "curated"


def test_a_pin_must_cite_what_it_says(knowledge_rt: Runtime, tmp_path: Path) -> None:
    with client(knowledge_rt, tmp_path) as c:
        no_marker = c.post("/v1/admin/curated", json={**PINNED, "answer": "Семь дней."})
        bad_marker = c.post("/v1/admin/curated", json={**PINNED, "answer": "Семь дней [2]."})
        unknown_doc = c.post("/v1/admin/curated", json={**PINNED, "citations": ["no-such-doc"]})
        assert c.get("/v1/admin/curated").json() == []
    assert no_marker.status_code == bad_marker.status_code == 422
    assert unknown_doc.status_code == 422 and "no-such-doc" in unknown_doc.json()["error"]["message"]
