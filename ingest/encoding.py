"""Bytes to text: UTF-8 first (with or without BOM), then detection (cp1251, koi8-r, …)."""

from __future__ import annotations

from charset_normalizer import from_bytes

from kb_engine.errors import UndecodableDocument


def decode(data: bytes) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    if b"\x00" in data[:4096]:
        raise UndecodableDocument("binary content in a text file (NUL bytes)")
    best = from_bytes(data, cp_isolation=["cp1251", "koi8_r", "cp866", "mac_cyrillic", "latin_1"]).best()
    if best is None or best.encoding is None:
        raise UndecodableDocument("cannot detect the text encoding (tried UTF-8, cp1251, koi8-r, cp866)")
    text = str(best)
    if _mostly_garbage(text):
        raise UndecodableDocument(f"text decodes as {best.encoding} but is not readable text")
    return text


def _mostly_garbage(text: str) -> bool:
    sample = text[:20000]
    if not sample:
        return False
    readable = sum(ch.isalnum() or ch.isspace() or ch in ".,;:!?-–—«»\"'()[]<>/=#*&%+|_№₽" for ch in sample)
    return readable / len(sample) < 0.85
