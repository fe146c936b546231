"""A grid's cells as cluster jobs through submitit (``phasefit experiment --launcher slurm``).

The driver (the ``phasefit experiment`` process) resolves every cell's config and runs the same stale-cell check
as a local grid (:func:`phasefit.experiments.grid.check_cells`), then submits one job per unfinished cell, one
Slurm job array per distinct set of resources. Each job trains one run directory, exactly as the local launcher
would: it gets the config the driver resolved and checked, and works in the driver's folder, so relative data
paths resolve alike and a cell trained on the cluster has the same fingerprint as a local one. The driver waits,
reports each finished cell, then rebuilds ``results.jsonl`` / ``results.csv`` from every cell's ``metrics.json``.
A failed job loses nothing finished: its cell has no ``metrics.json``, and the next run (any launcher) trains it
again and reuses the rest. submitit's logs and pickles go to ``OUT/.submitit/``.

``submitit-local`` runs the very same path with submitit's local executor (subprocesses on this machine); it is
how the Slurm path is tested where no cluster is at hand.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from phasefit.errors import ConfigError, PhasefitError
from phasefit.experiments.grid import Cell, Progress, check_cells, write_results
from phasefit.results import flatten_metrics

logger = logging.getLogger(__name__)

LAUNCHERS = ("local", "slurm", "submitit-local")
# submitit's executor for each launcher, and how often the driver polls its jobs (sacct is not free on a cluster).
_CLUSTERS = {"slurm": ("slurm", 15.0), "submitit-local": ("local", 0.5)}
DEFAULT_TIMEOUT_MIN = 240  # submitit's own default is 5 minutes: too short for almost any training


class SlurmResources(BaseModel):
    """One cell's Slurm resources (grid file: ``launcher.slurm``, and ``datasets.<name>.resources`` on top)."""

    model_config = ConfigDict(extra="forbid")
    partition: str | None = Field(None, description="Slurm partition (sbatch --partition)")
    account: str | None = Field(None, description="account charged (sbatch --account)")
    qos: str | None = Field(None, description="quality of service (sbatch --qos)")
    constraint: str | None = Field(None, description="node features, e.g. a100 (sbatch --constraint)")
    timeout_min: int | None = Field(None, gt=0,
                                    description=f"wall-clock limit per cell (default {DEFAULT_TIMEOUT_MIN})")
    gpus_per_node: int | None = Field(None, ge=0, description="GPUs per cell")
    cpus_per_task: int | None = Field(None, ge=1, description="CPU cores per cell")
    mem_gb: float | None = Field(None, gt=0, description="memory per cell in GB")
    array_parallelism: int | None = Field(None, ge=1, description="most cells of one job array running at once")
    setup: list[str] | None = Field(None, description="shell lines run before each cell, e.g. 'module load cuda'")
    additional_parameters: dict[str, Any] | None = Field(
        None, description="any other sbatch option, e.g. {mail_type: END} (submitit's slurm_additional_parameters)")

    @model_validator(mode="before")
    @classmethod
    def _known_keys(cls, value: Any) -> Any:
        # Name the keys that exist: pydantic alone says only "extra inputs are not permitted".
        if isinstance(value, dict):
            unknown = sorted(set(value) - set(cls.model_fields))
            if unknown:
                raise ValueError(f"unknown resource key(s) {unknown}; known: {', '.join(cls.model_fields)} (other "
                                 "sbatch options go under additional_parameters)")
        return value

    def merged(self, override: SlurmResources) -> SlurmResources:
        """These resources with every key ``override`` sets replaced."""
        return self.model_copy(update=override.model_dump(exclude_none=True))

    def executor_parameters(self) -> dict[str, Any]:
        """Keyword arguments of ``submitit.AutoExecutor.update_parameters``: generic names where submitit has
        them (translated per executor), ``slurm_``-prefixed otherwise (ignored by the local executor)."""
        generic = {"timeout_min": self.timeout_min or DEFAULT_TIMEOUT_MIN, "gpus_per_node": self.gpus_per_node,
                   "cpus_per_task": self.cpus_per_task, "mem_gb": self.mem_gb}
        slurm = {"partition": self.partition, "account": self.account, "qos": self.qos,
                 "constraint": self.constraint, "array_parallelism": self.array_parallelism, "setup": self.setup,
                 "additional_parameters": self.additional_parameters}
        return {"name": "phasefit", "nodes": 1, "tasks_per_node": 1,  # one process per cell
                **{k: v for k, v in generic.items() if v is not None},
                **{f"slurm_{k}": v for k, v in slurm.items() if v is not None}}


class CellJobsFailedError(PhasefitError):
    """Some cells' jobs failed; the finished cells are kept and a rerun trains only the failed ones."""


def train_cell(config: Any, run_dir: str, cwd: str) -> str:
    """One cell's job: train ``config`` (a RunConfig) into ``run_dir``, working in the driver's folder ``cwd``.

    Top-level so that submitit can pickle it by reference. The environment defaults are the CLI's, so the job
    trains exactly what ``--launcher local`` would."""
    from phasefit.experiments.grid import train_cell as train

    os.chdir(cwd)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    train(config, Path(run_dir))
    return run_dir


def _import_submitit() -> Any:
    try:
        import submitit
        import submitit.helpers
    except ImportError:
        raise ConfigError("--launcher slurm needs submitit: pip install 'phasefit[slurm]'") from None
    return submitit


def launch_cells(
    cells: Sequence[Cell],
    output: Path,
    *,
    launcher: str = "slurm",
    resources: Callable[[Cell], SlurmResources] | None = None,
    base_settings: dict[str, Any] | None = None,
    config_file: str | Path | None = None,
    on_progress: Callable[[Progress], None] | None = None,
    overwrite: bool = False,
    before_training: Callable[[], None] | None = None,
) -> list[dict[str, Any]]:
    """Submit every unfinished cell as a job, wait, then write ``results.jsonl`` / ``results.csv``; returns rows.

    Args:
        launcher: ``"slurm"``, or ``"submitit-local"`` (the same path through submitit's local executor).
        resources: each cell's Slurm resources (default: submitit's, with a 4-hour limit).

    Raises:
        StaleCellError: before anything is submitted, as :func:`~phasefit.experiments.grid.run_cells`.
        CellJobsFailedError: after every job ended, when some failed (naming their logs); the results files then
            hold the finished cells.
    """
    if launcher not in _CLUSTERS:
        raise ConfigError(f"unknown launcher {launcher!r}; choose one of {', '.join(LAUNCHERS)}")
    cluster, poll_seconds = _CLUSTERS[launcher]
    submitit = _import_submitit()
    output = Path(output)
    configs, stale = check_cells(cells, output, base_settings=base_settings, config_file=config_file,
                                 overwrite=overwrite)
    executor = submitit.AutoExecutor(folder=output / ".submitit", cluster=cluster)
    if before_training is not None:
        before_training()
    done = 0
    pending: list[tuple[Cell, Any]] = []
    for cell, config in zip(cells, configs):
        if cell.key not in stale and (output / cell.key / "metrics.json").is_file():
            done += 1
            if on_progress is not None:
                on_progress(Progress(done, len(cells), cell, True, None, _metrics(output, cell)))
        else:
            pending.append((cell, config))
    # One job array per distinct set of resources (a data set may ask for more memory or time than the rest).
    groups: dict[str, tuple[dict[str, Any], list[tuple[Cell, Any]]]] = {}
    for cell, config in pending:
        parameters = (resources(cell) if resources is not None else SlurmResources()).executor_parameters()
        groups.setdefault(repr(sorted(parameters.items())), (parameters, []))[1].append((cell, config))
    jobs: list[Any] = []
    cell_of: dict[int, Cell] = {}
    for parameters, members in groups.values():
        # a fresh executor per group: update_parameters adds to the earlier settings, so a key one data set set
        # would otherwise carry over to the groups that leave it unset
        executor = submitit.AutoExecutor(folder=output / ".submitit", cluster=cluster)
        executor.update_parameters(**parameters)
        with executor.batch():
            for cell, config in members:
                job = executor.submit(train_cell, config, str(output / cell.key), os.getcwd())
                jobs.append(job)
                cell_of[id(job)] = cell
    if jobs:
        ids = sorted({str(job.job_id).split("_")[0] for job in jobs})
        logger.info("submitted %d cell(s) as %s job(s) %s; logs in %s", len(jobs), launcher, ", ".join(ids),
                    output / ".submitit")
    failed: dict[str, str] = {}
    for job in submitit.helpers.as_completed(jobs, poll_frequency=poll_seconds):
        cell = cell_of[id(job)]
        try:
            job.result()
        except Exception as err:  # noqa: BLE001 - any failure of the job is reported with its log, not raised
            failed[cell.key] = f"{cell.key} (job {job.job_id}: {_reason(err)}; log {job.paths.stderr})"
            logger.error("cell %s failed (job %s); log: %s", cell.key, job.job_id, job.paths.stderr)
            continue
        done += 1
        if on_progress is not None:
            on_progress(Progress(done, len(cells), cell, False, None, _metrics(output, cell)))
    rows = [{"cell": cell.key, **cell.tags, **flatten_metrics(_metrics(output, cell))}
            for cell in cells if cell.key not in failed and (output / cell.key / "metrics.json").is_file()]
    write_results(rows, output)
    if failed:
        listing = "; ".join(list(failed.values())[:5])
        raise CellJobsFailedError(f"{len(failed)} of {len(cells)} cell(s) failed: {listing}. "
                                  f"The {len(rows)} finished cell(s) are in {output / 'results.csv'}; run the same "
                                  "command again to train only the failed ones")
    return rows


def _reason(err: Exception) -> str:
    """The line that says why a job failed: the last line of the cell's traceback when submitit relays one
    (``FailedJobError``: message, dashes, traceback, dashes, log paths), else the first line (a timeout, a kill)."""
    parts = str(err).split("-" * 22)
    lines = [line for line in (parts[1] if len(parts) >= 3 else str(err)).strip().splitlines() if line.strip()]
    if not lines:
        return type(err).__name__
    return lines[-1].strip() if len(parts) >= 3 else lines[0].strip()


def _metrics(output: Path, cell: Cell) -> dict[str, Any]:
    return json.loads((output / cell.key / "metrics.json").read_text(encoding="utf-8"))
