"""Data layer: load labelled text into train/validation/test, seeded stratified splits, few-shot draws, max length."""

from phasefit.data.errors import DataError
from phasefit.data.loading import builtin_data_path, load_splits, read_texts
from phasefit.data.splits import DatasetSplits, LabelledSplit, few_shot, imbalance, resolve_max_length

__all__ = [
    "DataError",
    "DatasetSplits",
    "LabelledSplit",
    "builtin_data_path",
    "few_shot",
    "imbalance",
    "load_splits",
    "read_texts",
    "resolve_max_length",
]
