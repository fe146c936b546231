"""A run's data: the splits of its config (or of tables given from Python), the few-shot draw and noise
augmentation, the phase-1 unlabelled texts without their evaluation overlap, and the token limit."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from phasefit.config import RunConfig
from phasefit.run_directory import RunDirectoryError

if TYPE_CHECKING:
    from phasefit.data import DatasetSplits
    from phasefit.data.memory import InMemoryData

logger = logging.getLogger(__name__)


def load_run_data(config: RunConfig, tables: InMemoryData | None = None) -> DatasetSplits:
    """Load and split the data of a run config (deterministic for the config's seed); ``tables``: data passed from
    Python, which ``data.path`` then names by its content hash."""
    from phasefit.data import cross_validation_fold, few_shot, imbalance, load_splits, pool

    data = config.data
    if tables is not None and tables.spec != data.path:
        raise RunDirectoryError(f"data.path is {data.path!r} but the data given from Python is {tables.spec}; "
                                "pass the data the run was made with")
    splits = load_splits(
        tables if tables is not None else data.path,
        text_column=data.text_column,
        label_column=data.label_column,
        text_pair_column=data.text_pair_column,
        label_separator=data.label_separator,
        label_depth=data.label_depth,
        validation_fraction=data.validation_fraction,
        test_fraction=data.test_fraction,
        seed=config.seed if data.split_seed is None else data.split_seed,
        max_train_examples=data.max_train_examples,
        max_eval_examples=data.max_eval_examples,
        max_validation_examples=data.max_validation_examples,
        max_test_examples=data.max_test_examples,
    )
    if data.few_shot_n is not None or data.few_shot_k is not None:
        draw_seed = config.seed if data.few_shot_seed is None else data.few_shot_seed
        splits = few_shot(splits, n=data.few_shot_n, k_per_class=data.few_shot_k, seed=draw_seed)
    if data.imbalance_ratio is not None:
        seed = config.seed if data.imbalance_seed is None else data.imbalance_seed
        splits = imbalance(splits, ratio=data.imbalance_ratio, largest=data.imbalance_largest, seed=seed)
    split_seed = config.seed if data.split_seed is None else data.split_seed
    if data.cv_folds is not None:  # after the draws: the folds cut the pool a user would have labelled
        splits = cross_validation_fold(splits, folds=data.cv_folds, fold=data.cv_fold, seed=split_seed)
    elif data.train_on == "pool":
        splits = pool(splits)
    if data.augment_noise_level > 0:
        splits = augment_with_noise(splits, data.augment_noise_level, data.augment_copies, seed=config.seed)
    return splits


def augment_with_noise(splits: DatasetSplits, level: float, copies: int, *, seed: int) -> DatasetSplits:
    """Training set plus ``copies`` noisy copies of each text (same label): paper 002 §4.2's augmentation, with
    word-level noise in place of back-translation (see :func:`phasefit.data.noise.word_noise`)."""
    import dataclasses

    from phasefit.data import LabelledSplit
    from phasefit.data.noise import word_noise

    rng = np.random.default_rng(seed)
    train = splits.train
    vocabulary = sorted({word for text in train.texts for word in text.split()})
    texts, labels, ids = list(train.texts), list(train.labels), list(train.ids)
    for copy in range(1, copies + 1):
        for text, label, row_id in zip(train.texts, train.labels, train.ids):
            texts.append(word_noise(text, level, rng, vocabulary))
            labels.append(label)
            ids.append(f"{row_id}#noise{copy}")
    pairs = None if train.text_pairs is None else list(train.text_pairs) * (copies + 1)  # second text kept clean
    augmented = LabelledSplit(texts=texts, labels=labels, ids=ids, text_pairs=pairs)
    record = {**splits.record, "augmentation": {"noise_level": level, "copies": copies, "added": len(texts) - len(train)}}
    return dataclasses.replace(splits, train=augmented, record=record)


def read_unlabelled(path: str | None) -> list[str]:
    """Extra phase-1 texts, one per line (blank lines skipped)."""
    if path is None:
        return []
    from phasefit.data import DataError

    file = Path(path)
    if not file.is_file():
        raise DataError(f"unlabelled text file {file} not found; fix data.unlabelled_path")
    try:
        lines = file.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as err:
        raise DataError(f"{file}: byte {err.start} is not UTF-8; re-save the file as UTF-8") from None
    return [line for line in lines if line.strip()]


def drop_evaluation_overlap(texts: list[str], splits: DatasetSplits, policy: str = "drop") -> tuple[list[str], int]:
    """Unlabelled phase-1 texts that also occur in validation or test (whitespace-trimmed, exact) are a leak: DAE
    would learn to reconstruct the very texts the run is scored on (paper 000 fed SNIPS' test texts to phase 1).
    With ``policy="drop"`` they are removed; either way the count is logged. Returns (texts kept, overlap count)."""
    held_out = {text.strip() for part in (splits.validation, splits.test) for text in part.texts}
    overlap = [text for text in texts if text.strip() in held_out]
    if not overlap:
        return texts, 0
    if policy == "drop":
        logger.warning("%d unlabelled text(s) also occur in validation/test and were dropped from phase 1 "
                       "(data.unlabelled_overlap=keep keeps them, a leak)", len(overlap))
        return [text for text in texts if text.strip() not in held_out], len(overlap)
    logger.warning("%d unlabelled text(s) also occur in validation/test and are kept (data.unlabelled_overlap=keep): "
                   "phase 1 sees evaluation texts", len(overlap))
    return texts, len(overlap)


def run_unlabelled(config: RunConfig, splits: DatasetSplits) -> tuple[list[str], int]:
    """A run's phase-1 unlabelled texts (evaluation overlap handled by ``data.unlabelled_overlap``) and the overlap
    count."""
    return drop_evaluation_overlap(read_unlabelled(config.data.unlabelled_path), splits,
                                   config.data.unlabelled_overlap)


def run_max_length(config: RunConfig, splits: DatasetSplits, encoder: Any) -> int:
    """The token limit of a run: ``data.max_length``'s policy, capped by the encoder's own limit."""
    from phasefit.data import resolve_max_length

    model_limit = int(getattr(encoder, "max_seq_length", None) or encoder.tokenizer.model_max_length)
    return resolve_max_length(
        config.data.max_length,
        splits.train.texts,
        lambda texts: [len(ids) for ids in encoder.tokenizer(list(texts))["input_ids"]],
        model_limit,
        seed=config.seed,
    )
