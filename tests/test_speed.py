"""Issue 12's speed changes keep results and resume intact: fused AdamW, no redundant checkpoint or model write."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from phasefit.cli import main
from phasefit.config import OptimConfig
from phasefit.fingerprint import config_differences
from phasefit.training.optim import make_optimizer
from tests.conftest import tiny_overrides


def test_fused_adamw_matches_the_default_up_to_rounding() -> None:
    torch.manual_seed(0)
    weights = [torch.randn(64, 32), torch.randn(32)]
    grads = [torch.randn_like(w) for w in weights]
    results = []
    for fused in (False, True):
        params = [torch.nn.Parameter(w.clone()) for w in weights]
        optimizer = make_optimizer([{"params": params, "weight_decay": 0.01}], OptimConfig(lr=1e-3), fused=fused)
        assert optimizer.defaults.get("fused") is (True if fused else None)
        for _ in range(3):
            for p, g in zip(params, grads):
                p.grad = g.clone()
            optimizer.step()
        results.append([p.detach() for p in params])
    for default, fused in zip(*results):
        assert torch.allclose(default, fused, atol=1e-6)
        assert not torch.equal(default, weights[0] if default.dim() == 2 else weights[1])  # it did train


def test_runs_made_before_fused_optimizer_existed_are_not_reused_by_fused_runs() -> None:
    old = {"trainer": {"mixed_precision": "no"}}  # a config.yaml written before the key existed
    assert config_differences(old, {"trainer": {"mixed_precision": "no", "fused_optimizer": False}}) == []
    assert config_differences(old, {"trainer": {"mixed_precision": "no", "fused_optimizer": True}}) == [
        "trainer.fused_optimizer: None -> True"]


def test_encoder_phases_skip_the_last_checkpoint_and_the_classifier_is_written_once(
        tiny_model_dir: Path, toy_data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from transformers import Trainer

    from phasefit.models.classifier import PhaseFitClassifier

    saved_steps: list[tuple[str, int]] = []
    original_save = Trainer._save_checkpoint

    def record_save(self, model, trial):  # noqa: ANN001, ANN202
        saved_steps.append((Path(self.args.output_dir).name, self.state.global_step))
        return original_save(self, model, trial)

    classifier_saves: list[Path] = []
    original_classifier_save = PhaseFitClassifier.save

    def record_classifier_save(self, folder, *args, **kwargs):  # noqa: ANN001, ANN202
        classifier_saves.append(Path(folder))
        return original_classifier_save(self, folder, *args, **kwargs)

    monkeypatch.setattr(Trainer, "_save_checkpoint", record_save)
    monkeypatch.setattr(PhaseFitClassifier, "save", record_classifier_save)
    sets = [*tiny_overrides(tiny_model_dir), "dae.epochs=2", "cl.epochs=2", "ft.epochs=2", "dae.batch_size=16",
            "cl.batch_size=16", "cl.max_pairs=32", "plots=false"]
    out = tmp_path / "run"
    assert main(["train", "--data", str(toy_data_dir), "--recipe", "3phase", "--output", str(out),
                 *[arg for item in sets for arg in ("--set", item)]]) == 0
    by_phase: dict[str, list[int]] = {}
    for phase, step in saved_steps:
        by_phase.setdefault(phase, []).append(step)
    # 48 texts / 16 = 3 steps an epoch (DAE), 32 pairs / 16 = 2 (CL): only the first epoch's checkpoint
    assert by_phase["dae"] == [3] and by_phase["cl"] == [2]
    assert len(by_phase["ft"]) == 2  # FT keeps one per epoch: early stopping restores the best from them
    assert classifier_saves == [out / "model"]


@pytest.mark.parametrize("grouped", [True, False])
def test_ft_group_by_length_reaches_the_trainer(grouped: bool, tiny_model_dir: Path, toy_data_dir: Path,
                                                tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from phasefit.phases import ft

    seen: list[str] = []
    original = ft.build_training_arguments

    def capture(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        result = original(*args, **kwargs)
        seen.append(result.train_sampling_strategy)
        return result

    monkeypatch.setattr(ft, "build_training_arguments", capture)
    sets = [*tiny_overrides(tiny_model_dir), "ft.max_steps=1", f"ft.group_by_length={str(grouped).lower()}"]
    assert main(["train", "--data", str(toy_data_dir), "--output", str(tmp_path / "run"),
                 *[arg for item in sets for arg in ("--set", item)]]) == 0
    assert seen == ["group_by_length" if grouped else "random"]
