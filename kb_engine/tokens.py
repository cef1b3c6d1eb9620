"""Token counting with tiktoken, offline.

tiktoken downloads its BPE files on first use; llama-index-core ships cl100k_base and o200k_base,
so we point tiktoken's cache at that folder before the first ``get_encoding``. A user's own
TIKTOKEN_CACHE_DIR is respected.
"""

from __future__ import annotations

import os
from functools import lru_cache
from importlib.util import find_spec
from pathlib import Path

import tiktoken

from kb_engine.errors import ConfigError

_OFFLINE = ("cl100k_base", "o200k_base")


def _bundled_cache() -> Path | None:
    spec = find_spec("llama_index.core")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / "_static" / "tiktoken_cache"
    return path if path.is_dir() else None


@lru_cache(maxsize=4)
def encoding(name: str = "cl100k_base") -> tiktoken.Encoding:
    if "TIKTOKEN_CACHE_DIR" not in os.environ:
        bundled = _bundled_cache()
        if bundled is not None:
            os.environ["TIKTOKEN_CACHE_DIR"] = str(bundled)
    if name not in _OFFLINE and "TIKTOKEN_CACHE_DIR" not in os.environ:
        raise ConfigError(f"tokenizer {name!r} is not available offline; use one of {', '.join(_OFFLINE)}")
    try:
        return tiktoken.get_encoding(name)
    except ValueError as exc:
        raise ConfigError(f"unknown tokenizer {name!r}: use one of {', '.join(_OFFLINE)}") from exc


def count_tokens(text: str, name: str = "cl100k_base") -> int:
    return len(encoding(name).encode(text, disallowed_special=()))
