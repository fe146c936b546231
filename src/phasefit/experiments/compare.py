"""Compare recipes over seeds on one data set: the engine of ``phasefit run``.

Each (recipe, seed) is a normal run directory ``OUT/<recipe>/seed-<n>``; a finished cell is reused when the command
is repeated, so an interrupted comparison picks up where it stopped. The summary (mean ± std over seeds) goes to
``OUT/summary.md`` and ``OUT/summary.json``.
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from phasefit.io import atomic_write_json, atomic_write_text

DEFAULT_RUN_RECIPES = ["3phase", "ft"]


def compare_recipes(
    recipes: Sequence[str],
    seeds: Sequence[int],
    output: Path,
    *,
    overrides: Sequence[str] = (),
    on_run: Callable[[dict[str, Any]], None] | None = None,
) -> list[dict[str, Any]]:
    from phasefit.config import build_config
    from phasefit.pipeline import train

    configs = {(r, s): build_config(r, None, [*overrides, f"seed={s}"]) for r in recipes for s in seeds}  # fail early
    rows = []
    for (recipe, seed), config in configs.items():
        run_dir = Path(output) / recipe / f"seed-{seed}"
        metrics_file = run_dir / "metrics.json"
        if metrics_file.is_file():
            metrics = json.loads(metrics_file.read_text(encoding="utf-8"))
        else:
            metrics = train(config, run_dir, overwrite=True).metrics
        if on_run is not None:
            on_run(metrics)
        rows.append(metrics)
    summary = summarise(rows)
    atomic_write_json(Path(output) / "summary.json", {"runs": [_row(m) for m in rows], "summary": summary})
    atomic_write_text(Path(output) / "summary.md", format_summary(summary) + "\n")
    return summary


def _row(metrics: dict[str, Any]) -> dict[str, Any]:
    return {"recipe": metrics["recipe"], "seed": metrics["seed"], "accuracy": metrics["test"]["accuracy"],
            "macro_f1": metrics["test"]["macro_f1"], "minutes": metrics["total_seconds"] / 60}


def _mean_std(values: list[float]) -> tuple[float, float]:
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


def summarise(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    by_recipe: dict[str, list[dict[str, Any]]] = {}
    for metrics in rows:
        by_recipe.setdefault(metrics["recipe"], []).append(_row(metrics))
    out = []
    for recipe, runs in by_recipe.items():
        entry: dict[str, Any] = {"recipe": recipe, "seeds": len(runs)}
        for key in ("accuracy", "macro_f1", "minutes"):
            entry[key], entry[f"{key}_std"] = _mean_std([run[key] for run in runs])
        out.append(entry)
    return out


def format_summary(summary: Sequence[dict[str, Any]]) -> str:
    """A Markdown table: recipe x test accuracy, macro-F1 (mean ± std over seeds) and minutes per run."""
    lines = ["| recipe | seeds | test accuracy | test macro-F1 | minutes / run |", "|---|---|---|---|---|"]
    for e in summary:
        lines.append(f"| {e['recipe']} | {e['seeds']} | {e['accuracy']:.4f} ± {e['accuracy_std']:.4f} "
                     f"| {e['macro_f1']:.4f} ± {e['macro_f1_std']:.4f} | {e['minutes']:.1f} ± {e['minutes_std']:.1f} |")
    return "\n".join(lines)
