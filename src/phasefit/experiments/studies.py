"""The studies of the method's open questions (summary paper 001, §open questions), as grids of ordinary runs.

* ``imbalance``: how the recipes fare as the training set grows more imbalanced. From the training split, classes
  are down-sampled so their sizes fall geometrically and largest:smallest is each ratio
  (:func:`phasefit.data.splits.imbalance`); validation and test stay as they are. Reports accuracy, macro-F1 and
  the test recall of the classes made rare (the quarter with the fewest examples), which accuracy hides.
* ``size``: a learning curve. For each training-set size N and draw d, N examples are drawn with the label
  distribution (``data.few_shot_n``; the draws of different sizes are *independent*, each seeded by its draw id)
  and the run seed is d; the validation and test sets are the same for every size and draw
  (``data.split_seed`` is fixed).
* ``phase1``: what phase 1 should be: none (``cl-ft``), DAE (``3phase``) or masked-LM (``mlm-cl-ft``), with the
  validation k-NN accuracy of the embeddings after each phase next to the final score.

Every study is a list of :class:`~phasefit.experiments.grid.Cell` run by :func:`run_cells` (resumable, one run
directory per cell, ``results.csv``); its rows carry ``study``, the study's x value and a ``dataset`` label of the
form ``"sst5 ratio=10"``, so ``phasefit report`` tabulates them per x value, pairs recipes by seed within it, and
draws the study's curves (:func:`phasefit.reporting.report.study_blocks`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the CLI reads this module's defaults while parsing, before any heavy import
    from phasefit.experiments.grid import Cell, Progress

# 3phase-extra-imb (the stronger correction, paper 000 Table 4) is left out of the CPU-sized default, the slowest
# of the five (its CL has the most pairs): add it with --recipes
IMBALANCE_RECIPES = ["ft", "ft-balanced", "3phase", "3phase-no-imb"]
IMBALANCE_RATIOS = [1.0, 5.0, 20.0]
IMBALANCE_LARGEST = 20  # the CLI's default largest class: CPU-sized (see :func:`default_largest`)
SIZE_RECIPES = ["ft", "scl", "3phase"]
SIZES = [20, 50, 100, 200]
SIZE_VALIDATION = 500  # validation texts of the size study (a stratified subset, the same for every cell)
PHASE1_RECIPES = ["cl-ft", "3phase", "mlm-cl-ft"]
PHASE1_TRAIN = 200  # training texts of the phase1 study by default (a stratified subset): 9 runs in about 25 min


def data_label(data: str) -> str:
    """A short name of a data spec for tables: the folder or file stem, or the builtin name."""
    return data.split(":", 1)[1] if data.startswith(("builtin:", "hf:")) else Path(data).name or data


def imbalance_cells(data: str, recipes: Sequence[str], ratios: Sequence[float], seeds: Sequence[int], *,
                    largest: int | None = None) -> list[Cell]:
    """One run per (ratio, recipe, seed); the seed also picks which classes become rare, so every recipe of a seed
    trains on the same down-sampled rows. Seeds come outermost, so a study stopped early has every ratio and
    recipe on its first seeds."""
    from phasefit.experiments.grid import Cell

    cells = []
    for seed in seeds:
        for ratio in ratios:
            label = f"{ratio:g}"
            for recipe in recipes:
                settings = {"data.path": data, "data.imbalance_ratio": float(ratio), "seed": seed}
                if largest is not None:
                    settings["data.imbalance_largest"] = largest
                cells.append(Cell(f"ratio-{label}/{recipe}/seed-{seed}", recipe, settings,
                                  {"study": "imbalance", "ratio": float(ratio), "seed": seed,
                                   "dataset": f"{data_label(data)} ratio={label}"}))
    return cells


def default_largest(data: str, settings: dict[str, Any] | None = None) -> int:
    """The imbalance study's default size of the largest class: :data:`IMBALANCE_LARGEST`, or the smallest class
    count of the training split when that is lower (every class must be able to give its share)."""
    from collections import Counter

    from phasefit.experiments.peers import split_peer_settings
    from phasefit.recipes import build_config, merge_settings
    from phasefit.run_data import load_run_data

    config_settings, _ = split_peer_settings(merge_settings(settings, {"data.path": data}))
    train = load_run_data(build_config("ft", settings=config_settings)).train
    return min(IMBALANCE_LARGEST, min(Counter(train.labels).values()))


def size_cells(data: str, recipes: Sequence[str], sizes: Sequence[int], draws: int, *,
               split_seed: int = 0, validation_size: int | None = SIZE_VALIDATION) -> list[Cell]:
    """One run per (size, recipe, draw); draw d is the few-shot draw's seed and the run seed, and the
    validation/test split is made with ``split_seed`` for all of them. Draws come outermost (as seeds do in
    :func:`imbalance_cells`). ``validation_size``: a stratified subset of validation, the same for every cell
    (paper 002's few-shot protocol used ~500; the split of a large training file would otherwise be thousands
    of texts scored every epoch); None keeps it whole."""
    from phasefit.experiments.grid import Cell

    cells = []
    for draw in range(draws):
        for n in sizes:
            for recipe in recipes:
                settings = {"data.path": data, "data.few_shot_n": n, "data.few_shot_seed": draw,
                            "data.split_seed": split_seed, "seed": draw}
                if validation_size is not None:
                    settings["data.max_validation_examples"] = validation_size
                cells.append(Cell(f"n{n}/{recipe}/draw-{draw}", recipe, settings,
                                  {"study": "size", "n": n, "draw": draw, "seed": draw,
                                   "dataset": f"{data_label(data)} n={n}"}))
    return cells


def phase1_cells(data: str, recipes: Sequence[str], seeds: Sequence[int], *, train_size: int | None = PHASE1_TRAIN,
                 validation_size: int | None = SIZE_VALIDATION) -> list[Cell]:
    """One run per (recipe, seed), seeds outermost; the seed also makes the split. ``train_size`` and
    ``validation_size`` cap those splits with seeded stratified subsets (``data.max_train_examples``,
    ``data.max_validation_examples``; None: the whole split), so the default stays CPU-sized on a big set."""
    from phasefit.experiments.grid import Cell

    settings: dict[str, Any] = {"data.path": data}
    if train_size is not None:
        settings["data.max_train_examples"] = train_size
    if validation_size is not None:
        settings["data.max_validation_examples"] = validation_size
    return [Cell(f"{recipe}/seed-{seed}", recipe, {**settings, "seed": seed},
                 {"study": "phase1", "seed": seed, "dataset": data_label(data)})
            for seed in seeds for recipe in recipes]


def run_study(cells: list[Cell], output: Path, *, settings: dict[str, Any] | None = None,
              on_progress: Callable[[Progress], None] | None = None,
              overwrite: bool = False) -> list[dict[str, Any]]:
    """Train (or reuse) the study's cells into ``output``; returns their result rows, which ``phasefit study``
    then turns into the report (:func:`phasefit.reporting.report.write_report`: experiments import no reporting)."""
    from phasefit.experiments.grid import run_cells, with_phase_cache
    from phasefit.recipes import merge_settings

    # 3phase, 3phase-no-imb and 3phase-extra-imb of a cell share their DAE
    settings = with_phase_cache(merge_settings(settings), Path(output))
    return run_cells(cells, Path(output), base_settings=settings, on_progress=on_progress, overwrite=overwrite)
