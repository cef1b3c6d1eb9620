"""External datasets (BEIR folders, SQuAD JSON) as a corpus folder the ingestor reads, plus questions.

Both importers return the same thing: passages (id, title, text) and questions (id, question, gold
passage ids, gold answer spans, answerable). ``write_corpus`` turns the passages into one Markdown
file each, with front matter (``id``, ``title``, ``audience: all``, ``category``, ``type``), so the
corpus goes through the same parsing, chunking and indexing as the help centre does.

Passage ids: BEIR keeps the corpus ``_id``; SQuAD has none, so a paragraph is
``<article-title-slug>-<paragraph index>`` (``super-bowl-50-0``), stable across runs.
A malformed file is a ``ConfigError`` naming the file, the place in it and what is wrong.
"""

from __future__ import annotations

import csv
import hashlib
import json
import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from kb_engine.errors import ConfigError

log = logging.getLogger(__name__)

CORPUS_MARKER = ".kb-external-corpus"  # hidden, so the ingestor skips it


@dataclass(frozen=True)
class CorpusPassage:
    id: str
    title: str
    text: str


@dataclass(frozen=True)
class ExternalQuestion:
    id: str
    question: str
    gold: tuple[str, ...]  # passage ids that answer it (empty for an unanswerable question)
    answers: tuple[str, ...] = ()  # gold answer spans (SQuAD); none for BEIR
    answerable: bool = True


@dataclass(frozen=True)
class ExternalDataset:
    name: str
    passages: list[CorpusPassage]
    questions: list[ExternalQuestion]


# --- SQuAD ---


def load_squad(path: Path) -> ExternalDataset:
    """A SQuAD v1.1 / v2.0 JSON file: ``data[].paragraphs[].{context, qas[]}``; v2 ``is_impossible``
    questions are unanswerable (no gold passage, no answers)."""
    root = _read_json(path)
    data = root.get("data") if isinstance(root, dict) else None
    if not isinstance(data, list):
        raise ConfigError(f"{path.name}: not a SQuAD file: expected an object with a 'data' list")
    passages: list[CorpusPassage] = []
    questions: list[ExternalQuestion] = []
    slugs: set[str] = set()
    seen_questions: set[str] = set()
    for a, article in enumerate(data):
        where = f"{path.name}: data[{a}]"
        paragraphs = article.get("paragraphs") if isinstance(article, dict) else None
        if not isinstance(paragraphs, list):
            raise ConfigError(f"{where}: expected an object with a 'paragraphs' list")
        title = str(article.get("title") or f"article {a}").replace("_", " ").strip()
        slug = slugify(title) or f"article-{a}"
        if slug in slugs:  # two titles that slug alike: the later one gets its position
            slug = f"{slug}-a{a}"
        slugs.add(slug)
        for p, paragraph in enumerate(paragraphs):
            at = f"{where}.paragraphs[{p}]"
            context = _text(paragraph.get("context") if isinstance(paragraph, dict) else None)
            if not context:
                raise ConfigError(f"{at}: 'context' must be a non-empty string")
            passage = CorpusPassage(f"{slug}-{p}", title, context)
            passages.append(passage)
            qas = paragraph.get("qas", [])
            if not isinstance(qas, list):
                raise ConfigError(f"{at}: 'qas' must be a list")
            for q, qa in enumerate(qas):
                question = _squad_question(qa, passage.id, f"{at}.qas[{q}]")
                if question.id in seen_questions:
                    raise ConfigError(f"{at}.qas[{q}]: duplicate question id {question.id!r}")
                seen_questions.add(question.id)
                questions.append(question)
    return ExternalDataset(path.stem, passages, questions)


def _squad_question(qa: Any, passage_id: str, where: str) -> ExternalQuestion:
    if not isinstance(qa, dict):
        raise ConfigError(f"{where}: expected an object with 'id', 'question' and 'answers'")
    qid, question = qa.get("id"), _text(qa.get("question"))
    if not isinstance(qid, str | int) or str(qid) == "":
        raise ConfigError(f"{where}: 'id' must be a non-empty string")
    if not question:
        raise ConfigError(f"{where}: 'question' must be a non-empty string")
    answers = qa.get("answers", [])
    if not isinstance(answers, list) or not all(
        isinstance(x, dict) and isinstance(x.get("text"), str) for x in answers
    ):
        raise ConfigError(f"{where}: 'answers' must be a list of objects with a 'text' string")
    impossible = bool(qa.get("is_impossible", False))
    spans = tuple(dict.fromkeys(t for x in answers if (t := x["text"].strip())))
    if not impossible and not spans:
        raise ConfigError(f"{where}: an answerable question needs at least one answer text")
    if impossible:
        return ExternalQuestion(str(qid), question, (), (), answerable=False)
    return ExternalQuestion(str(qid), question, (passage_id,), spans)


# --- BEIR ---


def load_beir(folder: Path, split: str = "test") -> ExternalDataset:
    """A BEIR dataset folder: ``corpus.jsonl``, ``queries.jsonl`` and ``qrels/<split>.tsv``.
    The questions are the queries with at least one relevant (score > 0) document in the split."""
    if not folder.is_dir():
        raise ConfigError(f"{folder}: a BEIR dataset is a folder with corpus.jsonl, queries.jsonl, qrels/")
    qrels_path = folder / "qrels" / f"{split}.tsv"
    if not qrels_path.exists():
        splits = sorted(p.stem for p in (folder / "qrels").glob("*.tsv"))
        raise ConfigError(f"{qrels_path}: no such split {split!r} (available: {', '.join(splits) or 'none'})")
    passages: list[CorpusPassage] = []
    ids: set[str] = set()
    for where, record in _jsonl(folder / "corpus.jsonl"):
        pid, text, title = record.get("_id"), _text(record.get("text")), _text(record.get("title"))
        if not isinstance(pid, str | int) or str(pid) == "":
            raise ConfigError(f"{where}: '_id' must be a non-empty string")
        if str(pid) in ids:
            raise ConfigError(f"{where}: duplicate document id {pid!r}")
        ids.add(str(pid))
        if not text and not title:
            log.warning("%s: document %s has no text; left out", where, pid)
            continue
        passages.append(CorpusPassage(str(pid), title or _lead(text), text or title))
    queries: dict[str, str] = {}
    for where, record in _jsonl(folder / "queries.jsonl"):
        qid, text = record.get("_id"), _text(record.get("text"))
        if not isinstance(qid, str | int) or str(qid) == "" or not text:
            raise ConfigError(f"{where}: a query needs a non-empty '_id' and 'text'")
        queries[str(qid)] = text
    relevant = _qrels(qrels_path, set(queries), ids)
    kept = {p.id for p in passages}
    questions = [
        ExternalQuestion(qid, text, tuple(d for d in relevant[qid] if d in kept))
        for qid, text in queries.items()
        if qid in relevant
    ]
    return ExternalDataset(folder.name, passages, [q for q in questions if q.gold])


def _qrels(path: Path, queries: set[str], docs: set[str]) -> dict[str, list[str]]:
    relevant: dict[str, list[str]] = {}
    with path.open(encoding="utf-8", newline="") as fh:
        for lineno, row in enumerate(csv.reader(fh, delimiter="\t"), start=1):
            if not row or not "".join(row).strip():
                continue
            where = f"{path.parent.name}/{path.name}:{lineno}"
            if len(row) < 3:
                raise ConfigError(f"{where}: expected query-id, corpus-id, score separated by tabs")
            qid, did, score = row[0].strip(), row[1].strip(), row[2].strip()
            try:
                value = float(score)
            except ValueError:
                if lineno == 1:
                    continue  # the header line
                raise ConfigError(f"{where}: score {score!r} is not a number") from None
            if qid not in queries:
                raise ConfigError(f"{where}: query id {qid!r} is not in queries.jsonl")
            if did not in docs:
                raise ConfigError(f"{where}: corpus id {did!r} is not in corpus.jsonl")
            if value > 0 and did not in relevant.setdefault(qid, []):
                relevant[qid].append(did)
    return relevant


# --- the corpus folder ---


def write_corpus(passages: list[CorpusPassage], target: Path, category: str = "external") -> list[Path]:
    """One Markdown file per passage in ``target``. Files of passages no longer in the list are
    removed, but only from a folder this function wrote (it leaves a marker): never someone's notes."""
    target.mkdir(parents=True, exist_ok=True)
    marker = target / CORPUS_MARKER
    existing = {p for p in target.rglob("*") if p.is_file() and p != marker}
    if existing and not marker.exists():
        raise ConfigError(
            f"{target} is not empty and was not written by the external-dataset importer: use an empty folder"
        )
    marker.write_text("written by eval.importers.write_corpus; files here are replaced\n", encoding="utf-8")
    written: list[Path] = []
    for passage in passages:
        path = target / _file_name(passage.id)
        content = _markdown(passage, category)
        if not path.exists() or path.read_text(encoding="utf-8") != content:
            path.write_text(content, encoding="utf-8")
        written.append(path)
    for stale in existing - set(written):
        stale.unlink()
    return written


def _markdown(passage: CorpusPassage, category: str) -> str:
    meta = {
        "id": passage.id,
        "title": passage.title,
        "audience": "all",
        "category": category,
        "type": "passage",
    }
    front = yaml.safe_dump(meta, allow_unicode=True, sort_keys=False, width=10_000)
    return f"---\n{front}---\n{markdown_body(passage.text)}\n"


_MD_SPECIAL = re.compile(r"([\\`*_\[\]{}()#+!|>-])")
_LIST_NUMBER = re.compile(r"^(\d+)([.)])")


def markdown_body(text: str) -> str:
    """Plain text as Markdown that renders back to the same words: every line its own paragraph,
    Markdown's special characters escaped (a ``*`` in a passage is not emphasis)."""
    lines = []
    for raw in text.splitlines():
        line = " ".join(raw.split())
        if not line:
            continue
        line = _MD_SPECIAL.sub(r"\\\1", line.replace("&", "&amp;").replace("<", "&lt;"))
        lines.append(_LIST_NUMBER.sub(r"\1\\\2", line))
    return "\n\n".join(lines)


def _file_name(passage_id: str) -> str:
    """A safe, unique file name: readable slug plus a short hash of the exact id."""
    digest = hashlib.sha256(passage_id.encode("utf-8")).hexdigest()[:8]
    return f"{(slugify(passage_id) or 'p')[:80]}-{digest}.md"


def slugify(text: str) -> str:
    """Lower case, letters and digits of any script, runs of anything else as one ``-``."""
    return re.sub(r"[\W_]+", "-", text.lower().replace("ё", "е")).strip("-")


# --- reading ---


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8-sig"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such file") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(f"{path.name}: not valid UTF-8 JSON: {exc}") from exc


def _jsonl(path: Path) -> Iterator[tuple[str, dict[str, Any]]]:
    if not path.exists():
        raise ConfigError(f"{path}: no such file (a BEIR folder has corpus.jsonl and queries.jsonl)")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path.name}: not UTF-8 text: {exc}") from None
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{path.name}:{lineno}"
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"{where}: not valid JSON: {exc.msg}") from None
        if not isinstance(record, dict):
            raise ConfigError(f"{where}: expected a JSON object")
        yield where, record


def _text(value: Any) -> str:
    return value.replace("\ufeff", "").strip() if isinstance(value, str) else ""


def _lead(text: str, limit: int = 80) -> str:
    """A title for a passage without one: its opening words."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[:limit].rsplit(" ", 1)[0] + " …"
