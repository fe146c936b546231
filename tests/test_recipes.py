"""Every recipe trains end to end on the tiny random BERT (a few optimiser steps per phase)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from phasefit.recipes import build_config
from phasefit.pipeline import train
from phasefit.recipes import RECIPES
from tests.conftest import tiny_overrides

SHORT = ["dae.max_steps=2", "cl.max_steps=2", "joint.max_steps=2", "ft.max_steps=2", "supcon.max_steps=2",
         "simclr.max_steps=2", "mlm.max_steps=2", "supcon.batch_size=4", "simclr.batch_size=4", "dae.batch_size=4",
         "cl.batch_size=4", "joint.batch_size=4", "mlm.batch_size=4"]


@pytest.mark.parametrize("recipe", sorted(RECIPES))
def test_every_recipe_trains(recipe: str, tiny_model_dir: Path, toy_data_dir_module: Path, tmp_path: Path) -> None:
    overrides = [*tiny_overrides(tiny_model_dir), f"data.path={toy_data_dir_module}", *SHORT]
    config = build_config(recipe, None, overrides)
    result = train(config, tmp_path / "run")
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert [p["name"] for p in metrics["phases"]] == RECIPES[recipe]["phases"]
    for phase in metrics["phases"]:
        assert phase["steps"] == 2
        assert phase["final_loss"] is not None and phase["final_loss"] == phase["final_loss"]  # not NaN
        assert 0.0 <= phase["validation_knn_accuracy"] <= 1.0
    assert 0.0 <= metrics["test"]["accuracy"] <= 1.0
    run = tmp_path / "run"
    assert (run / "embeddings.png").stat().st_size > 0 and (run / "confusion_matrix.png").stat().st_size > 0
    stages = sorted(p.name for p in (run / "embeddings").iterdir())
    assert stages[0] == "0-initial.npy" and len(stages) == 1 + len(metrics["phases"])
    assert result.classifier.predict(["play some jazz songs"])[0] in result.classifier.label_names


def test_encoder_phases_change_the_encoder_and_hand_it_on(tiny_model_dir: Path, toy_data_dir_module: Path,
                                                          tmp_path: Path) -> None:
    """DAE then CL train the same encoder in memory; FT starts from it (nothing is reloaded from disk)."""
    from phasefit.config import ModelConfig
    from phasefit.models.encoder import load_encoder

    before = {k: v.clone() for k, v in load_encoder(ModelConfig(name=str(tiny_model_dir))).state_dict().items()}
    config = build_config("3phase", None, [*tiny_overrides(tiny_model_dir), f"data.path={toy_data_dir_module}",
                                           *SHORT, "ft.freeze_encoder=true"])
    result = train(config, tmp_path / "run")
    after = result.classifier.encoder.state_dict()
    changed = [k for k in before if k in after and not torch.equal(before[k], after[k])]
    assert changed, "DAE/CL left the encoder untouched"
    # Two Dense layers were added (bottleneck + CL projection), both saved with the classifier.
    assert len(list(result.classifier.encoder.children())) == len(list(load_encoder(
        ModelConfig(name=str(tiny_model_dir))).children())) + 2


def test_dae_reads_unlabelled_texts_but_never_validation_or_test(tiny_model_dir: Path, toy_data_dir_module: Path,
                                                                  tmp_path: Path, monkeypatch) -> None:
    from phasefit.phases import staged

    unlabelled = tmp_path / "extra.txt"
    unlabelled.write_text("play the jazz album tonight\n\nwhat is the forecast for monday\n")
    seen: list[list[str]] = []
    original = staged.dae_texts
    monkeypatch.setattr(staged, "dae_texts", lambda ctx, cap: seen.append(original(ctx, cap)) or seen[-1])
    config = build_config("dae-ft", None, [*tiny_overrides(tiny_model_dir), f"data.path={toy_data_dir_module}",
                                           f"data.unlabelled_path={unlabelled}", *SHORT])
    result = train(config, tmp_path / "run")
    texts = seen[0]
    assert texts[-2:] == ["play the jazz album tonight", "what is the forecast for monday"]  # blank line skipped
    import pandas as pd

    held_out = set(pd.read_csv(toy_data_dir_module / "validation.csv").text) | set(pd.read_csv(toy_data_dir_module / "test.csv").text)
    assert not held_out & set(texts)
    assert result.metrics["phases"][0]["texts"] == len(texts) == result.metrics["sizes"]["train"] + 2
