"""Answer latency and throughput, in-process and over HTTP. Prints numbers; the README records them.

    .venv/bin/python bench/api_bench.py [--data-dir var] [--seconds 20] [--clients 8]

Uses the index in --data-dir (ingesting knowledge/ first if it is empty) and the extractive drafter.
1. In-process: AnswerEngine.answer over a fixed set of questions (p50, p95).
2. `kb serve` started as a real process: time from start to /readyz = 200, resident memory.
3. Over HTTP: sequential /v1/answer requests (p50, p95), then --clients concurrent clients for
   --seconds (answers per second, p50, p95).
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import percentile, rss_mb  # noqa: E402
from kb_engine.config import Settings  # noqa: E402
from kb_engine.engine import AnswerEngine  # noqa: E402
from kb_engine.runtime import open_runtime  # noqa: E402

QUESTIONS = [
    ("Как вернуть товар, если не подошёл размер?", "buyer"),
    ("Через сколько дней придут деньги на карту после возврата?", "buyer"),
    ("Сколько дней заказ хранится в пункте выдачи?", "buyer"),
    ("Сколько стоит курьерская доставка?", "buyer"),
    ("Как отменить заказ?", "buyer"),
    ("Не проходит оплата картой, что делать?", "buyer"),
    ("Как активировать подарочную карту?", "buyer"),
    ("Можно ли вернуть нижнее бельё?", "buyer"),
    ("Как сменить номер телефона в аккаунте?", "buyer"),
    ("Что делать, если посылка пришла повреждённой?", "buyer"),
    ("скока стоит доставка в постамат", None),
    ("Когда приходят выплаты продавцу?", "seller"),
    ("Какая комиссия на одежду по FBO?", "seller"),
    ("Какой штраф за отмену заказа FBS?", "seller"),
    ("Какие требования к фото товара?", "seller"),
    ("Как создать поставку на склад?", "seller"),
    ("Как приготовить борщ?", None),
    ("не работает", None),
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def in_process(settings: Settings, rounds: int) -> dict[str, float]:
    with open_runtime(settings) as rt:
        if rt.index.count() == 0:
            from ingest.pipeline import Ingestor

            Ingestor(settings, rt.index, rt.embedder, rt.sparse).run([ROOT / "knowledge"])
        engine = AnswerEngine(settings, rt.index, rt.embedder, rt.sparse)
        for q, a in QUESTIONS:  # warm-up
            engine.answer(q, a)  # type: ignore[arg-type]
        latencies = []
        for _ in range(rounds):
            for q, a in QUESTIONS:
                started = time.perf_counter()
                engine.answer(q, a)  # type: ignore[arg-type]
                latencies.append((time.perf_counter() - started) * 1000)
    return {
        "answers": len(latencies),
        "p50_ms": statistics.median(latencies),
        "p95_ms": percentile(latencies, 0.95),
    }


def over_http(
    data_dir: Path, seconds: float, clients: int, rounds: int, query_cache: int
) -> dict[str, float]:
    port = free_port()
    env = {
        **os.environ,
        "KB_DATA_DIR": str(data_dir),
        "KB_LOG_LEVEL": "WARNING",
        "KB_QUERY_CACHE_SIZE": str(query_cache),
    }
    started = time.perf_counter()
    server = subprocess.Popen(
        [sys.executable, "-m", "kb_engine.cli", "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        with httpx.Client(base_url=base, timeout=30) as http:
            while True:
                try:
                    if http.get("/readyz").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if time.perf_counter() - started > 60:
                    raise RuntimeError("kb serve did not become ready in 60 s")
                time.sleep(0.02)
            ready_s = time.perf_counter() - started
            for q, a in QUESTIONS:  # warm-up
                http.post("/v1/answer", json={"question": q, "audience": a})
            sequential = []
            for _ in range(rounds):
                for q, a in QUESTIONS:
                    t0 = time.perf_counter()
                    r = http.post("/v1/answer", json={"question": q, "audience": a})
                    sequential.append((time.perf_counter() - t0) * 1000)
                    assert r.status_code == 200, r.text

        concurrent: list[float] = []
        lock = threading.Lock()
        stop_at = time.perf_counter() + seconds

        def client(offset: int) -> None:
            with httpx.Client(base_url=base, timeout=30) as http:
                i = offset
                while time.perf_counter() < stop_at:
                    q, a = QUESTIONS[i % len(QUESTIONS)]
                    t0 = time.perf_counter()
                    r = http.post("/v1/answer", json={"question": q, "audience": a})
                    elapsed = (time.perf_counter() - t0) * 1000
                    assert r.status_code == 200, r.text
                    with lock:
                        concurrent.append(elapsed)
                    i += 1

        threads = [threading.Thread(target=client, args=(k,)) for k in range(clients)]
        load_started = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        load_s = time.perf_counter() - load_started
        memory = rss_mb(server.pid)
    finally:
        server.terminate()
        server.wait(timeout=30)
    return {
        "ready_s": ready_s,
        "rss_mb": memory,
        "sequential_p50_ms": statistics.median(sequential),
        "sequential_p95_ms": percentile(sequential, 0.95),
        "clients": clients,
        "answers_per_s": len(concurrent) / load_s,
        "concurrent_p50_ms": statistics.median(concurrent),
        "concurrent_p95_ms": percentile(concurrent, 0.95),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data-dir", type=Path, default=ROOT / "var")
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument(
        "--query-cache",
        type=int,
        default=0,
        help="KB_QUERY_CACHE_SIZE; 0 (default) embeds every query, as for unseen questions",
    )
    args = parser.parse_args()
    settings = Settings(data_dir=args.data_dir, query_cache_size=args.query_cache)
    results = {"in_process": in_process(settings, args.rounds)}
    print(json.dumps(results, indent=2), flush=True)
    results["http"] = over_http(args.data_dir, args.seconds, args.clients, args.rounds, args.query_cache)
    print(json.dumps({"http": results["http"]}, indent=2))
    out = ROOT / "bench" / "results"
    out.mkdir(exist_ok=True)
    (out / f"api-cache{args.query_cache}.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
