"""PDF to elements with pdfminer.six: bold lines are headings, the rest joins into paragraphs.

unstructured's PDF partitioner needs its ``[pdf]`` extra (a CUDA torch build, about 7 GB); its
"fast" strategy is pdfminer underneath, so we use pdfminer directly and recover the structure
that policy documents have: a title, bold numbered sections, and numbered clauses.

A PDF is bounded three ways: pages (``MAX_PAGES``), bytes its streams decode to
(``ingest.pdf_decode``), and time (``ingest.guards.time_limit``, around all parsing).
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from typing import Any

from ingest.guards import UnsafeDocument
from ingest.pdf_decode import DecodeLimitExceeded, decode_budget
from kb_engine.errors import CorruptDocument, DocumentTooLarge, EmptyDocument

MAX_PAGES = 1000
_CLAUSE = re.compile(r"^(\d+\.)+\d*\s|^\d+\)\s|^[-•–]\s")
_MARGIN = 0.06  # top and bottom share of a page where running headers and page numbers live


@dataclass
class _Line:
    text: str
    bold: bool
    size: float
    top: float
    bottom: float
    page: int


def pdf_elements(data: bytes) -> list:  # list[ingest.parse.Element]
    from pdfminer.high_level import extract_pages
    from pdfminer.pdfparser import PDFSyntaxError
    from pdfminer.psparser import PSException

    from ingest.parse import Element

    try:
        with decode_budget():
            lines = list(_lines(extract_pages(io.BytesIO(data), maxpages=MAX_PAGES + 1)))
    except DecodeLimitExceeded as exc:
        raise UnsafeDocument(f"the PDF's {exc}: decompression bomb?") from exc
    except (PDFSyntaxError, PSException, ValueError, TypeError, KeyError) as exc:
        raise CorruptDocument(f"not a readable PDF file ({type(exc).__name__}: {exc})") from exc
    if not lines:
        raise EmptyDocument("the PDF has no extractable text (a scan without OCR?)")

    heading_sizes = sorted({round(ln.size) for ln in lines if ln.bold}, reverse=True)
    elements: list[Element] = []
    paragraph: list[_Line] = []

    def close_paragraph() -> None:
        if paragraph:
            elements.append(Element("text", _join(ln.text for ln in paragraph)))
            paragraph.clear()

    for line in lines:
        if line.bold:
            close_paragraph()
            depth = heading_sizes.index(round(line.size))
            if elements and elements[-1].kind == "title" and elements[-1].depth == depth:
                prev = elements.pop()  # a heading that wrapped onto two lines
                elements.append(Element("title", _join([prev.text, line.text]), depth))
            else:
                elements.append(Element("title", line.text, depth))
            continue
        if paragraph and _starts_new_paragraph(paragraph[-1], line):
            close_paragraph()
        paragraph.append(line)
    close_paragraph()
    return elements


def _starts_new_paragraph(prev: _Line, line: _Line) -> bool:
    if _CLAUSE.match(line.text):
        return True
    if line.page != prev.page:
        return False
    gap = prev.bottom - line.top
    return gap > 0.8 * line.size


def _lines(pages: Any) -> Any:
    from pdfminer.layout import LTChar, LTTextContainer, LTTextLine

    for number, page in enumerate(pages):
        if number == MAX_PAGES:
            raise DocumentTooLarge(f"the PDF has more than {MAX_PAGES} pages: split it")
        height = page.height or 1
        for box in page:
            if not isinstance(box, LTTextContainer):
                continue
            for line in box:
                if not isinstance(line, LTTextLine):
                    continue
                text = " ".join(line.get_text().split())
                if not text:
                    continue
                if line.y1 < height * _MARGIN or line.y0 > height * (1 - _MARGIN):
                    continue  # running header or footer
                chars = [c for c in line if isinstance(c, LTChar) and c.get_text().strip()]
                if not chars:
                    continue
                bold = all("bold" in c.fontname.lower() for c in chars)
                size = max(c.size for c in chars)
                yield _Line(text, bold, size, top=line.y1, bottom=line.y0, page=number)


def _join(parts: Any) -> str:
    out = ""
    for part in parts:
        part = part.strip()
        if out.endswith("-") and part[:1].islower() and not out.endswith(" -"):
            out = out[:-1] + part  # a word hyphenated across lines
        else:
            out = f"{out} {part}" if out else part
    return out
