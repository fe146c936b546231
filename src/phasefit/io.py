"""Run-directory file writing: every file is written to a temporary name, then renamed (atomic on POSIX),
so a killed process never leaves a half-written ``metrics.json`` or model behind.

Durability: a commit fsyncs the data, then the directory that holds the new name, so a power loss after a commit
returns never loses it. A folder commit renames the old folder aside (``.NAME.old``) before the new one takes its
name; a kill between those two renames is repaired by :func:`recover_directory` on the next call (the old folder
is put back), so it never costs the old folder. Temporaries (``.NAME.*.tmp``) of a killed process are removed
by :func:`clean_stale_temporaries` when a command starts on the folder again.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any


def atomic_write_text(path: Path, text: str) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    fsync_directory(path.parent)


def fsync_directory(folder: Path) -> None:
    """Make the directory's entries (a rename into it) durable."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_tree(folder: Path) -> None:
    for root, _, files in os.walk(folder):
        for name in files:
            fd = os.open(os.path.join(root, name), os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        fsync_directory(Path(root))


def atomic_write_json(path: Path, payload: Any) -> None:
    atomic_write_text(path, json.dumps(payload, indent=2, sort_keys=False, default=_jsonable) + "\n")


def _jsonable(value: Any) -> Any:
    if hasattr(value, "item"):  # numpy / torch scalars
        return value.item()
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def atomic_directory(final: Path) -> Path:
    """Return a fresh temporary sibling folder; call :func:`commit_directory` to move it to ``final``."""
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=".tmp", dir=final.parent))


def _aside(final: Path) -> Path:
    return final.with_name(f".{final.name}.old")


def recover_directory(final: Path) -> None:
    """Undo a commit killed between its two renames: ``final`` is missing and the old folder waits aside."""
    final = Path(final)
    old = _aside(final)
    if not final.exists() and old.is_dir():
        os.replace(old, final)
        fsync_directory(final.parent)


def commit_directory(tmp: Path, final: Path) -> None:
    """Replace ``final`` by ``tmp``, durably; the old folder, if any, is removed only after the new one is in
    place (and put back by :func:`recover_directory` if a kill comes between the renames)."""
    final = Path(final)
    recover_directory(final)
    _fsync_tree(Path(tmp))
    old = None
    if final.exists():
        old = _aside(final)
        shutil.rmtree(old, ignore_errors=True)  # beside a complete ``final``: a leftover of a finished commit
        os.replace(final, old)
    os.replace(tmp, final)
    fsync_directory(final.parent)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def link_tree(source: Path, target: Path) -> None:
    """Make ``target`` a copy of the folder ``source`` whose files are hard links to ``source``'s where the file
    system allows (the bytes stored once), copies elsewhere. Safe because phasefit never rewrites a saved file in
    place: a new save goes to a fresh folder that replaces the old one."""
    shutil.copytree(source, target, copy_function=_link_or_copy)


def _link_or_copy(source: str, target: str) -> str:
    try:
        os.link(source, target)
    except OSError:  # another file system, or one without hard links
        shutil.copy2(source, target)
    return target


def is_temporary(name: str) -> bool:
    """Whether a file name is one of the ``.NAME.*.tmp`` temporaries this module writes before a rename."""
    return name.startswith(".") and name.endswith(".tmp")


def clean_stale_temporaries(folder: Path, name: str | None = None) -> list[Path]:
    """Remove the ``.NAME.*.tmp`` files and folders a killed phasefit process left in ``folder`` (only those
    :func:`atomic_write_text` and :func:`atomic_directory` make; ``name`` narrows to one target). Returns them."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    prefix = f".{name}." if name else "."
    removed = []
    for entry in folder.iterdir():
        if entry.name.startswith(prefix) and is_temporary(entry.name):
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                entry.unlink(missing_ok=True)
            removed.append(entry)
    return removed
