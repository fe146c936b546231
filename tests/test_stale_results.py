"""Nothing stale (issue 10, items 4-5): a finished cell is reused only for the same config and data, and --resume
refuses data that changed since the run began."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pandas as pd
import pytest
import yaml

from phasefit.cli import main
from phasefit.recipes import build_config
from phasefit.pipeline import RunDirectoryError, train
from tests.conftest import tiny_overrides


def _sets(model_dir: Path, *extra: str) -> list[str]:
    return [arg for item in [*tiny_overrides(model_dir), "ft.max_steps=2", "plots=false", *extra]
            for arg in ("--set", item)]


def _run(data: Path, out: Path, model_dir: Path, *extra: str) -> list[str]:
    return ["run", "--data", str(data), "--recipes", "ft", "--seeds", "0", "--output", str(out),
            *_sets(model_dir, *extra)]


# 4. grids reuse a cell only when config and data match ---------------------------------------------------------------


def test_a_changed_setting_is_refused_then_retrained_with_overwrite(tiny_model_dir: Path, toy_data_dir: Path,
                                                                   tmp_path: Path, capsys) -> None:
    out = tmp_path / "cmp"
    assert main(_run(toy_data_dir, out, tiny_model_dir)) == 0
    first = json.loads((out / "ft" / "seed-0" / "metrics.json").read_text())
    capsys.readouterr()
    assert main(_run(toy_data_dir, out, tiny_model_dir, "ft.head_hidden=16")) == 2
    err = capsys.readouterr().err
    assert "ft/seed-0" in err and "ft.head_hidden: 256 -> 16" in err and "--overwrite" in err
    assert json.loads((out / "ft" / "seed-0" / "metrics.json").read_text()) == first  # nothing retrained
    assert main([*_run(toy_data_dir, out, tiny_model_dir, "ft.head_hidden=16"), "--overwrite"]) == 0
    config = yaml.safe_load((out / "ft" / "seed-0" / "config.yaml").read_text())
    assert config["ft"]["head_hidden"] == 16


def test_the_same_request_reuses_and_progress_settings_do_not_count(tiny_model_dir: Path, toy_data_dir: Path,
                                                                    tmp_path: Path, capsys) -> None:
    out = tmp_path / "cmp"
    assert main(_run(toy_data_dir, out, tiny_model_dir)) == 0
    capsys.readouterr()
    assert main([*_run(toy_data_dir, out, tiny_model_dir), "--quiet"]) == 0  # progress=false changes no number
    assert "finished earlier, reused" in capsys.readouterr().out


def test_changed_data_with_the_same_rows_is_refused(tiny_model_dir: Path, toy_data_dir: Path, tmp_path: Path,
                                                    capsys) -> None:
    out = tmp_path / "cmp"
    assert main(_run(toy_data_dir, out, tiny_model_dir)) == 0
    frame = pd.read_csv(toy_data_dir / "validation.csv")
    frame.loc[0, "label"] = "music" if frame.loc[0, "label"] != "music" else "weather"  # a relabelled row
    frame.to_csv(toy_data_dir / "validation.csv", index=False)
    capsys.readouterr()
    assert main(_run(toy_data_dir, out, tiny_model_dir)) == 2
    assert "validation split" in capsys.readouterr().err


def test_an_experiment_keeps_its_grid_file_when_it_refuses(tiny_model_dir: Path, toy_data_dir: Path,
                                                           tmp_path: Path, capsys) -> None:
    settings = dict(item.split("=", 1) for item in tiny_overrides(tiny_model_dir))
    grid = {"recipes": ["ft"], "seeds": [0], "set": {**settings, "ft.max_steps": 2, "plots": False},
            "datasets": {"toy": {"path": str(toy_data_dir)}}}
    path = tmp_path / "grid.yaml"
    path.write_text(yaml.safe_dump(grid))
    out = tmp_path / "out"
    assert main(["experiment", "--config", str(path), "--output", str(out), "--no-report"]) == 0
    recorded = (out / "grid.yaml").read_text()
    grid["set"]["ft.lr"] = 0.001
    path.write_text(yaml.safe_dump(grid))
    capsys.readouterr()
    assert main(["experiment", "--config", str(path), "--output", str(out), "--no-report"]) == 2
    assert "ft.lr" in capsys.readouterr().err
    assert (out / "grid.yaml").read_text() == recorded  # the record still describes the cells beside it


# 5. --resume compares content, and resolves relative paths where the run began ---------------------------------------------


def _interrupted(config, run: Path) -> None:
    """A finished run turned into one killed before its end (metrics.json and model/ not written yet)."""
    train(config, run)
    (run / "metrics.json").unlink()
    shutil.rmtree(run / "model")


def test_resume_refuses_data_that_changed_since_the_start(tiny_model_dir: Path, toy_data_dir: Path,
                                                         tmp_path: Path) -> None:
    config = build_config("ft", None, [*tiny_overrides(tiny_model_dir), f"data.path={toy_data_dir}",
                                       "ft.max_steps=2", "plots=false"])
    run = tmp_path / "run"
    _interrupted(config, run)
    frame = pd.read_csv(toy_data_dir / "train.csv")
    frame.loc[3, "text"] = frame.loc[3, "text"] + " please"  # same rows, other text
    frame.to_csv(toy_data_dir / "train.csv", index=False)
    with pytest.raises(RunDirectoryError, match="train split"):
        train(config, run, resume=True)


def test_resume_refuses_a_finished_run(tiny_model_dir: Path, toy_data_dir: Path, tmp_path: Path) -> None:
    config = build_config("ft", None, [*tiny_overrides(tiny_model_dir), f"data.path={toy_data_dir}",
                                       "ft.max_steps=2", "plots=false"])
    train(config, tmp_path / "run")
    with pytest.raises(RunDirectoryError, match="already finished"):
        train(config, tmp_path / "run", resume=True)


def test_resume_from_another_directory_reads_the_same_relative_data(tiny_model_dir: Path, toy_data_dir: Path,
                                                                   tmp_path: Path, monkeypatch) -> None:
    project = toy_data_dir.parent
    monkeypatch.chdir(project)
    config = build_config("ft", None, [*tiny_overrides(tiny_model_dir), f"data.path={toy_data_dir.name}",
                                       "ft.max_steps=2", "plots=false"])
    run = tmp_path / "run"
    _interrupted(config, run)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # data.path "toy" means nothing here
    result = train(config, run, resume=True)
    assert result.metrics["sizes"]["train"] == len(pd.read_csv(toy_data_dir / "train.csv"))
    assert os.getcwd() == str(elsewhere)
