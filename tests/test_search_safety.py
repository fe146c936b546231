"""`phasefit search` (issue 10, item 11): a trial that raises ends FAILED in the study, and another study never
replaces the trial folders an earlier one left in the same --output without --overwrite."""

from __future__ import annotations

from pathlib import Path

import pytest

from phasefit.config import ConfigError
from phasefit.experiments.search import _redact, run_search
from phasefit.recipes import settings_from_overrides
from tests.conftest import tiny_overrides


def _search(model: Path, data: Path, out: Path, trials: int, **kwargs):
    return run_search(recipe="ft", config_file=None, trials=trials, output=out,
                      settings=settings_from_overrides([*tiny_overrides(model), f"data.path={data}",
                                                        "ft.max_steps=2", "ft.epochs=2"]),
                      **kwargs)


def test_a_trial_that_raises_is_failed_and_the_search_goes_on(tiny_model_dir: Path, toy_data_dir_module: Path,
                                                              tmp_path: Path, monkeypatch) -> None:
    import optuna

    from phasefit import pipeline
    from phasefit.training.trainer import NonFiniteLossError

    real = pipeline.train

    def flaky(config, output, **kwargs):
        if output.name == "trial-1":
            raise NonFiniteLossError("phase ft: the training loss became nan at step 2")
        return real(config, output, **kwargs)

    monkeypatch.setattr(pipeline, "train", flaky)
    seen = []
    result = _search(tiny_model_dir, toy_data_dir_module, tmp_path / "s", 3, on_trial=seen.append)
    study = optuna.load_study(study_name="phasefit", storage=result["storage"])
    states = {t.number: t.state for t in study.trials if t.number < 3}
    assert states[1] == optuna.trial.TrialState.FAIL
    assert "nan" in study.trials[1].user_attrs["error"]
    assert not [t for t in study.trials if t.state == optuna.trial.TrialState.RUNNING]
    assert [t["state"] for t in seen][1] == "failed" and result["trials"] == 2


def test_another_study_needs_overwrite_to_replace_trial_folders(tiny_model_dir: Path, toy_data_dir_module: Path,
                                                                tmp_path: Path) -> None:
    out = tmp_path / "s"
    _search(tiny_model_dir, toy_data_dir_module, out, 1)
    before = (out / "trial-0" / "config.yaml").read_text()
    with pytest.raises(ConfigError, match="--overwrite"):
        _search(tiny_model_dir, toy_data_dir_module, out, 1, study_name="second")
    assert (out / "trial-0" / "config.yaml").read_text() == before
    _search(tiny_model_dir, toy_data_dir_module, out, 1)  # the same study again joins it: no refusal
    _search(tiny_model_dir, toy_data_dir_module, out, 1, study_name="second", overwrite=True)


def test_storage_passwords_are_not_written() -> None:
    assert _redact("postgresql://me:secret@db:5432/optuna") == "postgresql://me:***@db:5432/optuna"
    assert _redact("sqlite:///x/study.db") == "sqlite:///x/study.db"
