"""Limits that keep one hostile or broken file from taking the whole batch down.

Each check runs before the expensive step it protects and fails with a ``DocumentError`` that
names the limit, so the file is reported and the rest of the batch goes on:

- ``check_doc_id``: ids from metadata (front matter, meta tags, sidecars, export lines);
- ``check_docx``: a DOCX is a zip, and a zip can expand a thousandfold (a "zip bomb");
- ``check_html_depth``: libxml2 stops at 256 levels of nesting and silently drops the rest;
- ``time_limit``: a parser that goes quadratic on crafted input (Python-Markdown does on
  thousands of unclosed ``[``) is stopped when the document's time is up.
"""

from __future__ import annotations

import ctypes
import io
import re
import threading
import zipfile
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from kb_engine.errors import DocumentError

T = TypeVar("T")

MAX_ID_CHARS = 200
MAX_DOCX_UNPACKED_BYTES = 50_000_000  # all parts together, uncompressed
MAX_ZIP_RATIO = 100  # uncompressed/compressed of one part, checked for parts over the size below
ZIP_RATIO_MIN_BYTES = 5_000_000
MAX_DOCX_PARTS = 5_000
MAX_HTML_DEPTH = 255  # libxml2's own limit without XML_PARSE_HUGE; deeper content is dropped
PARSE_SECONDS = 30.0  # time to parse one document: this much plus PARSE_SECONDS_PER_MB per MB
PARSE_SECONDS_PER_MB = 15.0


class UnsafeDocument(DocumentError):
    """A file refused for what it would do to the process or the index, not for its content."""

    reason = "unsafe"


class ParseTimeout(DocumentError):
    reason = "timeout"


# Letters and digits of any script, ``_ - . : # @ +``; no path separators, spaces or controls.
_ID = re.compile(r"[\w.:#@+-]+")


def check_doc_id(value: object) -> str:
    """A document id given in metadata, as the index will store it; refused when it could be
    mistaken for a path (``..``, ``/``, ``\\``) or carries invisible characters."""
    doc_id = str(value).strip()
    shown = repr(doc_id[:60] + ("…" if len(doc_id) > 60 else ""))
    if not doc_id:
        raise UnsafeDocument("the id is empty: give the document an id or remove the field")
    if len(doc_id) > MAX_ID_CHARS:
        raise UnsafeDocument(f"the id {shown} is {len(doc_id)} characters long (limit {MAX_ID_CHARS})")
    if not _ID.fullmatch(doc_id) or ".." in doc_id:
        raise UnsafeDocument(
            f"the id {shown} is not allowed: use letters, digits and - _ . : # @ + "
            "(no '..', slashes, spaces or control characters)"
        )
    return doc_id


def check_docx(data: bytes) -> None:
    """Refuse a DOCX whose parts would unpack to more than the limits, before unpacking any.

    The sizes come from the archive's central directory; Python's zipfile never returns more
    bytes than a part declares, so a lying header cannot get past this either."""
    try:
        parts = zipfile.ZipFile(io.BytesIO(data)).infolist()
    except (zipfile.BadZipFile, ValueError, OSError):
        return  # not a zip at all: the DOCX reader reports it as corrupt
    if len(parts) > MAX_DOCX_PARTS:
        raise UnsafeDocument(f"docx has {len(parts)} parts (limit {MAX_DOCX_PARTS}): zip bomb?")
    total = sum(p.file_size for p in parts)
    if total > MAX_DOCX_UNPACKED_BYTES:
        raise UnsafeDocument(
            f"docx expands to {human_bytes(total)} (limit {human_bytes(MAX_DOCX_UNPACKED_BYTES)}): zip bomb?"
        )
    for part in parts:
        ratio = part.file_size / max(part.compress_size, 1)
        if part.file_size > ZIP_RATIO_MIN_BYTES and ratio > MAX_ZIP_RATIO:
            raise UnsafeDocument(
                f"docx part {part.filename} expands {ratio:.0f} times to {human_bytes(part.file_size)} "
                f"(limit {MAX_ZIP_RATIO} times): zip bomb?"
            )


def check_html_depth(error_log: Iterable[Any]) -> None:
    """After lxml parsed HTML: refuse it if libxml2 stopped at its nesting limit, since everything
    after the deepest point was dropped without a word."""
    for entry in error_log:
        if "Excessive depth" in entry.message:
            raise UnsafeDocument(
                f"elements are nested more than {MAX_HTML_DEPTH} levels deep (unclosed HTML tags? "
                "quotes in quotes?): the parser would drop everything after that point; fix the file"
            )


def human_bytes(n: float) -> str:
    return f"{n / 1e9:.1f} GB" if n >= 1e9 else f"{n / 1e6:.0f} MB"


def parse_seconds(size_bytes: int) -> float:
    return PARSE_SECONDS + PARSE_SECONDS_PER_MB * size_bytes / 1e6


class _Expired(BaseException):
    """Raised inside the parsing thread when its time is up. A BaseException, like
    KeyboardInterrupt, so that a library's ``except Exception`` fallback cannot swallow it."""


def time_limit(seconds: float, work: Callable[[], T]) -> T:
    """``work()``, stopped with ``ParseTimeout`` after ``seconds``.

    A watchdog thread raises an exception in the calling thread, the way Ctrl+C does: it takes
    effect at the next Python instruction, so pure-Python parsers (Markdown, pdfminer) are
    stopped mid-loop; a long call into C finishes first (those are bounded by size limits).
    Without CPython's C API (other interpreters) the work runs unbounded."""
    watchdog = _Watchdog(threading.get_ident(), seconds)
    try:
        try:
            watchdog.start()
            return work()
        finally:
            watchdog.disarm()
    except _Expired:
        raise ParseTimeout(
            f"parsing took longer than {seconds:.0f} s: the file is built to be slow to parse "
            "(thousands of unclosed brackets or nested lists?); simplify or split it"
        ) from None


class _Watchdog:
    """Fires at most once, and never after ``disarm``: the lock orders firing and disarming."""

    def __init__(self, thread_id: int, seconds: float) -> None:
        self.thread_id = thread_id
        self.lock = threading.Lock()
        self.armed = True
        self.fired = False
        self.timer = threading.Timer(seconds, self._fire)
        self.timer.daemon = True

    def start(self) -> None:
        if hasattr(ctypes, "pythonapi"):
            self.timer.start()

    def _fire(self) -> None:
        with self.lock:
            if self.armed:
                self.fired = _set_async_exc(self.thread_id, _Expired)

    def disarm(self) -> None:
        self.timer.cancel()
        with self.lock:
            self.armed = False
            if self.fired:  # raised but perhaps not yet delivered: withdraw it
                _set_async_exc(self.thread_id, None)


def _set_async_exc(thread_id: int, exc: type[BaseException] | None) -> bool:
    set_exc = ctypes.pythonapi.PyThreadState_SetAsyncExc
    changed = set_exc(ctypes.c_ulong(thread_id), ctypes.py_object(exc) if exc else None)
    if changed > 1:  # cannot happen for one thread id; undo rather than hit others
        set_exc(ctypes.c_ulong(thread_id), None)
        return False
    return bool(changed)
