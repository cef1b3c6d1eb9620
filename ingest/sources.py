"""Where documents come from: a directory tree (with include/exclude globs) or a JSONL export.

A source yields ``RawDocument``s, or ``DocumentError``s for files it cannot even read, so that one
bad file is reported and the rest of the batch goes on.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import stat
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path, PurePosixPath
from typing import Any

import yaml

from ingest.guards import UnsafeDocument
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
MAX_SIDECAR_BYTES = 1_000_000


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
        """Matching entries of the tree that are not folders: symbolic links and special files
        are listed too, so that ``read`` can say why it skips them. The walk itself never
        follows a link to a folder and never opens anything."""
        if not self.path.is_dir():
            return [self.path]
        found = []
        for candidate in sorted(self.path.rglob("*")):
            try:
                if stat.S_ISDIR(candidate.lstat().st_mode):
                    continue
            except OSError:
                continue  # vanished during the walk
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
            target = self._target(path)
            data = read_regular_file(target, self.max_bytes)
            if fmt == "jsonl":
                yield from _export_lines(rel, data)
                return
            yield RawDocument(source=rel, fmt=fmt, data=data, meta=self._sidecar(path))
        except DocumentError as exc:
            yield FailedFile(rel, exc)
        except OSError as exc:
            yield FailedFile(rel, CorruptDocument(f"cannot read the file: {exc.strerror or exc}"))

    def _target(self, path: Path) -> Path:
        """The file to open for ``path``: a symbolic link in a folder source is followed only to
        a file inside that folder (a link to /etc/passwd must not end up in the index)."""
        if not path.is_symlink() or not self.path.is_dir():
            return path
        try:
            target = path.resolve(strict=True)
        except (OSError, RuntimeError) as exc:  # dangling, or a loop of links
            raise CorruptDocument("a symbolic link to a file that does not exist") from exc
        if not target.is_relative_to(self.path.resolve()):
            raise UnsafeDocument(
                f"a symbolic link to {target}, outside the ingested folder: not followed; "
                "copy the file into the folder if it belongs there"
            )
        return target

    def _sidecar(self, path: Path) -> dict[str, Any]:
        """Metadata for formats without front matter (DOCX, PDF): ``<file>.meta.yaml`` beside it."""
        sidecar = path.with_name(path.name + SIDECAR_SUFFIX)
        if not sidecar.is_symlink() and not sidecar.exists():
            return {}
        try:
            data = read_regular_file(self._target(sidecar), MAX_SIDECAR_BYTES, setting="")
            meta = yaml.safe_load(data.decode("utf-8"))
        except EmptyDocument as exc:
            raise CorruptDocument(f"its metadata file {sidecar.name} is empty") from exc
        except DocumentError as exc:
            raise type(exc)(f"its metadata file {sidecar.name}: {exc}") from exc
        except (yaml.YAMLError, UnicodeDecodeError) as exc:
            raise CorruptDocument(f"its metadata file {sidecar.name} is not valid YAML: {exc}") from exc
        if not isinstance(meta, dict):
            raise CorruptDocument(f"its metadata file {sidecar.name} is not a mapping")
        return meta


def read_regular_file(path: Path, max_bytes: int, setting: str = "KB_MAX_FILE_MB") -> bytes:
    """The bytes of a regular file of at most ``max_bytes``. Anything else (a named pipe, a
    device) is refused without opening it, so a FIFO in the tree cannot block the run."""
    _check_regular(os.stat(path), max_bytes, setting)
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)
    fd = os.open(path, flags)
    with os.fdopen(fd, "rb") as fh:
        _check_regular(os.fstat(fd), max_bytes, setting)  # the file opened is the file checked
        data = fh.read(max_bytes + 1)
    if len(data) > max_bytes:  # it grew since
        raise DocumentTooLarge(_over_limit(len(data), max_bytes, setting))
    if not data:
        raise EmptyDocument("the file is empty")
    return data


def _check_regular(st: os.stat_result, max_bytes: int, setting: str) -> None:
    if not stat.S_ISREG(st.st_mode):
        kind = next((name for test, name in _SPECIAL if test(st.st_mode)), "not a file")
        raise UnsupportedFormat(f"not a regular file ({kind}): skipped")
    if st.st_size > max_bytes:
        raise DocumentTooLarge(_over_limit(st.st_size, max_bytes, setting))
    if st.st_size == 0:
        raise EmptyDocument("the file is empty")


def _over_limit(size: int, max_bytes: int, setting: str) -> str:
    where = f" ({setting})" if setting else ""
    return f"{size / 1e6:.1f} MB is over the {max_bytes / 1e6:.1f} MB limit{where}"


_SPECIAL = (
    (stat.S_ISFIFO, "a named pipe"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISDIR, "a folder"),
)


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
