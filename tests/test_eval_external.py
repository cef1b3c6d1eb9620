"""External datasets: BEIR and SQuAD importers, SQuAD metrics in Russian, a run through the engine."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from eval.external import main, run_external
from eval.importers import load_beir, load_squad, markdown_body, write_corpus
from eval.metrics.squad import exact_match, normalise_answer, span_contained, token_f1
from ingest.parse import parse
from ingest.sources import RawDocument
from kb_engine.config import Settings
from kb_engine.embedding.e5 import E5Embedder
from kb_engine.errors import ConfigError
from tests.conftest import make_runtime, write

PARAGRAPHS = {
    "Байкал": [
        "Байкал — самое глубокое озеро на планете, его наибольшая глубина составляет 1642 метра. "
        "Озеро расположено в Восточной Сибири, на границе Иркутской области и Республики Бурятия. "
        "В Байкал впадает более трёхсот рек, а вытекает только одна — Ангара.",
        "Байкальская нерпа — единственное млекопитающее озера, эндемик Байкала. "
        "Нерпа питается рыбой, в основном голомянкой и бычками, и может нырять на глубину до 300 метров.",
    ],
    "Шахматы": [
        "Шахматы — настольная логическая игра для двух игроков на доске из 64 клеток. "
        "Цель игры — поставить мат королю соперника. Ферзь считается самой сильной фигурой.",
    ],
    "Хлеб": [
        "Для выпечки ржаного хлеба используют закваску, а не дрожжи. "
        "Тесто выдерживают в тепле около четырёх часов, затем пекут при температуре 230 градусов.",
    ],
}


def squad_json(paragraphs: dict[str, list[str]], qas: dict[tuple[str, int], list[dict[str, object]]]) -> str:
    data = [
        {
            "title": title,
            "paragraphs": [{"context": c, "qas": qas.get((title, i), [])} for i, c in enumerate(contexts)],
        }
        for title, contexts in paragraphs.items()
    ]
    return json.dumps({"version": "1.1", "data": data}, ensure_ascii=False)


def qa(qid: str, question: str, *answers: str, impossible: bool = False) -> dict[str, object]:
    out: dict[str, object] = {"id": qid, "question": question, "answers": [{"text": a} for a in answers]}
    if impossible:
        out["is_impossible"] = True
    return out


QAS = {
    ("Байкал", 0): [
        qa("q-depth", "Какова наибольшая глубина Байкала?", "1642 метра"),
        qa("q-river", "Какая река вытекает из Байкала?", "Ангара", "Ангара."),
    ],
    ("Байкал", 1): [qa("q-seal", "Чем питается байкальская нерпа?", "рыбой")],
    ("Шахматы", 0): [
        qa("q-board", "Сколько клеток на шахматной доске?", "64"),
        qa("q-none", "Кто изобрёл шахматы?", impossible=True),
    ],
    ("Хлеб", 0): [qa("q-bread", "При какой температуре пекут ржаной хлеб?", "230 градусов")],
}


# --- importers ---


def test_squad_paragraphs_get_stable_ids_and_v2_impossible_questions(tmp_path: Path) -> None:
    path = write(tmp_path / "mini.json", squad_json(PARAGRAPHS, QAS))
    dataset = load_squad(path)
    assert [p.id for p in dataset.passages] == ["байкал-0", "байкал-1", "шахматы-0", "хлеб-0"]
    assert load_squad(path) == dataset  # stable across runs
    by_id = {q.id: q for q in dataset.questions}
    assert by_id["q-river"].answers == ("Ангара", "Ангара.") and by_id["q-river"].gold == ("байкал-0",)
    impossible = by_id["q-none"]
    assert not impossible.answerable and impossible.gold == () and impossible.answers == ()


def test_beir_folder(tmp_path: Path) -> None:
    corpus = [
        {"_id": "d1", "title": "Возврат", "text": "Вернуть товар можно в течение 14 дней."},
        {"_id": "d2", "title": "", "text": "Курьер привозит заказ с 9 до 21 часа."},
        {"_id": "d3", "title": "Пустой", "text": ""},
    ]
    write(tmp_path / "b" / "corpus.jsonl", "\n".join(json.dumps(d, ensure_ascii=False) for d in corpus))
    queries = [{"_id": "q1", "text": "как вернуть товар"}, {"_id": "q2", "text": "без разметки"}]
    write(tmp_path / "b" / "queries.jsonl", "\n".join(json.dumps(q, ensure_ascii=False) for q in queries))
    write(tmp_path / "b" / "qrels" / "test.tsv", "query-id\tcorpus-id\tscore\nq1\td1\t1\nq1\td2\t0\n")
    dataset = load_beir(tmp_path / "b")
    assert [q.id for q in dataset.questions] == ["q1"]  # q2 has no judgement in this split
    assert dataset.questions[0].gold == ("d1",)  # score 0 is not relevant
    titles = {p.id: p.title for p in dataset.passages}
    assert titles["d1"] == "Возврат" and titles["d2"].startswith("Курьер привозит")
    with pytest.raises(ConfigError, match=r"no such split 'dev' \(available: test\)"):
        load_beir(tmp_path / "b", "dev")


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("broken.json", '{"data": [', "broken.json: not valid UTF-8 JSON"),
        ("list.json", "[]", "list.json: not a SQuAD file"),
        (
            "noctx.json",
            '{"data": [{"title": "A", "paragraphs": [{"qas": []}]}]}',
            r"paragraphs\[0\]: 'context'",
        ),
        (
            "noanswer.json",
            '{"data": [{"title": "A", "paragraphs": [{"context": "Текст.", '
            '"qas": [{"id": "1", "question": "Что?", "answers": []}]}]}]}',
            r"qas\[0\]: an answerable question needs at least one answer",
        ),
    ],
)
def test_malformed_squad_names_the_file_and_the_problem(
    tmp_path: Path, name: str, text: str, message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        load_squad(write(tmp_path / name, text))


def test_malformed_beir_line_is_named(tmp_path: Path) -> None:
    write(tmp_path / "b" / "corpus.jsonl", '{"_id": "d1", "text": "Текст"}\n{"_id": "d2", "text": \n')
    write(tmp_path / "b" / "queries.jsonl", '{"_id": "q1", "text": "вопрос"}\n')
    write(tmp_path / "b" / "qrels" / "test.tsv", "query-id\tcorpus-id\tscore\nq1\td1\t1\n")
    with pytest.raises(ConfigError, match=r"corpus.jsonl:2: not valid JSON"):
        load_beir(tmp_path / "b")


def test_corpus_files_parse_back_to_the_same_words_and_metadata(tmp_path: Path) -> None:
    text = "Цена 5*3 = 15, а *не курсив* и a_b_c # не заголовок <b>\n1. Не список, а строка."
    dataset = load_squad(write(tmp_path / "mini.json", squad_json({"Разное": [text]}, {})))
    [path] = write_corpus(dataset.passages, tmp_path / "corpus", category="mini")
    raw = RawDocument(source=path.name, fmt="md", data=path.read_bytes())
    doc = parse(raw)
    assert doc.meta.doc_id == "разное-0" and doc.meta.category == "mini" and doc.meta.audience == "all"
    assert doc.text.split("\n") == [line.strip() for line in text.splitlines()]
    assert markdown_body("a\n\n\nb") == "a\n\nb"


def test_write_corpus_replaces_its_own_files_but_refuses_a_foreign_folder(tmp_path: Path) -> None:
    dataset = load_squad(write(tmp_path / "mini.json", squad_json(PARAGRAPHS, QAS)))
    first = write_corpus(dataset.passages, tmp_path / "corpus")
    second = write_corpus(dataset.passages[:2], tmp_path / "corpus")
    assert len(first) == 4 and sorted((tmp_path / "corpus").glob("*.md")) == sorted(second)
    write(tmp_path / "notes" / "mine.md", "мои заметки")
    with pytest.raises(ConfigError, match="not empty"):
        write_corpus(dataset.passages, tmp_path / "notes")


# --- SQuAD metrics ---


@pytest.mark.parametrize(
    ("answer", "golds", "em", "contained"),
    [
        ("Ёлка", ["елка"], 1.0, True),
        ("«Ангара».", ["Ангара"], 1.0, True),
        ("Из Байкала вытекает только одна река — Ангара. [1]", ["Ангара"], 0.0, True),
        ("Глубина — 1642 метра [2][3].", ["1642 метра"], 0.0, True),
        ("Их было 3081 [1]", ["308"], 0.0, False),  # whole words only
        ("Цель — мат королю.", ["поставить мат"], 0.0, False),
        ("", ["Ангара"], 0.0, False),
    ],
)
def test_squad_metrics_on_russian_answers(answer: str, golds: list[str], em: float, contained: bool) -> None:
    assert exact_match(answer, golds) == em
    assert span_contained(answer, golds) is contained


def test_token_f1_partial_overlap_and_max_over_golds() -> None:
    assert normalise_answer("  Зелёная, ЁЛКА! [1] ") == "зеленая елка"
    assert token_f1("зелёная ёлка растёт", ["зеленая елка"]) == pytest.approx(0.8)
    assert token_f1("ёлка", ["сосна", "зелёная ёлка"]) == pytest.approx(2 / 3)
    assert token_f1("ничего общего", ["ёлка"]) == 0.0


# --- through the engine ---


def test_run_external_finds_the_gold_paragraph_and_answers(tmp_path: Path, e5: E5Embedder) -> None:
    dataset = load_squad(write(tmp_path / "mini.json", squad_json(PARAGRAPHS, QAS)))
    corpus = tmp_path / "corpus"
    write_corpus(dataset.passages, corpus)
    seen: list[int] = []
    rows, summary = run_external(
        dataset.questions,
        corpus,
        tmp_path / "var",
        settings=Settings(data_dir=tmp_path / "unused"),
        open_rt=lambda s: make_runtime(s, e5),
        progress=lambda done, total: seen.append(done),
    )
    assert seen == list(range(1, len(dataset.questions) + 1))
    assert (tmp_path / "var" / "index").is_dir() and not (tmp_path / "unused").exists()
    by_id = {r["id"]: r for r in rows}
    for qid in ("q-depth", "q-seal", "q-board", "q-bread"):
        assert by_id[qid]["hit@1"] == 1.0, by_id[qid]["ranked"]
    for row in rows:
        if row["answerable"]:  # the drafter quotes the sentence holding the span, cited
            assert row["span_in_passages"] and row["span_forced"], row["forced_answer"]
        if row["answerable"] and row["action"] == "answer":
            assert row["span_contained"] and row["cites_gold"] == 1.0, row["answer"]
    assert "hit@1" not in by_id["q-none"] and "span_contained" not in by_id["q-none"]
    assert summary["ingest"]["new"] == 4 and summary["answerable"] == 5 and summary["unanswerable"] == 1
    for key in (
        "hit@1",
        "hit@5",
        "hit@10",
        "mrr@10",
        "cites_gold",
        "exact_match",
        "f1",
        "span_contained",
        "span_contained_answered",
        "span_in_passages",
        "span_forced",
        "handoff_rate",
        "correct_handoff",
    ):
        assert key in summary, key
    assert summary["hit@1"] == 1.0
    json.dumps(rows, ensure_ascii=False)  # JSONL-friendly


def test_main_reports_a_malformed_dataset_with_exit_code_2(tmp_path: Path) -> None:
    from rich.console import Console

    console = Console(record=True, width=200)
    code = main("squad", write(tmp_path / "bad.json", "{"), tmp_path / "out", None, console)
    assert code == 2 and "bad.json: not valid UTF-8 JSON" in console.export_text()
    assert not (tmp_path / "out").exists()
