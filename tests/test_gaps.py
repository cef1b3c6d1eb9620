from __future__ import annotations

import numpy as np
import pytest

from kb_engine.embedding.e5 import E5Embedder
from kb_engine.gaps import Gap, cluster_gaps, embed_and_cluster

# Three topics the help centre does not cover, asked the way customers ask them.
KAZAKHSTAN = [
    "доставляете в казахстан?",
    "можно заказать доставку в Алматы",
    "а в казахстан доставка есть вообще",
    "как получить заказ в астане",
    "отправляете ли товары в рк (казахстан)",
    "доставка в казахстан сколько стоит и сколько идет",
]
COURIER_JOBS = [
    "есть ли вакансии курьером",
    "как устроиться к вам курьером",
    "хочу работать курьером у вас, куда писать?",
    "ищу работу курьера, вы нанимаете?",
    "вакансия курьер доставки как откликнутся",
]
CRYPTO = [
    "можно оплатить биткоином?",
    "оплата криптовалютой есть?",
    "принимаете оплату в usdt?",
    "можно ли заплатить в крипте btc или usdt",
]
SINGLETONS = [
    "почему приложение вылетает на айфоне",
    "как поменять пароль от личного кабинета",
    "где мой возврат денег уже две недели",
    "не приходит смс с кодом при входе",
]


def seeded() -> list[tuple[str, str]]:
    """Topics interleaved, as they arrive in a real log, with ids that say where each came from."""
    topics = {"kz": KAZAKHSTAN, "job": COURIER_JOBS, "btc": CRYPTO, "one": SINGLETONS}
    rows = [(f"{name}-{i}", text) for name, texts in topics.items() for i, text in enumerate(texts)]
    return sorted(rows, key=lambda r: (int(r[0].split("-")[1]), r[0]))


@pytest.fixture(scope="module")
def gaps(e5: E5Embedder) -> list[Gap]:
    return embed_and_cluster(seeded(), e5)


def test_uncovered_topics_come_out_as_pure_clusters_ranked_by_volume(gaps: list[Gap]) -> None:
    topics = [{qid.split("-")[0] for qid in g.question_ids} for g in gaps]
    assert topics == [{"kz"}, {"job"}, {"btc"}]
    assert [g.count for g in gaps] == [6, 5, 4]
    assert [len(g.question_ids) for g in gaps] == [6, 5, 4]
    expected = {"kz": KAZAKHSTAN, "job": COURIER_JOBS, "btc": CRYPTO}
    for gap, (name, texts) in zip(gaps, expected.items(), strict=True):
        assert set(gap.examples) <= set(texts)
        assert len(gap.examples) == min(5, len(texts))
        assert gap.label == gap.examples[0]
        assert sorted(gap.question_ids) == sorted(f"{name}-{i}" for i in range(len(texts)))


def test_singletons_are_not_gaps(gaps: list[Gap]) -> None:
    ids = {qid for g in gaps for qid in g.question_ids}
    assert not any(qid.startswith("one-") for qid in ids)


def test_same_input_gives_same_gaps(e5: E5Embedder, gaps: list[Gap]) -> None:
    assert embed_and_cluster(seeded(), e5) == gaps


def test_repeated_questions_count_each_time_but_show_once(e5: E5Embedder) -> None:
    questions = [
        ("a", "Доставляете в Казахстан?"),
        ("b", "доставляете в казахстан?"),
        ("c", "доставляете  в  Казахстан?"),
        ("d", "почему приложение вылетает на айфоне"),
    ]
    [gap] = embed_and_cluster(questions, e5)
    assert gap.count == 3
    assert gap.question_ids == ("a", "b", "c")
    assert gap.examples == ("Доставляете в Казахстан?",)


def unit(*rows: list[float]) -> np.ndarray:
    v = np.array(rows, dtype=np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def test_clusters_hand_made_vectors_without_a_model() -> None:
    questions = [("1", "x1"), ("2", "y1"), ("3", "x2"), ("4", "y2"), ("5", "x3"), ("6", "z")]
    vectors = unit([1, 0.1, 0], [0, 1, 0.1], [1, 0, 0.1], [0.1, 1, 0], [1, 0.05, 0.05], [0, 0, 1])
    gaps = cluster_gaps(questions, vectors, threshold=0.9)
    assert [(g.count, g.question_ids) for g in gaps] == [(3, ("1", "3", "5")), (2, ("2", "4"))]
    assert gaps[0].label == "x3"  # closest to the centroid of the x's
    with_other = cluster_gaps(questions, vectors, threshold=0.9, min_count=1)
    assert [g.question_ids for g in with_other][-1] == ("6",)


def test_the_label_is_the_wording_asked_most_not_a_central_typo() -> None:
    right = "как приготовить борщ"
    typos = ["как приготоивть борщ", "как приготвоить борщ", "как пригтоовить борщ"]
    questions = [("1", right), ("2", right)] + [(str(n), t) for n, t in enumerate(typos, start=3)]
    vectors = unit([1, 0.35, 0], [1, 0.35, 0], [1, 0.1, 0.1], [1, 0.1, 0.1], [1, 0.1, 0.1])
    [gap] = cluster_gaps(questions, vectors, threshold=0.9)
    assert gap.examples[0] in typos  # the typos outnumber it, so they sit at the centre…
    assert gap.label == right  # …but it is the wording asked most: what the cluster is called


def test_ties_go_to_input_order_and_labels_break_count_ties() -> None:
    questions = [("1", "b"), ("2", "b2"), ("3", "a"), ("4", "a2")]
    vectors = unit([1, 0], [1, 0], [0, 1], [0, 1])
    gaps = cluster_gaps(questions, vectors, threshold=0.9)
    assert [(g.label, g.question_ids) for g in gaps] == [("a", ("3", "4")), ("b", ("1", "2"))]


def test_nothing_to_cluster_and_mismatched_input() -> None:
    assert cluster_gaps([], np.empty((0, 3), dtype=np.float32)) == []
    with pytest.raises(ValueError, match="one row per question"):
        cluster_gaps([("1", "a")], np.zeros((2, 3), dtype=np.float32))
