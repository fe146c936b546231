"""Phase-2 data: imbalance correction (paper 000 eq. 4-6) and contrastive pair construction (paper 000 §3.2).

The pair target follows paper 000 eq. 3: 1 for the same class, 0 otherwise, or for hierarchical labels the
fraction of matching levels counted from the top. Pair counts grow linearly with the data, never as n², and so does
the work: the functions are vectorised with numpy, yet for a given generator state they return exactly what the
per-pair loops of earlier versions returned (tests/test_pairs_scaling.py holds those loops and checks it).
"""

from __future__ import annotations

import contextlib
import gc
import itertools
import math
import string
from collections.abc import Iterator, Mapping, Sequence

import numpy as np
import pandas as pd

from phasefit.data.noise import DEFAULT_STOP_WORDS, _check_ratio, delete_stop_words

__all__ = [
    "Pairs",
    "balance_classes",
    "build_pairs",
    "class_sizes_after_correction",
    "imbalance_ratio",
    "pair_target",
    "sample_setfit_pairs",
]

Pair = tuple[str, str, float]


class Pairs(Sequence):
    """Contrastive pairs held as arrays: ``pairs[i]`` is the triple ``(text_a, text_b, target)``.

    ``texts`` holds each distinct item's text once; ``a``, ``b`` index it and ``targets`` are the pairs' targets
    (float64). A million examples give millions of pairs, and as arrays they cost bytes each, where Python tuples
    cost about a hundred and seconds to build; the phase reads them through :meth:`take` and by index. Equal to any
    sequence of the same triples, so it stands in for the list of tuples earlier versions returned.
    """

    __hash__ = None  # type: ignore[assignment]  # mutable-looking and compared by value, like the list it replaces

    def __init__(self, texts: np.ndarray, a: np.ndarray, b: np.ndarray, targets: np.ndarray) -> None:
        self.texts, self.a, self.b, self.targets = texts, a, b, np.asarray(targets, dtype=np.float64)

    def __len__(self) -> int:
        return len(self.a)

    def __getitem__(self, index):  # type: ignore[override]
        if isinstance(index, slice):
            return self.take(np.arange(len(self))[index])
        return self.texts[self.a[index]], self.texts[self.b[index]], float(self.targets[index])

    def __iter__(self) -> Iterator[Pair]:
        yield from zip(self.texts[self.a].tolist(), self.texts[self.b].tolist(), self.targets.tolist())

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Sequence) or len(other) != len(self):
            return NotImplemented if not isinstance(other, Sequence) else False
        return all(x == tuple(y) for x, y in zip(self, other))

    def __repr__(self) -> str:
        return f"Pairs({len(self)} pairs of {len(self.texts)} texts)"

    def take(self, indices: Sequence[int] | np.ndarray) -> Pairs:
        """The pairs at ``indices``, in that order (as ``[pairs[i] for i in indices]``)."""
        indices = np.asarray(indices, dtype=np.int64)
        return Pairs(self.texts, self.a[indices], self.b[indices], self.targets[indices])


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


@contextlib.contextmanager
def _gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while millions of objects are built.

    Lists of texts, words and pair tuples hold no reference cycles, but each allocation of a tracked object counts
    towards the collector's thresholds, and its full collections re-scan every list built so far: that can double
    the time spent building the pairs. The collector's previous state is restored afterwards.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _object_array(values: Sequence) -> np.ndarray:
    """A 1-d object array holding the very objects of ``values`` (no conversion to fixed-width strings)."""
    out = np.empty(len(values), dtype=object)
    out[:] = values if isinstance(values, list) else list(values)
    return out


def _first_indices(codes: np.ndarray) -> np.ndarray:
    """Index of the first occurrence of each code, for codes numbered in order of first appearance (0, 1, ...)."""
    if not len(codes):
        return np.zeros(0, dtype=np.int64)
    running = np.maximum.accumulate(codes)
    first = np.empty(len(codes), dtype=bool)
    first[0] = True
    np.greater(running[1:], running[:-1], out=first[1:])
    return np.flatnonzero(first)


def _factorize(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Integer codes of ``values`` (an object array) in order of first appearance, and the index of each code's first
    occurrence. Equal values (``==`` with equal hashes, as for dict keys) get one code."""
    codes, _ = pd.factorize(values, use_na_sentinel=False)
    codes = codes.astype(np.int64, copy=False)
    return codes, _first_indices(codes)


class _StopWords(dict):
    """word -> whether :func:`delete_stop_words` treats it as a stop word (its default list), memoised."""

    def __missing__(self, word: str) -> bool:
        flag = self[word] = word.strip(string.punctuation).lower() in DEFAULT_STOP_WORDS
        return flag


class _CopyNoise:
    """Oversampled copies of texts, with the stop-word deletion of :func:`delete_stop_words` on long texts.

    Draws exactly what one ``delete_stop_words(text, rng, ratio=ratio)`` call per noisy copy would draw, in the same
    order, but splits each text once per chunk of copies and draws the uniform numbers of a run of copies in one call
    (``rng.random(a)`` then ``rng.random(b)`` gives the same numbers as ``rng.random(a + b)``). A text whose words
    are all stop words may also draw a kept word (``rng.integers``), so such copies go through
    ``delete_stop_words`` itself, one at a time.
    """

    _RUN = 1 << 15  # copies per chunk: their words are held (and their uniform numbers drawn) together
    _FEW = 48  # fewer copies than this (a small class) go through the per-copy loop: less overhead than numpy's

    def __init__(self, texts: np.ndarray, noise_min_words: int, ratio: float) -> None:
        self.texts, self.noise_min_words, self.ratio = texts, noise_min_words, ratio
        self.is_stop = _StopWords()

    def copies(self, picks: np.ndarray, rng: np.random.Generator) -> list[str]:
        """The copies of ``texts[picks]``, in order, drawing from ``rng`` as the per-copy loop did."""
        out: list[str] = []
        for s in range(0, len(picks), self._RUN):
            out += self._chunk(picks[s:s + self._RUN], rng)
        return out

    def _chunk(self, picks: np.ndarray, rng: np.random.Generator) -> list[str]:
        if len(picks) < self._FEW:
            return [delete_stop_words(t, rng, ratio=self.ratio) if len(t.split()) >= self.noise_min_words else t
                    for t in self.texts[picks].tolist()]
        out = self.texts[picks]
        uniq, inv = np.unique(picks, return_inverse=True)
        words = list(map(str.split, self.texts[uniq].tolist()))
        n_words = np.fromiter(map(len, words), dtype=np.int64, count=len(words))
        if (n_words >= self.noise_min_words).any():
            _check_ratio(self.ratio, upper_open=False)  # delete_stop_words' own check
        # delete_stop_words draws nothing for texts of 0 or 1 word: those copies are exact too
        noisy = np.flatnonzero(n_words >= max(self.noise_min_words, 2))
        if not len(noisy):
            return out.tolist()
        words = [words[k] for k in noisy.tolist()]
        n_words = n_words[noisy]
        start = np.cumsum(n_words) - n_words
        stop = np.fromiter(map(self.is_stop.__getitem__, itertools.chain.from_iterable(words)), dtype=bool,
                           count=int(n_words.sum()))
        all_stop = np.logical_and.reduceat(stop, start)
        slot = np.full(len(uniq), -1, dtype=np.int64)  # distinct text -> its index among the noisy ones
        slot[noisy] = np.arange(len(noisy))
        copy_slot = slot[inv]
        noisy_pos = np.flatnonzero(copy_slot >= 0)  # copies that get noise, in order
        copy_slot = copy_slot[noisy_pos]
        lo = 0
        for hi in [*np.flatnonzero(all_stop[copy_slot]).tolist(), len(noisy_pos)]:  # those go one at a time
            if hi > lo:
                out[noisy_pos[lo:hi]] = self._bulk(copy_slot[lo:hi], words, n_words, start, stop, rng)
            if hi < len(noisy_pos):
                out[noisy_pos[hi]] = delete_stop_words(out[noisy_pos[hi]], rng, ratio=self.ratio)
            lo = hi + 1
        return out.tolist()

    def _bulk(self, slots: np.ndarray, words: list[list[str]], n_words: np.ndarray, start: np.ndarray,
              stop: np.ndarray, rng: np.random.Generator) -> list[str]:
        """Noisy copies of texts none of which is all stop words: no copy can lose every word."""
        w = n_words[slots]
        ends = np.cumsum(w)
        draws = rng.random(int(ends[-1]))
        delete = stop[np.arange(len(draws)) + np.repeat(start[slots] - (ends - w), w)] & (draws < self.ratio)
        kept = list(itertools.compress(itertools.chain.from_iterable(map(words.__getitem__, slots.tolist())),
                                       np.logical_not(delete).tolist()))
        kept_ends = (ends - np.cumsum(np.add.reduceat(delete, ends - w, dtype=np.int64))).tolist()
        join = " ".join
        return [join(kept[a:b]) for a, b in zip([0, *kept_ends[:-1]], kept_ends)]


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

    The work is vectorised (linear in the output size; a text is split once per chunk of copies, not twice per
    copy) and draws from ``rng`` exactly what one :func:`delete_stop_words` call per noisy copy would, so a seed
    gives the same result, and leaves ``rng`` in the same state, as the per-copy loop this replaced.

    Returns:
        The balanced ``(texts, labels)``.
    """
    _check_lengths(texts, labels)
    out_texts, out_labels = list(texts), list(labels)
    codes, first = _factorize(_object_array(out_labels))
    classes = [out_labels[i] for i in first.tolist()]
    counts = np.bincount(codes, minlength=len(classes)).tolist()
    sizes = class_sizes_after_correction(dict(zip(classes, counts)), min_ratio=min_ratio, max_ratio=max_ratio)
    order = np.argsort(codes, kind="stable")  # members of each class, in index order
    ends = np.cumsum(counts, dtype=np.int64).tolist()
    noise = _CopyNoise(_object_array(out_texts), noise_min_words, stop_word_ratio)
    with _gc_paused():
        for y, n_k, end in zip(classes, counts, ends):
            extra = sizes[y] - n_k
            if extra <= 0:
                continue
            ix = order[end - n_k:end]
            cycles = -(-extra // n_k)
            picks = np.concatenate([rng.permutation(ix) for _ in range(cycles)])[:extra]
            out_texts.extend(noise.copies(picks, rng))
            out_labels.extend([y] * extra)
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


_BLOCK = 1 << 22  # elements per block in passes over candidate arrays: bounds temporaries to tens of MB
_SORT_BITS = 63  # bits of one candidate's int64: its pair key above, its position in drawing order below


class _Items:
    """Integer identities of the items: equal ``(text, label)`` get one id, ids numbered in order of first appearance.

    ``ids[i]`` (int32 where it fits) and ``label_codes[i]`` are the item and the label code of example ``i``;
    ``text[k]`` and ``label[k]`` are the text (the object of its first occurrence) and the label code (in the
    smallest integer type that holds it) of item ``k``; ``labels[c]`` is the label of code ``c``.
    """

    def __init__(self, texts: Sequence[str], labels: Sequence[str]) -> None:
        text_arr, label_arr = _object_array(texts), _object_array(labels)
        label_codes, label_first = _factorize(label_arr)
        self.labels = label_arr[label_first]
        text_codes, _ = _factorize(text_arr)
        ids, first = _factorize(text_codes * max(len(self.labels), 1) + label_codes)
        self.n = len(first)
        self.text = text_arr[first]
        self.ids = ids.astype(_index_dtype(self.n))
        self.label_codes = label_codes
        self.label = label_codes[first].astype(np.min_scalar_type(-max(len(self.labels), 1)))


def _index_dtype(n: int) -> type:
    return np.int32 if n < 2**31 else np.int64


def _shuffled(values: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """``values[rng.permutation(len(values))]``, drawing the very same numbers, without the index array.

    ``Generator.permutation(n)`` shuffles ``arange(n)``, and ``shuffle`` draws its swaps from the length alone: the
    same swaps applied to ``values`` give ``values`` permuted. tests/test_pairs_scaling.py checks the equality.
    """
    out = values.copy()
    rng.shuffle(out)
    return out


class _Targets:
    """Target codes of pairs of label codes: ``values[code]`` is :func:`pair_target` of the pair.

    Targets are computed once per distinct (label, label) combination present. Equal target values share a code, as
    they share a key of the dict that grouped pairs by target.
    """

    _TABLE = 1 << 20  # label combinations held in a lookup table (4 MB); above, they go through np.unique

    def __init__(self, labels: np.ndarray, separator: str | None) -> None:
        self.labels, self.separator = labels, separator
        self.values: list[float] = [0.0, 1.0] if separator is None else []
        self.dtype = np.uint8 if separator is None else np.int32
        self._code: dict[float, int] = {}
        n = len(labels)
        self._table = np.full(n * n, -1, dtype=np.int32) if separator is not None and n * n <= self._TABLE else None
        self._by_combo: dict[int, int] = {}

    def _code_of(self, combo: int) -> int:
        n = len(self.labels)
        value = pair_target(self.labels[combo // n], self.labels[combo % n], self.separator)
        code = self._code.get(value)
        if code is None:
            code = self._code[value] = len(self.values)
            self.values.append(value)
        return code

    def codes(self, label_a: np.ndarray, label_b: np.ndarray) -> np.ndarray:
        if self.separator is None:
            return (label_a == label_b).view(np.uint8)
        combos = label_a.astype(np.int64) * len(self.labels) + label_b
        if self._table is not None:
            out = self._table[combos]
            missing = out < 0
            if missing.any():
                for combo in np.unique(combos[missing]).tolist():
                    self._table[combo] = self._code_of(combo)
                out = self._table[combos]
            return out
        uniq, inv = np.unique(combos, return_inverse=True)
        by_combo = self._by_combo
        for combo in uniq.tolist():
            if combo not in by_combo:
                by_combo[combo] = self._code_of(combo)
        return np.fromiter(map(by_combo.__getitem__, uniq.tolist()), dtype=np.int32, count=len(uniq))[inv]


class _Candidates:
    """Candidate pairs in drawing order, self-pairs dropped, held in 10 bytes each (13 with hierarchical labels).

    A pair of items ``a, b`` (``lo = min``, ``hi = max``) is the int64 ``key << pos_bits | position`` with
    ``key = lo * n_hi + (hi >> q_bits)``, where ``position`` counts the candidates in drawing order and ``q_bits`` is
    the fewest low bits of ``hi`` left out of the key for key and position to fit in 63 bits (0 up to about 10^5
    examples, 4 at 10^6). Those bits and the drawing order (``a > b``) are kept per position in ``meta``, the target
    code plus one in ``tcodes`` (0 once the pair is dropped as a repeat). The unordered pair is ``(key, meta >> 1)``:
    one in-place sort of the int64 values puts equal keys side by side, each first occurrence first.
    """

    def __init__(self, items: _Items, targets: _Targets, capacity: int) -> None:
        self.items, self.targets = items, targets
        n_items = max(items.n, 1)
        self.pos_bits = max(capacity - 1, 1).bit_length()
        self.q_bits = 0
        while (n_items * (((n_items - 1) >> self.q_bits) + 1) - 1).bit_length() + self.pos_bits > _SORT_BITS:
            self.q_bits += 1
        if self.q_bits > 15:
            raise ValueError(f"too many candidate pairs ({capacity}) among {items.n} distinct items")
        self.n_hi = ((n_items - 1) >> self.q_bits) + 1
        self.values = np.empty(capacity, dtype=np.int64)
        self.meta = np.empty(capacity, dtype=np.uint8 if self.q_bits < 8 else np.uint16)
        self.tcodes = np.empty(capacity, dtype=targets.dtype)
        self.size = 0

    def add(self, a: np.ndarray, b: np.ndarray) -> None:
        """Add the pairs ``(a[t], b[t])`` of items, in order."""
        item_label = self.items.label
        for s in range(0, len(a), _BLOCK):
            ba, bb = a[s:s + _BLOCK], b[s:s + _BLOCK]
            valid = ba != bb
            if not valid.all():
                ba, bb = ba[valid], bb[valid]
            start, end = self.size, self.size + len(ba)
            lo, hi = np.minimum(ba, bb), np.maximum(ba, bb)
            value = self.values[start:end]
            np.multiply(lo, self.n_hi, out=value, dtype=np.int64)
            value += hi >> self.q_bits
            value <<= self.pos_bits
            value += np.arange(start, end, dtype=np.int64)
            meta = self.meta[start:end]
            np.greater(ba, bb, out=meta, casting="unsafe")
            if self.q_bits:
                meta |= ((hi & ((1 << self.q_bits) - 1)) << 1).astype(meta.dtype)
            np.add(self.targets.codes(item_label[ba], item_label[bb]), 1, out=self.tcodes[start:end],
                   casting="unsafe")
            self.size = end

    def first_occurrences(self) -> None:
        """Drop (``tcodes = 0``) every pair whose unordered pair of items occurred earlier."""
        m, pos_bits = self.size, self.pos_bits
        if m < 2:
            return
        values = self.values[:m]
        values.sort()  # by key, then position
        ties = []
        for s in range(0, m - 1, _BLOCK):
            key = values[s:s + _BLOCK + 1] >> pos_bits
            ties.append(np.flatnonzero(key[1:] == key[:-1]) + s)
        tie = np.concatenate(ties)
        if not len(tie):
            return
        tied = values[np.union1d(tie, tie + 1)]  # equal keys; a repeat also has equal low bits of hi
        position, key = tied & ((1 << pos_bits) - 1), tied >> pos_bits
        low_bits = self.meta[position] >> 1
        order = np.lexsort((position, low_bits, key))
        position, low_bits, key = position[order], low_bits[order], key[order]
        repeat = (key[1:] == key[:-1]) & (low_bits[1:] == low_bits[:-1])
        self.tcodes[position[1:][repeat]] = 0

    def selection(self, balance: bool, rng: np.random.Generator) -> np.ndarray:
        """Positions of the pairs to return, ascending: every pair not dropped or, with ``balance``, as many of
        each target value as of the rarest, chosen at random.

        Draws what the old loop over a dict of target -> pair indices drew: one ``rng.choice(ix, size=m,
        replace=False)`` per target value, in order of first appearance, none with fewer than two values.
        ``rng.choice(len(ix), ...)`` draws the same numbers; the ranks it returns are mapped to positions here.
        """
        t = self.tcodes[:self.size]
        n_codes = len(self.targets.values) + 1
        blocks = range(0, self.size, _BLOCK)
        per_block = np.zeros((len(blocks), n_codes), dtype=np.int64)
        first = np.full(n_codes, -1, dtype=np.int64)
        for b, s in enumerate(blocks):
            block = t[s:s + _BLOCK]
            per_block[b] = np.bincount(block, minlength=n_codes)
            for c in np.flatnonzero((per_block[b] > 0) & (first < 0)).tolist():
                first[c] = s + int(np.argmax(block == c))
        first[0] = -1  # dropped pairs
        present = sorted(np.flatnonzero(first >= 0).tolist(), key=first.__getitem__)
        if not balance or len(present) <= 1:
            return np.concatenate([np.flatnonzero(t[s:s + _BLOCK]) + s for s in blocks] or [np.zeros(0, np.int64)])
        counts = per_block.sum(axis=0)
        m = int(counts[present].min())
        chosen = []
        for c in present:
            ranks = np.sort(rng.choice(int(counts[c]), size=m, replace=False))
            ends = np.cumsum(per_block[:, c])
            cut = np.searchsorted(ranks, ends).tolist()
            for b, (lo, hi) in enumerate(zip([0, *cut[:-1]], cut)):
                if hi > lo:
                    before = int(ends[b] - per_block[b, c])
                    s = blocks[b]
                    chosen.append(np.flatnonzero(t[s:s + _BLOCK] == c)[ranks[lo:hi] - before] + s)
        return np.sort(np.concatenate(chosen))

    def pairs(self, positions: np.ndarray) -> Pairs:
        """The ``(text_a, text_b, target)`` of the pairs at ``positions`` (ascending), in that order."""
        m, pos_bits = self.size, self.pos_bits
        values = self.values[:m]
        pos_mask = (1 << pos_bits) - 1
        if 4 * len(positions) >= m:  # most pairs: put every key back at its position
            key = np.empty(m, dtype=np.int64)
            for s in range(0, m, _BLOCK):
                v = values[s:s + _BLOCK]
                key[v & pos_mask] = v >> pos_bits
            key = key[positions]
        else:  # a few: pick their values out (a bit per position marks them), then order them by position
            wanted = np.zeros((m + 7) // 8, dtype=np.uint8)
            np.bitwise_or.at(wanted, positions >> 3, np.left_shift(1, positions & 7).astype(np.uint8))
            picked = []
            for s in range(0, m, _BLOCK):
                v = values[s:s + _BLOCK]
                p = v & pos_mask
                picked.append(v[(wanted[p >> 3] >> (p & 7).astype(np.uint8)) & 1 == 1])
            found = np.concatenate(picked)
            key_bits = _SORT_BITS - pos_bits
            found = (found & pos_mask) << key_bits | found >> pos_bits  # position first
            found.sort()
            key = found & ((1 << key_bits) - 1)
        meta = self.meta[positions].astype(np.int64)
        lo, hi = np.divmod(key, self.n_hi)
        hi <<= self.q_bits
        hi |= meta >> 1
        first_is_hi = (meta & 1).astype(bool)
        a, b = np.where(first_is_hi, hi, lo), np.where(first_is_hi, lo, hi)
        values = np.array(self.targets.values, dtype=np.float64)  # pair_target's values, by target code
        return Pairs(self.items.text, a, b, values[self.tcodes[positions].astype(np.int64) - 1])


def build_pairs(
    texts: Sequence[str],
    labels: Sequence[str],
    rng: np.random.Generator,
    *,
    copies: int | None = None,
    augmentation_factor: int = 4,
    balance_targets: bool = True,
    separator: str | None = None,
) -> Pairs:
    """Contrastive pairs from the (already balanced) set, as paper 000 §3.2.1 and its authors' code build them.

    For each of ``copies`` rounds, two random permutations of the set are zipped into pairs; self-pairs and
    unordered pairs already taken are dropped. An item is identified by its (text, label), so exact oversampled
    copies of a text at other indices give neither a self-pair nor a repeat. ``copies`` defaults to
    ``augmentation_factor * max(1, floor(log2 K))`` for ``K`` classes, as in the authors' code. Random pairing gives
    about 1/K positives, so with ``balance_targets`` every distinct target value is down-sampled, at random, to the
    count of the rarest. The result has at most ``copies * n`` pairs: linear in ``n``.

    The work is vectorised with numpy: about 10 bytes per candidate pair and one in-place sort of ``copies * n``
    int64 for the dedupe. It draws from ``rng`` exactly what the per-pair loop it replaced drew (two
    ``rng.permutation(n)`` per round, then one ``rng.choice`` per target value), so a seed gives the same pairs, in
    the same order, and leaves ``rng`` in the same state.

    Returns:
        :class:`Pairs`: ``(text_a, text_b, target)`` triples with targets from :func:`pair_target`.
    """
    _check_lengths(texts, labels)
    if copies is None and augmentation_factor < 1:
        raise ValueError(f"augmentation_factor must be >= 1, got {augmentation_factor}")
    if copies is not None and copies < 1:
        raise ValueError(f"copies must be >= 1, got {copies}")
    items = _Items(texts, labels)
    if copies is None:
        k = len(items.labels)
        copies = augmentation_factor * max(1, math.floor(math.log2(k))) if k else 1
    n = len(texts)
    candidates = _Candidates(items, _Targets(items.labels, separator), copies * n)
    for _ in range(copies):
        candidates.add(_shuffled(items.ids, rng), _shuffled(items.ids, rng))
    candidates.first_occurrences()
    return candidates.pairs(candidates.selection(balance_targets, rng))


def sample_setfit_pairs(
    texts: Sequence[str],
    labels: Sequence[str],
    rng: np.random.Generator,
    *,
    num_iterations: int = 5,
    separator: str | None = None,
) -> Pairs:
    """SetFit-style pairs: per example, ``num_iterations`` times, one positive and one negative partner.

    The positive partner has the same label and another index (skipped for a one-example class); the negative has
    a different label (skipped when there is one class). Self-pairs and repeated unordered pairs are dropped, as in
    :func:`build_pairs`, so positives and negatives are equal in number only up to those drops.

    Vectorised: each iteration draws all its partners with one ``rng.integers`` call over an array of bounds, which
    gives the same numbers as one scalar call per partner in example order, so a seed gives the same pairs (and
    leaves ``rng`` in the same state) as the per-example loop this replaced.
    """
    _check_lengths(texts, labels)
    if num_iterations < 1:
        raise ValueError(f"num_iterations must be >= 1, got {num_iterations}")
    items = _Items(texts, labels)
    n = len(texts)
    cls = items.label_codes.astype(np.int64)
    sizes = np.bincount(cls, minlength=len(items.labels))
    starts = np.cumsum(sizes) - sizes
    members = np.argsort(cls, kind="stable")  # each class's indices, ascending, one class after another
    size_of = sizes[cls]
    # per example, in order: a positive draw (class of 2 or more), then a negative draw (another class exists)
    has_pos, has_neg = size_of > 1, size_of < n
    slot = np.repeat(np.arange(n), has_pos.astype(np.int64) + has_neg)
    first_slot = np.ones(len(slot), dtype=bool)
    first_slot[1:] = slot[1:] != slot[:-1]
    is_pos = first_slot & has_pos[slot]
    highs = np.where(is_pos, size_of[slot] - 1, n - size_of[slot])
    pos_i, neg_i = slot[is_pos], slot[~is_pos]
    pos_start = starts[cls[pos_i]]
    pos_last = members[pos_start + sizes[cls[pos_i]] - 1]  # the partner when the draw hits the example itself
    # the r-th index outside class c is r + #{members m_t of c with m_t - t <= r}; offsetting each class's
    # m_t - t by c * (n + 1) makes one sorted array for all classes
    gaps = members - (np.arange(n) - np.repeat(starts, sizes)) + cls[members] * (n + 1)
    neg_offset, neg_start = cls[neg_i] * (n + 1), starts[cls[neg_i]]
    candidates = _Candidates(items, _Targets(items.labels, separator), num_iterations * len(slot))
    slot_item = items.ids[slot]
    partner = np.empty(len(slot), dtype=np.int64)
    for _ in range(num_iterations):
        if not len(slot):
            break
        draws = rng.integers(highs)
        j = members[pos_start + draws[is_pos]]
        partner[is_pos] = np.where(j == pos_i, pos_last, j)
        r = draws[~is_pos]
        partner[~is_pos] = r + np.searchsorted(gaps, r + neg_offset, side="right") - neg_start
        candidates.add(slot_item, items.ids[partner])
    candidates.first_occurrences()
    return candidates.pairs(candidates.selection(False, rng))
