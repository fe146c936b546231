"""Unit tests for phasefit.data.pairs (paper 000 eq. 4-6 imbalance correction, pair construction)."""

from __future__ import annotations

import math
from collections import Counter

import numpy as np
import pytest

from phasefit.data.pairs import (
    balance_classes,
    build_pairs,
    class_sizes_after_correction,
    imbalance_ratio,
    pair_target,
    sample_setfit_pairs,
)

DEFAULTS = {"min_ratio": 1.5, "max_ratio": 4.0}


def _toy(n: int, k: int, seed: int = 0) -> tuple[list[str], list[str]]:
    rng = np.random.default_rng(seed)
    labels = [f"c{int(c)}" for c in rng.integers(k, size=n)]
    return [f"text number {i}" for i in range(n)], labels


def _is_subsequence(short: list[str], long: list[str]) -> bool:
    it = iter(long)
    return all(w in it for w in short)


# --- imbalance correction -------------------------------------------------------------------------------------


@pytest.mark.parametrize("max_k", [2, 10, 70, 1000])
@pytest.mark.parametrize("max_ratio", [4.0, 20.0])
def test_f_of_one_is_max_ratio(max_k: int, max_ratio: float) -> None:
    assert imbalance_ratio(1, max_k, min_ratio=1.5, max_ratio=max_ratio) == pytest.approx(max_ratio)


@pytest.mark.parametrize("max_ratio", [4.0, 5.0, 20.0])
def test_f_is_one_at_eq6_point(max_ratio: float) -> None:
    # paper 000 eq. 6: f(x) = 1 at x = max_k ** ((max_ratio - 1) / max_ratio); max_k = 2**20 makes x an integer
    # (2**15, 2**16, 2**19). min_ratio 0 so that the lower bound does not hide f.
    max_k = 2**20
    x = round(max_k ** ((max_ratio - 1) / max_ratio))
    assert math.log2(x).is_integer()
    assert imbalance_ratio(x, max_k, min_ratio=0, max_ratio=max_ratio) == pytest.approx(1.0)


def test_largest_class_gets_min_ratio() -> None:
    # f(max_k) = 0, so the lower bound applies: the largest class is oversampled by min_ratio too.
    assert imbalance_ratio(70, 70, **DEFAULTS) == 1.5


def test_max_k_one_guard() -> None:
    assert imbalance_ratio(1, 1, **DEFAULTS) == 4.0
    assert class_sizes_after_correction({"a": 1, "b": 1}, **DEFAULTS) == {"a": 4, "b": 4}


def test_worked_example_all_at_lower_bound() -> None:
    # ln 70 = 4.2485. f(20) = ln(3.5) * 4 / 4.2485 = 1.2528 * 0.9415 = 1.18 -> max(1.5, 1.18) = 1.5 -> 30.
    # f(16) = ln(4.375) * 0.9415 = 1.4759 * 0.9415 = 1.39 -> 1.5 -> 24.  f(70) = 0 -> 1.5 -> 105.
    assert class_sizes_after_correction({"a": 70, "b": 20, "c": 16}, **DEFAULTS) == {"a": 105, "b": 30, "c": 24}


def test_worked_example_small_classes() -> None:
    # ln 100 = 4.6052. f(10) = ln 10 * 4 / ln 100 = 2.0 -> 20.  f(2) = ln 50 * 4 / ln 100 = 3.9120 * 0.8686
    # = 3.398 -> 3.398 * 2 = 6.796 -> 7.  f(100) = 0 -> 1.5 -> 150.
    assert class_sizes_after_correction({"a": 100, "b": 10, "c": 2}, **DEFAULTS) == {"a": 150, "b": 20, "c": 7}


def test_one_class_unchanged() -> None:
    assert class_sizes_after_correction({"only": 12}, **DEFAULTS) == {"only": 12}


@pytest.mark.parametrize(("lo", "hi"), [(5.0, 4.0), (-1.0, 4.0), (0.0, 0.0)])
def test_bad_ratios_raise(lo: float, hi: float) -> None:
    with pytest.raises(ValueError, match=f"min_ratio={lo}, max_ratio={hi}"):
        class_sizes_after_correction({"a": 3, "b": 1}, min_ratio=lo, max_ratio=hi)


def test_bad_class_size_raises() -> None:
    with pytest.raises(ValueError, match="n_k=5, max_k=3"):
        imbalance_ratio(5, 3, **DEFAULTS)


def test_balance_classes_sizes_casing_and_subsets() -> None:
    long_a = ["The Movie Was NOT What I Expected At All", "A Truly Great Film For The Whole Family"]
    texts = long_a * 10 + ["Is THIS the Best Show on the Air", "short One"]
    labels = ["a"] * 20 + ["b", "b"]
    out_t, out_l = balance_classes(texts, labels, np.random.default_rng(0), **DEFAULTS)
    assert out_t[: len(texts)] == texts and out_l[: len(labels)] == labels  # originals kept, in order
    expected = class_sizes_after_correction(Counter(labels), **DEFAULTS)
    # f(2) = ln(20 / 2) * 4 / ln 20 = 2.3026 * 4 / 2.9957 = 3.07 -> 6.15 -> 6; "a" is the largest: 1.5 * 20 = 30
    assert Counter(out_l) == expected == {"a": 30, "b": 6}
    for t, y in zip(out_t[len(texts):], out_l[len(labels):]):
        # every added word is an exact word (casing kept) of an original of the same class, in order
        assert any(_is_subsequence(t.split(), o.split()) for o, z in zip(texts, labels) if z == y)
        if "One" in t:
            assert t == "short One"  # under noise_min_words: an exact copy
    assert "NOT" in " ".join(out_t[len(texts):])  # negations survive the noise


def test_balance_classes_copies_spread_evenly() -> None:
    texts, labels = ["x1", "x2", "x3", "big1", "big2"] + [f"big{i}" for i in range(3, 100)], ["s"] * 3 + ["L"] * 99
    out_t, out_l = balance_classes(texts, labels, np.random.default_rng(0), **DEFAULTS)
    added = Counter(t for t, y in zip(out_t[len(texts):], out_l[len(texts):]) if y == "s")
    assert max(added.values()) - min(added.values()) <= 1


def test_balance_classes_is_seeded() -> None:
    texts, labels = _toy(60, 3)
    texts = [f"the {t} is a text of the class" for t in texts]
    a = balance_classes(texts, labels, np.random.default_rng(5), **DEFAULTS)
    b = balance_classes(texts, labels, np.random.default_rng(5), **DEFAULTS)
    assert a == b


# --- pair targets ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("a", "b", "sep", "target"),
    [
        ("x", "x", None, 1.0),
        ("x", "y", None, 0.0),
        ("a.b", "a.b", ".", 1.0),
        ("a.b", "a.c", ".", 0.5),
        ("a.x", "b.x", ".", 0.0),
        ("a.b.c", "a.b.d", ".", 2 / 3),
        ("a.b", "a.b.c", ".", 2 / 3),
    ],
)
def test_pair_target(a: str, b: str, sep: str | None, target: float) -> None:
    assert pair_target(a, b, sep) == pytest.approx(target)


# --- pair building --------------------------------------------------------------------------------------------


def _check_pair_invariants(pairs: list[tuple[str, str, float]]) -> None:
    keys = [frozenset((a, b)) for a, b, _ in pairs]
    assert all(a != b for a, b, _ in pairs)  # no self-pairs (toy texts are unique)
    assert len(set(keys)) == len(keys)  # no repeated unordered pair


def test_build_pairs_invariants_and_default_copies() -> None:
    texts, labels = _toy(100, 4)
    pairs = build_pairs(texts, labels, np.random.default_rng(0), balance_targets=False)
    _check_pair_invariants(pairs)
    copies = 4 * 2  # augmentation_factor 4 * floor(log2 4)
    # ~1 self-pair per copy and ~(800 ** 2) / (2 * 4950) = 65 repeats among 4950 possible pairs are dropped
    assert 0.85 * copies * 100 <= len(pairs) <= copies * 100


def test_build_pairs_exact_copies_do_not_make_self_pairs() -> None:
    texts, labels = ["same text"] * 5 + ["other"] * 5, ["a"] * 5 + ["b"] * 5
    pairs = build_pairs(texts, labels, np.random.default_rng(0), copies=10, balance_targets=False)
    assert sorted((a, b) for a, b, _ in pairs) in ([("other", "same text")], [("same text", "other")])


@pytest.mark.parametrize("balance", [False, True])
def test_build_pairs_grows_linearly(balance: bool) -> None:
    counts = []
    for n in (400, 800):
        texts, labels = _toy(n, 4, seed=n)
        counts.append(len(build_pairs(texts, labels, np.random.default_rng(1), copies=4, balance_targets=balance)))
    assert counts[0] <= 4 * 400
    assert 1.8 < counts[1] / counts[0] < 2.2


def test_build_pairs_balanced_targets() -> None:
    texts, labels = _toy(200, 5)
    pairs = build_pairs(texts, labels, np.random.default_rng(0))
    counts = Counter(t for _, _, t in pairs)
    assert set(counts) == {0.0, 1.0} and len(set(counts.values())) == 1
    _check_pair_invariants(pairs)


def test_build_pairs_hierarchical_balanced() -> None:
    rng = np.random.default_rng(0)
    labels = [f"{a}.{b}" for a, b in zip(rng.choice(list("pq"), 300), rng.choice(list("xyz"), 300))]
    texts = [f"t{i}" for i in range(300)]
    pairs = build_pairs(texts, labels, np.random.default_rng(0), separator=".")
    counts = Counter(t for _, _, t in pairs)
    assert set(counts) == {0.0, 0.5, 1.0} and len(set(counts.values())) == 1


def test_build_pairs_is_seeded() -> None:
    texts, labels = _toy(80, 3)
    a = build_pairs(texts, labels, np.random.default_rng(3))
    assert a == build_pairs(texts, labels, np.random.default_rng(3))
    assert a != build_pairs(texts, labels, np.random.default_rng(4))


def test_build_pairs_bad_input() -> None:
    with pytest.raises(ValueError, match="differ in length"):
        build_pairs(["a", "b"], ["x"], np.random.default_rng(0))
    with pytest.raises(ValueError, match="copies"):
        build_pairs(["a", "b"], ["x", "y"], np.random.default_rng(0), copies=0)
    assert build_pairs([], [], np.random.default_rng(0)) == []


def test_setfit_pairs() -> None:
    texts, labels = [f"t{i}" for i in range(21)], ["a"] * 10 + ["b"] * 10 + ["solo"]
    pairs = sample_setfit_pairs(texts, labels, np.random.default_rng(0), num_iterations=3)
    _check_pair_invariants(pairs)
    by_text = dict(zip(texts, labels))
    for a, b, t in pairs:
        assert t == (1.0 if by_text[a] == by_text[b] else 0.0)
    assert not any(t == 1.0 and "t20" in (a, b) for a, b, t in pairs)  # one-example class has no positive
    counts = Counter(t for _, _, t in pairs)
    assert counts[1.0] > 0 and counts[0.0] > 0
    assert len(pairs) <= 2 * 3 * len(texts)
    assert pairs == sample_setfit_pairs(texts, labels, np.random.default_rng(0), num_iterations=3)


def test_pairs_are_arrays_that_read_as_the_triples() -> None:
    texts = [f"text {i % 7}" for i in range(40)]
    labels = [f"c{i % 3}" for i in range(40)]
    pairs = build_pairs(texts, labels, np.random.default_rng(0))
    triples = list(pairs)
    assert len(triples) == len(pairs) > 0 and pairs == triples and triples == pairs
    assert pairs[3] == triples[3] and isinstance(pairs[3][2], float)
    assert list(pairs[2:9:3]) == triples[2:9:3]
    order = np.random.default_rng(1).permutation(len(pairs))
    assert list(pairs.take(order)) == [triples[i] for i in order]
    assert pairs != triples[:-1] and pairs != [("x", "y", 1.0)] * len(pairs)
    assert {t for _, _, t in triples} <= {0.0, 1.0}


def test_pair_items_tokenise_each_text_once_and_give_the_pairs_in_order(tiny_model_dir) -> None:
    from types import SimpleNamespace

    from phasefit.models.encoder import load_encoder
    from phasefit.config import ModelConfig
    from phasefit.phases.base import tokenize
    from phasefit.phases.staged import pair_items

    encoder = load_encoder(ModelConfig(name=str(tiny_model_dir)))
    texts = ["a b c", "d e", "f g h i", "a b c", "j"] * 4
    labels = ["x", "y", "x", "x", "y"] * 4
    pairs = build_pairs(texts, labels, np.random.default_rng(0))
    pairs = pairs.take(np.arange(len(pairs))[::-1])
    items = pair_items(SimpleNamespace(encoder=encoder, max_length=16), pairs)
    assert len(items) == len(pairs) >= 4
    for item, (a, b, target) in zip(items, pairs):
        assert item["a"] == tokenize(encoder, [a], 16)[0] and item["b"] == tokenize(encoder, [b], 16)[0]
        assert item["labels"] == target
