"""Where documents come from: a directory tree (with include/exclude globs) or a JSONL export.

A source yields ``RawDocument``s, or ``DocumentError``s for files it cannot even read, so that one
bad file is reported and the rest of the batch goes on.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path, PurePosixPath
from typing import Any

import yaml

from kb_engine.errors import (
    CorruptDocument,
    DocumentError,
    DocumentTooLarge,
    EmptyDocument,
    UnsupportedFormat,
)
from kb_engine.schema import content_hash

FORMATS = {
    ".md": "md",
    ".markdown": "md",
    ".txt": "txt",
    ".html": "html",
    ".htm": "html",
    ".docx": "docx",
    ".pdf": "pdf",
    ".jsonl": "jsonl",
}
SIDECAR_SUFFIX = ".meta.yaml"


@dataclass(frozen=True)
class RawDocument:
    """One document before parsing. ``meta`` holds what came from outside the file body."""

    source: str  # path relative to the ingested root (plus ``#line`` for an export line)
    fmt: str
    data: bytes
    meta: dict[str, Any] = field(default_factory=dict)
    text: str | None = None  # already-decoded body (export lines)

    def fingerprint(self, pipeline: str) -> str:
        """Identifies these exact inputs under these pipeline settings: equal means skip parsing."""
        meta = json.dumps(self.meta, sort_keys=True, default=str, ensure_ascii=False)
        return content_hash(
            pipeline, self.source, self.fmt, hashlib.sha256(self.data).hexdigest(), self.text or "", meta
        )


@dataclass(frozen=True)
class FailedFile:
    source: str
    error: DocumentError


@dataclass
class Source:
    """A directory or a single file, and the key its documents carry in the index."""

    path: Path
    include: list[str]
    exclude: list[str]
    max_bytes: int

    @property
    def root(self) -> Path:
        return self.path if self.path.is_dir() else self.path.parent

    @property
    def key(self) -> str:
        return f"{'dir' if self.path.is_dir() else 'file'}:{self.path.resolve()}"

    def files(self) -> list[Path]:
        if not self.path.is_dir():
            return [self.path]
        found = []
        for candidate in sorted(self.path.rglob("*")):
            if not candidate.is_file():
                continue
            rel = candidate.relative_to(self.path).as_posix()
            if any(glob_match(rel, g) for g in self.include) and not any(
                glob_match(rel, g) for g in self.exclude
            ):
                found.append(candidate)
        return found

    def read(self, path: Path) -> Iterator[RawDocument | FailedFile]:
        rel = path.relative_to(self.root).as_posix()
        try:
            fmt = FORMATS.get(path.suffix.lower())
            if fmt is None:
                raise UnsupportedFormat(f"unsupported file type {path.suffix or '(none)'!r}")
            size = path.stat().st_size
            if size > self.max_bytes:
                raise DocumentTooLarge(
                    f"{size / 1e6:.1f} MB is over the {self.max_bytes / 1e6:.1f} MB limit (KB_MAX_FILE_MB)"
                )
            if size == 0:
                raise EmptyDocument("the file is empty")
            data = path.read_bytes()
            if fmt == "jsonl":
                yield from _export_lines(rel, data)
                return
            yield RawDocument(source=rel, fmt=fmt, data=data, meta=_sidecar(path))
        except DocumentError as exc:
            yield FailedFile(rel, exc)
        except OSError as exc:
            yield FailedFile(rel, CorruptDocument(f"cannot read the file: {exc.strerror or exc}"))


def _sidecar(path: Path) -> dict[str, Any]:
    """Metadata for formats without front matter (DOCX, PDF): ``<file>.meta.yaml`` beside it."""
    sidecar = path.with_name(path.name + SIDECAR_SUFFIX)
    if not sidecar.exists():
        return {}
    try:
        meta = yaml.safe_load(sidecar.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise CorruptDocument(f"its metadata file {sidecar.name} is not valid YAML: {exc}") from exc
    if not isinstance(meta, dict):
        raise CorruptDocument(f"its metadata file {sidecar.name} is not a mapping")
    return meta


def _export_lines(rel: str, data: bytes) -> Iterator[RawDocument | FailedFile]:
    """A JSONL export: one article per line with ``body`` (Markdown) and its metadata."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        yield FailedFile(rel, CorruptDocument("a JSONL export must be UTF-8"))
        return
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        source = f"{rel}#{lineno}"
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            yield FailedFile(source, CorruptDocument(f"line {lineno} is not valid JSON: {exc.msg}"))
            continue
        body = record.pop("body", None) if isinstance(record, dict) else None
        if not isinstance(body, str) or not body.strip():
            yield FailedFile(source, EmptyDocument(f"line {lineno} has no text in 'body'"))
            continue
        record.setdefault("id", f"{PurePosixPath(rel).with_suffix('').as_posix()}#{lineno}")
        yield RawDocument(source=source, fmt="md", data=b"", meta=record, text=body)


@lru_cache(maxsize=256)
def _glob_regex(pattern: str) -> re.Pattern[str]:
    out, i = [], 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif pattern[i] == "*":
            out.append("[^/]*")
            i += 1
        elif pattern[i] == "?":
            out.append("[^/]")
            i += 1
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    return re.compile("".join(out) + r"\Z")


def glob_match(rel_path: str, pattern: str) -> bool:
    """Match a relative POSIX path against a glob where ``**/`` spans any number of folders."""
    return _glob_regex(pattern).match(rel_path) is not None
