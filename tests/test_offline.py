"""Everything ingests and searches with the network blocked: no model, tokenizer or NLP download."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from kb_engine.engine import AnswerEngine
from kb_engine.runtime import Runtime
from tests.conftest import KNOWLEDGE, ROOT, ingest


def test_every_format_ingests_with_the_network_blocked(
    runtime: Runtime, tmp_path: Path, no_network: None
) -> None:
    import unstructured.nlp.tokenize as tokenize

    def no_download() -> None:
        raise AssertionError("unstructured tried to install its spaCy model")

    tokenize._install_spacy_model = no_download  # must never be reached
    files = [
        KNOWLEDGE / "policies/seller-offer.docx",
        KNOWLEDGE / "policies/prohibited-goods.pdf",
        KNOWLEDGE / "exports/helpdesk/contact-support.html",
        KNOWLEDGE / "buyers/returns/good-quality.md",
        KNOWLEDGE / "exports/faq-export.jsonl",
    ]
    report = ingest(runtime, *files)
    assert report.ok, report.failed
    assert len(report.new) == 8  # 4 files + 4 export lines
    hits = AnswerEngine(runtime.settings, runtime.index, runtime.embedder, runtime.sparse).search(
        "запрещено продавать вейпы"
    )
    assert hits[0].doc_id == "policy-prohibited-goods"


@pytest.mark.skipif(not Path("/usr/bin/unshare").exists(), reason="needs unshare(1) for a network namespace")
def test_cli_in_a_network_namespace_without_interfaces(tmp_path: Path) -> None:
    """A fresh process with no network at all (not even DNS): the air-gapped user's situation."""
    probe = subprocess.run(["unshare", "-n", "true"], capture_output=True)
    if probe.returncode != 0:
        pytest.skip("cannot create a network namespace here")
    env = {k: v for k, v in os.environ.items() if k != "TIKTOKEN_CACHE_DIR"}
    env["KB_DATA_DIR"] = str(tmp_path / "var")

    def kb_offline(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["unshare", "-n", sys.executable, "-m", "kb_engine.cli", *args],
            env=env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=600,
        )

    run = kb_offline(
        "ingest", str(KNOWLEDGE / "policies/personal-data-policy.docx"), str(KNOWLEDGE / "buyers/delivery")
    )
    assert run.returncode == 0, run.stderr[-2000:]
    search = kb_offline("search", "сколько хранится заказ в пункте выдачи", "-k", "1", "--json")
    assert search.returncode == 0, search.stderr[-2000:]
    top = json.loads(search.stdout)[0]
    assert top["category"] == "delivery" and "7 календарных дней" in top["text"]
