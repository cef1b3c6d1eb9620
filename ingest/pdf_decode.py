"""Bounded stream decoding for pdfminer: a PDF cannot expand a thousandfold in memory.

pdfminer decodes a stream in one call (``zlib.decompress``, LZW, RunLength), so a 1 MB Flate
stream of zeros becomes 1 GB before any check could run, and a 20 MB file 20 GB. Its decoders are
module attributes of ``pdfminer.pdftypes``; ``install`` swaps them for versions that stop at the
bytes the current document still has (``decode_budget``). Nothing else of pdfminer changes, and
a document within the budget decodes to the very same bytes.
"""

from __future__ import annotations

import threading
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from io import BytesIO
from typing import Any

MAX_DECODED_BYTES = 256_000_000  # all streams of one document together


class DecodeLimitExceeded(Exception):
    def __init__(self, limit: int) -> None:
        super().__init__(f"streams decode to more than {limit / 1e6:.0f} MB")
        self.limit = limit


class _Budget(threading.local):
    remaining: int | None = None
    limit: int = 0


_budget = _Budget()


@contextmanager
def decode_budget(limit: int | None = None) -> Iterator[None]:
    """Within the block, this thread's pdfminer decodes at most ``limit`` bytes in total
    (``MAX_DECODED_BYTES`` by default)."""
    install()
    limit = MAX_DECODED_BYTES if limit is None else limit
    outer = (_budget.remaining, _budget.limit)
    _budget.remaining, _budget.limit = limit, limit
    try:
        yield
    finally:
        _budget.remaining, _budget.limit = outer


def _allowance() -> int:
    if _budget.remaining is None:  # pdfminer used outside ``decode_budget``: one budget per stream
        return MAX_DECODED_BYTES
    return _budget.remaining


def _charge(n: int) -> None:
    if _budget.remaining is not None:
        _budget.remaining -= n


def _over() -> DecodeLimitExceeded:
    return DecodeLimitExceeded(_budget.limit if _budget.remaining is not None else MAX_DECODED_BYTES)


class _BoundedDecompressor:
    """``zlib.decompressobj()`` whose output counts against the budget."""

    def __init__(self, *args: Any) -> None:
        self._inner = zlib.decompressobj(*args)

    def decompress(self, data: bytes, max_length: int = 0) -> bytes:
        allowance = _allowance()
        limit = allowance + 1 if not max_length else min(max_length, allowance + 1)
        out = self._inner.decompress(data, limit)
        if len(out) > allowance:
            raise _over()
        _charge(len(out))
        return out

    def flush(self, *args: Any) -> bytes:
        return self._inner.flush(*args)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


class _BoundedZlib:
    """Stands in for the ``zlib`` module inside ``pdfminer.pdftypes``."""

    error = zlib.error

    @staticmethod
    def decompress(data: bytes, *args: Any) -> bytes:
        d = _BoundedDecompressor()
        out = d.decompress(data)
        if not d.eof:  # what zlib.decompress says about a truncated stream
            raise zlib.error("Error -5 while decompressing data: incomplete or truncated stream")
        return out

    @staticmethod
    def decompressobj(*args: Any) -> _BoundedDecompressor:
        return _BoundedDecompressor(*args)


def _lzwdecode(data: bytes) -> bytes:
    from pdfminer.lzw import LZWDecoder

    allowance, out = _allowance(), bytearray()
    for piece in LZWDecoder(BytesIO(data)).run():
        out += piece
        if len(out) > allowance:
            raise _over()
    _charge(len(out))
    return bytes(out)


def _rldecode(data: bytes) -> bytes:
    """RunLength (PDF 1.4, 3.3.4): a length byte, then 1–128 literal bytes or one byte repeated."""
    allowance, out, i = _allowance(), bytearray(), 0
    while i < len(data):
        length = data[i]
        i += 1
        if length == 128:
            break
        if length < 128:
            out += data[i : i + length + 1]
            i += length + 1
        else:
            out += data[i : i + 1] * (257 - length)
            i += 1
        if len(out) > allowance:
            raise _over()
    _charge(len(out))
    return bytes(out)


@lru_cache(maxsize=1)
def install() -> None:
    import pdfminer.pdftypes as pdftypes

    pdftypes.zlib = _BoundedZlib  # type: ignore[assignment]
    pdftypes.lzwdecode = _lzwdecode
    pdftypes.rldecode = _rldecode
