"""Split containers, seeded stratified splitting and sub-sampling, few-shot draws and the max-length policy.

Everything random here takes an explicit ``seed``: the same data and seed give the same split on any machine
(scikit-learn's ``train_test_split`` with ``random_state`` where it applies, ``numpy.random.default_rng`` otherwise).
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import math
import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np
from sklearn.model_selection import train_test_split

from phasefit.data.errors import DataError

_INT_RE = re.compile(r"[+-]?\d+")
MAX_LENGTH_POLICIES = ("model", "data", "sample")


@dataclass
class LabelledSplit:
    """One split of a labelled data set; the four lists are aligned by position.

    ``labels`` are class names as strings (integer labels become ``str(int)``; hierarchical labels keep the full
    path, e.g. ``"comp.sys.mac"``). ``ids`` are stable row ids such as ``"train.csv:17"`` (file name and 1-based
    data record) or ``"hf:train:17"``; they survive splitting and sub-sampling, so a run can record exactly which
    rows it saw.
    """

    texts: list[str]
    labels: list[str]
    ids: list[str]
    text_pairs: list[str] | None = None

    def __post_init__(self) -> None:
        lengths = {len(self.texts), len(self.labels), len(self.ids)}
        if self.text_pairs is not None:
            lengths.add(len(self.text_pairs))
        if len(lengths) != 1:
            raise ValueError(f"LabelledSplit lists differ in length: {sorted(lengths)}")

    def __len__(self) -> int:
        return len(self.texts)

    def select(self, indices: Sequence[int]) -> LabelledSplit:
        """Return a new split holding the rows at ``indices``, in that order."""
        pairs = None if self.text_pairs is None else [self.text_pairs[i] for i in indices]
        return LabelledSplit(
            [self.texts[i] for i in indices], [self.labels[i] for i in indices], [self.ids[i] for i in indices], pairs
        )


@dataclass
class DatasetSplits:
    """Train/validation/test splits with the label space fixed by the training split.

    ``label_names`` are the classes seen in train, sorted (numerically when every label is an integer); label ids
    index into it and stay the same after :func:`few_shot`, so a classifier head sized for the full set fits every
    draw. ``record`` says where each split came from (file or stratified from train), with seeds, fractions, sizes
    and the sha1 of each split's id list; save it with the run.
    """

    train: LabelledSplit
    validation: LabelledSplit
    test: LabelledSplit
    label_names: list[str]
    label_separator: str | None
    record: dict

    @cached_property
    def _label_index(self) -> dict[str, int]:
        return {name: i for i, name in enumerate(self.label_names)}

    def label_ids(self, split: LabelledSplit) -> list[int]:
        """Map the split's label names to indices into ``label_names``."""
        index = self._label_index
        try:
            return [index[label] for label in split.labels]
        except KeyError as err:
            raise DataError(
                f"label {err.args[0]!r} is not among the training labels {self.label_names}. "
                "Only use splits whose labels training has seen."
            ) from None

    def levels(self, label: str) -> tuple[str, ...]:
        """Split a hierarchical label into its levels (``(label,)`` when labels are flat)."""
        return (label,) if self.label_separator is None else tuple(label.split(self.label_separator))

    @property
    def num_labels(self) -> int:
        return len(self.label_names)


def sorted_label_names(labels: Sequence[str]) -> list[str]:
    """Distinct labels, sorted numerically when all are integers (so "10" follows "9"), else as strings."""
    names = set(labels)
    if all(_INT_RE.fullmatch(name) for name in names):
        return sorted(names, key=lambda name: (int(name), name))
    return sorted(names)


def ids_sha1(ids: Sequence[str]) -> str:
    """sha1 of the newline-joined ids: a short fingerprint of exactly which rows a split holds, in order."""
    return hashlib.sha1("\n".join(ids).encode("utf-8")).hexdigest()


def split_record(split: LabelledSplit, source: str, **extra: object) -> dict:
    """The record entry of one split: its source, size and id fingerprint."""
    return {"source": source, **extra, "size": len(split), "ids_sha1": ids_sha1(split.ids)}


def stratified_holdout(
    split: LabelledSplit, size: int, *, seed: int, what: str, origin: str
) -> tuple[LabelledSplit, LabelledSplit]:
    """Take ``size`` rows out of ``split``, stratified by label and seeded; return ``(rest, taken)``.

    Both parts keep file order. ``what`` names the part taken ("test", "validation") and ``origin`` the rows it
    comes from; both are used in error messages.
    """
    counts = Counter(split.labels)
    label, count = min(counts.items(), key=lambda item: (item[1], item[0]))
    if count < 2:
        raise DataError(
            f"{origin}: class {label!r} has {count} example(s), but a stratified {what} split needs at least 2 of "
            f"each class. Add examples of {label!r}, provide a {what} file, or drop the class."
        )
    if size < len(counts) or len(split) - size < len(counts):
        raise DataError(
            f"{origin}: a stratified {what} split of {size} out of {len(split)} rows cannot hold one example of each "
            f"of the {len(counts)} classes on both sides. Adjust data.{what}_fraction or provide a {what} file."
        )
    rest, taken = train_test_split(np.arange(len(split)), test_size=size, stratify=split.labels, random_state=seed)
    return split.select(sorted(rest.tolist())), split.select(sorted(taken.tolist()))


def stratified_subset(labels: Sequence[str], n: int, *, seed: int) -> list[int]:
    """Indices (sorted) of ``n`` rows drawn with the label distribution of ``labels``, seeded.

    scikit-learn's stratified ``train_test_split`` does the draw; when it cannot (a class with one example, fewer
    rows left over than classes) or drops a class although ``n`` >= the number of classes, a seeded
    largest-remainder rule takes over: one example per class first, the rest proportional to class size.
    """
    if n >= len(labels):
        return list(range(len(labels)))
    counts = Counter(labels)
    try:
        chosen, _ = train_test_split(np.arange(len(labels)), train_size=n, stratify=labels, random_state=seed)
        if n < len(counts) or len({labels[i] for i in chosen}) == len(counts):
            return sorted(chosen.tolist())
    except ValueError:
        pass
    rng = np.random.default_rng(seed)
    classes = sorted(counts)
    if n < len(classes):  # too few for one each: draw which classes appear, weighted by size
        weights = np.array([counts[c] for c in classes], dtype=float)
        picked = rng.choice(len(classes), size=n, replace=False, p=weights / weights.sum())
        quota = {classes[i]: 1 for i in picked}
    else:
        spare = {c: counts[c] - 1 for c in classes}
        ideal = {c: (n - len(classes)) * spare[c] / max(sum(spare.values()), 1) for c in classes}
        quota = {c: 1 + math.floor(ideal[c]) for c in classes}
        tie_break = rng.permutation(len(classes))
        by_remainder = sorted(classes, key=lambda c: (-(ideal[c] - math.floor(ideal[c])), tie_break[classes.index(c)]))
        for c in by_remainder[: n - sum(quota.values())]:
            quota[c] += 1
    by_class: dict[str, list[int]] = {}
    for i, label in enumerate(labels):
        by_class.setdefault(label, []).append(i)
    chosen_idx = [i for c, q in sorted(quota.items()) for i in rng.choice(by_class[c], size=q, replace=False)]
    return sorted(int(i) for i in chosen_idx)


def few_shot(
    splits: DatasetSplits, *, n: int | None = None, k_per_class: int | None = None, seed: int
) -> DatasetSplits:
    """Return splits whose train is a seeded few-shot draw; validation, test and ``label_names`` are unchanged.

    Give exactly one of ``n`` (``n`` examples drawn with the training label distribution, every class at least
    once when ``n`` >= the number of classes; paper 002's setting) or ``k_per_class`` (``k`` examples of every
    class). Several draws with different seeds give the spread the method reports. ``record["few_shot"]`` says
    how the draw was made and ``record["train"]`` describes the drawn train split.
    """
    if (n is None) == (k_per_class is None):
        raise DataError(f"few_shot needs exactly one of n or k_per_class (got n={n}, k_per_class={k_per_class}).")
    train = splits.train
    if n is not None:
        if n < 1 or n > len(train):
            raise DataError(
                f"few_shot n={n} is outside 1..{len(train)}, the size of the training split. Choose a smaller n."
            )
        chosen = stratified_subset(train.labels, n, seed=seed)
    else:
        assert k_per_class is not None  # for the type checker; enforced above
        if k_per_class < 1:
            raise DataError(f"few_shot k_per_class={k_per_class} must be at least 1.")
        by_class: dict[str, list[int]] = {}
        for i, label in enumerate(train.labels):
            by_class.setdefault(label, []).append(i)
        for label, rows in sorted(by_class.items()):
            if len(rows) < k_per_class:
                raise DataError(
                    f"few_shot k_per_class={k_per_class}: class {label!r} has only {len(rows)} training example(s). "
                    f"Lower k_per_class to at most {len(rows)}, add examples, or drop the class."
                )
        rng = np.random.default_rng(seed)
        chosen = sorted(
            int(i) for _, rows in sorted(by_class.items()) for i in rng.choice(rows, size=k_per_class, replace=False)
        )
    drawn = train.select(chosen)
    record = copy.deepcopy(splits.record)
    record["few_shot"] = {
        "n": n,
        "k_per_class": k_per_class,
        "seed": seed,
        "from_size": len(train),
        "class_counts": dict(sorted(Counter(drawn.labels).items())),
    }
    record["train"] = {**record.get("train", {}), "size": len(drawn), "ids_sha1": ids_sha1(drawn.ids)}
    return dataclasses.replace(splits, train=drawn, record=record)


def _concatenate(first: LabelledSplit, second: LabelledSplit) -> LabelledSplit:
    pairs = None
    if first.text_pairs is not None and second.text_pairs is not None:
        pairs = [*first.text_pairs, *second.text_pairs]
    return LabelledSplit([*first.texts, *second.texts], [*first.labels, *second.labels], [*first.ids, *second.ids],
                         pairs)


def pool(splits: DatasetSplits) -> DatasetSplits:
    """Return splits whose train is the labelled pool, train + validation (the refit after model selection).
    Validation stays as it was, so its scores are then scores on training rows; test is unchanged."""
    pooled = _concatenate(splits.train, splits.validation)
    record = copy.deepcopy(splits.record)
    record["pool"] = {"train": len(splits.train), "validation": len(splits.validation),
                      "note": "train = train + validation; validation rows are also training rows"}
    record["train"] = {**record.get("train", {}), "size": len(pooled), "ids_sha1": ids_sha1(pooled.ids)}
    return dataclasses.replace(splits, train=pooled, record=record)


def fold_assignment(labels: Sequence[str], folds: int, seed: int) -> list[int]:
    """The fold (0..folds-1) of every row of a labelled pool: stratified (scikit-learn's ``StratifiedKFold``,
    shuffled with ``seed``), so every fold holds each class in about its share of the pool. A class with fewer rows
    than folds is absent from some folds' validation, never from every fold's training."""
    import warnings

    from sklearn.model_selection import StratifiedKFold

    if folds > len(labels):
        raise DataError(f"{folds} cross-validation folds need at least {folds} labelled rows; the pool has "
                        f"{len(labels)}. Use fewer folds (data.cv_folds / --cv).")
    assignment = [0] * len(labels)
    with warnings.catch_warnings():  # "the least populated class has only n members": handled as documented
        warnings.simplefilter("ignore", UserWarning)
        splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
        for fold, (_, held_out) in enumerate(splitter.split(np.zeros(len(labels)), list(labels))):
            for row in held_out:
                assignment[int(row)] = fold
    return assignment


def cross_validation_fold(splits: DatasetSplits, *, folds: int, fold: int, seed: int) -> DatasetSplits:
    """Return splits for fold ``fold`` of ``folds`` over the labelled pool (train + validation): validation is the
    fold, train the other folds; test and ``label_names`` are unchanged. The same pool, ``folds`` and ``seed`` give
    the same folds for every recipe, so candidates are compared fold by fold. ``record["cross_validation"]`` says
    which fold it is."""
    if not 0 <= fold < folds:
        raise DataError(f"cross-validation fold {fold} is outside 0..{folds - 1}")
    pooled = _concatenate(splits.train, splits.validation)
    assignment = fold_assignment(pooled.labels, folds, seed)
    train = pooled.select([i for i, f in enumerate(assignment) if f != fold])
    held_out = pooled.select([i for i, f in enumerate(assignment) if f == fold])
    record = copy.deepcopy(splits.record)
    record["cross_validation"] = {"folds": folds, "fold": fold, "seed": seed, "pool": len(pooled),
                                  "pool_ids_sha1": ids_sha1(pooled.ids)}
    record["train"] = {**record.get("train", {}), "size": len(train), "ids_sha1": ids_sha1(train.ids)}
    record["validation"] = {**record.get("validation", {}), "size": len(held_out), "ids_sha1": ids_sha1(held_out.ids)}
    return dataclasses.replace(splits, train=train, validation=held_out, record=record)


def resolve_max_length(
    policy: str | int,
    texts: list[str],
    tokenize_lengths: Callable[[list[str]], list[int]],
    model_max_length: int,
    seed: int = 0,
) -> int:
    """Turn a max-sequence-length policy into a number of tokens (SPEC §2; paper 000 Table 5 notes).

    ``"model"``: the model's limit. ``"data"``: the longest text's token count x 1.2, rounded up. ``"sample"``: the
    same over a seeded 10% sample of ``texts`` (at least one text) -- cheap on big sets. An int (or a string of
    digits, as config overrides deliver them): that number. The result is clipped to ``model_max_length`` and is at
    least 8 (unless the model allows fewer). ``tokenize_lengths`` maps texts to their token counts and is only
    called on the texts needed.
    """
    if isinstance(policy, str) and policy.strip().isdigit():
        policy = int(policy)
    if isinstance(policy, int) and not isinstance(policy, bool):
        if policy < 1:
            raise ValueError(f"max length {policy} must be a positive int, or one of {MAX_LENGTH_POLICIES}")
        wanted = policy
    elif policy == "model":
        wanted = model_max_length
    elif policy in ("data", "sample"):
        if not texts:
            raise ValueError(f"max length policy {policy!r} needs at least one text")
        if policy == "sample":
            size = min(len(texts), max(1, math.ceil(0.1 * len(texts))))
            picked = np.random.default_rng(seed).choice(len(texts), size=size, replace=False)
            texts = [texts[i] for i in sorted(picked.tolist())]
        wanted = math.ceil(max(tokenize_lengths(texts)) * 1.2)
    else:
        raise ValueError(f"max length policy {policy!r} is not allowed; use one of {MAX_LENGTH_POLICIES} or an int")
    return min(model_max_length, max(8, wanted))


def imbalance_sizes(num_classes: int, ratio: float, largest: int) -> list[int]:
    """Per-class sizes falling geometrically from the largest class to the smallest, largest:smallest = ``ratio``.

    The smallest class gets ``floor(largest / ratio)`` examples (at least 1) and the largest ``round(smallest x
    ratio)``, so the ratio is exact whenever ``smallest x ratio`` is a whole number (always for integer ratios);
    class ``i`` of ``C`` gets ``round(smallest x ratio ** ((C - 1 - i) / (C - 1)))``.
    """
    if ratio < 1:
        raise DataError(f"data.imbalance_ratio={ratio} must be at least 1 (largest:smallest class size).")
    smallest = max(1, math.floor(largest / ratio + 1e-9))
    if round(smallest * ratio) > largest:
        raise DataError(
            f"data.imbalance_ratio={ratio} needs at least {math.ceil(ratio)} training examples of the largest class, "
            f"but it can have only {largest}. Lower the ratio, or raise data.imbalance_largest / the training set."
        )
    if num_classes == 1:
        return [round(smallest * ratio)]
    return [round(smallest * ratio ** ((num_classes - 1 - i) / (num_classes - 1))) for i in range(num_classes)]


def imbalance(splits: DatasetSplits, *, ratio: float, largest: int | None = None, seed: int) -> DatasetSplits:
    """Down-sample the training split so class sizes fall geometrically and largest:smallest is ``ratio``
    (:func:`imbalance_sizes`); validation and test are untouched.

    Which class gets which size is a seeded permutation of the classes (so different seeds make different classes
    rare), and each class's rows are a seeded sample. ``largest`` (default: the smallest class count, so every
    class can give its share) is the size of the largest class. ``record["imbalance"]`` holds the ratio, the
    sizes and ``rare_classes``: the quarter of classes (at least one) with the fewest examples.
    """
    train = splits.train
    by_class: dict[str, list[int]] = {}
    for i, label in enumerate(train.labels):
        by_class.setdefault(label, []).append(i)
    classes = sorted(by_class)
    available = min(len(rows) for rows in by_class.values())
    largest = available if largest is None else largest
    if largest > available:
        short = min(classes, key=lambda c: (len(by_class[c]), c))
        raise DataError(
            f"data.imbalance_largest={largest}: class {short!r} has only {available} training example(s). Lower "
            f"data.imbalance_largest to at most {available}, or use a bigger training set."
        )
    sizes = imbalance_sizes(len(classes), ratio, largest)
    rng = np.random.default_rng(seed)
    order = [classes[i] for i in rng.permutation(len(classes))]  # order[0] keeps the most, order[-1] the fewest
    target = dict(zip(order, sizes))
    chosen = sorted(int(i) for c in classes for i in rng.choice(by_class[c], size=target[c], replace=False))
    drawn = train.select(chosen)
    record = copy.deepcopy(splits.record)
    record["imbalance"] = {
        "ratio": ratio,
        "achieved_ratio": max(sizes) / min(sizes),  # = ratio whenever smallest x ratio is a whole number
        "largest": max(sizes),
        "smallest": min(sizes),
        "seed": seed,
        "from_size": len(train),
        "class_counts": {c: target[c] for c in order},
        "rare_classes": order[len(order) - max(1, len(order) // 4):],
    }
    record["train"] = {**record.get("train", {}), "size": len(drawn), "ids_sha1": ids_sha1(drawn.ids)}
    return dataclasses.replace(splits, train=drawn, record=record)
