"""From raw bytes to a document: metadata and sections with their heading paths.

Markdown, text, HTML and DOCX go through unstructured's partitioners (made to work offline by
``ingest.offline``); PDF goes through pdfminer.six directly, which is what unstructured's own
"fast" PDF strategy uses, without the CUDA-sized ``[pdf]`` extra (see ``ingest.pdf``).
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import PurePosixPath
from typing import Any

import frontmatter
import yaml
from pydantic import ValidationError

from ingest.encoding import check_text, decode
from ingest.guards import (
    UnsafeDocument,
    check_doc_id,
    check_docx,
    check_html_depth,
    parse_seconds,
    time_limit,
)
from ingest.offline import partitioners
from ingest.sources import RawDocument
from kb_engine.errors import CorruptDocument, EmptyDocument
from kb_engine.schema import DocMeta


@dataclass
class Section:
    """A run of blocks under one heading path. Blocks are paragraphs, list items, table rows."""

    path: tuple[str, ...]
    blocks: list[str] = field(default_factory=list)


@dataclass
class ParsedDocument:
    meta: DocMeta
    sections: list[Section]

    @property
    def text(self) -> str:
        return "\n".join(b for s in self.sections for b in s.blocks)


@dataclass(frozen=True)
class Element:
    """The part of an unstructured element we use, so that PDF can produce the same."""

    kind: str  # "title" | "text" | "item" | "table"
    text: str
    depth: int = 0
    ordered: bool = False


def parse(raw: RawDocument, default_locale: str = "ru") -> ParsedDocument:
    """One document, within the time ``ingest.guards.parse_seconds`` allows for its size."""
    if raw.fmt != "pdf":
        partitioners()  # the first call imports unstructured: not the document's time
    size = len(raw.data) + len((raw.text or "").encode())
    try:
        meta, elements = time_limit(parse_seconds(size), lambda: _elements(raw))
    except RecursionError as exc:  # Python-Markdown recurses once per level of nested lists
        raise UnsafeDocument("the document is nested too deeply to parse (lists or quotes?)") from exc
    doc_meta = _doc_meta(raw, meta, elements, default_locale)
    sections = _sections(elements, doc_meta.title)
    if not any(s.blocks for s in sections):
        raise EmptyDocument("no text found in the document")
    return ParsedDocument(doc_meta, sections)


def _elements(raw: RawDocument) -> tuple[dict[str, Any], list[Element]]:
    meta = dict(raw.meta)
    if raw.fmt == "pdf":
        from ingest.pdf import pdf_elements

        return meta, pdf_elements(raw.data)
    parts = partitioners()
    if raw.fmt == "docx":
        check_docx(raw.data)
        try:
            els = parts.docx(file=io.BytesIO(raw.data), languages=["rus"])
        except Exception as exc:  # python-docx raises many kinds for a broken archive
            raise CorruptDocument(f"not a readable DOCX file ({type(exc).__name__})") from exc
        return meta, [e for e in map(_from_unstructured, els) if e]
    text = check_text(raw.text) if raw.text is not None else decode(raw.data)
    if raw.fmt == "html":
        head_meta, body = _html_meta(text)
        meta = {**head_meta, **meta}
        els = parts.html(text=body, languages=["rus"])
        return meta, [e for e in map(_from_unstructured, els) if e]
    if raw.text is None:  # Markdown or text file: front matter, then body
        try:
            post = frontmatter.loads(text)
        except (yaml.YAMLError, ValueError) as exc:
            raise CorruptDocument(f"front matter is not valid YAML: {_first_line(exc)}") from exc
        meta = {**post.metadata, **meta}
        text = post.content
    if not text.strip():
        raise EmptyDocument("the document has no text")
    els = _markdown(text) if raw.fmt == "md" else parts.text(text=text, languages=["rus"])
    ordered = _ordered_items_md(text)
    return meta, [e for e in (_from_unstructured(x, ordered) for x in els) if e]


def _markdown(text: str) -> list[Any]:
    """What unstructured's ``partition_md`` does, with a look at the HTML in between: libxml2
    drops everything past 256 levels of nesting, and a Markdown file can nest quotes that deep."""
    import markdown
    from lxml import html as lxml_html

    html = markdown.markdown(text, extensions=_MARKDOWN_EXTENSIONS)
    parser = lxml_html.HTMLParser()
    lxml_html.document_fromstring(f"<html><body>{html}</body></html>", parser=parser)
    check_html_depth(parser.error_log)
    return list(partitioners().html(text=html, languages=["rus"]))


_MARKDOWN_EXTENSIONS = ["tables", "fenced_code"]  # partition_md's own defaults


def _from_unstructured(el: Any, ordered_md: set[str] | None = None) -> Element | None:
    text = (el.text or "").strip()
    if not text:
        return None
    category = el.category
    depth = el.metadata.category_depth or 0
    if category == "Title":
        return Element("title", text, depth)
    if category == "ListItem":
        return Element("item", text, depth, ordered=bool(ordered_md and text[:60] in ordered_md))
    if category == "Table":
        html = getattr(el.metadata, "text_as_html", None)
        return Element("table", _table_text(html) if html else text)
    if category in {"PageBreak", "Image", "Footer", "Header", "PageNumber"}:
        return None
    return Element("text", text)


_ORDERED_MD = re.compile(r"^\s{0,3}\d{1,3}[.)]\s+(.+)$", re.MULTILINE)


def _ordered_items_md(text: str) -> set[str]:
    """Beginnings of items of numbered lists: unstructured drops the numbers, steps need them."""
    out = set()
    for match in _ORDERED_MD.finditer(text):
        item = re.sub(r"[*_`]", "", match.group(1)).strip()
        out.add(item[:60])
    return out


def _table_text(html: str) -> str:
    from lxml import html as lxml_html

    rows = []
    for tr in lxml_html.fromstring(html).iter("tr"):
        cells = [" ".join(td.text_content().split()) for td in tr if td.tag in ("td", "th")]
        if any(cells):
            rows.append(" | ".join(cells))
    return "\n".join(rows)


def _html_meta(text: str) -> tuple[dict[str, Any], str]:
    """Metadata from ``<meta name>``, ``<title>`` and canonical link; body from <article>/<main>."""
    from lxml import etree
    from lxml import html as lxml_html

    parser = lxml_html.HTMLParser()
    try:
        tree = lxml_html.document_fromstring(text, parser=parser)
    except (etree.ParserError, ValueError) as exc:
        raise CorruptDocument(f"not a readable HTML document: {exc}") from exc
    check_html_depth(parser.error_log)
    meta: dict[str, Any] = {}
    for node in tree.iter("meta"):
        name, content = node.get("name"), node.get("content")
        if name and content and name.lower() in _META_KEYS:
            meta[name.lower()] = content.strip()
    title = tree.find(".//title")
    if title is not None and title.text_content().strip():
        meta.setdefault("title", title.text_content().strip())
    canonical = tree.find(".//link[@rel='canonical']")
    if canonical is not None and canonical.get("href"):
        meta.setdefault("url", canonical.get("href"))
    # Export noise (navigation, footers, feedback widgets) is not content.
    for noise in tree.xpath("//nav | //footer | //script | //style | //header[not(ancestor::article)]"):
        noise.getparent().remove(noise)
    body = next(
        (
            node
            for node in (tree.find(f".//{tag}") for tag in ("article", "main", "body"))
            if node is not None
        ),
        tree,
    )
    html = lxml_html.tostring(body, encoding="unicode")
    return meta, html


_META_KEYS = {
    "id",
    "title",
    "audience",
    "category",
    "type",
    "url",
    "updated",
    "locale",
    "valid_from",
    "valid_until",
    "description",
}


def _doc_meta(raw: RawDocument, meta: dict[str, Any], elements: list[Element], locale: str) -> DocMeta:
    source_path = raw.source.split("#", 1)[0]
    fallback_id = PurePosixPath(source_path).with_suffix("").as_posix()
    title = meta.get("title") or next((e.text for e in elements if e.kind == "title"), None)
    try:
        return DocMeta(
            doc_id=check_doc_id(meta["id"]) if meta.get("id") else fallback_id,
            source=raw.source,
            title=str(title or PurePosixPath(source_path).stem),
            audience=meta.get("audience") or "all",
            category=str(meta.get("category") or "general"),
            doc_type=str(meta.get("type") or "article"),
            url=meta.get("url"),
            locale=str(meta.get("locale") or locale),
            updated=_as_date(meta.get("updated")),
            valid_from=_as_date(meta.get("valid_from")),
            valid_until=_as_date(meta.get("valid_until")),
        )
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise CorruptDocument(f"invalid metadata: {problems}") from exc
    except ValueError as exc:
        raise CorruptDocument(f"invalid metadata: {exc}") from exc


def _as_date(value: Any) -> date | None:
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    return date.fromisoformat(str(value).strip()[:10])


def _sections(elements: list[Element], doc_title: str) -> list[Section]:
    sections: list[Section] = [Section(())]
    stack: list[tuple[int, str]] = []
    step = 0  # number of the current numbered-list item; a non-item ends the list
    for el in elements:
        if el.kind == "title":
            if not stack and not any(s.blocks for s in sections) and _same(el.text, doc_title):
                continue  # the document's own title heading: already in the metadata
            while stack and stack[-1][0] >= el.depth:
                stack.pop()
            stack.append((el.depth, el.text))
            step = 0
            sections.append(Section(tuple(t for _, t in stack)))
            continue
        current = sections[-1]
        step = step + 1 if el.kind == "item" and el.ordered else 0
        if step:
            current.blocks.append(f"{step}. {el.text}")
        elif el.kind == "item":
            current.blocks.append(f"- {el.text}")
        else:
            current.blocks.append(el.text)
    return [s for s in sections if s.blocks]


def _same(a: str, b: str) -> bool:
    return " ".join(a.lower().split()) == " ".join(b.lower().split())


def _first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
