"""The support report as users get it: the HTML page, `kb report`, and `GET /v1/admin/stats` over the
real app (TestClient, and uvicorn on loopback for the demo traffic end to end)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from kb_engine import demo_traffic
from kb_engine.analytics import SupportStats, compute_stats, stats_from_store
from kb_engine.analytics_report import render
from kb_engine.api import create_app
from kb_engine.cli import app as cli
from kb_engine.config import Settings
from kb_engine.embedding import CachedEmbedder, EmbeddingCache
from kb_engine.embedding.e5 import E5Embedder
from kb_engine.index.edge import EdgeIndex
from kb_engine.report_html import GREY
from kb_engine.runtime import Runtime
from kb_engine.store import RecordStore, open_store
from tests.conftest import served
from tests.test_analytics import DAY, INDEXED, ROWS, T0, H, seed


@pytest.fixture(scope="module")
def embedder(e5: E5Embedder, tmp_path_factory: pytest.TempPathFactory) -> Iterator[CachedEmbedder]:
    """The real model, each distinct question embedded once per module (as the API's embedder does)."""
    cache = EmbeddingCache(tmp_path_factory.mktemp("cache") / "embeddings.sqlite")
    yield CachedEmbedder(e5, cache, query_cache_size=1000)
    cache.close()


SECTIONS = ("overview", "volume", "actions", "feedback", "gaps", "articles", "suggestions", "latency")
HOSTILE_TEXT = '<script>alert("x")</script> доставка в казахстан есть?'
HOSTILE = ("x1", 2 * DAY + 7 * H, "buyer", "chat", "handoff", 0.1, None, [], 10, HOSTILE_TEXT)


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    data_dir = tmp_path_factory.mktemp("report") / "var"
    return Settings(data_dir=data_dir, api_keys={"admin-key": "admin", "bot-key": "bot"})


@pytest.fixture(scope="module")
def store(settings: Settings) -> Iterator[RecordStore]:
    records = open_store(settings)
    with pytest.MonkeyPatch.context() as monkeypatch:
        seed(records, monkeypatch, [*ROWS, HOSTILE])
    yield records
    records.close()


@pytest.fixture(scope="module")
def stats(store: RecordStore, embedder: CachedEmbedder) -> SupportStats:
    answers, feedback = store.answers(), store.feedback()
    return compute_stats(answers, feedback, embedder=embedder, indexed_docs=INDEXED, tz=UTC, now=T0 + 3 * DAY)


def test_the_page_has_every_section_and_nothing_external(stats: SupportStats) -> None:
    page = render(stats)
    for anchor in SECTIONS:
        assert f'id="{anchor}"' in page
    assert "<script" not in page and "&lt;script&gt;alert" in page  # a customer's text is escaped
    urls = re.findall(r"""https?://[^\s"'<>)]+""", page)
    assert urls and all(u.startswith("https://help.samobranka.example/") for u in urls)  # article links
    assert all(f'<a href="{u}">' in page for u in urls)
    assert not re.search(r"\b(src|srcset)=|@import|url\(", page)


def test_the_page_shows_what_the_numbers_say(stats: SupportStats) -> None:
    page = render(stats)
    assert "16</b><span>вопросов, из них 4 от операторов" in page  # 15 seeded + 1 hostile
    assert "Пробелы в базе знаний" in page and "доставляете в казахстан?" in page
    assert "1 из 1 · мало оценок" in page and f'fill="{GREY}"' in page  # 1/1 is not read as 100 % trouble
    assert "Архив акций" in page and "Ни разу не процитированы" in page
    assert "принято как есть (1 из 3)" in page and "отклонено (1 из 3)" in page
    assert 'aria-label="обращения по аудитории"' in page and 'aria-label="доля передач и уточнений"' in page


def test_one_hour_of_traffic_gets_totals_not_a_flat_chart(store: RecordStore) -> None:
    first_hour = stats_from_store(store, embedder=None, index=None, since=T0, until=T0 + 2 * 3600, tz=UTC)
    page = render(first_hour)
    assert first_hour.answers == 1 and "пришлись на один час" in page
    assert 'aria-label="обращения по аудитории"' not in page and "Аудитория, всего" in page


def test_missing_sections_say_why(store: RecordStore) -> None:
    reason = "индекс сейчас открыт запущенным сервисом (kb serve)"
    page = render(stats_from_store(store, embedder=None, index=None, missing_index_reason=reason))
    assert f"Нет данных: {reason}" in page
    assert "модель эмбеддингов не загружена" in page


def test_an_empty_log_says_how_to_get_traffic() -> None:
    page = render(compute_stats([], [], embedder=None, indexed_docs=None, now=T0))
    assert "Обращений пока нет" in page and "kb demo-traffic" in page and "<script" not in page


# --- kb report --------------------------------------------------------------------------------------------


@pytest.fixture
def kb(settings: Settings, embedder: CachedEmbedder, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    """`kb` in this process, on the module's settings and model."""
    monkeypatch.setattr("kb_engine.cli_base.get_settings", lambda: settings)
    monkeypatch.setattr("kb_engine.embedding.make_embedder", lambda _: embedder)
    return CliRunner()


@pytest.mark.usefixtures("store")
def test_kb_report_writes_the_page(kb: CliRunner, settings: Settings, tmp_path: Path) -> None:
    result = kb.invoke(cli, ["report", "--out", str(tmp_path / "out/report.html")])
    assert result.exit_code == 0, result.output
    assert "16 questions, 8 handed off, 8 rated, 2 content gaps" in result.stdout
    page = (tmp_path / "out/report.html").read_text(encoding="utf-8")
    assert all(f'id="{a}"' in page for a in SECTIONS)
    assert "индекс ещё не создан" in page  # no index here: the section says why
    default = kb.invoke(cli, ["report", "--since", "2026-11-03", "--until", "2026-11-04"])
    assert default.exit_code == 0 and (settings.data_dir / "report.html").exists()
    assert default.stdout.startswith("5 questions")


@pytest.mark.usefixtures("store")
def test_kb_report_json(kb: CliRunner) -> None:
    result = kb.invoke(cli, ["report", "--json", "--since", "2026-11-01"])
    assert result.exit_code == 0, result.output
    data = SupportStats.model_validate(json.loads(result.stdout))
    assert data.answers == 16 and [c.count for c in data.gaps.clusters] == [5, 3]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--since", "7x"], "--since/--until: expected a duration like 7d, 24h or 2w"),
        (["--until", "yesterday"], "--since/--until: expected a duration"),
        (["--since", "2026-11-05", "--until", "2026-11-01"], "--since (2026-11-05) must be before --until"),
    ],
)
def test_kb_report_refuses_a_bad_period(kb: CliRunner, args: list[str], message: str) -> None:
    result = kb.invoke(cli, ["report", *args])
    assert result.exit_code == 2 and message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr


def test_kb_report_on_an_empty_log(kb: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    empty = Settings(data_dir=tmp_path / "var")
    monkeypatch.setattr("kb_engine.cli_base.get_settings", lambda: empty)
    result = kb.invoke(cli, ["report"])
    assert result.exit_code == 0 and "kb demo-traffic" in result.stderr
    assert "Обращений пока нет" in (empty.data_dir / "report.html").read_text(encoding="utf-8")


def test_kb_report_while_the_service_holds_the_index(
    kb: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    served_dir = Settings(data_dir=tmp_path / "var")
    records = open_store(served_dir)
    seed(records, monkeypatch, ROWS[:2], [])
    records.close()
    monkeypatch.setattr("kb_engine.cli_base.get_settings", lambda: served_dir)
    held = EdgeIndex(served_dir.index_dir)  # what `kb serve` does
    try:
        result = kb.invoke(cli, ["report"])
    finally:
        held.close()
    assert result.exit_code == 0, result.output
    page = (served_dir.data_dir / "report.html").read_text(encoding="utf-8")
    assert "индекс сейчас открыт запущенным сервисом" in page and "GET /v1/admin/stats" in page


# --- GET /v1/admin/stats ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def client(settings: Settings, knowledge_rt: Runtime, store: RecordStore) -> Iterator[TestClient]:
    """The app over the shared indexed help centre, logging into this test's own store."""
    with TestClient(create_app(settings, knowledge_rt)) as c:
        yield c


ADMIN, BOT = {"X-API-Key": "admin-key"}, {"Authorization": "Bearer bot-key"}


def test_stats_for_an_admin_as_html_and_json(client: TestClient) -> None:
    page = client.get("/v1/admin/stats", headers=ADMIN)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert all(f'id="{a}"' in page.text for a in SECTIONS) and "<script" not in page.text
    data = client.get("/v1/admin/stats", params={"format": "json"}, headers=ADMIN)
    assert data.status_code == 200 and data.headers["content-type"] == "application/json"
    stats = SupportStats.model_validate(data.json())
    assert stats.answers == 16 and stats.actions.counts["handoff"] == 8
    day = client.get("/v1/admin/stats?since=2026-11-03&until=2026-11-04T00:00:00Z&format=json", headers=ADMIN)
    assert day.json()["answers"] == 5


def test_stats_need_an_admin_key_and_a_valid_period(client: TestClient) -> None:
    forbidden = client.get("/v1/admin/stats", headers=BOT)
    assert forbidden.status_code == 403 and "admin" in forbidden.json()["error"]["message"]
    assert client.get("/v1/admin/stats").status_code == 401
    bad = client.get("/v1/admin/stats", params={"since": "yesterday"}, headers=ADMIN)
    assert bad.status_code == 422 and bad.json()["error"]["type"] == "invalid_request"
    assert client.get("/v1/admin/stats", params={"format": "pdf"}, headers=ADMIN).status_code == 422


def test_demo_traffic_end_to_end(tmp_path: Path, knowledge_rt: Runtime) -> None:
    """The README's path: serve, send demo traffic, open the stats."""
    settings = Settings(data_dir=tmp_path / "var")
    with served(create_app(settings, knowledge_rt)) as (host, port):
        base = f"http://{host}:{port}"
        sent = demo_traffic.send(base, demo_traffic.generate(60, seed=3))
        assert sent.ok, sent.errors
        response = httpx.get(f"{base}/v1/admin/stats", params={"format": "json"}, timeout=120)
    assert response.status_code == 200
    stats = SupportStats.model_validate(response.json())
    assert stats.answers == sent.sent == 60
    assert stats.actions.counts["handoff"] == sent.actions["handoff"] > 0
    assert (stats.feedback.up, stats.feedback.down) == (sent.feedback["up"], sent.feedback["down"])
    assert stats.suggestions.requests == sent.kinds["suggest"]
    assert stats.gaps.questions >= sent.actions["handoff"] and stats.gaps.clusters
    assert stats.gaps.clusters[0].count >= stats.gaps.clusters[-1].count >= 2
    assert stats.articles.most_cited and stats.latency.p50_ms is not None
    assert stats.articles.never_cited is not None and stats.articles.indexed == 79  # 70 articles, 9 policies
