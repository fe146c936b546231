"""``phasefit search``: Optuna search over a phase-aware space, objective on validation only.

The built-in space is paper 000's Table 5 narrowed to what a CPU can afford; only the keys of phases the recipe
actually runs are searched. Each trial is a normal run directory (``OUT/trial-<n>``) whose test split is never
scored. Intermediate validation scores of the FT phase feed Optuna's median pruner, so a clearly bad trial stops
early. With ``--storage sqlite:///study.db`` or ``postgresql://user:pw@host/db`` (any SQLAlchemy RDB URL whose
driver is installed; ``pip install 'phasefit[postgres]'`` for PostgreSQL) several workers, on one or several
machines, share one study.

The budget. ``trials`` counts *fresh* trials: trials the sampler proposes (or the user enqueued), in the order the
storage numbers them. A worker asks the study for a trial; a fresh trial whose rank among the fresh trials is
``trials`` or more is closed as FAIL with the user attribute ``over_budget``, never trained, and the worker stops.
Without crashed workers the fresh trials are exactly numbers 0..trials-1, each run once.

Crashed workers. Every trial that trains records a heartbeat (``heartbeat`` seconds, Optuna's heartbeat thread); a
RUNNING trial whose heartbeat is older than ``grace_period`` belonged to a worker that was killed (OOM, preemption,
a lost node). Before each ask a worker fails such stale trials (state FAIL) and re-queues each one as a new WAITING
trial with the same parameters (Optuna's retry callback, up to ``max_retry`` times per configuration). A retry gets
the next trial number but takes no budget: it runs in the budget slot of the trial it re-runs (Optuna's
``retried_trial_number``), and ask hands out waiting retries before proposing fresh trials. So a study ends with
``trials`` configurations run, whatever the number of kills; the killed trial's number stays FAIL. A stale trial is
only noticed by a worker that asks after the grace period: when no worker is left, run ``phasefit search`` once more
with the same arguments (it re-runs the retries, then stops). A trial that raises (a non-finite loss) is a FAIL of
its configuration, not of its worker, and is not retried.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from phasefit.config import ConfigError, RunConfig, save_config, validate_config
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
    """The search space of ``--space FILE`` (``key: [values]``, optionally under ``space:``), or the built-in one.

    A space file is a file users hand each other: like a config file, it may not set a key only the command line
    may (``model.trust_remote_code``, ``model.allow_pickle``, ``phase_cache``, in
    :data:`~phasefit.recipes.COMMAND_LINE_ONLY`) in any of its values; that is checked here, before the search
    opens its output folder.
    """
    if path is None:
        return DEFAULT_SPACE
    from phasefit.config import read_yaml
    from phasefit.recipes import check_file_settings

    raw = read_yaml(path)
    space = raw.get("space", raw)
    if not isinstance(space, dict):
        raise ConfigError(f"search space {path}: 'space' must be a mapping of key -> list of values")
    bad = [key for key, values in space.items() if not isinstance(values, list) or not values]
    if bad:
        raise ConfigError(f"search space {path}: {bad} must map to non-empty lists of values")
    for key, values in space.items():
        for value in values:  # a value may be a section too: {model: [{trust_remote_code: true}]}
            check_file_settings({key: value}, f"search space {path}")
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
    heartbeat: int | None = 60,
    grace_period: int | None = None,
    max_retry: int = 2,
) -> dict[str, Any]:
    """Run trials of one study until its budget of ``trials`` fresh trials is handed out (module docstring).

    ``heartbeat`` (seconds; None or 0 turns crash recovery off) and ``grace_period`` (seconds without a heartbeat
    before a RUNNING trial counts as crashed; default 2 x heartbeat) must be the same in every worker of a study;
    ``max_retry`` re-runs of one configuration at most after crashes.
    """
    import contextlib
    import warnings

    import optuna
    from optuna.storages._heartbeat import get_heartbeat_thread
    from optuna.trial import TrialState

    from phasefit.pipeline import train

    if trials < 1:
        raise ConfigError(f"--trials must be at least 1, got {trials}")
    if (heartbeat or 0) < 0 or max_retry < 0:
        raise ConfigError(f"--heartbeat ({heartbeat}) and --max-retry ({max_retry}) must be 0 or more")
    heartbeat = heartbeat or None
    if heartbeat is not None and grace_period is not None and grace_period <= heartbeat:
        raise ConfigError(f"--grace-period {grace_period} must exceed --heartbeat {heartbeat} (seconds), or live "
                          "trials would be failed between two heartbeats")

    base = build_config(recipe, config_file, settings=settings)
    space = phase_aware_space(base, read_space(space_file))
    output = Path(output)
    output.mkdir(parents=True, exist_ok=True)
    # A private study is reproducible from the seed; workers sharing a storage draw differently, or they would all
    # propose the same first trials.
    sampler_seed = seed if storage is None else None
    storage = storage or f"sqlite:///{(output / 'study.db').resolve()}"
    _claim_output(output, storage, study_name, overwrite=overwrite)
    study = _open_study(storage, study_name, sampler_seed, heartbeat=heartbeat, grace_period=grace_period,
                        max_retry=max_retry)
    while True:
        _fail_stale_trials(study)
        with warnings.catch_warnings():  # ask/tell with a heartbeat is fine: the thread below records it
            warnings.filterwarnings("ignore", message="Heartbeat of storage is supposed to be used")
            trial = study.ask()
        slot, retry_of = _budget_slot(study.get_trials(deepcopy=False), trial.number)
        if slot >= trials:
            trial.set_user_attr("over_budget", True)
            study.tell(trial, state=TrialState.FAIL)
            break
        # The heartbeat runs while the trial trains (ask/tell gets none by itself, unlike study.optimize).
        with get_heartbeat_thread(trial._trial_id, study._storage):
            params = {key: trial.suggest_categorical(key, values) for key, values in space.items()}
            config = build_config(base.recipe, config_file,
                                  settings=merge_settings(settings, params, {"evaluate_test": False, "plots": False}))
            try:
                result = train(config, output / f"trial-{trial.number}", overwrite=True,
                               callbacks=[_PruningCallback(trial, metric)])
                state, value = "complete", result.metrics["validation"][metric]
            except optuna.TrialPruned:
                state, value = "pruned", None
            except optuna.exceptions.UpdateFinishedTrialError:
                # Another worker took this trial for a crashed one (no heartbeat within the grace period: a stalled
                # worker or database) and failed it; its re-run is queued, so this run's scores are dropped.
                state, value = "lost", None
            except Exception as err:  # noqa: BLE001 - e.g. a non-finite loss at a high learning rate: the trial
                # failed, the search goes on; the study must say FAIL (a trial left RUNNING counts as crashed).
                with contextlib.suppress(optuna.exceptions.UpdateFinishedTrialError):
                    trial.set_user_attr("error", f"{type(err).__name__}: {err}"[:2000])
                state, value = "failed", None
        # skip_if_finished: a trial failed meanwhile as crashed (above) keeps that state.
        if state == "complete":
            told = study.tell(trial, value, skip_if_finished=True)
        else:
            told = study.tell(trial, state=TrialState.PRUNED if state == "pruned" else TrialState.FAIL,
                              skip_if_finished=True)
        if told.state == TrialState.FAIL and state in {"complete", "pruned"}:
            state, value = "lost", None
        _report(on_trial, trial.number, params, state, value, retry_of)
    finished = study.get_trials(states=(TrialState.COMPLETE,))
    if not finished:
        raise ConfigError("no search trial completed; look at the trial run directories for the cause")
    best = study.best_trial
    best_config, left_out = _shareable(build_config(base.recipe, config_file,
                                                    settings=merge_settings(settings, best.params)))
    save_config(best_config, output / "best-config.yaml")
    if left_out:
        logger.warning("best-config.yaml leaves out %s (only the command line may set them): pass them again to "
                       "`phasefit train --config %s`", ", ".join(left_out), output / "best-config.yaml")
    return {"best_trial": best.number, "best_value": best.value, "best_params": best.params,
            "trials": len(study.get_trials(states=(TrialState.COMPLETE, TrialState.PRUNED))),
            "best_config": str(output / "best-config.yaml"), "storage": storage,
            "left_out_of_best_config": left_out}


def _shareable(config: RunConfig) -> tuple[RunConfig, list[str]]:
    """``config`` with every command-line-only key (:data:`~phasefit.recipes.COMMAND_LINE_ONLY`) back at its default,
    and the keys that were set.

    best-config.yaml is a file for ``phasefit train --config``, and one users hand on: a search run with
    ``--set model.trust_remote_code=true`` or ``--set phase_cache=DIR`` must not write them into it, or the next
    user's run would switch on code execution (or write into DIR) from a file. (``train --config`` refuses such a file
    anyway; leaving them out keeps best-config.yaml usable.)"""
    from phasefit.recipes import COMMAND_LINE_ONLY

    defaults = type(config)().to_dict()
    values = config.to_dict()
    left_out = []
    for key in COMMAND_LINE_ONLY:
        section, _, name = key.rpartition(".")
        node, default = (values[section], defaults[section]) if section else (values, defaults)
        if node[name] != default[name]:
            node[name] = default[name]
            left_out.append(key)
    return (validate_config(values) if left_out else config), left_out


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


def _budget_slot(frozen: list[Any], number: int) -> tuple[int, int | None]:
    """The budget slot of trial ``number`` and the number of the trial it retries (None for a fresh trial).

    A fresh trial's slot is how many fresh trials the storage numbered before it; a retry (Optuna's retry callback
    stores the first failed trial's number in the system attribute ``failed_trial``) takes that trial's slot.
    """
    by_number = {t.number: t for t in frozen}
    retry_of = by_number[number].system_attrs.get("failed_trial")
    origin = number if retry_of is None else retry_of
    slot = sum(1 for t in frozen if t.number < origin and "failed_trial" not in t.system_attrs)
    return slot, retry_of


def _fail_stale_trials(study: Any) -> None:
    """Fail the RUNNING trials of crashed workers (heartbeat older than the grace period) and queue their retries."""
    import warnings

    import optuna

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        optuna.storages.fail_stale_trials(study)


def _open_study(url: str, name: str, seed: int | None, *, heartbeat: int | None = None,
                grace_period: int | None = None, max_retry: int = 0) -> Any:
    """Create or join the study. Workers starting together on a fresh database race to create its tables (one
    gets "table already exists"); the loser retries and joins. SQLite waits up to a minute on a locked file; a
    server connection is checked before use (a worker may leave it idle for a long trial)."""
    import time
    import warnings

    import optuna
    from sqlalchemy.exc import SQLAlchemyError

    kwargs: dict[str, Any] = {"connect_args": {"timeout": 60}} if url.startswith("sqlite") else {"pool_pre_ping": True}
    recovery: dict[str, Any] = {}
    if heartbeat is not None:
        # Optuna 4.9 renamed the callback and its RDBStorage argument; the old names still work, deprecated.
        retry = getattr(optuna.storages, "RetryHeartbeatStaleTrialCallback", None)
        argument = "heartbeat_stale_trial_callback" if retry is not None else "failed_trial_callback"
        retry = retry or optuna.storages.RetryFailedTrialCallback
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            recovery = {"heartbeat_interval": heartbeat, "grace_period": grace_period or 2 * heartbeat,
                        argument: retry(max_retry=max_retry)}
    for attempt in range(5):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                storage = optuna.storages.RDBStorage(_engine_url(url), engine_kwargs=kwargs, **recovery)
            return optuna.create_study(
                study_name=name, storage=storage, load_if_exists=True, direction="maximize",
                sampler=optuna.samplers.TPESampler(seed=seed),
                pruner=optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=2),
            )
        except ImportError as err:  # SQLAlchemy imports the URL's driver when it builds the engine
            extra = " (pip install 'phasefit[postgres]')" if url.startswith("postgres") else ""
            raise ConfigError(f"--storage {_redact(url)}: the database driver is not installed "
                              f"({err.__cause__ or err}). Install it{extra}, or use a sqlite:/// URL") from err
        except SQLAlchemyError:
            if attempt == 4:
                raise
            time.sleep(0.5 * (attempt + 1))
    raise AssertionError("unreachable")


def _engine_url(url: str) -> str:
    """A plain ``postgresql://`` URL driven by psycopg 3 (what ``phasefit[postgres]`` installs) when it is installed:
    SQLAlchemy 2.1 picks it for that URL by itself, 2.0 would pick psycopg2."""
    import importlib

    scheme, _, rest = url.partition("://")
    if scheme not in {"postgresql", "postgres"}:
        return url
    try:
        importlib.import_module("psycopg")
    except ImportError:
        return url
    return f"postgresql+psycopg://{rest}"


def _report(on_trial: Callable[[dict[str, Any]], None] | None, number: int, params: dict[str, Any], state: str,
            value: float | None, retry_of: int | None = None) -> None:
    if on_trial is not None:
        on_trial({"number": number, "params": params, "state": state, "value": value, "retry_of": retry_of})


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
