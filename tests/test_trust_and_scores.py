"""Issue 10 items 6, 9, 10: runs without test scores format everywhere; only the command line may switch on
remote code or pickle; the torch floor makes every module folder's torch.load safe."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
import yaml

from phasefit.cli import main
from phasefit.config import ConfigError
from phasefit.recipes import build_config
from tests.conftest import tiny_overrides

ROOT = Path(__file__).resolve().parent.parent


def _sets(model_dir: Path) -> list[str]:
    return [arg for item in [*tiny_overrides(model_dir), "ft.max_steps=2"] for arg in ("--set", item)]


# 6. evaluate_test=false -----------------------------------------------------------------------------------------------


def test_train_without_test_scores_prints_validation(tiny_model_dir: Path, toy_data_dir_module: Path,
                                                     tmp_path: Path, capsys) -> None:
    code = main(["train", "--data", str(toy_data_dir_module), "--output", str(tmp_path / "run"),
                 *_sets(tiny_model_dir), "--set", "evaluate_test=false"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "validation accuracy" in out and "test       accuracy" not in out


def test_grids_without_test_scores_summarise_and_report(tiny_model_dir: Path, toy_data_dir_module: Path,
                                                        tmp_path: Path, capsys) -> None:
    code = main(["run", "--data", str(toy_data_dir_module), "--recipes", "ft", "--seeds", "0", "1",
                 "--output", str(tmp_path / "cmp"), *_sets(tiny_model_dir), "--set", "evaluate_test=false"])
    out = capsys.readouterr().out
    assert code == 0, out
    summary = (tmp_path / "cmp" / "summary.md").read_text()
    assert "| ft | 2 | – | – |" in summary
    report = (tmp_path / "cmp" / "report.md").read_text()
    assert "validation" in report.lower()


# 9. trust flags only from the command line -----------------------------------------------------------------------------


@pytest.mark.parametrize(("key", "flag"), [("trust_remote_code", "--trust-remote-code"),
                                           ("allow_pickle", "--set model.allow_pickle=true")])
def test_a_config_file_cannot_switch_on_code_execution(key: str, flag: str, tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({"model": {key: True}}))
    with pytest.raises(ConfigError, match=f"model.{key}") as err:
        build_config("ft", config)
    assert flag in str(err.value) and str(config) in str(err.value)
    assert getattr(build_config("ft", overrides=[f"model.{key}=true"]).model, key) is True  # the command line may


@pytest.mark.parametrize("where", ["set", "dataset", "variant"])
def test_a_grid_file_cannot_switch_on_code_execution(where: str, tmp_path: Path, toy_data_dir_module: Path,
                                                     capsys) -> None:
    grid: dict = {"recipes": ["ft"], "seeds": [0], "datasets": {"toy": {"path": str(toy_data_dir_module)}}}
    if where == "set":
        grid["set"] = {"model.trust_remote_code": True}
    elif where == "dataset":
        grid["datasets"]["toy"]["set"] = {"model.allow_pickle": True}
    else:
        grid["variants"] = {"a": {}, "b": {"model.trust_remote_code": True}}
    path = tmp_path / "grid.yaml"
    path.write_text(yaml.safe_dump(grid))
    assert main(["experiment", "--config", str(path), "--output", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "only the command line" in err and str(path) in err
    assert not (tmp_path / "out").exists()


# 10. torch floor ----------------------------------------------------------------------------------------------------------


def test_torch_floor_makes_torch_load_refuse_pickled_code() -> None:
    """Module folders other than the Transformer's (``2_Dense/*.bin``) load through torch.load, which refuses
    arbitrary pickles (weights_only=True) by default only from torch 2.6."""
    from packaging.requirements import Requirement
    from packaging.version import Version

    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    torch = next(Requirement(d) for d in deps if Requirement(d).name == "torch")
    assert not torch.specifier.contains(Version("2.5.1")) and torch.specifier.contains(Version("2.13.0"))
