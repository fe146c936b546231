"""Data layer: load labelled text into train/validation/test, seeded stratified splits, few-shot draws, max length."""

from phasefit.data.errors import DataError
from phasefit.data.loading import builtin_data_path, load_splits, read_texts
from phasefit.data.splits import (DatasetSplits, LabelledSplit, cross_validation_fold, few_shot, imbalance, pool,
                                  resolve_max_length)

__all__ = [
    "DataError",
    "DatasetSplits",
    "LabelledSplit",
    "builtin_data_path",
    "cross_validation_fold",
    "few_shot",
    "imbalance",
    "pool",
    "load_splits",
    "read_texts",
    "resolve_max_length",
]
