"""Positive pairs per class that phase 2 trains on, per quality-benchmark cell: the paper's construction against
SetFit-style draws (docs/method.md, departure 10). No training: each split is loaded as the benchmark loads it and
its pairs are built by phasefit's own ``contrastive_pairs``, so the counts equal those in the runs' metrics.json.

    python benchmarks/quality/pair_counts.py [--cells snips massive-400] [--seeds 0]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from run import cell_settings, load_grid  # noqa: E402


def pair_counts(grid: dict, cell: str, seed: int, output: Path) -> dict[str, float]:
    from phasefit.phases.staged import contrastive_pairs
    from phasefit.recipes import build_config
    from phasefit.run_data import load_run_data

    settings = cell_settings(grid, cell, output, seed)
    splits = load_run_data(build_config("3phase", settings=settings))  # the split is the cell's, whatever the recipe
    classes = len(set(splits.train.labels))
    out: dict[str, float] = {"classes": classes, "train": len(splits.train.texts)}
    for name, recipe in (("paper", "3phase"), ("setfit", "3phase-setfit")):
        config = build_config(recipe, settings=settings)
        pairs, stats = contrastive_pairs(SimpleNamespace(seed=config.seed, splits=splits), config.cl)
        out[f"{name}_pairs"] = stats["pairs"]
        out[f"{name}_positives_per_class"] = float(np.sum(pairs.targets == 1.0)) / classes
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--grid", type=Path, default=HERE / "grid.yaml")
    parser.add_argument("--output", type=Path, default=Path("runs/quality"), help="where the cells' data links live")
    parser.add_argument("--cells", nargs="+")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0])
    args = parser.parse_args(argv)
    grid = load_grid(args.grid)
    print("| cell | split | classes | training texts | paper pairs | positive pairs per class (paper) "
          "| SetFit-style pairs | positive pairs per class (SetFit-style) |")
    print("|---|---|---|---|---|---|---|---|")
    for cell in args.cells or list(grid["cells"]):
        for seed in args.seeds:
            c = pair_counts(grid, cell, seed, args.output)
            print(f"| {cell} | {seed} | {c['classes']} | {c['train']} | {c['paper_pairs']} "
                  f"| {c['paper_positives_per_class']:.1f} | {c['setfit_pairs']} "
                  f"| {c['setfit_positives_per_class']:.1f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
