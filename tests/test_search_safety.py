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


def test_a_retry_takes_the_budget_slot_of_the_trial_it_reruns() -> None:
    from types import SimpleNamespace

    from phasefit.experiments.search import _budget_slot

    # trial 1 was killed; its retry was queued as trial 3 (after fresh trial 2), then fresh trial 4 was proposed
    frozen = [SimpleNamespace(number=n, system_attrs=attrs) for n, attrs in
              enumerate([{}, {}, {}, {"failed_trial": 1, "retry_history": [1]}, {}])]
    assert [_budget_slot(frozen, n) for n in range(5)] == [(0, None), (1, None), (2, None), (1, 1), (3, None)]


def test_a_grace_period_within_one_heartbeat_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="--grace-period 5 must exceed --heartbeat 10"):
        run_search(recipe="ft", config_file=None, settings=None, trials=2, output=tmp_path, heartbeat=10,
                   grace_period=5)


def test_a_trial_failed_as_crashed_while_it_trains_does_not_stop_its_worker(
        tiny_model_dir: Path, toy_data_dir_module: Path, tmp_path: Path, monkeypatch) -> None:
    """A stalled worker's trial can be failed by another worker (no heartbeat within the grace period) while it
    still trains: its scores are dropped, the trial stays FAIL (its re-run is queued elsewhere), the search goes on."""
    import optuna
    from optuna.trial import TrialState

    from phasefit import pipeline

    real = pipeline.train

    def failed_meanwhile(config, output, callbacks, **kwargs):
        if output.name == "trial-0":
            trial = callbacks[0].trial
            trial.study._storage.set_trial_state_values(trial._trial_id, state=TrialState.FAIL)
        return real(config, output, callbacks=callbacks, **kwargs)

    monkeypatch.setattr(pipeline, "train", failed_meanwhile)
    seen = []
    result = _search(tiny_model_dir, toy_data_dir_module, tmp_path / "s", 2, on_trial=seen.append)
    study = optuna.load_study(study_name="phasefit", storage=result["storage"])
    assert [t.state for t in study.trials[:2]] == [TrialState.FAIL, TrialState.COMPLETE]
    assert [t["state"] for t in seen] == ["lost", "complete"] and result["best_trial"] == 1
