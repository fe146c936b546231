"""Paper 002's protocols (few-shot, noise robustness, transfer) and the resumable grid, on the tiny model."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from phasefit.cli import main
from phasefit.data.noise import word_noise
from phasefit.experiments.grid import Cell, run_cells
from phasefit.recipes import settings_from_overrides
from phasefit.results import read_results
from tests.conftest import tiny_overrides

FAST = ["ft.epochs=1", "ft.max_steps=2", "plots=false"]


def _sets(model_dir: Path) -> list[str]:
    return [arg for item in [*tiny_overrides(model_dir), *FAST] for arg in ("--set", item)]


def test_few_shot_protocol_writes_table_with_top3_figure(tiny_model_dir: Path, toy_data_dir_module: Path,
                                                         tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "fs"
    code = main(["few-shot", "--data", str(toy_data_dir_module), "--recipes", "ft", "scl", "--sizes", "6", "9",
                 "--draws", "2", "--output", str(out), "--validation-size", "9", *_sets(tiny_model_dir)])
    assert code == 0
    rows = read_results(out)
    assert len(rows) == 2 * 2 * 2  # sizes x recipes x draws
    assert {row["train_size"] for row in rows} == {6, 9}
    splits = {json.dumps(json.loads((out / row["cell"] / "split.json").read_text())["ids"]["train"]) for row in rows
              if row["n"] == 6 and row["recipe"] == "ft"}
    assert len(splits) == 2  # the two draws differ
    summary = (out / "summary.md").read_text()
    assert "top-3 runs by validation (paper 002's protocol)" in summary and "| 9 | scl | 2 |" in summary


def test_noise_protocol_augments_the_training_set(tiny_model_dir: Path, toy_data_dir_module: Path,
                                                  tmp_path: Path) -> None:
    out = tmp_path / "noise"
    code = main(["noise", "--data", str(toy_data_dir_module), "--recipes", "ft", "--n", "6", "--levels", "0", "0.5",
                 "--draws", "1", "--copies", "2", "--validation-size", "9", "--output", str(out),
                 *_sets(tiny_model_dir)])
    assert code == 0
    rows = {row["noise_level"]: row for row in read_results(out)}
    assert rows[0.0]["train_size"] == 6 and rows[0.5]["train_size"] == 18  # 6 + 2 noisy copies each
    split = json.loads((out / rows[0.5]["cell"] / "split.json").read_text())
    assert split["augmentation"] == {"noise_level": 0.5, "copies": 2, "added": 12}


def test_transfer_protocol_starts_target_runs_from_the_source_encoder(tiny_model_dir: Path, toy_data_dir_module: Path,
                                                                      toy_hier_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "transfer"
    code = main(["transfer", "--source", str(toy_data_dir_module), "--target", str(toy_hier_dir), "--recipes", "ft",
                 "--k", "3", "--draws", "1", "--output", str(out), *_sets(tiny_model_dir)])
    assert code == 0
    rows = read_results(out)
    assert {row["start"] for row in rows} == {"source ft", "pre-trained"}
    transfer = next(row for row in rows if row["start"] == "source ft")
    model = json.loads((out / transfer["cell"] / "metrics.json").read_text())["model"]
    assert model.endswith("source-grid/source/ft/seed-0/model/encoder")
    assert "Transfer (paper 002 §5.4)" in (out / "summary.md").read_text()


def test_grid_resumes_without_losing_or_repeating_cells(tiny_model_dir: Path, toy_data_dir_module: Path,
                                                        tmp_path: Path) -> None:
    base = [*tiny_overrides(tiny_model_dir), *FAST, f"data.path={toy_data_dir_module}"]
    cells = [Cell(f"ft/seed-{s}", "ft", {"seed": s}, {"seed": s}) for s in range(3)]
    full = run_cells(cells, tmp_path / "full", base_settings=settings_from_overrides(base))
    # An interrupted grid: cell 0 finished, cell 1 killed while writing its first file (config.yaml is written
    # atomically, so what a kill leaves is the temporary beside it), cell 2 never began.
    partial = tmp_path / "partial"
    shutil.copytree(tmp_path / "full" / "ft" / "seed-0", partial / "ft" / "seed-0")
    (partial / "ft" / "seed-1").mkdir(parents=True)
    (partial / "ft" / "seed-1" / ".config.yaml.k1ll3d.tmp").write_text("half-written")
    resumed = run_cells(cells, partial, base_settings=settings_from_overrides(base))
    keys = ["cell", "seed", "test_accuracy", "test_macro_f1", "validation_accuracy", "ft_final_loss"]
    assert [[r[k] for k in keys] for r in resumed] == [[r[k] for k in keys] for r in full]
    assert len(read_results(partial)) == 3


def test_word_noise_grows_with_level() -> None:
    rng = np.random.default_rng(0)
    text = "the quick brown fox jumps over the lazy dog and then it runs into the forest"
    vocabulary = text.split()
    from difflib import SequenceMatcher

    similarity = {}
    for level in (0.1, 0.5, 0.9):
        outs = [word_noise(text, level, rng, vocabulary) for _ in range(200)]
        similarity[level] = np.mean([SequenceMatcher(None, text.split(), out.split()).ratio() for out in outs])
    assert word_noise(text, 0.0, rng, vocabulary) == text
    assert similarity[0.1] > similarity[0.5] > similarity[0.9]
