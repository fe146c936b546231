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


# Issue 31, item 1: a search space file cannot switch on code execution or name a folder to write; best-config.yaml
# does not carry such keys onward. -----------------------------------------------------------------------------------

COMMAND_LINE_ONLY_SPACES = {
    "model.trust_remote_code": ({"model.trust_remote_code": [True]}, "--trust-remote-code"),
    "model.allow_pickle": ({"space": {"model.allow_pickle": [False, True]}}, "--set model.allow_pickle=true"),
    "phase_cache": ({"phase_cache": ["/tmp/shared-cache"]}, "--set phase_cache=DIR"),
    "nested": ({"model": [{"name": "x", "trust_remote_code": True}]}, "--trust-remote-code"),
}


@pytest.fixture
def nothing_loads_or_trains(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Records any attempt to load an encoder or train a run (each would be the first step of running remote code)."""
    from phasefit import pipeline
    from phasefit.models import encoder

    calls: list[str] = []
    monkeypatch.setattr(pipeline, "train", lambda *args, **kwargs: calls.append("train"))
    monkeypatch.setattr(encoder, "load_encoder", lambda *args, **kwargs: calls.append("load_encoder"))
    return calls


@pytest.mark.parametrize("case", list(COMMAND_LINE_ONLY_SPACES))
def test_a_space_file_cannot_set_a_command_line_only_key(case: str, tmp_path: Path,
                                                         nothing_loads_or_trains: list[str]) -> None:
    import yaml

    space, flag = COMMAND_LINE_ONLY_SPACES[case]
    key = "model.trust_remote_code" if case == "nested" else case
    path = tmp_path / "space.yaml"
    path.write_text(yaml.safe_dump(space))
    out = tmp_path / "out"
    with pytest.raises(ConfigError, match="only the command line may set it") as err:
        run_search(recipe="ft", config_file=None, settings={"data.path": str(tmp_path)}, trials=1, output=out,
                   space_file=path)
    assert f"search space {path} sets {key}" in str(err.value) and flag in str(err.value)
    assert nothing_loads_or_trains == [] and not out.exists()  # refused before anything loads, trains or is written


def test_search_cli_refuses_a_space_file_that_trusts_remote_code(tmp_path: Path, capsys: pytest.CaptureFixture,
                                                                 nothing_loads_or_trains: list[str]) -> None:
    from phasefit.cli import main

    path = tmp_path / "space.yaml"
    path.write_text("ft.lr: [0.0001]\nmodel.trust_remote_code: [true, false]\n")
    assert main(["search", "--recipe", "ft", "--trials", "1", "--output", str(tmp_path / "out"),
                 "--space", str(path)]) == 2
    err = capsys.readouterr().err
    assert f"search space {path} sets model.trust_remote_code" in err and "--trust-remote-code" in err
    assert nothing_loads_or_trains == [] and not (tmp_path / "out").exists()


def test_a_space_may_leave_the_command_line_keys_off(tmp_path: Path) -> None:
    from phasefit.experiments.search import read_space

    path = tmp_path / "space.yaml"
    path.write_text("model.trust_remote_code: [false]\nphase_cache: [null]\nft.lr: [0.0001]\n")
    assert read_space(path) == {"model.trust_remote_code": [False], "phase_cache": [None], "ft.lr": [0.0001]}


def test_best_config_leaves_out_the_command_line_only_keys(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Set from the command line (here: the Python call), they reach every trial, but best-config.yaml, a file for
    `phasefit train --config` that users hand on, does not carry them onward. (No training: a stand-in scores.)"""
    from types import SimpleNamespace

    import yaml

    from phasefit import pipeline
    from phasefit.recipes import build_config

    seen = []

    def scored(config, output, **kwargs):
        seen.append((config.model.trust_remote_code, config.model.allow_pickle, config.phase_cache))
        return SimpleNamespace(metrics={"validation": {"macro_f1": 0.5}})

    monkeypatch.setattr(pipeline, "train", scored)
    space = tmp_path / "space.yaml"
    space.write_text("ft.lr: [0.0001]\n")
    cache = str(tmp_path / "cache")
    result = run_search(recipe="ft", config_file=None, trials=1, output=tmp_path / "out", space_file=space,
                        settings={"data.path": str(tmp_path), "model.trust_remote_code": True,
                                  "model.allow_pickle": True, "phase_cache": cache})
    assert seen == [(True, True, cache)]  # the trials run as the command line asked
    saved = yaml.safe_load(Path(result["best_config"]).read_text())
    assert saved["model"]["trust_remote_code"] is False and saved["model"]["allow_pickle"] is False
    assert saved["phase_cache"] is None and saved["ft"]["lr"] == 0.0001
    assert result["left_out_of_best_config"] == ["model.trust_remote_code", "model.allow_pickle", "phase_cache"]
    assert build_config(None, result["best_config"]).ft.lr == 0.0001  # `phasefit train --config` accepts it
