"""``phasefit search``: Optuna search over a phase-aware space, objective on validation only.

The built-in space is paper 000's Table 5 narrowed to what a CPU can afford; only the keys of phases the recipe
actually runs are searched. Each trial is a normal run directory (``OUT/trial-<n>``) whose test split is never
scored. Intermediate validation scores of the FT phase feed Optuna's median pruner, so a clearly bad trial stops
early. With ``--storage sqlite:///study.db`` (or any SQLAlchemy RDB URL) several workers, on one or several
machines, share one study: trial numbers are handed out by the storage, and a worker stops once trial number
``trials`` would be reached, so the study ends with exactly ``trials`` trials run (numbers 0..trials-1); a trial
number drawn past the budget in a race is closed as FAIL with the user attribute ``over_budget`` and never trained.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from phasefit.config import ConfigError, RunConfig, save_config
from phasefit.recipes import build_config, merge_settings

logger = logging.getLogger(__name__)

# paper 000 Table 5, narrowed for 2 CPU cores (the paper's 12-epoch DAE/CL and batch 128 are GPU settings)
DEFAULT_SPACE: dict[str, list[Any]] = {
    "dae.lr": [1e-4, 5e-5, 1e-5],
    "dae.epochs": [1, 2, 4],
    "dae.batch_size": [8, 16, 32],
    "dae.noise_ratio": [0.3, 0.4, 0.5, 0.6, 0.7],
    "cl.lr": [1e-4, 5e-5, 1e-5],
    "cl.epochs": [1, 2, 3],
    "cl.batch_size": [8, 16, 32],
    "joint.lr": [1e-4, 5e-5, 1e-5],
    "joint.epochs": [1, 2, 4],
    "ft.lr": [1e-4, 5e-5, 2e-5, 1e-5],
    "ft.batch_size": [8, 16, 32],
    "ft.freeze_encoder": [False, True],
    "data.max_length": ["data", "sample"],
}


def phase_aware_space(config: RunConfig, space: dict[str, list[Any]]) -> dict[str, list[Any]]:
    """Keep the keys of sections the recipe uses: phase sections only when the phase runs."""
    return {key: values for key, values in space.items()
            if key.split(".")[0] in {"data", "model", *config.phases}}


def read_space(path: str | Path | None) -> dict[str, list[Any]]:
    if path is None:
        return DEFAULT_SPACE
    from phasefit.config import read_yaml

    raw = read_yaml(path)
    space = raw.get("space", raw)
    bad = [key for key, values in space.items() if not isinstance(values, list) or not values]
    if bad:
        raise ConfigError(f"search space {path}: {bad} must map to non-empty lists of values")
    return space


def run_search(
    *,
    recipe: str | None,
    config_file: str | Path | None,
    settings: dict[str, Any] | None,
    trials: int,
    output: Path,
    storage: str | None = None,
    study_name: str = "phasefit",
    space_file: str | Path | None = None,
    metric: str = "macro_f1",
    seed: int = 0,
    on_trial: Callable[[dict[str, Any]], None] | None = None,
    overwrite: bool = False,
) -> dict[str, Any]:
    import optuna
    from optuna.trial import TrialState

    from phasefit.pipeline import train

    base = build_config(recipe, config_file, settings=settings)
    space = phase_aware_space(base, read_space(space_file))
    output = Path(output)
    output.mkdir(parents=True, exist_ok=True)
    # A private study is reproducible from the seed; workers sharing a storage draw differently, or they would all
    # propose the same first trials.
    sampler_seed = seed if storage is None else None
    storage = storage or f"sqlite:///{(output / 'study.db').resolve()}"
    _claim_output(output, storage, study_name, overwrite=overwrite)
    study = _open_study(storage, study_name, sampler_seed)
    while True:
        trial = study.ask()
        if trial.number >= trials:
            trial.set_user_attr("over_budget", True)
            study.tell(trial, state=TrialState.FAIL)
            break
        params = {key: trial.suggest_categorical(key, values) for key, values in space.items()}
        config = build_config(base.recipe, config_file,
                              settings=merge_settings(settings, params, {"evaluate_test": False, "plots": False}))
        try:
            result = train(config, output / f"trial-{trial.number}", overwrite=True,
                           callbacks=[_PruningCallback(trial, metric)])
        except optuna.TrialPruned:
            study.tell(trial, state=TrialState.PRUNED)
            _report(on_trial, trial.number, params, "pruned", None)
            continue
        except Exception as err:  # noqa: BLE001 - e.g. a non-finite loss at a high learning rate: the trial failed,
            # the search goes on; the study must say FAIL (a trial left RUNNING is never retried or counted).
            trial.set_user_attr("error", f"{type(err).__name__}: {err}"[:2000])
            study.tell(trial, state=TrialState.FAIL)
            _report(on_trial, trial.number, params, "failed", None)
            continue
        value = result.metrics["validation"][metric]
        study.tell(trial, value)
        _report(on_trial, trial.number, params, "complete", value)
    finished = study.get_trials(states=(TrialState.COMPLETE,))
    if not finished:
        raise ConfigError("no search trial completed; look at the trial run directories for the cause")
    best = study.best_trial
    best_config = build_config(base.recipe, config_file, settings=merge_settings(settings, best.params))
    save_config(best_config, output / "best-config.yaml")
    return {"best_trial": best.number, "best_value": best.value, "best_params": best.params,
            "trials": len(study.get_trials(states=(TrialState.COMPLETE, TrialState.PRUNED))),
            "best_config": str(output / "best-config.yaml"), "storage": storage}


def _claim_output(output: Path, storage: str, study_name: str, *, overwrite: bool) -> None:
    """One --output holds the trial folders of one study: another study (a new --study-name or --storage) would
    number its trials from 0 again and replace the earlier study's trial-N folders, so it needs --overwrite."""
    from phasefit.io import atomic_write_json

    record = output / "search.json"
    wanted = {"storage": _redact(storage), "study_name": study_name}
    if record.is_file():
        held = json.loads(record.read_text(encoding="utf-8"))
        if held != wanted and not overwrite:
            raise ConfigError(
                f"{output} holds the trials of study {held['study_name']!r} ({held['storage']}); study "
                f"{study_name!r} ({wanted['storage']}) would replace its trial-N folders. Choose another --output, "
                "or pass --overwrite to replace them"
            )
    atomic_write_json(record, wanted)


def _redact(url: str) -> str:
    """A storage URL without its password (it is written to search.json)."""
    import re

    return re.sub(r"(//[^:/@]+:)[^@]*@", r"\1***@", url)


def _open_study(url: str, name: str, seed: int | None) -> Any:
    """Create or join the study. Workers starting together on a fresh database race to create its tables (one
    gets "table already exists"); the loser retries and joins. SQLite waits up to a minute on a locked file."""
    import time

    import optuna
    from sqlalchemy.exc import SQLAlchemyError

    kwargs = {"connect_args": {"timeout": 60}} if url.startswith("sqlite") else {}
    for attempt in range(5):
        try:
            storage = optuna.storages.RDBStorage(url, engine_kwargs=kwargs)
            return optuna.create_study(
                study_name=name, storage=storage, load_if_exists=True, direction="maximize",
                sampler=optuna.samplers.TPESampler(seed=seed),
                pruner=optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=2),
            )
        except SQLAlchemyError:
            if attempt == 4:
                raise
            time.sleep(0.5 * (attempt + 1))
    raise AssertionError("unreachable")


def _report(on_trial: Callable[[dict[str, Any]], None] | None, number: int, params: dict[str, Any], state: str,
            value: float | None) -> None:
    if on_trial is not None:
        on_trial({"number": number, "params": params, "state": state, "value": value})


def _pruning_callback_class() -> type:
    from transformers import TrainerCallback

    class PruningCallback(TrainerCallback):
        """Reports each FT validation score to Optuna and stops a trial the median pruner rejects."""

        def __init__(self, trial: Any, metric: str):
            self.trial = trial
            self.metric = metric

        def on_evaluate(self, args: Any, state: Any, control: Any, metrics: dict[str, float] | None = None,
                        **kwargs: Any) -> None:
            import optuna

            if metrics and f"eval_{self.metric}" in metrics:
                self.trial.report(metrics[f"eval_{self.metric}"], step=int(round(state.epoch or 0)))
                if self.trial.should_prune():
                    raise optuna.TrialPruned(f"pruned at epoch {state.epoch}")

    return PruningCallback


def _PruningCallback(trial: Any, metric: str) -> Any:  # noqa: N802 - a factory named like the class it returns
    return _pruning_callback_class()(trial, metric)
