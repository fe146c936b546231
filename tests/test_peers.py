"""The peers under one labelled budget (issue 29, section 1): every peer may use train ∪ validation, and says how.

On the tiny random model of conftest.py: setfit-default trains on the whole pool and records the fraction of SetFit's
default pairs it saw; setfit-tuned chooses its head's C on validation before any test text is read; the probe's C grid
is wide and its edge flag recorded; FastFit (only where its venv exists) trains in its own venv on the pool.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any

import pytest

from conftest import tiny_overrides

HARNESS = Path(__file__).resolve().parents[1] / "benchmarks" / "quality" / "run.py"
FASTFIT_PYTHON = Path(__file__).resolve().parents[1] / ".venv-fastfit" / "bin" / "python"
POOL = 3 * (16 + 5)  # toy data: 3 classes, 16 train and 5 validation rows each


def _base(model_dir: Path, data_dir: Path, **extra: Any) -> dict[str, Any]:
    from phasefit.recipes import merge_settings, settings_from_overrides

    return merge_settings(settings_from_overrides(tiny_overrides(model_dir)), {"data.path": str(data_dir), **extra})


def _train(peer: str, model_dir: Path, data_dir: Path, run_dir: Path, **extra: Any) -> dict[str, Any]:
    from phasefit.experiments.grid import Cell, cell_config, train_cell

    return train_cell(cell_config(Cell(peer, peer), _base(model_dir, data_dir, **extra)), run_dir)


# --- settings ----------------------------------------------------------------------------------------------------


def test_peer_settings_read_their_sections_over_the_defaults() -> None:
    from phasefit.config import ConfigError
    from phasefit.experiments.peers import C_GRID, FASTFIT_RECIPE, peer_settings, split_peer_settings

    assert C_GRID[0] == pytest.approx(1e-3) and C_GRID[-1] == pytest.approx(1e5) and len(C_GRID) == 17
    assert peer_settings("probe") == {"c_grid": C_GRID}
    # setfit-tuned shares setfit-default's body settings (the same cap), and has its own head grid
    sections = {"setfit_default": {"max_steps": 7}, "setfit_tuned": {"c_grid": [1.0, 10.0]}}
    assert peer_settings("setfit-default", sections) == {"max_steps": 7}
    assert peer_settings("setfit-tuned", sections) == {"max_steps": 7, "c_grid": [1.0, 10.0]}
    assert peer_settings("fastfit", {"fastfit": {"max_steps": 3}}) == {**FASTFIT_RECIPE, "max_steps": 3}
    config, taken = split_peer_settings({"seed": 1, "setfit_default": {"max_steps": 7}, "fastfit": {}})
    assert config == {"seed": 1} and set(taken) == {"setfit_default", "fastfit"}
    with pytest.raises(ConfigError, match="setfit_default.num_iterations"):
        peer_settings("setfit-default", {"setfit_default": {"num_iterations": 20}})
    with pytest.raises(ConfigError, match="max_steps must be a positive"):
        peer_settings("setfit-default", {"setfit_default": {"max_steps": 0}})
    with pytest.raises(ConfigError, match="c_grid"):
        peer_settings("probe", {"probe": {"c_grid": []}})


@pytest.mark.parametrize("labels", [["a"] * 5 + ["b"] * 3, list("abcd"), ["x"] * 7, list("aabbbcccccddddddde" * 3)])
def test_setfit_default_pair_count_is_setfit_samplers(labels: list[str]) -> None:
    sampler = pytest.importorskip("setfit.sampler")
    from phasefit.experiments.peers import setfit_default_pairs

    texts = [f"text {i}" for i in range(len(labels))]
    assert setfit_default_pairs(labels) == len(sampler.ContrastiveDataset(texts, labels, multilabel=False))


# --- setfit-default ----------------------------------------------------------------------------------------------


def test_setfit_default_trains_on_the_pool_and_records_the_fraction_of_default_pairs(
        tiny_model_dir: Path, toy_data_dir_module: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    setfit = pytest.importorskip("setfit")
    from phasefit.experiments.peers import PEER_FILE, setfit_default_pairs
    from phasefit.pipeline import load_run_data
    from phasefit.recipes import build_config

    trained_on: list[list[str]] = []
    real_init = setfit.Trainer.__init__

    def spy(self: Any, *args: Any, **kwargs: Any) -> None:
        trained_on.append(list(kwargs["train_dataset"]["text"]))
        real_init(self, *args, **kwargs)

    monkeypatch.setattr(setfit.Trainer, "__init__", spy)
    metrics = _train("setfit-default", tiny_model_dir, toy_data_dir_module, tmp_path / "run",
                     **{"setfit_default.max_steps": 3})
    splits = load_run_data(build_config("ft", settings=_base(tiny_model_dir, toy_data_dir_module)))
    assert len(trained_on) == 1  # one Trainer, on train ∪ validation: nothing held out
    assert sorted(trained_on[0]) == sorted([*splits.train.texts, *splits.validation.texts])
    assert metrics["sizes"]["train"] == POOL and metrics["validation_in_training"] is True
    pairs = metrics["setfit_pairs"]
    pool_labels = [*splits.train.labels, *splits.validation.labels]
    assert pairs["default_pairs_per_epoch"] == setfit_default_pairs(pool_labels) == 2646  # 2 * (2016 - 3 * 231)
    assert pairs["library_defaults"]["sampling_strategy"] == "oversampling"
    assert pairs["library_defaults"]["num_iterations"] is None
    assert pairs["max_steps"] == 3 and pairs["steps"] == 3 and pairs["pairs_seen"] == 3 * 16
    assert pairs["fraction_of_default_pairs"] == pytest.approx(48 / 2646, abs=1e-6)
    assert json.loads((tmp_path / "run" / PEER_FILE).read_text()) == {"peer": "setfit-default",
                                                                       "settings": {"max_steps": 3}}
    assert len(json.loads((tmp_path / "run" / "split.json").read_text())["ids"]["train"]) == len(splits.train)


def test_setfit_default_without_a_binding_cap_sees_every_default_pair(
        tiny_model_dir: Path, toy_data_dir_module: Path, tmp_path: Path) -> None:
    pytest.importorskip("setfit")
    # a pool of a few rows: SetFit's default pairs take a handful of steps, under the cap of 1000
    metrics = _train("setfit-default", tiny_model_dir, toy_data_dir_module, tmp_path / "run",
                     **{"setfit_default.max_steps": 1000, "data.max_train_examples": 6,
                        "data.max_validation_examples": 3})
    pairs = metrics["setfit_pairs"]
    assert pairs["max_steps"] is None and pairs["pairs_seen"] == pairs["default_pairs_per_epoch"]
    assert pairs["fraction_of_default_pairs"] == 1.0 and pairs["steps"] == pairs["default_steps"]


# --- setfit-tuned ------------------------------------------------------------------------------------------------


def test_setfit_tuned_chooses_c_on_validation_before_reading_the_test_set(
        tiny_model_dir: Path, toy_data_dir_module: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    setfit = pytest.importorskip("setfit")
    from sklearn.linear_model import LogisticRegression

    import phasefit.experiments.peers as peers
    from phasefit.pipeline import load_run_data
    from phasefit.recipes import build_config

    splits = load_run_data(build_config("ft", settings=_base(tiny_model_dir, toy_data_dir_module)))
    test_texts = set(splits.test.texts)
    events: list[str] = []
    real_encode, real_choose, real_fit = setfit.SetFitModel.encode, peers.choose_c, LogisticRegression.fit

    def encode(self: Any, inputs: list[str], *args: Any, **kwargs: Any) -> Any:
        events.append("test" if test_texts & set(inputs) else f"encode {len(inputs)}")
        return real_encode(self, inputs, *args, **kwargs)

    def choose(train_x: Any, train_y: Any, val_x: Any, val_y: Any, grid: Any) -> Any:
        assert list(val_y) == list(splits.validation.labels) and len(train_y) == len(splits.train)
        events.append("choose")
        return real_choose(train_x, train_y, val_x, val_y, grid)

    def fit(self: Any, x: Any, y: Any, *args: Any, **kwargs: Any) -> Any:
        events.append(f"fit {len(y)}")
        return real_fit(self, x, y, *args, **kwargs)

    monkeypatch.setattr(setfit.SetFitModel, "encode", encode)
    monkeypatch.setattr(peers, "choose_c", choose)
    monkeypatch.setattr(LogisticRegression, "fit", fit)
    grid = [0.01, 1.0, 100.0]
    metrics = _train("setfit-tuned", tiny_model_dir, toy_data_dir_module, tmp_path / "run",
                     **{"setfit_default.max_steps": 2, "setfit_tuned.c_grid": grid})
    first_test = events.index("test")
    assert events.index("choose") < first_test and "test" not in events[:first_test]
    # after the choice: the held-out head (train), then the final head refit on the pool, then the test texts
    assert events[events.index("choose") + len(grid) + 1:first_test] == ["fit 48", f"fit {POOL}"]
    by_c = metrics["head_validation_macro_f1_by_c"]
    assert [float(c) for c in by_c] == grid
    assert metrics["head_c"] == next(c for c in grid if by_c[repr(c)] == max(by_c.values()))
    assert metrics["head_c_at_edge"] == (metrics["head_c"] in (0.01, 100.0))
    assert metrics["sizes"]["train"] == POOL and metrics["validation_in_training"] is False
    assert metrics["setfit_pairs"]["steps"] == 2 and 0 <= metrics["test"]["accuracy"] <= 1


# --- probe -------------------------------------------------------------------------------------------------------


def test_the_probe_grid_is_wide_and_its_edge_is_flagged(tiny_model_dir: Path, toy_data_dir_module: Path,
                                                       tmp_path: Path) -> None:
    from phasefit.experiments.grid import Cell, cell_config
    from phasefit.experiments.peers import C_GRID, peer_config_hash

    metrics = _train("probe", tiny_model_dir, toy_data_dir_module, tmp_path / "wide")
    assert metrics["probe_c_grid"] == C_GRID and metrics["probe_c"] in C_GRID
    assert metrics["probe_c_at_edge"] == (metrics["probe_c"] in (C_GRID[0], C_GRID[-1]))
    assert list(metrics["probe_validation_macro_f1_by_c"]) == [repr(c) for c in C_GRID]
    narrow = _train("probe", tiny_model_dir, toy_data_dir_module, tmp_path / "narrow", **{"probe.c_grid": [3.0]})
    assert narrow["probe_c"] == 3.0 and narrow["probe_c_at_edge"] is True
    # the grid is a setting, so the probe's runs made with the old grid (0.01 .. 100) are not reused
    cell = cell_config(Cell("p", "probe"), _base(tiny_model_dir, toy_data_dir_module))
    assert cell.settings == {"c_grid": C_GRID}
    assert peer_config_hash("probe", cell.config, cell.settings) != peer_config_hash("probe", cell.config, {})


# --- the benchmark's run_peer ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def harness() -> Any:
    spec = importlib.util.spec_from_file_location("quality_run_peers", HARNESS)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_benchmark_reruns_a_probe_run_made_before_the_wide_grid(harness: Any, tmp_path: Path,
                                                                    tiny_model_dir: Path,
                                                                    toy_data_dir_module: Path) -> None:
    grid = {"set": {"model.name": str(tiny_model_dir), "data.max_length": 32}, "setfit": {},
            "setfit_default": {"max_steps": 50},
            "cells": {"toy": {"data": str(toy_data_dir_module), "seeds": [0], "setfit_default": {"max_steps": 2}}}}
    folder = tmp_path / "runs/toy/probe/seed-0"
    folder.mkdir(parents=True)
    (folder / "metrics.json").write_text(json.dumps({"recipe": "probe", "probe_c": 100.0}))  # a published old run
    metrics = harness.run_peer("probe", grid, "toy", 0, tmp_path)
    assert metrics["probe_c_grid"] and (folder / "fingerprint.json").is_file()
    assert harness.run_peer("probe", grid, "toy", 0, tmp_path) == metrics  # now reused
    # the cell's cap over the grid's: setfit-default trains 2 steps here
    pytest.importorskip("setfit")
    tuned = harness.run_peer("setfit-default", grid, "toy", 0, tmp_path)
    assert tuned["setfit_pairs"]["steps"] == 2 and tuned["sizes"]["train"] == POOL
    # the published setfit runs (metrics.json alone) are still read back as they are
    legacy = tmp_path / "runs/toy/setfit/seed-0"
    legacy.mkdir(parents=True)
    (legacy / "metrics.json").write_text(json.dumps({"recipe": "setfit", "old": True}))
    assert harness.run_peer("setfit", grid, "toy", 0, tmp_path) == {"recipe": "setfit", "old": True}


# --- FastFit -----------------------------------------------------------------------------------------------------


@pytest.mark.skipif(not FASTFIT_PYTHON.is_file(), reason="FastFit's venv is missing: bash "
                    "benchmarks/quality/setup_fastfit.sh")
def test_fastfit_trains_on_the_pool_in_its_own_venv(tiny_model_dir: Path, toy_data_dir_module: Path,
                                                     tmp_path: Path) -> None:
    import shutil

    # the tiny model's tokenizer was saved by transformers 5 (class "TokenizersBackend"); FastFit's transformers 4
    # reads the same tokenizer.json as a PreTrainedTokenizerFast (the real model ships a BertTokenizer config)
    model_dir = Path(shutil.copytree(tiny_model_dir, tmp_path / "tiny"))
    tokenizer_config = json.loads((model_dir / "tokenizer_config.json").read_text())
    tokenizer_config["tokenizer_class"] = "PreTrainedTokenizerFast"
    (model_dir / "tokenizer_config.json").write_text(json.dumps(tokenizer_config))
    metrics = _train("fastfit", model_dir, toy_data_dir_module, tmp_path / "run",
                     **{"fastfit.max_steps": 2, "fastfit.per_device_train_batch_size": 8, "fastfit.num_repeats": 1})
    run = metrics["fastfit_run"]
    assert run["steps"] == 2 and run["versions"]["fast-fit"] == "1.2.1"
    assert run["recipe_steps"] == 40 * -(-POOL // 8) and run["fraction_of_recipe_steps"] == pytest.approx(2 / 320)
    assert metrics["sizes"]["train"] == POOL and metrics["validation_in_training"] is True
    assert metrics["test"]["examples"] == 15 and 0 <= metrics["test"]["accuracy"] <= 1


def test_a_missing_fastfit_venv_is_an_actionable_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from phasefit.config import ConfigError
    from phasefit.experiments.peers import FASTFIT_PYTHON_ENV, require_peer_library

    monkeypatch.setenv(FASTFIT_PYTHON_ENV, str(tmp_path / "nowhere" / "python"))
    with pytest.raises(ConfigError, match="setup_fastfit.sh"):
        require_peer_library("fastfit")
