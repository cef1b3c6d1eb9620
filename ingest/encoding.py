"""Bytes to text: UTF-8 first (with or without BOM), then detection (cp1251, koi8-r, …).

Binary files under a text name (an image or a program saved as ``.md``) are refused by their
signature or by the share of control characters, before any parser sees them.
"""

from __future__ import annotations

from charset_normalizer import from_bytes

from kb_engine.errors import UndecodableDocument

_SIGNATURES = (
    (b"\x7fELF", "an ELF executable"),
    (b"MZ\x90\x00", "a Windows executable"),
    (b"\x89PNG", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF87a", "a GIF image"),
    (b"GIF89a", "a GIF image"),
    (b"%PDF-", "a PDF document"),
    (b"PK\x03\x04", "a zip archive (DOCX? XLSX?)"),
    (b"\xd0\xcf\x11\xe0", "an old Office document (DOC? XLS?)"),
    (b"\x1f\x8b\x08", "gzip-compressed data"),
    (b"7z\xbc\xaf", "a 7-Zip archive"),
    (b"Rar!\x1a\x07", "a RAR archive"),
)
_CONTROL = frozenset(chr(c) for c in [*range(32), 127]) - set("\t\n\r\f\v")
MAX_CONTROL_SHARE = 0.01


def decode(data: bytes) -> str:
    for magic, what in _SIGNATURES:
        if data.startswith(magic):
            raise UndecodableDocument(f"binary content ({what}) in a text file: check the file's extension")
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return check_text(data.decode("utf-16"))
        except UnicodeDecodeError as exc:
            raise UndecodableDocument("starts with a UTF-16 mark but is not UTF-16 text") from exc
    try:
        return check_text(data.decode("utf-8-sig"))
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
    return check_text(text)


def check_text(text: str) -> str:
    """``text``, unless it is binary data that happens to decode (NULs, control characters)."""
    sample = text[:100_000]
    if "\x00" in sample:
        raise UndecodableDocument("binary content in a text file (NUL bytes)")
    controls = sum(ch in _CONTROL for ch in sample)
    if sample and controls / len(sample) > MAX_CONTROL_SHARE:
        raise UndecodableDocument(
            f"binary content in a text file ({controls / len(sample):.0%} control characters)"
        )
    return text


def _mostly_garbage(text: str) -> bool:
    sample = text[:20000]
    if not sample:
        return False
    readable = sum(ch.isalnum() or ch.isspace() or ch in ".,;:!?-–—«»\"'()[]<>/=#*&%+|_№₽" for ch in sample)
    return readable / len(sample) < 0.85
