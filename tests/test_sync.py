"""Sync: idempotent, incremental, deletes what disappeared, converges after a crash."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from kb_engine.config import Settings
from kb_engine.embedding.e5 import E5Embedder
from kb_engine.engine import AnswerEngine
from kb_engine.runtime import Runtime
from kb_engine.schema import SearchFilter
from tests.conftest import ROOT, article, ingest, make_runtime, write

BODY = (
    "Вернуть товар надлежащего качества можно в течение 14 дней.\n\n## Как оформить\n\n"
    "1. Откройте Профиль → Покупки.\n2. Нажмите «Вернуть товар».\n"
)


def corpus(root: Path, n: int = 4) -> None:
    for i in range(n):
        write(root / f"buyers/a{i}.md", article(f"a{i}", f"Статья {i}", f"Статья номер {i}. " + BODY))


def test_second_run_changes_nothing(runtime: Runtime, tmp_path: Path) -> None:
    corpus(tmp_path / "kb")
    first = ingest(runtime, tmp_path / "kb")
    assert len(first.new) == 4 and first.chunks_embedded == first.chunks_written > 0
    computed = runtime.embedder.computed
    second = ingest(runtime, tmp_path / "kb")
    assert (len(second.new), len(second.changed), len(second.unchanged)) == (0, 0, 4)
    assert runtime.embedder.computed == computed
    assert runtime.index.count() == first.index_points


def test_edit_one_file_only_it_is_reembedded(runtime: Runtime, tmp_path: Path) -> None:
    corpus(tmp_path / "kb")
    ingest(runtime, tmp_path / "kb")
    before = runtime.index.documents(f"dir:{(tmp_path / 'kb').resolve()}")
    computed = runtime.embedder.computed
    write(tmp_path / "kb/buyers/a2.md", article("a2", "Статья 2", "Статья номер 2. Теперь 21 день. " + BODY))
    report = ingest(runtime, tmp_path / "kb")
    assert report.changed == ["a2"] and len(report.unchanged) == 3
    assert 0 < runtime.embedder.computed - computed < report.chunks_written + 1
    after = runtime.index.documents(f"dir:{(tmp_path / 'kb').resolve()}")
    assert after["a2"][0].is_complete() and after["a2"][1] != before["a2"][1]
    assert all(after[d][1] == before[d][1] for d in ("a0", "a1", "a3"))


def test_moved_text_is_not_embedded_twice(runtime: Runtime, tmp_path: Path) -> None:
    corpus(tmp_path / "kb", 1)
    ingest(runtime, tmp_path / "kb")
    computed = runtime.embedder.computed
    (tmp_path / "kb/buyers/a0.md").rename(tmp_path / "kb/moved.md")  # same id, same text
    report = ingest(runtime, tmp_path / "kb")
    assert report.changed == ["a0"] and runtime.embedder.computed == computed


def test_deleted_file_is_gone_unless_told_to_keep(runtime: Runtime, tmp_path: Path) -> None:
    corpus(tmp_path / "kb")
    ingest(runtime, tmp_path / "kb")
    (tmp_path / "kb/buyers/a1.md").unlink()
    kept = ingest(runtime, tmp_path / "kb", delete_missing=False)
    assert kept.deleted == [] and runtime.index.count(SearchFilter(doc_ids=("a1",))) > 0
    report = ingest(runtime, tmp_path / "kb")
    assert report.deleted == ["a1"]
    assert runtime.index.count(SearchFilter(doc_ids=("a1",))) == 0


def test_a_broken_edit_keeps_the_last_good_version(runtime: Runtime, tmp_path: Path) -> None:
    corpus(tmp_path / "kb")
    ingest(runtime, tmp_path / "kb")
    write(tmp_path / "kb/buyers/a3.md", "---\nid: [unclosed\n---\nтекст")
    report = ingest(runtime, tmp_path / "kb")
    assert [f.source for f in report.failed] == ["buyers/a3.md"] and report.deleted == []
    assert runtime.index.count(SearchFilter(doc_ids=("a3",))) > 0


def test_interrupted_write_converges(
    runtime: Runtime, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    corpus(tmp_path / "kb")
    ingest(runtime, tmp_path / "kb")
    for i in range(4):
        write(tmp_path / f"kb/buyers/a{i}.md", article(f"a{i}", f"Статья {i}", f"Новая версия {i}. " + BODY))

    def crash(ids: object) -> None:
        raise KeyboardInterrupt  # killed after the upsert, before old chunks were deleted

    monkeypatch.setattr(runtime.index, "delete_points", crash)
    with pytest.raises(KeyboardInterrupt):
        ingest(runtime, tmp_path / "kb")
    monkeypatch.undo()
    key = f"dir:{(tmp_path / 'kb').resolve()}"
    assert any(not state.is_complete() for state, _ in runtime.index.documents(key).values())

    report = ingest(runtime, tmp_path / "kb")
    assert len(report.changed) == 4
    states = runtime.index.documents(key)
    assert all(state.is_complete() for state, _ in states.values())
    hits = runtime.index.count(SearchFilter(doc_ids=("a0",)))
    assert hits == states["a0"][0].points


def test_answers_during_an_update_read_one_version_of_each_document(
    runtime: Runtime, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Between the upsert of a document's new chunks and the delete of its old ones both are
    searchable: an answer must read one version of each document, never half of each."""

    def edition(name: str) -> str:  # every chunk differs between the two editions
        return "\n\n".join(
            f"## Раздел {k}\n\n{name} редакция, раздел {k}. " + BODY.replace("## Как оформить\n\n", "")
            for k in range(6)
        )

    write(tmp_path / "kb/buyers/a0.md", article("a0", "Возврат", edition("Старая")))
    ingest(runtime, tmp_path / "kb")
    write(tmp_path / "kb/buyers/a0.md", article("a0", "Возврат", edition("Новая")))

    def stop(ids: object) -> None:
        raise KeyboardInterrupt  # both versions stay in the index, as in the middle of an update

    monkeypatch.setattr(runtime.index, "delete_points", stop)
    with pytest.raises(KeyboardInterrupt):
        ingest(runtime, tmp_path / "kb")
    monkeypatch.undo()
    hits = AnswerEngine(runtime.settings, runtime.index, runtime.embedder, runtime.sparse).search(
        "вернуть товар в течение 14 дней", top_k=20
    )
    assert len({h.version for h in hits if h.doc_id == "a0"}) == 2  # the window this test is about
    found = AnswerEngine(runtime.settings, runtime.index, runtime.embedder, runtime.sparse).retrieve(
        "вернуть товар в течение 14 дней"
    )
    versions = {p.version for p in found.passages if p.doc_id == "a0"}
    assert len(versions) == 1 and len([p for p in found.passages if p.doc_id == "a0"]) >= 2


def test_killed_process_leaves_a_consistent_index(tmp_path: Path, e5: E5Embedder) -> None:
    """SIGKILL `kb ingest` mid-run, then check what a server would see, then finish the job."""
    source = tmp_path / "kb"
    for i in range(30):
        write(source / f"a{i}.md", article(f"k{i}", f"Статья {i}", (f"Раздел {i}. " + BODY) * 6))
    env = {**os.environ, "KB_DATA_DIR": str(tmp_path / "var")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "kb_engine.cli", "ingest", str(source)],
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    index_meta = tmp_path / "var/index/kb-index.json"
    deadline = time.time() + 60
    while not index_meta.exists() and time.time() < deadline:
        time.sleep(0.05)
    time.sleep(3)  # well into embedding and writing
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()

    settings = Settings(data_dir=tmp_path / "var")
    rt = make_runtime(settings, e5)
    try:
        key = f"dir:{source.resolve()}"
        partial = rt.index.documents(key)
        assert len(partial) < 30  # it really was interrupted
        for state, ids in partial.values():  # every chunk there is a whole chunk of a known version
            assert len(state.doc_hashes) <= 2 and len(ids) == state.points
        report = ingest(rt, source)
        assert report.ok and len(report.new) + len(report.changed) + len(report.unchanged) == 30
        states = rt.index.documents(key)
        assert len(states) == 30 and all(s.is_complete() for s, _ in states.values())
        again = ingest(rt, source)
        assert len(again.unchanged) == 30 and rt.index.count() == report.index_points
    finally:
        rt.close()
