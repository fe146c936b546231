"""Grids of runs: every cell is a normal run directory; one results file gathers them.

A cell is (a folder name, a recipe, config settings, tags). :func:`run_cells` trains the cells in order and writes
``results.jsonl`` and ``results.csv`` with one row per finished cell (its tags plus flattened metrics). It resumes:
a finished cell is read back, not retrained, but only when it was made from the same config and data (its
``fingerprint.json``: the config's hash and the data's content hashes); a finished cell made otherwise is an error
naming the cell and what differs, before anything trains, with ``overwrite=True`` (``--overwrite``) retraining
it. A cell folder without ``metrics.json`` (a run killed midway) is trained again from scratch, so nothing is lost
or counted twice, and a restarted grid ends with the same rows.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from phasefit.config import ConfigError
from phasefit.io import atomic_write_text
# group_rows and read_results are re-exported here for benchmarks/ (and scripts) written before they moved
from phasefit.results import flatten_metrics, group_rows, read_results  # noqa: F401

logger = logging.getLogger(__name__)


class StaleCellError(ConfigError):
    """A finished cell of a grid was made from another config or other data than the grid now asks for."""


@dataclass(frozen=True)
class Cell:
    key: str  # folder of the run, relative to the grid's output
    recipe: str
    settings: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)  # {"seed": 0, "ft.lr": ...}
    tags: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)


@dataclass
class Progress:
    done: int
    total: int
    cell: Cell
    reused: bool
    seconds_left: float | None
    metrics: dict[str, Any]


def cell_differences(config: Any, run_dir: Path, peer: tuple[str, dict[str, Any]] | None = None) -> list[str]:
    """What differs between a finished cell and the config (and its data) a grid now asks of it; [] = reusable.

    ``peer``: (name, settings) when the cell is a peer (:mod:`phasefit.experiments.peers`), whose config hash
    covers its own settings. Cells written before fingerprints existed are compared by their saved config.yaml and
    split row ids."""
    from phasefit.config import read_yaml
    from phasefit.fingerprint import (config_differences, data_differences, effective_config, read_fingerprint,
                                      run_fingerprint, sha256)
    from phasefit.pipeline import load_run_data, run_unlabelled, split_manifest

    saved_config = read_yaml(run_dir / "config.yaml") if (run_dir / "config.yaml").is_file() else {}
    saved = read_fingerprint(run_dir)
    if peer is not None:
        from phasefit.experiments.peers import peer_config_hash

        expected = peer_config_hash(peer[0], config, peer[1])
        differences = [] if saved is not None and saved.get("config") == expected else [
            f"the {peer[0]} settings, data keys, model or seed"]
    elif saved is not None and saved.get("config") == sha256(effective_config(config)):
        differences = []
    else:
        differences = config_differences(saved_config, config.to_dict()) or (
            ["the config (its fingerprint differs)"] if saved is not None else [])
    splits = load_run_data(config)
    if saved is not None:
        unlabelled, _ = run_unlabelled(config, splits)
        differences += data_differences(saved, run_fingerprint(config, splits, unlabelled))
    elif (run_dir / "split.json").is_file():
        ids = json.loads((run_dir / "split.json").read_text(encoding="utf-8")).get("ids")
        if ids != split_manifest(splits)["ids"]:
            differences.append("the data (split row ids)")
    return differences


def check_cells(
    cells: Sequence[Cell],
    output: Path,
    *,
    base_settings: dict[str, Any] | None = None,
    config_file: str | Path | None = None,
    overwrite: bool = False,
) -> tuple[list[Any], dict[str, list[str]]]:
    """Every cell's resolved config, and the finished cells that must be retrained ({key: what differs}).

    Shared by every launcher (:func:`run_cells`, :func:`phasefit.experiments.launcher.launch_cells`), so a grid
    resumes the same way whichever one runs it.

    Raises:
        StaleCellError: when a finished cell was made from another config or other data, unless ``overwrite``.
    """
    keys = [cell.key for cell in cells]
    if len(set(keys)) != len(keys):
        from collections import Counter

        repeated = [f"{key} ({n}x)" for key, n in Counter(keys).items() if n > 1]
        raise ConfigError(f"these runs would share a folder: {', '.join(repeated)}; give each seed and recipe once "
                          "(a repeated --seeds or --recipes value, or two grid cells with the same name)")
    # Resolve every config first: a typo in cell 40 fails now, not after 39 trainings.
    configs = [cell_config(cell, base_settings, config_file) for cell in cells]
    stale: dict[str, list[str]] = {}
    for cell, config in zip(cells, configs):
        if (output / cell.key / "metrics.json").is_file():
            if isinstance(config, PeerCell):
                differences = cell_differences(config.config, output / cell.key, (config.name, config.settings))
            else:
                differences = cell_differences(config, output / cell.key)
            if differences:
                stale[cell.key] = differences
    if stale and not overwrite:
        listing = "; ".join(f"{key}: {', '.join(diff[:6])}" for key, diff in list(stale.items())[:5])
        raise StaleCellError(f"{len(stale)} finished cell(s) in {output} were made from another config or other "
                             f"data than now asked ({listing}); pass --overwrite to retrain them, or choose a new "
                             "--output")
    return configs, stale


@dataclass(frozen=True)
class PeerCell:
    """A peer cell's resolved config: the ``ft`` RunConfig whose data, model and seed it uses, and the peer."""
    name: str
    settings: dict[str, Any]
    config: Any


def cell_config(cell: Cell, base_settings: dict[str, Any] | None = None,
                config_file: str | Path | None = None) -> Any:
    """A cell's resolved RunConfig, or a :class:`PeerCell` for a peer (``setfit``, ``probe``: resolved as ``ft``, of
    which only the data, model and seed keys matter). The peers' settings sections (``setfit.*``) are taken out of
    every cell's settings, so ``--set setfit.num_iterations=5`` may stand beside recipes."""
    from phasefit.experiments.peers import is_peer, peer_settings, require_peer_library, split_peer_settings
    from phasefit.recipes import build_config, merge_settings

    settings, sections = split_peer_settings(merge_settings(base_settings, cell.settings))
    if not is_peer(cell.recipe):
        return build_config(cell.recipe, config_file, settings=settings)
    require_peer_library(cell.recipe)
    return PeerCell(cell.recipe, peer_settings(cell.recipe, sections), build_config("ft", config_file,
                                                                                     settings=settings))


def train_cell(config: Any, run_dir: Path) -> dict[str, Any]:
    """Train one cell's resolved config (a RunConfig, or a :class:`PeerCell`) into ``run_dir``; returns its
    metrics."""
    if isinstance(config, PeerCell):
        from phasefit.experiments.peers import train_peer

        return train_peer(config.name, config.config, run_dir, config.settings)
    from phasefit.pipeline import train

    return train(config, run_dir, overwrite=True).metrics


def with_phase_cache(settings: dict[str, Any] | None, output: Path) -> dict[str, Any]:
    """``settings`` with ``phase_cache`` set to ``OUTPUT/phase-cache`` unless the caller chose one: the runs of one
    grid (3phase and its variants on a cell) then train each shared encoder phase once."""
    settings = dict(settings or {})
    if "phase_cache" not in settings:
        settings["phase_cache"] = str(Path(output).resolve() / "phase-cache")
    return settings


def run_cells(
    cells: Sequence[Cell],
    output: Path,
    *,
    base_settings: dict[str, Any] | None = None,
    config_file: str | Path | None = None,
    on_progress: Callable[[Progress], None] | None = None,
    overwrite: bool = False,
    before_training: Callable[[], None] | None = None,
) -> list[dict[str, Any]]:
    """Train (or reuse) every cell, then write ``results.jsonl`` / ``results.csv``; returns the rows.

    Raises:
        StaleCellError: before any training, when a finished cell was made from another config or other data
            (unless ``overwrite``, which retrains such cells).
    """
    output = Path(output)
    configs, stale = check_cells(cells, output, base_settings=base_settings, config_file=config_file,
                                 overwrite=overwrite)
    if before_training is not None:
        before_training()
    rows: list[dict[str, Any]] = []
    trained_seconds: list[float] = []
    for index, (cell, config) in enumerate(zip(cells, configs), start=1):
        run_dir = output / cell.key
        metrics_file = run_dir / "metrics.json"
        reused = metrics_file.is_file() and cell.key not in stale
        if reused:
            metrics = json.loads(metrics_file.read_text(encoding="utf-8"))
        else:
            if run_dir.exists():
                logger.info("cell %s was interrupted; training it again", cell.key)
            started = time.perf_counter()
            metrics = train_cell(config, run_dir)
            trained_seconds.append(time.perf_counter() - started)
        rows.append({"cell": cell.key, **cell.tags, **flatten_metrics(metrics)})
        write_results(rows, output)  # after every cell: a kill loses at most the cell in progress
        if on_progress is not None:
            left = None
            if trained_seconds:
                remaining = sum(1 for c in cells[index:]
                                if c.key in stale or not (output / c.key / "metrics.json").is_file())
                left = remaining * sum(trained_seconds) / len(trained_seconds)
            on_progress(Progress(index, len(cells), cell, reused, left, metrics))
    return rows


def write_results(rows: Sequence[dict[str, Any]], output: Path) -> None:
    atomic_write_text(output / "results.jsonl", "".join(json.dumps(row) + "\n" for row in rows))
    columns: list[str] = []
    for row in rows:
        columns.extend(key for key in row if key not in columns)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns)
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_text(output / "results.csv", buffer.getvalue())


# A finished cell's small files: enough to report it (curves/: its training curves, a few kB) and to reuse it when
# a grid resumes (no model weights, no embeddings).
CELL_FILES = ("metrics.json", "config.yaml", "split.json", "fingerprint.json", "peer.json")
CELL_FOLDERS = ("curves",)


def _copy_cell(source: Path, destination: Path) -> None:
    """Copy a finished cell's :data:`CELL_FILES` and :data:`CELL_FOLDERS` into ``destination`` (made if missing)."""
    destination.mkdir(parents=True, exist_ok=True)
    for name in CELL_FILES:
        if (source / name).is_file():
            shutil.copy2(source / name, destination / name)
    for name in CELL_FOLDERS:
        if (source / name).is_dir():
            shutil.copytree(source / name, destination / name, dirs_exist_ok=True)


def finished_cells(output: Path) -> list[Path]:
    """The finished cell folders under a grid's ``output`` (those with metrics.json; not the phase cache)."""
    output = Path(output)
    return sorted(m.parent for m in output.rglob("metrics.json")
                  if "phase-cache" not in m.relative_to(output).parts)


def publish_cells(output: Path, target: Path) -> int:
    """Copy each finished cell's small files (:func:`_copy_cell`) from ``output`` to the same place under
    ``target`` (a folder to commit); returns how many cells. :func:`restore_cells` brings them back, so a grid
    resumes on another machine without retraining what finished."""
    output, target = Path(output), Path(target)
    cells = finished_cells(output)
    for run in cells:
        _copy_cell(run, target / run.relative_to(output))
    return len(cells)


def restore_cells(published: Path, output: Path) -> int:
    """Copy published cells into ``output`` where it has no finished run of that cell; returns how many. A folder
    there without metrics.json is an interrupted attempt of the grid's own, which the grid would retrain from
    scratch anyway: the published finished cell replaces it. A restored cell is reused only when its config and
    data fingerprints match what the grid asks (:func:`check_cells`), like any other."""
    published, output = Path(published), Path(output)
    count = 0
    for cell in finished_cells(published):
        run = output / cell.relative_to(published)
        if (run / "metrics.json").is_file():
            continue
        if run.exists():
            shutil.rmtree(run)
        _copy_cell(cell, run)
        count += 1
    return count
