"""Chunking invariants: no text lost or repeated, bounds respected, ids stable, sections kept."""

from __future__ import annotations

import itertools

from hypothesis import given, settings
from hypothesis import strategies as st

from ingest.chunking import ChunkingParams, chunk_document
from ingest.parse import ParsedDocument, Section
from kb_engine.schema import DocMeta
from kb_engine.tokens import count_tokens

META = DocMeta(doc_id="doc", source="doc.md", title="Документ")

words = st.sampled_from(
    [
        "возврат",
        "товара",
        "в",
        "течение",
        "14",
        "дней.",
        "Оплата",
        "картой",
        "МИР",
        "—",
        "Профиль",
        "→",
        "Заказы.",
        "Сверхдлинноесловобезпробеловкотороенепомещаетсявлимит" * 3,
        "«Самобранка»",
        "!",
        "ёж",
    ]
)
block = st.lists(words, min_size=1, max_size=400).map(" ".join)
section = st.builds(
    lambda path, blocks: Section(tuple(path), blocks),
    st.lists(st.sampled_from(["Условия", "Сроки", "Как оформить"]), max_size=3),
    st.lists(block, min_size=1, max_size=6),
)
params = st.builds(
    lambda t, extra, o: ChunkingParams(target=t, max_tokens=t + extra, overlap=min(o, t - 1)),
    st.integers(32, 300),
    st.integers(0, 200),
    st.integers(0, 60),
)


def collapse(items: list[tuple[str, ...]]) -> list[tuple[str, ...]]:
    return [x for i, x in enumerate(items) if i == 0 or items[i - 1] != x]


def squash(text: str) -> str:
    return "".join(text.split())


@settings(max_examples=120, deadline=None)
@given(st.lists(section, min_size=1, max_size=4), params)
def test_chunks_partition_the_text_within_bounds(sections: list[Section], p: ChunkingParams) -> None:
    doc = ParsedDocument(META, sections)
    chunks = chunk_document(doc, p)

    # No text lost, none repeated, order kept (whitespace aside: splits happen at whitespace).
    assert squash("".join(c.text for c in chunks)) == squash("".join(b for s in sections for b in s.blocks))
    for c in chunks:
        assert count_tokens(c.text) <= p.max_tokens
        assert c.tokens == count_tokens(c.text)
        assert count_tokens(c.context) <= max(p.overlap, 0) or not c.context
    # Heading-aware: each chunk lies in one section, sections appear in order.
    assert collapse([c.section for c in chunks]) == collapse([s.path for s in sections])
    assert [c.position for c in chunks] == list(range(len(chunks)))
    assert len({c.id for c in chunks}) == len(chunks)


@settings(max_examples=40, deadline=None)
@given(st.lists(section, min_size=1, max_size=3))
def test_ids_are_stable_and_content_derived(sections: list[Section]) -> None:
    doc = ParsedDocument(META, sections)
    first = chunk_document(doc, ChunkingParams())
    again = chunk_document(
        ParsedDocument(META, [Section(s.path, list(s.blocks)) for s in sections]), ChunkingParams()
    )
    assert [c.id for c in first] == [c.id for c in again]
    assert first[0].doc_hash == again[0].doc_hash


def test_an_edit_changes_only_the_edited_chunks_and_the_document_hash() -> None:
    blocks = [f"Абзац номер {i}. " + "Текст о сроках возврата товара и денег. " * 20 for i in range(6)]
    p = ChunkingParams(target=120, max_tokens=200, overlap=0)
    before = chunk_document(ParsedDocument(META, [Section(("Раздел",), blocks)]), p)
    edited = [*blocks[:-1], blocks[-1].replace("денег", "средств")]
    after = chunk_document(ParsedDocument(META, [Section(("Раздел",), edited)]), p)
    assert before[0].doc_hash != after[0].doc_hash
    changed = {c.id for c in after} - {c.id for c in before}
    assert 0 < len(changed) < len(after)


def test_context_is_the_tail_of_the_previous_chunk_of_the_same_section() -> None:
    blocks = [
        f"Пункт {i}: заявку на возврат нужно отнести в пункт выдачи в течение 7 дней." for i in range(40)
    ]
    chunks = chunk_document(
        ParsedDocument(META, [Section(("А",), blocks), Section(("Б",), ["Короткий."])]),
        ChunkingParams(target=60, max_tokens=90, overlap=20),
    )
    in_a = [c for c in chunks if c.section == ("А",)]
    assert len(in_a) > 2
    assert in_a[0].context == ""
    for prev, cur in itertools.pairwise(in_a):
        assert cur.context and prev.text.endswith(cur.context)
    assert chunks[-1].section == ("Б",) and chunks[-1].context == ""
