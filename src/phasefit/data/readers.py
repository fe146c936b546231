"""Reading one data file into a raw table: CSV/TSV in row chunks, JSON and JSON Lines, Parquet; strict UTF-8 with
the byte and line of the first bad sequence; a memory check before a file too large for the free memory is read.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd

from phasefit.data.errors import DataError
from phasefit.data.memory import Table as _Table

SUPPORTED_EXTENSIONS = (".csv", ".tsv", ".jsonl", ".json", ".parquet")
_UTF8_BOM = b"\xef\xbb\xbf"


def _decode_utf8(path: Path) -> str:
    """Read a text file as strict UTF-8 (an optional BOM is dropped), naming the byte and line when it is not."""
    raw = path.read_bytes()
    start = len(_UTF8_BOM) if raw.startswith(_UTF8_BOM) else 0
    try:
        return raw[start:].decode("utf-8", errors="strict")
    except UnicodeDecodeError as err:
        offset = start + err.start
        line = raw.count(b"\n", 0, offset) + 1
        raise DataError(
            f"{path.name} byte {offset} (line {line} of the file): not valid UTF-8 (byte 0x{raw[offset]:02x}). "
            "Re-save the file as UTF-8."
        ) from None


# Loading holds the parsed strings (Python objects, ~2x the file for short ASCII rows) plus the parser's working
# copy: a file needs about this many times its size in free memory (measured: docs/reliability.md, item 8).
MEMORY_PER_FILE_BYTE = 5
_BLOCK = 1 << 20


def _check_utf8(path: Path) -> int:
    """Check that a file is strict UTF-8 in 1 MB blocks (bounded memory), naming the byte and line when it is
    not; returns the length of a leading BOM (0 or 3)."""
    import codecs

    decoder = codecs.getincrementaldecoder("utf-8")("strict")
    offset = lines = bom = 0
    with path.open("rb") as handle:
        while True:
            block = handle.read(_BLOCK)
            if offset == 0 and block.startswith(_UTF8_BOM):
                bom = len(_UTF8_BOM)
            try:
                decoder.decode(block, final=not block)
            except UnicodeDecodeError as err:
                # err.object is the bytes the decoder held back from the previous block followed by this block.
                held = len(err.object) - len(block)
                position = offset - held + err.start
                line = lines + (block[: position - offset].count(b"\n") if position >= offset else 0) + 1
                raise DataError(
                    f"{path.name} byte {position} (line {line} of the file): not valid UTF-8 "
                    f"(byte 0x{err.object[err.start]:02x}). Re-save the file as UTF-8."
                ) from None
            if not block:
                return bom
            lines += block.count(b"\n")
            offset += len(block)


def check_memory_for(path: Path) -> None:
    """Fail with a clear message, before reading, when a data file cannot fit in the free memory (instead of the
    kernel killing the process halfway)."""
    size = path.stat().st_size
    available = _available_memory()
    needed = MEMORY_PER_FILE_BYTE * size
    if available is not None and needed > available:
        raise DataError(
            f"{path.name} is {size / 2**20:,.0f} MB; loading it needs about {needed / 2**20:,.0f} MB of memory, and "
            f"{available / 2**20:,.0f} MB are free. Free memory, use a machine with more, or load a sample of the "
            "file (e.g. a stratified subset saved as its own file)."
        )


def _available_memory() -> int | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


_CHUNK_ROWS = 100_000


def _read_delimited(path: Path, sep: str) -> _Table:
    # dtype=str keeps labels such as "01" and texts such as "NA" as written; skip_blank_lines=False keeps the
    # record numbering equal to what the user counts (a blank line becomes an empty-text error, not a silent skip).
    # pandas' C parser has no field size limit, so 160k-character 20newsgroups posts load.
    # Bounded memory: the file is checked as strict UTF-8 in blocks, then parsed from disk in chunks of rows that
    # become Python lists at once (pandas never holds the whole file), and a column of few distinct values (the
    # labels) keeps one string object per value instead of one per row.
    bom = _check_utf8(path)
    options = {"sep": sep, "dtype": str, "keep_default_na": False, "skip_blank_lines": False,
               "encoding": "utf-8-sig" if bom else "utf-8"}
    data: dict[str, list[Any]] = {}
    shared: dict[str, dict[str, str] | None] = {}
    try:
        with pd.read_csv(path, chunksize=_CHUNK_ROWS, **options) as reader:
            for chunk in reader:
                for column in chunk.columns:
                    values = chunk[column].tolist()
                    name = str(column)
                    if name not in shared:  # decided on the first chunk: few distinct values -> share them
                        shared[name] = {} if len(set(values)) <= max(1, len(values) // 100) else None
                    cache = shared[name]
                    if cache is not None:
                        values = [cache.setdefault(v, v) for v in values]
                    data.setdefault(name, []).extend(values)
        if not data:  # a header without rows: keep its columns for the messages that follow
            data = {str(c): [] for c in pd.read_csv(path, nrows=0, **options).columns}
    except pd.errors.EmptyDataError:
        raise DataError(f"{path.name} is empty. Add a header line and data rows.") from None
    except pd.errors.ParserError as err:
        raise DataError(
            f"{path.name}: cannot parse as {'TSV' if sep == chr(9) else 'CSV'} ({err}). Fields that contain the "
            'delimiter, quotes or newlines must be enclosed in double quotes ("), with inner quotes doubled.'
        ) from None
    rows = len(next(iter(data.values()))) if data else 0
    return _Table(path.name, data, list(range(1, rows + 1)))


def _json_lines(path: Path) -> Any:
    """(line number, line) of a JSON Lines file, decoded line by line (bounded memory); split on \\n only (not
    splitlines(): U+2028 may sit inside strings)."""
    bom = _check_utf8(path)
    with path.open("r", encoding="utf-8-sig" if bom else "utf-8", newline="\n") as handle:
        yield from enumerate(handle, start=1)


def _read_json(path: Path) -> _Table:
    """JSON Lines (one object per line; rows are line numbers) or, for .json, also an array of objects."""
    records: list[tuple[int, Any]] = []
    is_array = False
    if path.suffix.lower() == ".json":
        text = _decode_utf8(path)
        is_array = text.lstrip().startswith("[")
    if is_array:
        try:
            records = list(enumerate(json.loads(text), start=1))
        except json.JSONDecodeError as err:
            raise DataError(f"{path.name} line {err.lineno}: not valid JSON ({err.msg}). Fix the file.") from None
    else:
        for lineno, line in _json_lines(path):
            if not line.strip():
                continue
            try:
                records.append((lineno, json.loads(line)))
            except json.JSONDecodeError as err:
                raise DataError(
                    f"{path.name} row {lineno}: not valid JSON ({err.msg}). Fix the line: a JSON Lines file holds "
                    "one JSON object per line."
                ) from None
    columns: dict[str, None] = {}
    for row, record in records:
        if not isinstance(record, dict):
            raise DataError(f"{path.name} row {row}: expected a JSON object with named fields, got {record!r:.60}.")
        columns.update(dict.fromkeys(record))
    data = {c: [record.get(c) for _, record in records] for c in columns}
    return _Table(path.name, data, [row for row, _ in records])


def _read_parquet(path: Path) -> _Table:
    try:
        frame = pd.read_parquet(path)
    except Exception as err:  # pyarrow raises several unrelated types for corrupt files
        raise DataError(f"{path.name}: cannot read as Parquet ({err}). Re-export the file.") from None
    return _Table.from_frame(path.name, frame)


def _read_file(path: Path) -> _Table:
    suffix = path.suffix.lower()
    if suffix in SUPPORTED_EXTENSIONS:
        check_memory_for(path)
    if suffix in (".csv", ".tsv"):
        return _read_delimited(path, "," if suffix == ".csv" else "\t")
    if suffix in (".jsonl", ".json"):
        return _read_json(path)
    if suffix == ".parquet":
        return _read_parquet(path)
    raise DataError(
        f"{path.name}: unsupported file type {suffix or '(none)'!r}; supported: {', '.join(SUPPORTED_EXTENSIONS)}. "
        "Convert the file to one of these."
    )
