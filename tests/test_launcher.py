"""``phasefit experiment --launcher slurm``, run through submitit's local executor (no Slurm cluster here).

``submitit-local`` takes the Slurm launcher's code path with submitit's local executor: every cell is a job in its
own subprocess, pickled and logged under ``OUT/.submitit`` as on a cluster.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path

import pytest
import yaml

from phasefit.cli import main
from phasefit.config import ConfigError
from phasefit.experiments.experiment import load_grid
from tests.conftest import tiny_overrides

FAST = {"ft.epochs": 1, "ft.max_steps": 2, "plots": False, "progress": False}


def _grid(path: Path, model_dir: Path, datasets: dict, recipes: list[str], seeds: list[int],
          launcher: dict | None = None) -> Path:
    settings = dict(item.split("=", 1) for item in tiny_overrides(model_dir))
    grid = {"recipes": recipes, "seeds": seeds, "set": {**settings, **FAST}, "datasets": datasets}
    if launcher is not None:
        grid["launcher"] = launcher
    path.write_text(yaml.safe_dump(grid))
    return path


def _scores(folder: Path) -> dict[str, tuple[str, str, str]]:
    """Each cell's validation and test accuracy and final FT loss (two steps of the tiny model score at chance: the
    loss is what tells two trainings apart)."""
    with open(folder / "results.csv", newline="") as handle:
        return {row["cell"]: (row["validation_accuracy"], row["test_accuracy"], row["ft_final_loss"])
                for row in csv.DictReader(handle)}


def _run(argv: list[str], capsys: pytest.CaptureFixture) -> str:
    """``phasefit ARGV``, which must succeed; its stdout."""
    code = main(argv)
    captured = capsys.readouterr()
    assert code == 0, f"phasefit {' '.join(argv)} exited {code}: {captured.err[-3000:]}"
    return captured.out


def _jobs(folder: Path) -> list[Path]:
    return sorted((folder / ".submitit").glob("*_submitted.pkl"))


@pytest.fixture
def one_thread_jobs(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("submitit")  # the test extra installs it; a bare install raises a ConfigError naming it
    # The jobs are subprocesses: torch.set_num_threads(1) of this process does not reach them.
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        monkeypatch.setenv(name, "1")


def test_grid_on_submitit_local_equals_local_and_resumes(tiny_model_dir: Path, toy_data_dir_module: Path,
                                                         tmp_path: Path, one_thread_jobs: None,
                                                         capsys: pytest.CaptureFixture) -> None:
    grid = _grid(tmp_path / "grid.yaml", tiny_model_dir, {"toy": {"path": str(toy_data_dir_module)}},
                 ["ft", "scl"], [0, 1], launcher={"slurm": {"partition": "gpu", "timeout_min": 10, "mem_gb": 4}})
    out = tmp_path / "out"
    args = ["experiment", "--config", str(grid), "--output", str(out), "--no-report"]
    _run([*args, "--launcher", "submitit-local"], capsys)
    cells = ["toy/ft/seed-0", "toy/ft/seed-1", "toy/scl/seed-0", "toy/scl/seed-1"]
    assert all((out / cell / "metrics.json").is_file() for cell in cells)
    assert len(_jobs(out)) == 4  # one job per cell, its pickles and logs under OUT/.submitit
    assert list(_scores(out)) == cells

    # The same grid trained here, in this process: the same scores.
    local = tmp_path / "local"
    _run(["experiment", "--config", str(grid), "--output", str(local), "--no-report"], capsys)
    assert _scores(out) == _scores(local)

    # Again: nothing is submitted, every cell is reused, and so does the local launcher (same fingerprints).
    assert _run([*args, "--launcher", "submitit-local"], capsys).count("(finished earlier, reused)") == 4
    assert len(_jobs(out)) == 4
    assert _run(args, capsys).count("(finished earlier, reused)") == 4
    assert _scores(out) == _scores(local)


def test_a_failed_cell_is_reported_and_the_finished_ones_kept(tiny_model_dir: Path, toy_data_dir_module: Path,
                                                              tmp_path: Path, one_thread_jobs: None,
                                                              capsys: pytest.CaptureFixture) -> None:
    datasets = {"toy": {"path": str(toy_data_dir_module)}, "missing": {"path": str(tmp_path / "no-such-data")}}
    grid = _grid(tmp_path / "grid.yaml", tiny_model_dir, datasets, ["ft"], [0])
    out = tmp_path / "out"
    assert main(["experiment", "--config", str(grid), "--output", str(out), "--no-report",
                 "--launcher", "submitit-local"]) == 2
    error = capsys.readouterr().err
    assert "1 of 2 cell(s) failed: missing/ft/seed-0" in error and "data path not found" in error
    assert "/.submitit/" in error and "_log.err" in error  # where to look
    assert list(_scores(out)) == ["toy/ft/seed-0"]


def test_resources_reach_the_sbatch_script(tiny_model_dir: Path, tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """The grid file's resources, with a data set's override, as submitit writes them for sbatch (a stand-in
    `srun` on PATH lets submitit build its Slurm executor without a cluster; nothing is submitted)."""
    submitit = pytest.importorskip("submitit")
    from phasefit.experiments.experiment import grid_cells

    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "srun").write_text("#!/bin/sh\nexit 1\n")
    (fake / "srun").chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake}{os.pathsep}{os.environ['PATH']}")
    datasets = {"small": {"path": "a"}, "big": {"path": "b", "resources": {"mem_gb": 64, "timeout_min": 120}}}
    grid = load_grid(_grid(tmp_path / "grid.yaml", tiny_model_dir, datasets, ["ft"], [0], launcher={
        "slurm": {"partition": "gpu", "timeout_min": 60, "gpus_per_node": 1, "cpus_per_task": 8, "mem_gb": 32,
                  "setup": ["module load cuda"]}}))
    scripts = {}
    for cell in grid_cells(grid):
        executor = submitit.AutoExecutor(folder=tmp_path / ".submitit", cluster="slurm")
        resources = grid.launcher.slurm.merged(grid.datasets[cell.tags["dataset"]].resources)
        executor.update_parameters(**resources.executor_parameters())
        scripts[cell.tags["dataset"]] = executor._executor._make_submission_file_text("true", "uid")
    for line in ("--partition=gpu", "--gpus-per-node=1", "--cpus-per-task=8", "--nodes=1"):
        assert f"#SBATCH {line}\n" in scripts["small"] and f"#SBATCH {line}\n" in scripts["big"]
    assert "#SBATCH --time=60\n" in scripts["small"] and "#SBATCH --mem=32GB\n" in scripts["small"]
    assert "#SBATCH --time=120\n" in scripts["big"] and "#SBATCH --mem=64GB\n" in scripts["big"]
    assert "module load cuda" in scripts["big"]


@pytest.mark.parametrize("where", ["launcher", "dataset"])
def test_unknown_resource_key_is_a_clear_config_error(tmp_path: Path, where: str) -> None:
    launcher = {"slurm": {"partition": "gpu", "gpus": 1}} if where == "launcher" else None
    resources = {"gpus": 1} if where == "dataset" else {}
    grid = _grid(tmp_path / "grid.yaml", tmp_path, {"toy": {"path": "a", "resources": resources}}, ["ft"], [0],
                 launcher=launcher)
    with pytest.raises(ConfigError, match=r"unknown resource key\(s\) \['gpus'\]; known: partition.*gpus_per_node"):
        load_grid(grid)
