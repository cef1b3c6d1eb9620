"""Ingestion and index benchmarks. Prints numbers; the README records them with this command.

    .venv/bin/python bench/ingest_bench.py [--synthetic 100000] [--queries 300]

1. Cold ingest of knowledge/ (empty data dir, empty embedding cache), next to the embedding model's
   raw throughput on the very same chunk texts, measured in the same run.
2. Re-ingest of the unchanged knowledge/, in-process and as a `kb ingest` command (wall clock).
3. A synthetic index of N chunks in the embedded engine: upsert rate, optimize time, hybrid query
   p50/p95 with the filters the service uses, process memory, reopen time. Vectors are random
   (embedding 100k chunks with the real model would take hours on 2 cores); sparse vectors follow a
   Zipf distribution over a 30k-term vocabulary, like real text.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import rss_mb  # noqa: E402
from ingest.chunking import ChunkingParams, chunk_document  # noqa: E402
from ingest.parse import parse  # noqa: E402
from ingest.pipeline import Ingestor  # noqa: E402
from ingest.sources import RawDocument, Source  # noqa: E402
from kb_engine.config import Settings  # noqa: E402
from kb_engine.embedding.e5 import E5Embedder  # noqa: E402
from kb_engine.index.edge import EdgeIndex  # noqa: E402
from kb_engine.runtime import open_runtime  # noqa: E402
from kb_engine.schema import Chunk, DocMeta, IndexedChunk, SearchFilter, SparseVector  # noqa: E402


def cold_and_warm_ingest(workdir: Path) -> dict[str, float]:
    settings = Settings(data_dir=workdir / "var")
    started = time.perf_counter()
    with open_runtime(settings) as rt:
        report = Ingestor(settings, rt.index, rt.embedder, rt.sparse).run([ROOT / "knowledge"])
    cold_s = time.perf_counter() - started
    docs = len(report.new)

    # Raw model throughput on the same texts, in the same process state (a fresh model instance).
    source = Source(ROOT / "knowledge", settings.include, settings.exclude, 10**9)
    params = ChunkingParams(
        settings.chunk_target_tokens,
        settings.chunk_max_tokens,
        settings.chunk_overlap_tokens,
        settings.tokenizer,
    )
    texts = [
        c.embed_text
        for path in source.files()
        for raw in source.read(path)
        if isinstance(raw, RawDocument)
        for c in chunk_document(parse(raw), params)
    ]
    model = E5Embedder(threads=settings.embed_threads, batch_size=settings.embed_batch_size)
    e5_tokens = sum(model._model.token_count(t) for t in texts)
    started = time.perf_counter()
    model.embed_passages(texts)
    raw_s = time.perf_counter() - started

    started = time.perf_counter()
    with open_runtime(settings) as rt:
        warm = Ingestor(settings, rt.index, rt.embedder, rt.sparse).run([ROOT / "knowledge"])
    warm_s = time.perf_counter() - started
    assert not warm.new and not warm.changed
    env = {**os.environ, "KB_DATA_DIR": str(workdir / "var")}
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "kb_engine.cli", "ingest", str(ROOT / "knowledge")],
        env=env,
        check=True,
        capture_output=True,
    )
    warm_cli_s = time.perf_counter() - started

    return {
        "documents": docs,
        "chunks": report.chunks_written,
        "e5_tokens": e5_tokens,
        "cold_ingest_s": cold_s,
        "docs_per_s": docs / cold_s,
        "chunks_per_s": report.chunks_written / cold_s,
        "e5_tokens_per_s": e5_tokens / cold_s,
        "raw_model_s": raw_s,
        "raw_chunks_per_s": len(texts) / raw_s,
        "raw_e5_tokens_per_s": e5_tokens / raw_s,
        "ingest_vs_raw": (report.chunks_written / cold_s) / (len(texts) / raw_s),
        "unchanged_reingest_s": warm_s,
        "unchanged_reingest_cli_wall_s": warm_cli_s,
    }


def synthetic_index(workdir: Path, n: int, queries: int) -> dict[str, float]:
    rng = np.random.default_rng(7)
    pyrng = random.Random(7)
    vocab = 30_000
    zipf = np.cumsum(1.0 / np.arange(1, vocab + 1))
    zipf /= zipf[-1]
    audiences = ["buyer", "seller", "all"]
    categories = ["orders", "delivery", "payment", "returns", "seller-finance", "seller-logistics"]

    def sparse_vec(terms: int) -> SparseVector:
        ids = np.unique(np.searchsorted(zipf, rng.random(terms)))
        return SparseVector(
            indices=[int(i) for i in ids], values=[1.0 + float(v) for v in rng.random(len(ids))]
        )

    index = EdgeIndex(workdir / "synthetic")
    index.ensure_schema("synthetic-random", 384, "synthetic-zipf")
    base_rss = rss_mb()
    batch, written, upsert_s = 1000, 0, 0.0
    while written < n:
        points = []
        vectors = rng.standard_normal((min(batch, n - written), 384)).astype(np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        for k, vec in enumerate(vectors):
            i = written + k
            valid_until = date(2025, 1, 1) if i % 50 == 0 else None
            meta = DocMeta(
                doc_id=f"doc-{i // 8}",
                source=f"docs/{i // 8}.md",
                title=f"Документ {i // 8}",
                audience=pyrng.choice(audiences),
                category=pyrng.choice(categories),  # type: ignore[arg-type]
                valid_until=valid_until,
            )
            text = f"Синтетический фрагмент {i}"
            chunk = Chunk(
                id=Chunk.make_id(meta.doc_id, (), text, i),
                doc=meta,
                doc_hash="h",
                doc_chunks=8,
                position=i % 8,
                section=("Раздел",),
                text=text,
                tokens=120,
            )
            points.append(IndexedChunk(chunk=chunk, dense=vec.tolist(), sparse=sparse_vec(60)))
        started = time.perf_counter()  # only the index's work is timed, not making test data
        index.upsert("synthetic", points)
        upsert_s += time.perf_counter() - started
        written += len(points)
    started = time.perf_counter()
    index.flush()
    upsert_s += time.perf_counter() - started
    started = time.perf_counter()
    index.optimize()
    optimize_s = time.perf_counter() - started

    def run_queries(idx: EdgeIndex, count: int) -> list[float]:
        latencies = []
        for q in range(count):
            vec = rng.standard_normal(384).astype(np.float32)
            vec /= np.linalg.norm(vec)
            flt = SearchFilter(audience=("buyer", "seller")[q % 2], as_of=date(2026, 11, 25))  # type: ignore[arg-type]
            sparse = sparse_vec(6)
            t0 = time.perf_counter()
            idx.hybrid_query(vec.tolist(), sparse, flt, limit=10, prefetch=40)
            latencies.append((time.perf_counter() - t0) * 1000)
        return latencies

    run_queries(index, 20)  # warm-up
    lat = sorted(run_queries(index, queries))
    rss_after = rss_mb()
    index.close()
    started = time.perf_counter()
    reopened = EdgeIndex(workdir / "synthetic")
    reopen_s = time.perf_counter() - started
    first = run_queries(reopened, 1)[0]
    count = reopened.count()
    reopened.close()
    disk_mb = sum(f.stat().st_size for f in (workdir / "synthetic").rglob("*") if f.is_file()) / 1e6
    return {
        "points": count,
        "upsert_points_per_s": n / upsert_s,
        "optimize_s": optimize_s,
        "hybrid_p50_ms": statistics.median(lat),
        "hybrid_p95_ms": lat[int(0.95 * (len(lat) - 1))],
        "hybrid_max_ms": lat[-1],
        "rss_mb": rss_after,
        "rss_growth_mb": rss_after - base_rss,
        "disk_mb": disk_mb,
        "reopen_s": reopen_s,
        "first_query_after_reopen_ms": first,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--synthetic", type=int, default=100_000, help="chunks in the synthetic index (0: skip)"
    )
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--skip-ingest", action="store_true")
    args = parser.parse_args()
    results: dict[str, object] = {"date": date.today().isoformat(), "cpus": os.cpu_count()}
    with tempfile.TemporaryDirectory(prefix="kb-bench-") as tmp:
        if not args.skip_ingest:
            results["ingest"] = cold_and_warm_ingest(Path(tmp))
            print(json.dumps({"ingest": results["ingest"]}, indent=2))
        if args.synthetic:
            results["synthetic"] = synthetic_index(Path(tmp), args.synthetic, args.queries)
            print(json.dumps({"synthetic": results["synthetic"]}, indent=2))
    out = ROOT / "bench" / "results"
    out.mkdir(exist_ok=True)
    (out / f"ingest-{date.today().isoformat()}.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
