"""The results table of many runs: one flat row per finished run, as a grid's ``results.jsonl`` holds them.

Grids write the rows (:mod:`phasefit.experiments.grid`) and reports read them (:mod:`phasefit.reporting`); both
import the row format from here, so neither imports the other.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any


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
    imbalance = metrics.get("imbalance")
    if imbalance and metrics.get("test"):  # the classes the down-sampling made rare: what the correction is for
        per_class = metrics["test"].get("per_class", {})
        recalls = [per_class[c]["recall"] for c in imbalance["rare_classes"]
                   if c in per_class and per_class[c].get("support", 1) > 0]  # no test example: no recall
        row["test_rare_class_recall"] = sum(recalls) / len(recalls) if recalls else None
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
