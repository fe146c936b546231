"""Compare recipes over seeds on one data set: the engine of ``phasefit run``.

Each (recipe, seed) is a run directory ``OUT/<recipe>/seed-<n>``; finished cells are reused when the command is
repeated, so an interrupted comparison picks up where it stopped. Results go to ``OUT/results.csv`` /
``results.jsonl`` (one row per run) and the comparison to ``OUT/summary.md``.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from phasefit.experiments.grid import Cell, Progress, run_cells
from phasefit.io import atomic_write_text
from phasefit.results import group_rows

DEFAULT_RUN_RECIPES = ["3phase", "ft"]


def compare_recipes(
    recipes: Sequence[str],
    seeds: Sequence[int],
    output: Path,
    *,
    settings: dict[str, Any] | None = None,
    on_progress: Callable[[Progress], None] | None = None,
    overwrite: bool = False,
) -> list[dict[str, Any]]:
    cells = [Cell(f"{recipe}/seed-{seed}", recipe, {"seed": seed}, {"seed": seed})
             for recipe in recipes for seed in seeds]
    rows = run_cells(cells, Path(output), base_settings=settings, on_progress=on_progress, overwrite=overwrite)
    summary = summarise(rows, by=("recipe",))
    atomic_write_text(Path(output) / "summary.md", format_summary(summary) + "\n")
    return summary


def mean_std(values: Sequence[float | None]) -> tuple[float | None, float | None]:
    """Mean and sample std of the values present (None: a run that did not score this, e.g. no test split)."""
    values = [v for v in values if v is not None]
    if not values:
        return None, None
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


def summarise(rows: Sequence[dict[str, Any]], by: Sequence[str] = ("recipe",),
              metrics: Sequence[str] = ("test_accuracy", "test_macro_f1", "total_seconds")) -> list[dict[str, Any]]:
    """Mean and sample std of ``metrics`` per group of ``by`` values, with the number of runs, in first-seen order."""
    out = []
    for values, members in group_rows(rows, *by).items():
        entry: dict[str, Any] = dict(zip(by, values))
        entry["runs"] = len(members)
        for metric in metrics:
            entry[metric], entry[f"{metric}_std"] = mean_std([m[metric] for m in members])
        out.append(entry)
    return out


def format_mean_std(mean: float | None, std: float | None, scale: float = 1.0, digits: int = 4) -> str:
    return "–" if mean is None else f"{mean * scale:.{digits}f} ± {(std or 0.0) * scale:.{digits}f}"


def format_summary(summary: Sequence[dict[str, Any]]) -> str:
    """Markdown: recipe x test accuracy, macro-F1 (mean ± std over seeds; – without test scores) and minutes."""
    lines = ["| recipe | seeds | test accuracy | test macro-F1 | minutes / run |", "|---|---|---|---|---|"]
    for e in summary:
        lines.append(
            f"| {e['recipe']} | {e['runs']} | {format_mean_std(e['test_accuracy'], e['test_accuracy_std'])} "
            f"| {format_mean_std(e['test_macro_f1'], e['test_macro_f1_std'])} "
            f"| {format_mean_std(e['total_seconds'], e['total_seconds_std'], 1 / 60, 1)} |"
        )
    return "\n".join(lines)
