"""A run directory's life on disk before training: refusing a folder in use, moving an earlier run aside under
``--overwrite`` (and putting it back if the new run fails before writing), and checking the free space."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

from phasefit.errors import PhasefitError
from phasefit.io import is_temporary


class RunDirectoryError(PhasefitError, ValueError):
    """The output directory cannot be used (exists, not writable)."""



ERROR_LOG = "error.log"
STATE_DIR = "state"
PEER_FILE = "peer.json"  # in a peer's run directory: which peer, with which settings


def has_content(folder: Path) -> bool:
    """Whether a folder holds anything but what a failed or killed phasefit start leaves (``error.log``, the
    ``.NAME.*.tmp`` temporaries of an interrupted atomic write, which are removed when the folder is used)."""
    if not folder.is_dir():
        return folder.exists()
    return any(p.name != ERROR_LOG and not is_temporary(p.name) for p in folder.iterdir())


def is_run_directory(folder: Path) -> bool:
    """A folder ``phasefit train`` wrote: its first file is a config.yaml with a run config's top-level keys (a
    kill may come before split.json, the second)."""
    import yaml

    config = folder / "config.yaml"
    if not config.is_file() or config.stat().st_size > 1_000_000:
        return False
    try:
        loaded = yaml.safe_load(config.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError):
        return False
    return isinstance(loaded, dict) and {"recipe", "phases", "data", "model", "ft"} <= set(loaded)


def prepare_output_dir(output_dir: Path, *, overwrite: bool) -> Path | None:
    """Create the run directory. An existing run is replaced only with ``overwrite``, and only if the folder holds
    a phasefit run (an ``error.log`` left by a failed start does not count as content): the old run is moved aside
    and returned, to be deleted by :func:`discard_replaced` once the new run has started writing, or put back by
    :func:`restore_replaced` if it fails before."""
    aside = None
    if has_content(output_dir):
        if not overwrite:
            raise RunDirectoryError(
                f"output directory {output_dir} already holds a run; pass --overwrite to replace it, --resume to "
                "continue it, or choose another --output"
            )
        if not is_run_directory(output_dir):
            raise RunDirectoryError(
                f"output directory {output_dir} is not empty and is not a phasefit run (no phasefit config.yaml); "
                "phasefit replaces only its own runs, even with --overwrite. Choose another --output"
            )
        aside = output_dir.with_name(f".{output_dir.name}.replaced-{os.getpid()}")
        os.replace(output_dir, aside)
    try:
        output_dir.mkdir(parents=True, exist_ok=True)
        (output_dir / ERROR_LOG).unlink(missing_ok=True)
        from phasefit.io import clean_stale_temporaries

        clean_stale_temporaries(output_dir)
        probe = output_dir / ".write-test"
        probe.write_text("ok")
        probe.unlink()
    except OSError as err:
        restore_replaced(output_dir, aside)
        raise RunDirectoryError(f"cannot write to output directory {output_dir}: {err.strerror}; choose a "
                                "writable --output") from None
    return aside


def restore_replaced(output_dir: Path, aside: Path | None) -> None:
    """The new run failed before writing: remove what it made and put the old run back."""
    if aside is None:
        return
    shutil.rmtree(output_dir, ignore_errors=True)
    os.replace(aside, output_dir)


def discard_replaced(aside: Path | None) -> None:
    if aside is not None:
        shutil.rmtree(aside, ignore_errors=True)


def check_free_space(folder: Path, encoder: Any) -> None:
    """Fail before training when the disk cannot hold the checkpoints: weights + AdamW state (3x the weights),
    two checkpoints kept, the phase state and the final model, with a margin."""
    weights = sum(p.numel() * p.element_size() for p in encoder.parameters())
    needed = 8 * weights + 50 * 2**20
    probe = folder
    while not probe.exists():
        probe = probe.parent
    free = shutil.disk_usage(probe).free
    if free < needed:
        raise RunDirectoryError(
            f"not enough free disk space for the run in {folder}: about {needed / 2**20:,.0f} MB needed "
            f"(checkpoints of a {weights / 2**20:,.0f} MB model), {free / 2**20:,.0f} MB free; free space or choose "
            "another --output"
        )
