"""Trains every recipe on the tiny model into OUT/<recipe> in one process group: what ``accelerate launch``
starts in tests/test_distributed.py (and what the same test runs in one process to compare).

    python tests/distributed_runner.py MODEL DATA OUT BATCH [RECIPE ...]
"""

from __future__ import annotations

import sys
from pathlib import Path

from phasefit.pipeline import train
from phasefit.recipes import RECIPES, build_config

PHASES = ("dae", "mlm", "cl", "joint", "supcon", "simclr", "ft")


def main(model: str, data: str, out: str, batch: int, recipes: list[str]) -> None:
    for recipe in recipes or sorted(RECIPES):
        overrides = [f"model.name={model}", f"data.path={data}", "progress=false", "plots=false",
                     "data.max_length=32", "ft.epochs=2", "ft.head_dropout=0.0",
                     "ft.group_by_length=false"]  # length-grouped batches are formed per process count
        for phase in PHASES:  # the same global batch and a few steps in every phase
            overrides += [f"{phase}.batch_size={batch}", f"{phase}.max_steps=3"]
        if recipe in {"supcon-ft", "simclr-ft"}:
            overrides += ["supcon.projection_dropout=0.0", "simclr.projection_dropout=0.0"]
        train(build_config(recipe, overrides=overrides), Path(out) / recipe, overwrite=True)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5:])
