"""Phase-2 data: imbalance correction (paper 000 eq. 4-6) and contrastive pair construction (paper 000 §3.2).

The pair target follows paper 000 eq. 3: 1 for the same class, 0 otherwise, or for hierarchical labels the
fraction of matching levels counted from the top. Pair counts grow linearly with the data, never as n².
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence

import numpy as np

from phasefit.data.noise import delete_stop_words

__all__ = [
    "balance_classes",
    "build_pairs",
    "class_sizes_after_correction",
    "imbalance_ratio",
    "pair_target",
    "sample_setfit_pairs",
]

Pair = tuple[str, str, float]


def _check_ratios(min_ratio: float, max_ratio: float) -> None:
    if not (0 <= min_ratio <= max_ratio and max_ratio > 0):
        raise ValueError(
            f"imbalance correction needs 0 <= min_ratio <= max_ratio and max_ratio > 0, "
            f"got min_ratio={min_ratio!r}, max_ratio={max_ratio!r} (paper defaults: 1.5 and 4)"
        )


def _check_lengths(texts: Sequence[str], labels: Sequence[str]) -> None:
    if len(texts) != len(labels):
        raise ValueError(f"texts and labels differ in length: {len(texts)} texts, {len(labels)} labels")


def imbalance_ratio(n_k: int, max_k: int, *, min_ratio: float, max_ratio: float) -> float:
    """Oversampling ratio of a class of size ``n_k`` (paper 000 eq. 4 and 5a).

    ``f(x) = log(max_k / x) * max_ratio / log(max_k)`` (eq. 4) and ``ratio = max(min_ratio, f(n_k))``. The paper
    prints ``min`` in eq. 5a, but calls ``min_ratio`` a lower bound and states ``f(1) = max_ratio``; only ``max``
    agrees with both, so ``min_ratio`` is implemented as a lower bound. ``f`` equals 1 at
    ``x = max_k ** ((max_ratio - 1) / max_ratio)`` (eq. 6).

    Note that ``f(max_k) = 0``, so the largest class gets ``min_ratio`` and is oversampled too: that is what the
    formula says. When ``max_k == 1`` (every class has one example) eq. 4 is 0/0; the ratio is then ``max_ratio``,
    the value the paper states for ``f(1)``.

    Raises:
        ValueError: on sizes outside ``1 <= n_k <= max_k`` or ratios outside ``0 <= min_ratio <= max_ratio``.
    """
    _check_ratios(min_ratio, max_ratio)
    if not 1 <= n_k <= max_k:
        raise ValueError(f"class sizes must satisfy 1 <= n_k <= max_k, got n_k={n_k}, max_k={max_k}")
    if max_k == 1:
        return float(max_ratio)
    f = math.log(max_k / n_k) * max_ratio / math.log(max_k)
    return float(max(min_ratio, f))


def class_sizes_after_correction(
    counts: Mapping[str, int], *, min_ratio: float, max_ratio: float
) -> dict[str, int]:
    """New class sizes ``round(ratio_k * n_k)`` (paper 000 eq. 5b), rounding halves up.

    A single class has nothing to balance against and is returned unchanged.

    Raises:
        ValueError: on ratios outside ``0 <= min_ratio <= max_ratio`` or a class with no example.
    """
    _check_ratios(min_ratio, max_ratio)
    if any(n < 1 for n in counts.values()):
        raise ValueError(f"every class needs at least one example, got counts {dict(counts)}")
    if len(counts) <= 1:
        return dict(counts)
    max_k = max(counts.values())
    return {
        k: math.floor(imbalance_ratio(n, max_k, min_ratio=min_ratio, max_ratio=max_ratio) * n + 0.5)
        for k, n in counts.items()
    }


def balance_classes(
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
    _check_lengths(texts, labels)
    out_texts, out_labels = list(texts), list(labels)
    members: dict[str, list[int]] = defaultdict(list)
    for i, y in enumerate(labels):
        members[y].append(i)
    sizes = class_sizes_after_correction(
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


def pair_target(label_a: str, label_b: str, separator: str | None) -> float:
    """Target similarity of a pair (paper 000 eq. 3 and §3.2): 1.0 same label, 0.0 different.

    With ``separator`` set, labels are paths (``comp.sys.mac``) and the target is the number of levels that match
    from the top, up to the first mismatch, over the depth of the deeper label: ``a.b.c`` vs ``a.b.d`` gives 2/3,
    ``a.x`` vs ``b.x`` gives 0.
    """
    if separator is None:
        return 1.0 if label_a == label_b else 0.0
    a, b = str(label_a).split(separator), str(label_b).split(separator)
    shared = 0
    for x, y in zip(a, b):
        if x != y:
            break
        shared += 1
    return shared / max(len(a), len(b))


class _PairCollector:
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
        self.pairs.append((a[0], b[0], pair_target(a[1], b[1], self.separator)))


def _balance_targets(pairs: list[Pair], rng: np.random.Generator) -> list[Pair]:
    """Down-sample so that every distinct target value keeps the same (minimum) count, preserving order."""
    by_target: dict[float, list[int]] = defaultdict(list)
    for i, (_, _, t) in enumerate(pairs):
        by_target[t].append(i)
    if len(by_target) <= 1:
        return pairs
    m = min(len(ix) for ix in by_target.values())
    keep = np.sort(np.concatenate([rng.choice(ix, size=m, replace=False) for ix in by_target.values()]))
    return [pairs[i] for i in keep]


def build_pairs(
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
    _check_lengths(texts, labels)
    if copies is None:
        if augmentation_factor < 1:
            raise ValueError(f"augmentation_factor must be >= 1, got {augmentation_factor}")
        k = len(set(labels))
        copies = augmentation_factor * max(1, math.floor(math.log2(k))) if k else 1
    if copies < 1:
        raise ValueError(f"copies must be >= 1, got {copies}")
    n = len(texts)
    collector = _PairCollector(texts, labels, separator)
    for _ in range(copies):
        for i, j in zip(rng.permutation(n), rng.permutation(n)):
            collector.add(int(i), int(j))
    return _balance_targets(collector.pairs, rng) if balance_targets else collector.pairs


def sample_setfit_pairs(
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
    :func:`build_pairs`, so positives and negatives are equal in number only up to those drops.
    """
    _check_lengths(texts, labels)
    if num_iterations < 1:
        raise ValueError(f"num_iterations must be >= 1, got {num_iterations}")
    labels_arr = np.asarray(labels, dtype=object)
    members = {y: np.flatnonzero(labels_arr == y) for y in dict.fromkeys(labels)}
    others = {y: np.flatnonzero(labels_arr != y) for y in members}
    collector = _PairCollector(texts, labels, separator)
    for _ in range(num_iterations):
        for i, y in enumerate(labels):
            same = members[y]
            if len(same) > 1:
                j = same[rng.integers(len(same) - 1)]
                collector.add(i, int(j if j != i else same[-1]))
            if len(others[y]):
                collector.add(i, int(others[y][rng.integers(len(others[y]))]))
    return collector.pairs
