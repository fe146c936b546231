"""The vectorised pair construction (issue 12, item 4) against the per-pair loops it replaced.

Every trained 3phase result depends on these pairs, so for the same inputs and the same generator state the new
functions must return the very same lists and leave the generator in the very same state. The reference below is
the old implementation of ``phasefit.data.pairs`` (as of commit 8322092), copied verbatim except that its names
carry a ``ref_`` prefix.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence

import numpy as np
import pytest

from phasefit.data import pairs as new
from phasefit.data.noise import delete_stop_words

Pair = tuple[str, str, float]


# --- reference: the old loops, verbatim ------------------------------------------------------------------------

# imbalance_ratio, class_sizes_after_correction, pair_target and the argument checks are unchanged: the reference
# calls phasefit's own.


def ref_balance_classes(
    texts: Sequence[str],
    labels: Sequence[str],
    rng: np.random.Generator,
    *,
    min_ratio: float,
    max_ratio: float,
    noise_min_words: int = 6,
    stop_word_ratio: float = 0.5,
) -> tuple[list[str], list[str]]:
    """Oversample every class to :func:`class_sizes_after_correction` (paper 000 §3.2.1).

    All originals are kept, in order; the added copies follow, class by class in order of first appearance. Copies
    cycle through random permutations of the class, so every original is copied as evenly as possible. A copy of
    a text with at least ``noise_min_words`` words gets stop-word deletion (each stop word deleted with
    probability ``stop_word_ratio``, so copies of one text differ); shorter texts are copied exactly. Casing is
    never changed. A size below ``n_k`` (``min_ratio < 1``) adds nothing; originals are never dropped.

    Returns:
        The balanced ``(texts, labels)``.
    """
    new._check_lengths(texts, labels)
    out_texts, out_labels = list(texts), list(labels)
    members: dict[str, list[int]] = defaultdict(list)
    for i, y in enumerate(labels):
        members[y].append(i)
    sizes = new.class_sizes_after_correction(
        {y: len(ix) for y, ix in members.items()}, min_ratio=min_ratio, max_ratio=max_ratio
    )
    for y, ix in members.items():
        extra = sizes[y] - len(ix)
        if extra <= 0:
            continue
        cycles = -(-extra // len(ix))
        picks = np.concatenate([rng.permutation(ix) for _ in range(cycles)])[:extra]
        for i in picks:
            text = texts[i]
            if len(text.split()) >= noise_min_words:
                text = delete_stop_words(text, rng, ratio=stop_word_ratio)
            out_texts.append(text)
            out_labels.append(y)
    return out_texts, out_labels


class _ref_PairCollector:
    """Collects pairs, dropping self-pairs and repeated unordered pairs.

    An item is identified by its (text, label), so exact oversampled copies of a text at other indices can give
    neither a self-pair nor a repeat of a pair already taken.
    """

    def __init__(self, texts: Sequence[str], labels: Sequence[str], separator: str | None) -> None:
        self.texts, self.labels, self.separator = texts, labels, separator
        self.seen: set[tuple[tuple[str, str], tuple[str, str]]] = set()
        self.pairs: list[Pair] = []

    def add(self, i: int, j: int) -> None:
        a, b = (self.texts[i], self.labels[i]), (self.texts[j], self.labels[j])
        if a == b:
            return
        key = (a, b) if a <= b else (b, a)
        if key in self.seen:
            return
        self.seen.add(key)
        self.pairs.append((a[0], b[0], new.pair_target(a[1], b[1], self.separator)))


def _ref_balance_targets(pairs: list[Pair], rng: np.random.Generator) -> list[Pair]:
    """Down-sample so that every distinct target value keeps the same (minimum) count, preserving order."""
    by_target: dict[float, list[int]] = defaultdict(list)
    for i, (_, _, t) in enumerate(pairs):
        by_target[t].append(i)
    if len(by_target) <= 1:
        return pairs
    m = min(len(ix) for ix in by_target.values())
    keep = np.sort(np.concatenate([rng.choice(ix, size=m, replace=False) for ix in by_target.values()]))
    return [pairs[i] for i in keep]


def ref_build_pairs(
    texts: Sequence[str],
    labels: Sequence[str],
    rng: np.random.Generator,
    *,
    copies: int | None = None,
    augmentation_factor: int = 4,
    balance_targets: bool = True,
    separator: str | None = None,
) -> list[Pair]:
    """Contrastive pairs from the (already balanced) set, as paper 000 §3.2.1 and its authors' code build them.

    For each of ``copies`` rounds, two random permutations of the set are zipped into pairs; self-pairs and
    unordered pairs already taken are dropped. ``copies`` defaults to ``augmentation_factor * max(1,
    floor(log2 K))`` for ``K`` classes, as in the authors' code. Random pairing gives about 1/K positives, so with
    ``balance_targets`` every distinct target value is down-sampled, at random, to the count of the rarest. The
    result has at most ``copies * n`` pairs: linear in ``n``.

    Returns:
        ``(text_a, text_b, target)`` triples with targets from :func:`pair_target`.
    """
    new._check_lengths(texts, labels)
    if copies is None:
        if augmentation_factor < 1:
            raise ValueError(f"augmentation_factor must be >= 1, got {augmentation_factor}")
        k = len(set(labels))
        copies = augmentation_factor * max(1, math.floor(math.log2(k))) if k else 1
    if copies < 1:
        raise ValueError(f"copies must be >= 1, got {copies}")
    n = len(texts)
    collector = _ref_PairCollector(texts, labels, separator)
    for _ in range(copies):
        for i, j in zip(rng.permutation(n), rng.permutation(n)):
            collector.add(int(i), int(j))
    return _ref_balance_targets(collector.pairs, rng) if balance_targets else collector.pairs


def ref_sample_setfit_pairs(
    texts: Sequence[str],
    labels: Sequence[str],
    rng: np.random.Generator,
    *,
    num_iterations: int = 5,
    separator: str | None = None,
) -> list[Pair]:
    """SetFit-style pairs: per example, ``num_iterations`` times, one positive and one negative partner.

    The positive partner has the same label and another index (skipped for a one-example class); the negative has
    a different label (skipped when there is one class). Self-pairs and repeated unordered pairs are dropped, as in
    :func:`ref_build_pairs`, so positives and negatives are equal in number only up to those drops.
    """
    new._check_lengths(texts, labels)
    if num_iterations < 1:
        raise ValueError(f"num_iterations must be >= 1, got {num_iterations}")
    labels_arr = np.asarray(labels, dtype=object)
    members = {y: np.flatnonzero(labels_arr == y) for y in dict.fromkeys(labels)}
    others = {y: np.flatnonzero(labels_arr != y) for y in members}
    collector = _ref_PairCollector(texts, labels, separator)
    for _ in range(num_iterations):
        for i, y in enumerate(labels):
            same = members[y]
            if len(same) > 1:
                j = same[rng.integers(len(same) - 1)]
                collector.add(i, int(j if j != i else same[-1]))
            if len(others[y]):
                collector.add(i, int(others[y][rng.integers(len(others[y]))]))
    return collector.pairs


# --- random inputs -----------------------------------------------------------------------------------------------

WORDS = ["the", "The", "of", "and", "not", "is", "it", "a", "on", "cat", "sat", "Mat", "dog", "ran", "fast,",
         "blue", "over", "there.", "Never", "quick", "fox", "jumps", "(the)", "AND", "was"]
ALL_STOP = ["the of and to in a is it on", "The OF, and (to) the in a is", "a an the of on in at by"]
ODD = ["", "solo", "  spaced   out   text  with  the  tabs\tand  more ", "two words"]


def _text(rng: np.random.Generator) -> str:
    u = rng.random()
    if u < 0.08:
        return ALL_STOP[rng.integers(len(ALL_STOP))]
    if u < 0.14:
        return ODD[rng.integers(len(ODD))]
    return " ".join(rng.choice(WORDS, size=int(rng.integers(1, 13))).tolist())


def _label(c: int, hierarchical: bool, depth: int) -> str:
    if not hierarchical:
        return f"c{c}"
    return ".".join(f"l{(c >> (2 * d)) % 3}" for d in range(1 + c % depth))  # depths 1..depth, shared prefixes


def _data(seed: int) -> tuple[list[str], list[str], bool]:
    rng = np.random.default_rng(seed)
    n = int(rng.integers(0, 70))
    k = int(rng.choice([1, 1, 2, 3, 5, 8, 20]))
    hierarchical = bool(rng.random() < 0.4)
    depth = int(rng.integers(1, 6))
    # geometric-ish class sizes: some one-example classes, some large
    weights = 0.5 ** np.arange(k)
    classes = rng.choice(k, size=n, p=weights / weights.sum())
    labels = [_label(int(c), hierarchical, depth) for c in classes]
    pool = [_text(rng) for _ in range(max(1, int(rng.integers(1, n + 2))))]
    texts = [pool[int(rng.integers(len(pool)))] if rng.random() < 0.5 else _text(rng) for _ in range(n)]
    if n and rng.random() < 0.2:
        labels = labels[:1] * n  # a single class
    return texts, labels, hierarchical


@pytest.fixture(params=["plain", "small-blocks"])
def blocks(request, monkeypatch):
    """Also run with tiny blocks, runs and sort keys, so that every chunked and hashed path is taken."""
    if request.param == "small-blocks":
        monkeypatch.setattr(new, "_BLOCK", 7)
        monkeypatch.setattr(new, "_SORT_BITS", 24)  # keys short of bits of hi: many ties of unequal pairs
        monkeypatch.setattr(new._CopyNoise, "_RUN", 5)
        monkeypatch.setattr(new._CopyNoise, "_FEW", 2)  # chunks of 2 or more copies go through numpy
        monkeypatch.setattr(new._Targets, "_TABLE", 0)  # label combinations through np.unique
    return request.param


@pytest.mark.parametrize("seed", range(60))
def test_balance_classes_identical(seed: int, blocks: str) -> None:
    texts, labels, _ = _data(seed)
    rng = np.random.default_rng(seed + 1000)
    kw = {"min_ratio": float(rng.choice([0.5, 1.5, 3.0])), "max_ratio": float(rng.choice([4.0, 8.0])),
          "noise_min_words": int(rng.choice([0, 1, 2, 6])), "stop_word_ratio": float(rng.choice([0.0, 0.5, 1.0]))}
    kw["max_ratio"] = max(kw["max_ratio"], kw["min_ratio"])
    r_old, r_new = np.random.default_rng(seed), np.random.default_rng(seed)
    expected = ref_balance_classes(texts, labels, r_old, **kw)
    got = new.balance_classes(texts, labels, r_new, **kw)
    assert got == expected
    assert r_new.bit_generator.state == r_old.bit_generator.state


@pytest.mark.parametrize("seed", range(60))
def test_build_pairs_identical(seed: int, blocks: str) -> None:
    texts, labels, hierarchical = _data(seed)
    rng = np.random.default_rng(seed + 2000)
    balance = bool(rng.random() < 0.7)
    copies = None if rng.random() < 0.6 else int(rng.integers(1, 6))
    if rng.random() < 0.5 and texts:  # as in training: balanced first, then paired, one generator throughout
        texts, labels = ref_balance_classes(texts, labels, np.random.default_rng(seed), min_ratio=1.5, max_ratio=4)
    kw = {"copies": copies, "balance_targets": balance, "separator": "." if hierarchical else None,
          "augmentation_factor": int(rng.integers(1, 5))}
    r_old, r_new = np.random.default_rng(seed), np.random.default_rng(seed)
    expected = ref_build_pairs(texts, labels, r_old, **kw)
    got = new.build_pairs(texts, labels, r_new, **kw)
    assert got == expected
    assert [type(x) for p in got for x in p] == [type(x) for p in expected for x in p]
    assert r_new.bit_generator.state == r_old.bit_generator.state


@pytest.mark.parametrize("seed", range(60))
def test_sample_setfit_pairs_identical(seed: int, blocks: str) -> None:
    texts, labels, hierarchical = _data(seed)
    kw = {"num_iterations": int(np.random.default_rng(seed).integers(1, 6)),
          "separator": "." if hierarchical else None}
    r_old, r_new = np.random.default_rng(seed), np.random.default_rng(seed)
    expected = ref_sample_setfit_pairs(texts, labels, r_old, **kw)
    got = new.sample_setfit_pairs(texts, labels, r_new, **kw)
    assert got == expected
    assert r_new.bit_generator.state == r_old.bit_generator.state


def test_whole_phase2_chain_identical() -> None:
    """balance -> pairs -> the generator's next draws, as phases/staged.py uses one generator for all of them."""
    rng = np.random.default_rng(7)
    labels = [f"c{int(c)}" for c in rng.choice(12, size=600, p=0.7 ** np.arange(12) / (0.7 ** np.arange(12)).sum())]
    texts = [" ".join(rng.choice(WORDS, size=int(rng.integers(2, 12))).tolist()) for _ in labels]
    for old_fns, new_fns in [((ref_balance_classes, ref_build_pairs), (new.balance_classes, new.build_pairs)),
                             ((ref_balance_classes, ref_sample_setfit_pairs),
                              (new.balance_classes, new.sample_setfit_pairs))]:
        out = []
        for balance, pair in (old_fns, new_fns):
            r = np.random.default_rng(3)
            t, y = balance(texts, labels, r, min_ratio=1.5, max_ratio=4.0)
            out.append((t, y, pair(t, y, r), r.permutation(50).tolist()))
        assert out[0] == out[1]


@pytest.mark.parametrize("seed", range(4))
def test_many_target_values(seed: int, blocks: str) -> None:
    """Hierarchical labels of depths 1-6: more than 8 distinct targets to balance."""
    rng = np.random.default_rng(seed)
    labels = [".".join(f"l{(c >> d) & 1}" for d in range(1 + c % 6)) for c in rng.integers(40, size=150).tolist()]
    texts = [f"t{i % 120}" for i in range(150)]
    r_old, r_new = np.random.default_rng(seed), np.random.default_rng(seed)
    expected = ref_build_pairs(texts, labels, r_old, separator=".")
    assert len({t for _, _, t in expected}) > 8
    assert new.build_pairs(texts, labels, r_new, separator=".") == expected
    assert r_new.bit_generator.state == r_old.bit_generator.state


def test_large_target_groups() -> None:
    """Groups of over 10,000 pairs: rng.choice then takes its other sampling path (a partial shuffle)."""
    rng = np.random.default_rng(4)
    labels = rng.choice(["a", "b"], size=3000).tolist()
    texts = [f"t{i}" for i in range(3000)]
    r_old, r_new = np.random.default_rng(5), np.random.default_rng(5)
    expected = ref_build_pairs(texts, labels, r_old, copies=8)
    assert len(expected) > 20_000
    assert new.build_pairs(texts, labels, r_new, copies=8) == expected
    assert r_new.bit_generator.state == r_old.bit_generator.state


def test_exact_duplicates_and_one_item() -> None:
    for texts, labels in [(["same"] * 9, ["a"] * 9), (["same"] * 5 + ["x"] * 4, ["a"] * 5 + ["b"] * 4),
                          (["t"], ["a"]), ([], []), (["t", "t"], ["a", "b"])]:
        for fns in [(ref_build_pairs, new.build_pairs), (ref_sample_setfit_pairs, new.sample_setfit_pairs)]:
            r_old, r_new = np.random.default_rng(1), np.random.default_rng(1)
            assert fns[1](texts, labels, r_new) == fns[0](texts, labels, r_old)
            assert r_new.bit_generator.state == r_old.bit_generator.state


def test_labels_with_equal_hashes() -> None:
    """Labels need not be strings: ints, two of them with equal hashes (hash(-1) == hash(-2) in CPython)."""
    rng = np.random.default_rng(0)
    labels = rng.choice([-1, -2, 3], size=40).tolist()
    texts = [f"t{i % 25} of the set" for i in range(40)]
    for fns, kw in [((ref_balance_classes, new.balance_classes), {"min_ratio": 1.5, "max_ratio": 4.0}),
                    ((ref_build_pairs, new.build_pairs), {}),
                    ((ref_sample_setfit_pairs, new.sample_setfit_pairs), {})]:
        r_old, r_new = np.random.default_rng(2), np.random.default_rng(2)
        assert fns[1](texts, labels, r_new, **kw) == fns[0](texts, labels, r_old, **kw)
        assert r_new.bit_generator.state == r_old.bit_generator.state


def test_errors_unchanged() -> None:
    rng = np.random.default_rng(0)
    for fn in (ref_build_pairs, new.build_pairs):
        with pytest.raises(ValueError, match="differ in length"):
            fn(["a", "b"], ["x"], rng)
        with pytest.raises(ValueError, match="copies must be"):
            fn(["a", "b"], ["x", "y"], rng, copies=0)
        with pytest.raises(ValueError, match="augmentation_factor"):
            fn(["a", "b"], ["x", "y"], rng, augmentation_factor=0)
    for fn in (ref_balance_classes, new.balance_classes):
        with pytest.raises(ValueError, match="ratio must be in"):
            fn(["a b c d e f g"] * 2 + ["x"], ["a", "a", "b"], rng, min_ratio=1.5, max_ratio=4, stop_word_ratio=2.0)
        with pytest.raises(ValueError, match="min_ratio"):
            fn(["a"], ["b"], rng, min_ratio=5, max_ratio=4)
    for fn in (ref_sample_setfit_pairs, new.sample_setfit_pairs):
        with pytest.raises(ValueError, match="num_iterations"):
            fn(["a"], ["b"], rng, num_iterations=0)
