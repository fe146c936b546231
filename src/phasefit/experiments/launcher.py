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

A grid file is a file users hand each other, and its resources become lines of a shell script (the sbatch file
submitit writes). So a grid file cannot run commands there: ``setup`` lines come only from the Python call
(``launch_cells(setup=...)``), never from ``launcher.slurm``; every string that reaches the script (partition,
account, qos, constraint, ``additional_parameters`` keys and values, the output folder) is refused if it holds a
newline or another control character (a newline would end the ``#SBATCH`` comment and start a command); and
``additional_parameters`` may not name sbatch options that point at files, set the job's environment or give it a
command (:data:`REFUSED_SBATCH_OPTIONS`). submitit (1.5 and later) shell-quotes each ``#SBATCH`` value and the log
paths of its ``srun`` line.
"""

from __future__ import annotations

import json
import logging
import os
import re
import unicodedata
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from phasefit.errors import ConfigError, PhasefitError
from phasefit.experiments.grid import Cell, Progress, check_cells, write_results
from phasefit.results import flatten_metrics

logger = logging.getLogger(__name__)

LAUNCHERS = ("local", "slurm", "submitit-local")
# submitit's executor for each launcher, and how often the driver polls its jobs (sacct is not free on a cluster).
_CLUSTERS = {"slurm": ("slurm", 15.0), "submitit-local": ("local", 0.5)}
DEFAULT_TIMEOUT_MIN = 240  # submitit's own default is 5 minutes: too short for almost any training
# sbatch options additional_parameters may not set: they name a file or folder (to write, read or work in), set the
# job's environment (LD_PRELOAD or PYTHONPATH run code) or give the job a command. sbatch takes any unambiguous
# prefix of an option (--out is --output), so a key that begins one of these is refused too.
REFUSED_SBATCH_OPTIONS = ("output", "error", "input", "chdir", "workdir", "export", "export-file", "get-user-env",
                          "wrap", "bb", "bbf", "burst-buffer", "container", "container-id", "uid", "gid", "prolog",
                          "epilog", "task-prolog", "task-epilog", "bcast", "checkpoint-dir")
_OPTION_NAME = re.compile(r"^[a-z][a-z0-9_-]*$")
_SETUP_REFUSED = (
    "setup runs shell lines on every node, and a grid file (which may come from someone else) must not run commands "
    "there. Run them in your shell before `phasefit experiment` instead (sbatch passes that shell's environment, "
    "e.g. what `module load cuda` sets, to each job), or pass them from Python: launch_cells(..., setup=[...])"
)


def check_script_text(value: Any, key: str) -> None:
    """Refuse a string bound for the generated sbatch script that holds a newline or another control character.

    A newline would end the ``#SBATCH`` comment line and make the rest a command, whatever the quoting; other control
    characters (carriage return, NUL, escape) have no place in a Slurm name or path either.

    Raises:
        ConfigError: naming ``key``.
    """
    text = str(value)
    bad = [char for char in text if unicodedata.category(char) in {"Cc", "Zl", "Zp"}]
    if bad:
        raise ConfigError(f"{key} {text!r} holds a newline or control character ({bad[0]!r}), which would break out "
                          "of its line of the sbatch script; use a plain one-line value")


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
    additional_parameters: dict[str, Any] | None = Field(
        None, description="any other sbatch option, e.g. {mail_type: END} (submitit's slurm_additional_parameters); "
        "not one that names a file, sets the environment or gives a command (REFUSED_SBATCH_OPTIONS)")

    @model_validator(mode="before")
    @classmethod
    def _known_keys(cls, value: Any) -> Any:
        # Name the keys that exist: pydantic alone says only "extra inputs are not permitted".
        if isinstance(value, dict):
            if "setup" in value:
                raise ValueError(_SETUP_REFUSED)
            unknown = sorted(set(value) - set(cls.model_fields))
            if unknown:
                raise ValueError(f"unknown resource key(s) {unknown}; known: {', '.join(cls.model_fields)} (other "
                                 "sbatch options go under additional_parameters)")
        return value

    @field_validator("partition", "account", "qos", "constraint")
    @classmethod
    def _one_line(cls, value: str | None, info: Any) -> str | None:
        if value is not None:
            _as_value_error(check_script_text, value, info.field_name)
        return value

    @field_validator("additional_parameters")
    @classmethod
    def _safe_options(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        for key, option in (value or {}).items():
            _as_value_error(check_sbatch_option, key, option)
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
                 "constraint": self.constraint, "array_parallelism": self.array_parallelism,
                 "additional_parameters": self.additional_parameters}
        return {"name": "phasefit", "nodes": 1, "tasks_per_node": 1,  # one process per cell
                **{k: v for k, v in generic.items() if v is not None},
                **{f"slurm_{k}": v for k, v in slurm.items() if v is not None}}


def check_sbatch_option(key: str, value: Any) -> None:
    """Refuse an ``additional_parameters`` entry that could break out of its ``#SBATCH`` line or that names a file,
    sets the environment or gives a command (:data:`REFUSED_SBATCH_OPTIONS`, or any prefix of one).

    Raises:
        ConfigError: naming the key.
    """
    where = f"additional_parameters.{key}"
    if not isinstance(key, str) or not _OPTION_NAME.match(key):
        raise ConfigError(f"{where}: an sbatch option name is lower-case letters, digits, '_' and '-' (e.g. "
                          f"mail_type), got {key!r}")
    option = key.replace("_", "-")
    refused = [name for name in REFUSED_SBATCH_OPTIONS if name.startswith(option)]
    if refused:
        raise ConfigError(f"{where}: sbatch --{refused[0]} names a file, sets the job's environment or gives it a "
                          "command, so phasefit does not pass it on (from a grid file it could run code or write "
                          "anywhere); phasefit sets the job's logs and folder itself. Refused, with their prefixes: "
                          f"{', '.join(REFUSED_SBATCH_OPTIONS)}")
    if not isinstance(value, (str, int, float, bool)):
        raise ConfigError(f"{where}: the value must be a string, number or true, got {type(value).__name__}")
    check_script_text(value, where)


def _as_value_error(check: Callable[..., None], *args: Any) -> None:
    """Run ``check`` inside a pydantic validator: its ConfigError becomes the ValueError pydantic reports with the
    key's location (a grid file's error then names the file and the key)."""
    try:
        check(*args)
    except ConfigError as err:
        raise ValueError(str(err)) from None


def _check_script_parameters(parameters: dict[str, Any], output: Path) -> None:
    """Every string of the executor parameters (however the SlurmResources were built) and the output folder, as
    they will reach the sbatch script: one line each, no control character."""
    check_script_text(Path(output).absolute(), "--output")
    for name, value in parameters.items():
        key = name.removeprefix("slurm_")
        if isinstance(value, dict):
            for option, setting in value.items():
                check_sbatch_option(option, setting)
        elif isinstance(value, (list, tuple)):
            for index, item in enumerate(value):
                check_script_text(item, f"{key}[{index}]")
        else:
            check_script_text(value, key)


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
    setup: Sequence[str] | None = None,
) -> list[dict[str, Any]]:
    """Submit every unfinished cell as a job, wait, then write ``results.jsonl`` / ``results.csv``; returns rows.

    Args:
        launcher: ``"slurm"``, or ``"submitit-local"`` (the same path through submitit's local executor).
        resources: each cell's Slurm resources (default: submitit's, with a 4-hour limit).
        setup: shell lines each Slurm job runs before its cell (e.g. ``"module load cuda"``), one line each. Only
            this call sets them: a grid file's ``launcher.slurm`` may not (module docstring).

    Raises:
        ConfigError: before anything is submitted, for a string bound for the sbatch script that holds a newline or
            control character, or a refused sbatch option.
        StaleCellError: before anything is submitted, as :func:`~phasefit.experiments.grid.run_cells`.
        CellJobsFailedError: after every job ended, when some failed (naming their logs); the results files then
            hold the finished cells.
    """
    if launcher not in _CLUSTERS:
        raise ConfigError(f"unknown launcher {launcher!r}; choose one of {', '.join(LAUNCHERS)}")
    cluster, poll_seconds = _CLUSTERS[launcher]
    submitit = _import_submitit()
    output = Path(output)

    def parameters_of(cell: Cell) -> dict[str, Any]:
        parameters = (resources(cell) if resources is not None else SlurmResources()).executor_parameters()
        return {**parameters, "slurm_setup": list(setup)} if setup else parameters

    for cell in cells:  # before anything is written or submitted
        _check_script_parameters(parameters_of(cell), output)
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
        parameters = parameters_of(cell)
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
