"""``phasefit experiment``: a grid of data sets x recipes x variants x seeds from one YAML file.

Grid file::

    recipes: [3phase, joint, ft]
    seeds: [0, 1, 2]
    set: {ft.epochs: 15}                  # every cell
    datasets:
      snips: {path: builtin:snips}
      sst2-100: {path: ../shared/data/sst2, set: {data.few_shot_n: 100, data.max_validation_examples: 500}}
    variants:                             # optional; crossed with everything else
      default: {}
      frozen: {ft.freeze_encoder: true}
    launcher:                             # optional; used by --launcher slurm (see docs/scaling.md)
      slurm: {partition: gpu, timeout_min: 60, gpus_per_node: 1, cpus_per_task: 8, mem_gb: 32}

A data set may add ``resources: {mem_gb: 64, ...}`` over ``launcher.slurm`` for its own cells.

Cells are run directories ``OUT/<dataset>/<recipe>[/<variant>]/seed-<n>``; see :mod:`phasefit.experiments.grid`
for resuming and the results files.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from phasefit.config import ConfigError, read_yaml
from phasefit.recipes import merge_settings
from phasefit.experiments.grid import Cell, Progress, run_cells
from phasefit.experiments.launcher import SlurmResources, launch_cells
from phasefit.io import atomic_write_text


class DatasetEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")
    path: str = Field(description="data path, as --data takes it")
    set: dict[str, Any] = Field(default_factory=dict, description="overrides for this data set's runs")
    resources: SlurmResources = Field(default_factory=SlurmResources,
                                      description="Slurm resources of this data set's cells, over launcher.slurm")


class LauncherSection(BaseModel):
    model_config = ConfigDict(extra="forbid")
    slurm: SlurmResources = Field(default_factory=SlurmResources, description="every cell's Slurm resources")


_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


class GridConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    recipes: list[str] = Field(min_length=1)
    seeds: list[int] = Field(default_factory=lambda: [0, 1, 2], min_length=1)
    datasets: dict[str, DatasetEntry] = Field(min_length=1)
    variants: dict[str, dict[str, Any]] = Field(default_factory=dict)
    set: dict[str, Any] = Field(default_factory=dict)
    launcher: LauncherSection = Field(default_factory=LauncherSection)

    @field_validator("datasets", "variants")
    @classmethod
    def _folder_names(cls, value: dict[str, Any]) -> dict[str, Any]:
        # Names become folders under the output: they must not climb out of it (../..) or be absolute.
        bad = [name for name in value if not _SAFE_NAME.match(name) or ".." in name]
        if bad:
            raise ValueError(f"names {bad} must be plain folder names (letters, digits, '.', '_', '-'; no '..')")
        return value


def load_grid(path: str | Path) -> GridConfig:
    from phasefit.recipes import check_file_settings

    try:
        grid = GridConfig.model_validate(read_yaml(path))
    except ValidationError as err:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in err.errors())
        raise ConfigError(f"grid file {path}: {problems}") from None
    blocks = {"set": grid.set, **{f"datasets.{n}.set": d.set for n, d in grid.datasets.items()},
              **{f"variants.{n}": v for n, v in grid.variants.items()}}
    for where, settings in blocks.items():  # code execution and paths to write come from the command line only
        check_file_settings(settings, f"grid file {path} ({where})")
    return grid


def grid_cells(grid: GridConfig) -> list[Cell]:
    variants = grid.variants or {"default": {}}
    cells = []
    for name, dataset in grid.datasets.items():
        for recipe in grid.recipes:
            for variant, settings in variants.items():
                for seed in grid.seeds:
                    folder = f"{name}/{recipe}" + (f"/{variant}" if len(variants) > 1 else "") + f"/seed-{seed}"
                    cell_settings = merge_settings({"data.path": dataset.path}, dataset.set, settings,
                                                   {"seed": seed})
                    cells.append(Cell(folder, recipe, cell_settings,
                                      {"dataset": name, "variant": variant, "seed": seed}))
    return cells


def run_experiment(grid_path: str | Path, output: Path, *, settings: dict[str, Any] | None = None,
                   on_progress: Callable[[Progress], None] | None = None, overwrite: bool = False,
                   launcher: str = "local") -> list[dict[str, Any]]:
    """Train (or reuse) every cell of the grid file into ``output``; returns the results rows.

    ``launcher``: ``"local"`` trains the cells one after another in this process; ``"slurm"`` (and its test
    double ``"submitit-local"``) submits them as jobs (:mod:`phasefit.experiments.launcher`)."""
    grid = load_grid(grid_path)
    output = Path(output)
    text = Path(grid_path).read_text(encoding="utf-8")

    def record_grid() -> None:  # only once the finished cells are known to match it
        output.mkdir(parents=True, exist_ok=True)
        atomic_write_text(output / "grid.yaml", text)

    cells = grid_cells(grid)
    base_settings = merge_settings(grid.set, settings)
    if launcher == "local":
        return run_cells(cells, output, base_settings=base_settings, overwrite=overwrite,
                         before_training=record_grid, on_progress=on_progress)

    def resources(cell: Cell) -> SlurmResources:
        return grid.launcher.slurm.merged(grid.datasets[cell.tags["dataset"]].resources)

    return launch_cells(cells, output, launcher=launcher, resources=resources, base_settings=base_settings,
                        overwrite=overwrite, before_training=record_grid, on_progress=on_progress)
