"""Labelled data passed from Python (a DataFrame, a ``datasets.Dataset``/``DatasetDict``, a dict of columns or
lists of texts and labels) as the same raw tables the file loaders produce, so it is checked, split and
fingerprinted exactly like a file: errors name the split, the row and the column, and ``config.yaml`` records it as
``data.path: memory:<content hash>``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from phasefit.data.errors import DataError

MEMORY_PREFIX = "memory:"
SPLITS = ("train", "validation", "test")
SPLIT_ALIASES = {"train": ("train",), "validation": ("validation", "valid", "dev"), "test": ("test",)}


@dataclass
class Table:
    """Raw columns of one split before validation; ``rows`` are the 1-based row numbers a user sees."""

    name: str  # "train.csv", "hf:train" or "memory:train": used in messages and row ids f"{name}:{row}"
    data: dict[str, list[Any]]  # column -> values, in order
    rows: list[int]

    @classmethod
    def from_frame(cls, name: str, frame: Any) -> Table:
        """A pandas DataFrame's columns (index ignored)."""
        return cls(name, {str(c): frame[c].tolist() for c in frame.columns}, list(range(1, len(frame) + 1)))

    @classmethod
    def from_dataset(cls, name: str, dataset: Any, label_column: str) -> Table:
        """A ``datasets.Dataset``'s columns; ``ClassLabel`` labels become their names (-1, "no label", None)."""
        import datasets

        data = {c: dataset[c] for c in dataset.column_names}
        feature = dataset.features.get(label_column)
        if isinstance(feature, datasets.ClassLabel) and label_column in data:
            data[label_column] = [feature.int2str(v) if v is not None and v >= 0 else None for v in data[label_column]]
        return cls(name, data, list(range(1, dataset.num_rows + 1)))


@dataclass
class InMemoryData:
    """Split tables given from Python; ``spec`` (``memory:<sha256 prefix>``) stands in for a path in configs."""

    tables: dict[str, Table]
    spec: str
    description: str


def _is_dataset_dict(value: Any) -> bool:
    return type(value).__name__ in ("DatasetDict", "IterableDatasetDict")


def _is_dataset(value: Any) -> bool:
    return hasattr(value, "column_names") and hasattr(value, "features") and hasattr(value, "num_rows")


def _is_frame(value: Any) -> bool:
    return hasattr(value, "columns") and hasattr(value, "iloc")


def _table(name: str, value: Any, text_column: str, label_column: str) -> Table:
    """One split's table from any supported container."""
    if _is_frame(value):
        return Table.from_frame(name, value)
    if _is_dataset(value):
        return Table.from_dataset(name, value, label_column)
    if isinstance(value, Mapping):
        columns = {str(k): list(v) for k, v in value.items()}
        sizes = {k: len(v) for k, v in columns.items()}
        if len(set(sizes.values())) > 1:
            raise DataError(f"{name}: the columns have different lengths {sizes}; give every column one value per row")
        return Table(name, columns, list(range(1, (next(iter(sizes.values()), 0)) + 1)))
    if isinstance(value, tuple) and len(value) == 2:
        texts, labels = list(value[0]), list(value[1])
        if len(texts) != len(labels):
            raise DataError(f"{name}: {len(texts)} texts but {len(labels)} labels; give one label per text")
        return Table(name, {text_column: texts, label_column: labels}, list(range(1, len(texts) + 1)))
    if isinstance(value, Sequence) and not isinstance(value, str) and value and isinstance(value[0], Mapping):
        columns: dict[str, list[Any]] = {}
        for row, record in enumerate(value, start=1):
            if not isinstance(record, Mapping):
                raise DataError(f"{name} row {row}: {type(record).__name__} where a dict of columns was expected")
            for key in set(columns) | set(record):
                columns.setdefault(str(key), [None] * (row - 1)).append(record.get(key))
        return Table(name, columns, list(range(1, len(value) + 1)))
    raise DataError(
        f"{name}: cannot read a {type(value).__name__} as labelled data. Pass a pandas DataFrame, a datasets.Dataset, "
        f"a dict of columns, a list of dicts, a (texts, labels) tuple, or a path to a file or folder"
    )


def _content_hash(tables: dict[str, Table]) -> str:
    digest = hashlib.sha256()
    for split in sorted(tables):
        digest.update(split.encode())
        digest.update(json.dumps(tables[split].data, sort_keys=True, default=str).encode("utf-8"))
    return digest.hexdigest()[:16]


def in_memory_data(data: Any, validation: Any = None, test: Any = None, *, text_column: str = "text",
                   label_column: str = "label") -> InMemoryData:
    """Tables of data given from Python. ``data`` may also hold several splits (a ``DatasetDict`` or a dict with
    ``train``/``validation``/``test`` keys whose values are tables); ``validation`` and ``test`` are optional and
    made from train by seeded stratified splits when missing, as for files.

    Example:
        >>> in_memory_data((["book a table", "play jazz"], ["book", "music"])).tables["train"].data["label"]
        ['book', 'music']
    """
    given: dict[str, Any] = {}
    if _is_dataset_dict(data) or (isinstance(data, Mapping) and "train" in data and text_column not in data):
        for split, aliases in SPLIT_ALIASES.items():
            key = next((a for a in aliases if a in data), None)
            if key is not None:
                given[split] = data[key]
    else:
        given["train"] = data
    for split, value in (("validation", validation), ("test", test)):
        if value is not None:
            if split in given:
                raise DataError(f"the {split} split is given twice (inside data and as {split}=); give it once")
            given[split] = value
    tables = {split: _table(f"memory:{split}", value, text_column, label_column) for split, value in given.items()}
    kinds = sorted({type(v).__name__ for v in given.values()})
    sizes = ", ".join(f"{split} {len(t.rows)}" for split, t in tables.items())
    return InMemoryData(tables, MEMORY_PREFIX + _content_hash(tables), f"{'/'.join(kinds)} from Python ({sizes})")
