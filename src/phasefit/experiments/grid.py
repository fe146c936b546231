"""Grids of runs: every cell is a normal run directory; one results file gathers them.

A cell is (a folder name, a recipe, config overrides, tags). :func:`run_cells` trains the cells in order and writes
``results.jsonl`` and ``results.csv`` with one row per finished cell (its tags plus flattened metrics). It resumes:
a cell whose ``metrics.json`` exists is read back, not retrained; a cell folder without one (a run killed midway)
is trained again from scratch, so nothing is lost or counted twice, and a restarted grid ends with the same rows.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from phasefit.io import atomic_write_text

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Cell:
    key: str  # folder of the run, relative to the grid's output
    recipe: str
    overrides: tuple[str, ...] = ()
    tags: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)


@dataclass
class Progress:
    done: int
    total: int
    cell: Cell
    reused: bool
    seconds_left: float | None
    metrics: dict[str, Any]


def flatten_metrics(metrics: dict[str, Any]) -> dict[str, Any]:
    """One flat row of a run's metrics: scores per split, total time, and per-phase cost and diagnostics."""
    sizes = metrics.get("sizes", {})
    row: dict[str, Any] = {"recipe": metrics["recipe"], "seed": metrics["seed"], "data": metrics.get("data"),
                           "model": metrics.get("model"), "train_size": sizes.get("train"),
                           "validation_size": sizes.get("validation"), "test_size": sizes.get("test")}
    for split in ("validation", "test"):
        scores = metrics.get(split) or {}  # test is None when the run did not score it (evaluate_test=false)
        for key in ("accuracy", "macro_f1", "macro_precision", "macro_recall"):
            row[f"{split}_{key}"] = scores.get(key)
    row["total_seconds"] = metrics["total_seconds"]
    initial = metrics.get("initial_embeddings") or {}
    row["initial_validation_knn_accuracy"] = initial.get("validation_knn_accuracy")
    row["phases"] = "+".join(p["name"] for p in metrics["phases"])
    for phase in metrics["phases"]:
        prefix = f"{phase['name']}_"
        for key in ("seconds", "examples_per_second", "peak_memory_mb", "trainable_parameters", "final_loss",
                    "validation_knn_accuracy", "validation_silhouette"):
            row[prefix + key] = phase.get(key)
    return row


def run_cells(
    cells: Sequence[Cell],
    output: Path,
    *,
    base_overrides: Sequence[str] = (),
    config_file: str | Path | None = None,
    on_progress: Callable[[Progress], None] | None = None,
) -> list[dict[str, Any]]:
    """Train (or reuse) every cell, then write ``results.jsonl`` / ``results.csv``; returns the rows."""
    from phasefit.config import build_config
    from phasefit.pipeline import train

    output = Path(output)
    keys = [cell.key for cell in cells]
    if len(set(keys)) != len(keys):
        raise ValueError("grid cells must have distinct folders")
    # Resolve every config first: a typo in cell 40 fails now, not after 39 trainings.
    configs = [build_config(cell.recipe, config_file, [*base_overrides, *cell.overrides]) for cell in cells]
    rows: list[dict[str, Any]] = []
    trained_seconds: list[float] = []
    for index, (cell, config) in enumerate(zip(cells, configs), start=1):
        run_dir = output / cell.key
        metrics_file = run_dir / "metrics.json"
        reused = metrics_file.is_file()
        if reused:
            metrics = json.loads(metrics_file.read_text(encoding="utf-8"))
        else:
            if run_dir.exists():
                logger.info("cell %s was interrupted; training it again", cell.key)
            started = time.perf_counter()
            metrics = train(config, run_dir, overwrite=True).metrics
            trained_seconds.append(time.perf_counter() - started)
        rows.append({"cell": cell.key, **cell.tags, **flatten_metrics(metrics)})
        write_results(rows, output)  # after every cell: a kill loses at most the cell in progress
        if on_progress is not None:
            left = None
            if trained_seconds:
                remaining = sum(1 for c in cells[index:] if not (output / c.key / "metrics.json").is_file())
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


def group_rows(rows: Sequence[dict[str, Any]], *keys: str) -> dict[tuple, list[dict[str, Any]]]:
    """Rows grouped by their values of ``keys``, groups in first-seen order."""
    groups: dict[tuple, list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault(tuple(row.get(key) for key in keys), []).append(row)
    return groups


def read_results(output: Path) -> list[dict[str, Any]]:
    path = Path(output) / "results.jsonl"
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: run `phasefit experiment` (or a protocol) into {output} first")
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
