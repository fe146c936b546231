"""Load labelled text data from files, the bundled set or the Hugging Face cache into train/validation/test.

Every problem a user can fix raises :class:`~phasefit.data.errors.DataError` naming the file, the row (1-based
data record, header not counted; for JSON Lines the line number) and the column, and saying the fix. Texts are
kept verbatim; labels become strings, so ``1`` and ``"1"`` are the same class.
"""

from __future__ import annotations

import math
import os
from importlib import resources
from pathlib import Path
from typing import Any

import pandas as pd

from phasefit.data.errors import DataError
from phasefit.data.memory import MEMORY_PREFIX, InMemoryData
from phasefit.data.memory import SPLIT_ALIASES as SPLIT_FILE_STEMS
from phasefit.data.memory import Table as _Table
from phasefit.data.readers import SUPPORTED_EXTENSIONS, _decode_utf8, _read_file
from phasefit.data.splits import (
    DatasetSplits,
    LabelledSplit,
    sorted_label_names,
    split_record,
    stratified_holdout,
    stratified_subset,
)



def builtin_data_path(name: str = "snips") -> Path:
    """Folder of a data set shipped with the package (``builtin_data/<name>``), e.g. the default ``snips``."""
    root = resources.files("phasefit") / "builtin_data"
    folder = root / name
    if not name or not folder.is_dir():
        known = sorted(entry.name for entry in root.iterdir() if entry.is_dir())
        raise DataError(f"no built-in data set {name!r}; available: {known}. Use one of these or pass a path.")
    return Path(str(folder))  # the package is installed as files (setuptools), so this is a real folder


def _where(row_id: str) -> str:
    """'train.csv:17' -> 'train.csv row 17', for messages about rows known only by id."""
    source, row = row_id.rsplit(":", 1)
    return f"{source} row {row}"


def read_texts(path: str | os.PathLike, column: str = "text") -> list[str]:
    """Unlabelled texts to predict: a ``.txt`` file (one text per line, blank lines skipped) or one column of a
    CSV/TSV/JSONL/Parquet table, read and checked like training data (strict UTF-8, row-numbered errors)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"input file {path} not found; pass an existing file")
    if path.suffix.lower() in (".txt", ""):
        return [line for line in _decode_utf8(path).splitlines() if line.strip()]
    table = _read_file(path)
    if column not in table.data:
        raise DataError(f"{path.name}: no column {column!r} (columns: {list(table.data)}); pass --text-column")
    return [_text(value, table, row, column) for value, row in zip(table.data[column], table.rows)]


def _find_split_files(path: Path) -> dict[str, Path]:
    """Map split name -> file for a folder of split files or a single (training) file."""
    if not path.exists():
        raise DataError(
            f"data path not found: {path}. Set data.path to a folder with train/validation/test files, a single "
            "file, 'builtin:snips' or 'hf:NAME'."
        )
    if path.is_file():
        return {"train": path}
    found: dict[str, Path] = {}
    for split, stems in SPLIT_FILE_STEMS.items():
        matches = sorted(
            f
            for f in path.iterdir()
            if f.is_file() and f.stem.lower() in stems and f.suffix.lower() in SUPPORTED_EXTENSIONS
        )
        if len(matches) > 1:
            raise DataError(f"{path}: several {split} files {[m.name for m in matches]}. Keep one of them.")
        if matches:
            found[split] = matches[0]
    if "train" not in found:
        exts = "|".join(e.lstrip(".") for e in SUPPORTED_EXTENSIONS)
        raise DataError(
            f"{path}: no training file. Looked for train.<ext> (and optional validation/valid/dev.<ext> and "
            f"test.<ext>) with <ext> one of {exts}. Rename the training file, or pass the file itself as data.path."
        )
    return found


def _hf_is_cached(name: str) -> bool:
    """Whether ``name`` is in the datasets cache or the hub cache; checked before load_dataset to fail fast."""
    import datasets.config
    import huggingface_hub.constants

    datasets_cache = Path(datasets.config.HF_DATASETS_CACHE)
    candidates = [datasets_cache / name.replace("/", "___"), datasets_cache / name.replace("/", "___").lower()]
    candidates.append(Path(huggingface_hub.constants.HF_HUB_CACHE) / f"datasets--{name.replace('/', '--')}")
    return any(c.is_dir() for c in candidates)


def _read_hf(spec: str, label_column: str) -> dict[str, _Table]:
    """Tables of the splits of a cached Hugging Face dataset ``hf:NAME`` or ``hf:NAME:CONFIG``.

    Only cached data sets load: a missing one fails at once instead of waiting on the network. Loading goes through
    ``datasets.load_dataset``, which honours ``HF_DATASETS_OFFLINE=1`` / ``HF_HUB_OFFLINE=1``. ``ClassLabel`` labels
    become their names.
    """
    parts = spec.split(":")
    if len(parts) not in (2, 3) or not parts[1]:
        raise DataError(f"{spec!r}: write a Hugging Face data set as 'hf:NAME' or 'hf:NAME:CONFIG'.")
    name, config = parts[1], (parts[2] if len(parts) == 3 else None)
    if not _hf_is_cached(name):
        raise DataError(
            f"{spec}: not in the local Hugging Face cache; phasefit loads Hugging Face data sets only from the cache. "
            f"Download it once while online (datasets.load_dataset({name!r})), or export it to CSV and pass the folder."
        )
    import datasets

    try:
        loaded = datasets.load_dataset(name, config)
    except Exception as err:  # network, cache and config errors come in many types
        raise DataError(
            f"{spec}: could not load from the cache ({type(err).__name__}: {err}). Set HF_DATASETS_OFFLINE=1 when "
            "offline, check the config name, or export the data set to CSV and pass the folder."
        ) from None
    tables: dict[str, _Table] = {}
    for split, aliases in SPLIT_FILE_STEMS.items():
        hf_split = next((a for a in aliases if a in loaded), None)
        if hf_split is None:
            continue
        tables[split] = _Table.from_dataset(f"hf:{hf_split}", loaded[hf_split], label_column)
    if "train" not in tables:
        raise DataError(f"{spec}: no 'train' split (found {list(loaded)}). Use a data set with a train split.")
    return tables


def _text(value: Any, table: _Table, row: int, column: str) -> str:
    if not isinstance(value, str):
        raise DataError(
            f"{table.name} row {row}: missing or non-text value {value!r} in column {column!r}. "
            "Fill the text or remove the row."
        )
    if not value.strip():
        raise DataError(f"{table.name} row {row}: empty text in column {column!r}. Remove the row or fill the text.")
    return value


def _label(value: Any, table: _Table, row: int, column: str) -> str:
    """Labels as strings; integral numbers as their int (1, 1.0 and "1" are one class)."""
    if isinstance(value, str):
        if value.strip():
            return value
    elif isinstance(value, bool):
        return str(value)
    elif isinstance(value, int):
        return str(value)
    elif isinstance(value, float) and math.isfinite(value):
        return str(int(value)) if value.is_integer() else str(value)
    elif value is not None and not (isinstance(value, float) or value is pd.NA):
        raise DataError(
            f"{table.name} row {row}: label {value!r:.60} in column {column!r} is not a string or number. "
            "Use one class name per row (a hierarchical label as a path, e.g. 'comp.sys.mac')."
        )
    raise DataError(f"{table.name} row {row}: missing label in column {column!r}. Fill the label or remove the row.")


def _to_split(table: _Table, text_column: str, label_column: str, text_pair_column: str | None) -> LabelledSplit:
    flags = {text_column: "data.text_column", label_column: "data.label_column"}
    if text_pair_column is not None:
        flags[text_pair_column] = "data.text_pair_column"
    for column, flag in flags.items():
        if column not in table.data:
            raise DataError(
                f"{table.name}: no column {column!r}; columns present: {list(table.data)}. "
                f"Set {flag} to the column that holds it."
            )
    if not table.rows:
        raise DataError(f"{table.name} has no data rows. Add rows or remove the file.")
    texts = [_text(v, table, r, text_column) for r, v in zip(table.rows, table.data[text_column])]
    labels = [_label(v, table, r, label_column) for r, v in zip(table.rows, table.data[label_column])]
    pairs = None
    if text_pair_column is not None:
        pairs = [_text(v, table, r, text_pair_column) for r, v in zip(table.rows, table.data[text_pair_column])]
    return LabelledSplit(texts, labels, [f"{table.name}:{r}" for r in table.rows], pairs)


def _harmonise_depth(splits: dict[str, LabelledSplit], separator: str, depth: int | None) -> None:
    """Give hierarchical labels one depth: truncate/pad to ``depth``, or check that all have the same depth.

    Padding repeats the last level (depth 3: ``alt.atheism`` -> ``alt.atheism.atheism``) so every label keeps a
    distinct leaf; truncation merges classes (depth 2: ``comp.sys.mac.hardware`` -> ``comp.sys``).
    """
    if depth is not None:
        for split in splits.values():
            for i, label in enumerate(split.labels):
                levels = label.split(separator)
                split.labels[i] = separator.join(levels[:depth] + levels[-1:] * (depth - len(levels)))
        return
    first_id, first_label = splits["train"].ids[0], splits["train"].labels[0]
    first_depth = len(first_label.split(separator))
    for split in splits.values():
        for row_id, label in zip(split.ids, split.labels):
            depth_here = len(label.split(separator))
            if depth_here != first_depth:
                raise DataError(
                    f"{_where(row_id)}: label {label!r} has {depth_here} levels but {_where(first_id)} label "
                    f"{first_label!r} has {first_depth} (separator {separator!r}); all labels need the same number "
                    "of levels. Set data.label_depth=N to truncate or pad labels to N levels, or pad your labels."
                )


def _read_tables(spec: str, label_column: str) -> tuple[dict[str, _Table], dict[str, str]]:
    """The split tables at a data path and where each came from."""
    if spec.startswith("hf:"):
        tables = _read_hf(spec, label_column)
        return tables, {split: f"{spec}:{table.name.split(':')[1]}" for split, table in tables.items()}
    folder = builtin_data_path(spec.split(":", 1)[1]) if spec.startswith("builtin:") else Path(spec).expanduser()
    files = _find_split_files(folder)
    return {split: _read_file(file) for split, file in files.items()}, {split: str(file) for split, file in files.items()}


def load_splits(
    path: str | os.PathLike | InMemoryData,
    *,
    text_column: str = "text",
    label_column: str = "label",
    text_pair_column: str | None = None,
    label_separator: str | None = None,
    label_depth: int | None = None,
    validation_fraction: float = 0.2,
    test_fraction: float = 0.1,
    seed: int = 0,
    max_train_examples: int | None = None,
    max_eval_examples: int | None = None,
    max_validation_examples: int | None = None,
    max_test_examples: int | None = None,
) -> DatasetSplits:
    """Load train/validation/test splits, making the missing ones by seeded stratified splits of train (SPEC §2).

    Args:
        path: a folder with ``train.*`` and optional ``validation.*`` (or ``valid.*``, ``dev.*``) and ``test.*``
            (.csv, .tsv, .jsonl, .json, .parquet); a single file (train only); ``"builtin:NAME"`` for a bundled
            set; ``"hf:NAME"`` / ``"hf:NAME:CONFIG"`` for a Hugging Face data set already in the local cache; or
            an :class:`~phasefit.data.memory.InMemoryData` (tables passed from Python).
        text_column, label_column, text_pair_column: column names (the pair column is optional).
        label_separator: separator of hierarchical labels (``"."`` for ``comp.sys.mac.hardware``); labels keep the
            full path, and all must have the same number of levels unless ``label_depth`` is set.
        label_depth: with ``label_separator``, cut longer labels to this many levels and pad shorter ones by
            repeating their last level (``alt.atheism`` -> ``alt.atheism.atheism`` at depth 3).
        validation_fraction, test_fraction: sizes, as fractions of the whole training file, of the stratified
            validation and test splits made when those files are missing. Test is taken first, then validation
            from the rest, so with both missing train keeps 1 - test_fraction - validation_fraction.
        seed: seed of every split and subset.
        max_validation_examples, max_test_examples: per-split caps that override ``max_eval_examples``.
        max_train_examples, max_eval_examples: optional seeded stratified subsets of train and of validation and
            test each, for big data sets on CPU.

    Returns:
        DatasetSplits whose ``label_names`` are the classes of the training file and whose ``record`` says how
        every split was made.
    """
    for name, fraction in (("validation_fraction", validation_fraction), ("test_fraction", test_fraction)):
        if not 0 < fraction < 1:
            raise DataError(f"data.{name}={fraction} must lie strictly between 0 and 1.")
    for name, limit in (("max_train_examples", max_train_examples), ("max_eval_examples", max_eval_examples)):
        if limit is not None and limit < 1:
            raise DataError(f"data.{name}={limit} must be a positive number of examples, or unset.")
    if label_depth is not None and (label_separator is None or label_depth < 1):
        raise DataError(f"data.label_depth={label_depth} needs data.label_separator set and a depth of at least 1.")
    if isinstance(path, InMemoryData):
        spec, tables = path.spec, path.tables
        sources = {split: f"{spec}:{split}" for split in tables}
    else:
        spec = os.fspath(path)
        if spec.startswith(MEMORY_PREFIX):
            raise DataError(f"data.path {spec!r} names data that was passed from Python (a DataFrame, Dataset or "
                            "lists), which only that Python call holds; pass the same data again to "
                            "phasefit.train(..., resume=True), or save it to a file and set data.path to it")
        tables, sources = _read_tables(spec, label_column)
    loaded = {split: _to_split(t, text_column, label_column, text_pair_column) for split, t in tables.items()}
    if label_separator is not None:
        _harmonise_depth(loaded, label_separator, label_depth)

    train = loaded["train"]
    train_name = tables["train"].name
    label_names = sorted_label_names(train.labels)
    if len(label_names) < 2:
        raise DataError(
            f"{train_name}: only one class ({label_names[0]!r}) in the training data; a classifier needs at least 2. "
            f"Check data.label_column ({label_column!r}) or add examples of other classes."
        )
    seen = set(label_names)
    for split in [s for s in ("validation", "test") if s in loaded]:
        for row_id, label in zip(loaded[split].ids, loaded[split].labels):
            if label not in seen:
                raise DataError(
                    f"{_where(row_id)}: label {label!r} never occurs in the training data ({train_name}). "
                    "Fix the label, add training examples of it, or remove the rows with it."
                )

    record: dict[str, Any] = {}  # the three splits first, then every setting that shaped them
    rest, made = train, {}
    for split, fraction in (("test", test_fraction), ("validation", validation_fraction)):
        if split in loaded:
            made[split] = loaded[split]
            record[split] = split_record(loaded[split], "file", path=sources[split])
        else:
            after_test = split == "validation" and "test" not in loaded
            origin = train_name + (" (after taking the test split)" if after_test else "")
            size = math.ceil(fraction * len(train))
            rest, made[split] = stratified_holdout(rest, size, seed=seed, what=split, origin=origin)
            record[split] = split_record(made[split], "stratified-from-train", path=sources["train"], fraction=fraction)
    made["train"] = rest
    record["train"] = split_record(rest, "file" if rest is train else "stratified-from-train", path=sources["train"])
    if max_train_examples is not None and max_train_examples < len(label_names):
        raise DataError(
            f"data.max_train_examples={max_train_examples} is fewer than the {len(label_names)} classes. "
            "Raise it to at least the number of classes."
        )
    limits = {"train": max_train_examples, "validation": max_validation_examples or max_eval_examples,
              "test": max_test_examples or max_eval_examples}
    for split, limit in limits.items():
        if limit is not None and limit < len(made[split]):
            made[split] = made[split].select(stratified_subset(made[split].labels, limit, seed=seed))
            entry = record[split]
            record[split] = {**entry, "subset_of": entry["size"], **split_record(made[split], entry["source"])}
    record = {key: record[key] for key in ("train", "validation", "test")} | dict(
        path=spec, seed=seed, validation_fraction=validation_fraction, test_fraction=test_fraction,
        text_column=text_column, label_column=label_column, text_pair_column=text_pair_column,
        label_separator=label_separator, label_depth=label_depth,
        max_train_examples=max_train_examples, max_eval_examples=max_eval_examples,
        max_validation_examples=max_validation_examples, max_test_examples=max_test_examples,
    )  # fmt: skip
    return DatasetSplits(made["train"], made["validation"], made["test"], label_names, label_separator, record)
