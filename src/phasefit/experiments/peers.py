"""Peers: what a user would train instead of phasefit, run by their own libraries on phasefit's splits.

Every peer gets the same labelled pool, the run's train ∪ validation rows, and is scored on the same test rows as
phasefit's recipes; how it uses the pool is its own business, and each one says how:

* ``probe``: logistic regression on the frozen encoder's embeddings, fit on train, C chosen by validation macro-F1
  over :data:`C_GRID` (10^-3 .. 10^5 in half-decades; the ``probe.c_grid`` setting), scikit-learn. Its metrics
  record the chosen C and whether it sits at an edge of the grid (``probe_c_at_edge``).
* ``setfit``: SetFit 1.x's classic recipe (``num_iterations`` pairs a sentence, one epoch), trained on train only:
  the benchmark's published runs, kept as they are. Its settings are the ``setfit`` section (:data:`SETFIT_DEFAULTS`).
* ``setfit-default``: SetFit at its library defaults, trained on the whole pool, no validation use at all: its
  default sampling ("oversampling": as many positive as negative pairs, as many as the more numerous kind has, so
  every unique sentence pair is drawn; no ``num_iterations``), its default epochs, batch size and body learning
  rate, its default LogisticRegression head.
  Its pair count is quadratic in the pool (:func:`setfit_default_pairs`), so ``setfit_default.max_steps`` caps the
  body's steps on a CPU; the metrics record the default pairs an epoch, the pairs seen and their fraction.
* ``setfit-tuned``: SetFit's body trained on train only (the same settings and cap as ``setfit-default``, read from
  the same ``setfit_default`` section), a LogisticRegression head's C chosen on validation over :data:`C_GRID`
  (``setfit_tuned.c_grid``), then that head refit with the chosen C on the pool's embeddings from the trained body
  (train ∪ validation). Test rows are embedded only after the choice.
* ``fastfit``: FastFit (``fast-fit`` 1.2.1: batch contrastive learning of each text against its label's name, scored
  by token-level similarity) at its documented recipe (:data:`FASTFIT_RECIPE`), trained on the whole pool: its recipe
  trains a fixed number of epochs and selects nothing on validation (its README passes the test set as
  "validation", to report a score), so held-out labels would go unused. fast-fit needs transformers 4, so it runs in
  a venv of its own (``benchmarks/quality/setup_fastfit.sh``) through ``benchmarks/quality/fastfit_peer.py``, as a
  subprocess; ``fastfit.max_steps`` caps its steps on a CPU.

Where a peer trains on validation rows, its metrics say so (``validation_in_training``): their validation scores are
then scores on training rows. A peer's settings are its sections of a grid's settings (``--set
setfit_default.max_steps=300``; :data:`PEER_SECTIONS`), over its defaults.

A grid or study names a peer where it names a recipe (``phasefit study size --recipes ft 3phase setfit``): the
cell's config is resolved as for ``ft``, and only its data, model and seed matter, so the peer trains and is scored on
exactly the rows phasefit's recipes use (:func:`phasefit.run_data.load_run_data`). A peer's run directory holds
``config.yaml``, ``split.json``, ``fingerprint.json`` (its config hash covers the data, model and seed keys and the
peer's own settings), ``peer.json`` and ``metrics.json`` in the layout of a recipe's, so grids resume, refuse stale
cells, and report peers like recipes.

References: Tunstall et al., "Efficient Few-Shot Learning Without Prompts" (SetFit), 2022; Yehudai and Bandel,
"When LLMs are Unfit Use FastFit: Fast and Effective Text Classification with Many Classes", NAACL 2024.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from phasefit.run_directory import PEER_FILE

PEERS = ("probe", "setfit", "setfit-default", "setfit-tuned", "fastfit")
# The settings sections each peer reads, later over earlier: setfit-tuned shares setfit-default's body settings.
PEER_SECTIONS: dict[str, tuple[str, ...]] = {
    "probe": ("probe",),
    "setfit": ("setfit",),
    "setfit-default": ("setfit_default",),
    "setfit-tuned": ("setfit_default", "setfit_tuned"),
    "fastfit": ("fastfit",),
}
SECTIONS = tuple(dict.fromkeys(s for sections in PEER_SECTIONS.values() for s in sections))

# A logistic head's C, 10^-3 .. 10^5 in half-decades: the old probe grid (0.01 .. 100) chose its edge C = 100 in 10
# of 29 benchmark runs (embeddings of unit norm want a weak penalty).
C_GRID = [round(10 ** (k / 2), 10) for k in range(-6, 11)]
HEAD_MAX_ITER = 5000  # lbfgs needs many iterations to converge at C = 10^5

SETFIT_DEFAULTS = {"num_iterations": 20, "num_epochs": 1, "batch_size": 16}
# None: no cap, SetFit's full default pair count (quadratic in the pool; hours on a CPU for a few hundred rows).
SETFIT_DEFAULT_SETTINGS: dict[str, Any] = {"max_steps": None}
SETFIT_TUNED_SETTINGS: dict[str, Any] = {"max_steps": None, "c_grid": C_GRID}
# FastFit's documented recipe (its README's command and Python example), in its own argument names; fp16 is a GPU
# switch and stays off on a CPU. max_steps: None runs the recipe's 40 epochs, a number caps the steps.
FASTFIT_RECIPE: dict[str, Any] = {"num_train_epochs": 40, "per_device_train_batch_size": 32, "num_repeats": 4,
                                  "optim": "adafactor", "clf_loss_factor": 0.1, "learning_rate": 5e-5,
                                  "max_steps": None}
PEER_DEFAULTS: dict[str, dict[str, Any]] = {
    "probe": {"c_grid": C_GRID},
    "setfit": SETFIT_DEFAULTS,
    "setfit-default": SETFIT_DEFAULT_SETTINGS,
    "setfit-tuned": SETFIT_TUNED_SETTINGS,
    "fastfit": FASTFIT_RECIPE,
}

# Where the FastFit venv's python and its driver script are: a source checkout's, unless these variables say.
_CHECKOUT = Path(__file__).resolve().parents[3]
FASTFIT_PYTHON_ENV = "PHASEFIT_FASTFIT_PYTHON"
FASTFIT_SCRIPT_ENV = "PHASEFIT_FASTFIT_SCRIPT"


def is_peer(name: str) -> bool:
    return name in PEERS


def split_peer_settings(settings: dict[str, Any]) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """Nested settings without the peers' sections, and those sections ({"setfit": {...}, "fastfit": {...}})."""
    config_settings = {key: value for key, value in settings.items() if key not in SECTIONS}
    return config_settings, {key: dict(settings[key]) for key in SECTIONS if isinstance(settings.get(key), dict)}


def peer_settings(name: str, sections: dict[str, dict[str, Any]] | None = None) -> dict[str, Any]:
    """The peer's effective settings: its sections (:data:`PEER_SECTIONS`) over its defaults; unknown keys are an
    error."""
    if name not in PEERS:
        raise ValueError(f"unknown peer {name!r}; peers: {', '.join(PEERS)}")
    defaults = PEER_DEFAULTS[name]
    given: dict[str, Any] = {}
    for section in PEER_SECTIONS[name]:
        section_settings = dict((sections or {}).get(section, {}))
        unknown = sorted(set(section_settings) - set(defaults))
        if unknown:
            from phasefit.config import ConfigError

            known = ", ".join(f"{section}.{key}" for key in defaults) or "none"
            raise ConfigError(f"unknown {name} setting(s) {', '.join(f'{section}.{k}' for k in unknown)}; "
                              f"known: {known}")
        given.update(section_settings)
    settings = {**defaults, **given}
    _check_settings(name, settings)
    return settings


def _check_settings(name: str, settings: dict[str, Any]) -> None:
    from phasefit.config import ConfigError

    cap = settings.get("max_steps")
    if cap is not None and (isinstance(cap, bool) or not isinstance(cap, int) or cap < 1):
        raise ConfigError(f"{name}: max_steps must be a positive whole number of steps or null (no cap), got {cap!r}")
    grid = settings.get("c_grid")
    if grid is not None and (not isinstance(grid, (list, tuple)) or not grid
                             or not all(isinstance(c, (int, float)) and c > 0 for c in grid)):
        raise ConfigError(f"{name}: c_grid must be a non-empty list of positive numbers, got {grid!r}")


def check_peer_data(name: str, splits: Any) -> None:
    """The peers classify single texts: a text-pair data set is an error, not a silently dropped second text."""
    if splits.train.text_pairs is not None:
        from phasefit.config import ConfigError

        raise ConfigError(f"the {name} peer classifies single texts, but this data set has text pairs "
                          "(data.text_pair_column); leave the peer out for text-pair tasks")


def require_peer_library(name: str) -> None:
    """Fail before a grid trains anything when a peer's library (or FastFit's venv) is missing."""
    import importlib.util

    from phasefit.config import ConfigError

    if name.startswith("setfit") and importlib.util.find_spec("setfit") is None:
        raise ConfigError(f"the {name} peer needs the setfit library: pip install -e '.[bench]' (after torch)")
    if name == "fastfit":
        fastfit_runner()


def fastfit_runner() -> tuple[Path, Path]:
    """The FastFit venv's python and the driver script, or an error saying how to make them."""
    from phasefit.config import ConfigError

    python = Path(os.environ.get(FASTFIT_PYTHON_ENV) or _CHECKOUT / ".venv-fastfit" / "bin" / "python")
    script = Path(os.environ.get(FASTFIT_SCRIPT_ENV) or _CHECKOUT / "benchmarks" / "quality" / "fastfit_peer.py")
    if not script.is_file():
        raise ConfigError(f"the fastfit peer's driver {script} is missing: run it from a phasefit checkout, or set "
                          f"{FASTFIT_SCRIPT_ENV} to benchmarks/quality/fastfit_peer.py")
    if not python.is_file():
        raise ConfigError(f"the fastfit peer runs in a venv of its own, and {python} is missing: make it with "
                          f"`bash benchmarks/quality/setup_fastfit.sh`, or set {FASTFIT_PYTHON_ENV} to its python")
    return python, script


def peer_config_hash(name: str, config: Any, settings: dict[str, Any]) -> str:
    """What a peer's fingerprint records as its config: the keys that choose its rows and model, and its settings."""
    from phasefit.fingerprint import effective_config, sha256

    keys = {key: value for key, value in effective_config(config).items()  # flattened: "data.path", ...
            if key in ("seed", "evaluate_test") or key.split(".")[0] in ("data", "model")}
    return sha256({"peer": name, "settings": settings, "config": keys})


def train_peer(name: str, config: Any, run_dir: Path, settings: dict[str, Any], *,
               body_dir: Path | None = None) -> dict[str, Any]:
    """Train and score peer ``name`` on the splits of ``config`` into ``run_dir`` (replaced if there); returns its
    metrics. ``body_dir``: where the ``setfit`` peer's trained body is kept (``run_dir/body`` when None)."""
    from phasefit.config import save_config
    from phasefit.fingerprint import FINGERPRINT_FILE, run_fingerprint
    from phasefit.io import atomic_write_json
    from phasefit.pipeline import split_manifest
    from phasefit.run_data import load_run_data, run_unlabelled
    from phasefit.run_directory import discard_replaced, prepare_output_dir, restore_replaced

    splits = load_run_data(config)
    check_peer_data(name, splits)
    unlabelled, _ = run_unlabelled(config, splits)
    fingerprint = {**run_fingerprint(config, splits, unlabelled), "config": peer_config_hash(name, config, settings)}
    run_dir = Path(run_dir)
    replaced = prepare_output_dir(run_dir, overwrite=True)
    try:
        save_config(config, run_dir / "config.yaml")
        # the config.yaml is the ft config whose rows the peer used: the marker says the run is not phasefit's
        atomic_write_json(run_dir / PEER_FILE, {"peer": name, "settings": settings})
        atomic_write_json(run_dir / "split.json", split_manifest(splits))
        atomic_write_json(run_dir / FINGERPRINT_FILE, fingerprint)
    except BaseException:
        restore_replaced(run_dir, replaced)
        raise
    discard_replaced(replaced)
    metrics = peer_metrics(name, config, splits, settings, body_dir=body_dir or run_dir / "body")
    atomic_write_json(run_dir / "metrics.json", metrics)  # last: its presence means the run finished
    return metrics


def peer_metrics(name: str, config: Any, splits: Any, settings: dict[str, Any], *,
                 body_dir: Path | None = None) -> dict[str, Any]:
    """Train and score peer ``name`` on ``splits`` at the run's token limit; its metrics (seconds include the
    model load). The ``setfit`` peer's trained body is saved to ``body_dir`` when given."""
    check_peer_data(name, splits)
    started = time.perf_counter()
    if name == "probe":
        return _probe(config, splits, settings, started)
    if name == "setfit":
        return _setfit(config, splits, settings, body_dir, started)
    if name == "setfit-default":
        return _setfit_default(config, splits, settings, started)
    if name == "setfit-tuned":
        return _setfit_tuned(config, splits, settings, started)
    if name == "fastfit":
        return _fastfit(config, splits, settings, started)
    raise ValueError(f"unknown peer {name!r}; peers: {', '.join(PEERS)}")


# --- scoring ---------------------------------------------------------------------------------------------------------


def _scores(labels: list[str], gold: list[str], predicted: list[str]) -> dict[str, Any]:
    from phasefit.evaluation.metrics import classification_metrics

    index = {label: i for i, label in enumerate(labels)}
    return classification_metrics([index[g] for g in gold], [index[p] for p in predicted], labels)


def _metrics(name: str, config: Any, splits: Any, val_pred: list[str], test_pred: list[str], seconds: float, *,
             train_size: int | None = None, **extra: Any) -> dict[str, Any]:
    """A peer's metrics.json, in the layout of a recipe's (no phases). ``train_size``: the labelled rows it trained
    on, when more than train's (the pool)."""
    train_size = len(splits.train) if train_size is None else train_size
    out = {
        "recipe": name, "seed": config.seed, "model": config.model.name, "data": config.data.path,
        "label_names": splits.label_names,
        "sizes": {"train": train_size, "validation": len(splits.validation), "test": len(splits.test)},
        "validation": _scores(splits.label_names, splits.validation.labels, val_pred),
        # like a recipe's run: no test score when the config says not to score it (evaluate_test=false)
        "test": _scores(splits.label_names, splits.test.labels, test_pred) if config.evaluate_test else None,
        "initial_embeddings": None, "phases": [], "total_seconds": round(seconds, 3), **extra,
    }
    if "imbalance" in splits.record:  # the rare classes, for the imbalance study's rare-class recall
        out["imbalance"] = splits.record["imbalance"]
    return out


def _pool(splits: Any) -> tuple[list[str], list[str]]:
    """The labelled pool every peer may use: train ∪ validation rows (texts, labels)."""
    return ([*splits.train.texts, *splits.validation.texts], [*splits.train.labels, *splits.validation.labels])


def choose_c(train_x: Any, train_y: Sequence[str], val_x: Any, val_y: Sequence[str],
             grid: Sequence[float]) -> tuple[float, dict[str, float]]:
    """The C of a logistic head with the best validation macro-F1 (the smallest such C on a tie), and every C's
    score ({str(C): F1}). Fits on ``train_x`` only: nothing but validation scores the candidates."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import f1_score

    if not grid:
        raise ValueError("choose_c needs at least one C")
    scores: dict[str, float] = {}
    best: tuple[float, float] | None = None
    for c in sorted(float(c) for c in grid):
        head = LogisticRegression(C=c, max_iter=HEAD_MAX_ITER).fit(train_x, list(train_y))
        score = float(f1_score(list(val_y), head.predict(val_x), average="macro"))
        scores[repr(c)] = score
        if best is None or score > best[0]:
            best = (score, c)
    return best[1], scores  # type: ignore[index]  # the grid is not empty


def _at_edge(c: float, grid: Sequence[float]) -> bool:
    return c in (min(grid), max(grid))


# --- probe -----------------------------------------------------------------------------------------------------------


def _probe(config: Any, splits: Any, settings: dict[str, Any], started: float) -> dict[str, Any]:
    from sklearn.linear_model import LogisticRegression

    from phasefit.models.encoder import load_encoder
    from phasefit.run_data import run_max_length

    encoder = load_encoder(config.model)
    encoder.max_seq_length = run_max_length(config, splits, encoder)

    def embed(texts: Any) -> Any:
        return encoder.encode(list(texts), batch_size=64, convert_to_numpy=True)

    train, val = embed(splits.train.texts), embed(splits.validation.texts)
    grid = [float(c) for c in settings["c_grid"]]
    c, by_c = choose_c(train, splits.train.labels, val, splits.validation.labels, grid)
    head = LogisticRegression(C=c, max_iter=HEAD_MAX_ITER).fit(train, list(splits.train.labels))
    test_pred = list(head.predict(embed(splits.test.texts))) if config.evaluate_test else []
    return _metrics("probe", config, splits, list(head.predict(val)), test_pred, time.perf_counter() - started,
                    probe_c=c, probe_c_at_edge=_at_edge(c, grid), probe_c_grid=grid,
                    probe_validation_macro_f1_by_c=by_c)


# --- SetFit ----------------------------------------------------------------------------------------------------------


def _import_setfit() -> Any:
    try:
        import setfit
    except ImportError as err:
        from phasefit.config import ConfigError

        raise ConfigError("the setfit peers need the setfit library: pip install -e '.[bench]' "
                          f"(after torch) ({err})") from err
    return setfit


def _setfit_model(config: Any, splits: Any) -> tuple[Any, int]:
    """SetFit's model from the run's local model folder (default LogisticRegression head), at the run's token
    limit."""
    setfit = _import_setfit()
    from phasefit.models.encoder import resolve_model_path
    from phasefit.run_data import run_max_length

    model = setfit.SetFitModel.from_pretrained(str(resolve_model_path(config.model.name)), local_files_only=True)
    max_length = run_max_length(config, splits, model.model_body)  # its body is the same sentence-transformer
    model.model_body.max_seq_length = max_length
    return model, max_length


def _setfit(config: Any, splits: Any, settings: dict[str, Any], body_dir: Path | None,
            started: float) -> dict[str, Any]:
    from datasets import Dataset

    setfit = _import_setfit()
    model, max_length = _setfit_model(config, splits)
    args = setfit.TrainingArguments(batch_size=settings["batch_size"], num_epochs=settings["num_epochs"],
                                    num_iterations=settings["num_iterations"], seed=config.seed,
                                    max_length=max_length, show_progress_bar=False, report_to="none",
                                    save_strategy="no", eval_strategy="no")
    train = Dataset.from_dict({"text": list(splits.train.texts), "label": list(splits.train.labels)})
    setfit.Trainer(model=model, args=args, train_dataset=train).train()
    val_pred = [str(p) for p in model.predict(list(splits.validation.texts), as_numpy=True)]
    test_pred = ([str(p) for p in model.predict(list(splits.test.texts), as_numpy=True)] if config.evaluate_test
                 else [])
    seconds = time.perf_counter() - started
    if body_dir is not None:
        body_dir.parent.mkdir(parents=True, exist_ok=True)
        model.model_body.save(str(body_dir), safe_serialization=True)
    return _metrics("setfit", config, splits, val_pred, test_pred, seconds, setfit=settings)


def setfit_default_pairs(labels: Sequence[Any]) -> int:
    """The sentence pairs SetFit 1.x draws in one epoch at its defaults (``sampling_strategy="oversampling"``, no
    ``num_iterations``), for single-label data.

    setfit/sampler.py pairs every sentence with every sentence after it and with itself (``shuffle_combinations``:
    combinations with replacement, n(n+1)/2 pairs); a pair is positive when its labels match. Oversampling draws
    as many pairs of each kind as the larger kind has, so an epoch is ``2 * max(positives, negatives)`` pairs.
    """
    counts = Counter(labels)
    n = len(labels)
    positives = sum(k * (k + 1) // 2 for k in counts.values())
    negatives = n * (n + 1) // 2 - positives
    return 2 * max(positives, negatives)


def _setfit_trainer(model: Any, texts: list[str], labels: list[str], settings: dict[str, Any], seed: int,
                    max_length: int) -> tuple[Any, dict[str, Any]]:
    """SetFit's Trainer at its library defaults on (texts, labels), its body's steps capped by
    ``settings["max_steps"]``; and the pair record: SetFit's default pairs an epoch, its default epochs and steps,
    the cap (None when the defaults fit under it)."""
    from datasets import Dataset

    setfit = _import_setfit()
    library = setfit.TrainingArguments()  # its defaults, read from the installed version
    batch_size, epochs = library.embedding_batch_size, library.embedding_num_epochs
    default_pairs = setfit_default_pairs(labels)
    default_steps = math.ceil(default_pairs / batch_size) * epochs
    cap = settings["max_steps"]
    # max_steps only when it cuts: above the default steps transformers' Trainer would run extra epochs
    max_steps = cap if cap is not None and cap < default_steps else -1
    args = setfit.TrainingArguments(max_steps=max_steps, seed=seed, max_length=max_length, show_progress_bar=False,
                                    report_to="none", save_strategy="no", eval_strategy="no")
    train = Dataset.from_dict({"text": list(texts), "label": list(labels)})
    record = {
        "setfit_version": setfit.__version__,
        "library_defaults": {"sampling_strategy": args.sampling_strategy, "num_iterations": args.num_iterations,
                             "batch_size": batch_size, "num_epochs": epochs,
                             "body_learning_rate": args.body_embedding_learning_rate,
                             "warmup_proportion": args.warmup_proportion, "loss": args.loss.__name__,
                             "head": type(model.model_head).__name__},
        "default_pairs_per_epoch": default_pairs, "default_epochs": epochs, "default_steps": default_steps,
        "max_steps": None if max_steps == -1 else max_steps,
    }
    return setfit.Trainer(model=model, args=args, train_dataset=train), record


def _pairs_seen(trainer: Any, record: dict[str, Any]) -> dict[str, Any]:
    """The pair record completed from the trained body: steps run, pairs seen and their fraction of the default."""
    state = trainer.st_trainer.state
    epochs = record["default_epochs"] if record["max_steps"] is None else 1  # a capped run is one pass of its pairs
    seen = min(state.global_step * record["library_defaults"]["batch_size"],
               len(trainer.st_trainer.train_dataset) * epochs)
    default = record["default_pairs_per_epoch"] * record["default_epochs"]
    return {**record, "steps": int(state.global_step), "pairs_seen": int(seen),
            "fraction_of_default_pairs": round(seen / default, 6) if default else 1.0}


def _predict(model: Any, texts: Sequence[str]) -> list[str]:
    return [str(p) for p in model.predict(list(texts), as_numpy=True)]


def _setfit_default(config: Any, splits: Any, settings: dict[str, Any], started: float) -> dict[str, Any]:
    """SetFit at its library defaults on the pool (train ∪ validation): body, then its default head, both on every
    labelled row; validation is scored, but it trained on it."""
    model, max_length = _setfit_model(config, splits)
    texts, labels = _pool(splits)
    trainer, record = _setfit_trainer(model, texts, labels, settings, config.seed, max_length)
    trainer.train()  # the body on the pool's pairs, then the LogisticRegression head on the pool's embeddings
    pairs = _pairs_seen(trainer, record)
    val_pred = _predict(model, splits.validation.texts)
    test_pred = _predict(model, splits.test.texts) if config.evaluate_test else []
    return _metrics("setfit-default", config, splits, val_pred, test_pred, time.perf_counter() - started,
                    train_size=len(texts), validation_in_training=True,
                    pool_use="body and head trained on train + validation; no model selection",
                    setfit_default=settings, setfit_pairs=pairs)


def _setfit_tuned(config: Any, splits: Any, settings: dict[str, Any], started: float) -> dict[str, Any]:
    """SetFit's body on train (defaults, capped), the head's C chosen on validation, the head refit on the pool.

    The validation scores recorded are the chosen head's before the refit (fit on train, so held out); the test
    rows are embedded only after C is chosen and the head refit on the pool's embeddings (train ∪ validation)."""
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    model, max_length = _setfit_model(config, splits)
    trainer, record = _setfit_trainer(model, list(splits.train.texts), list(splits.train.labels), settings,
                                      config.seed, max_length)
    trainer.train_embeddings(list(splits.train.texts), list(splits.train.labels))  # SetFit's body phase alone
    pairs = _pairs_seen(trainer, record)
    train_x = model.encode(list(splits.train.texts), batch_size=64, show_progress_bar=False)
    val_x = model.encode(list(splits.validation.texts), batch_size=64, show_progress_bar=False)
    grid = [float(c) for c in settings["c_grid"]]
    c, by_c = choose_c(train_x, splits.train.labels, val_x, splits.validation.labels, grid)
    held_out = LogisticRegression(C=c, max_iter=HEAD_MAX_ITER).fit(train_x, list(splits.train.labels))
    val_pred = [str(p) for p in held_out.predict(val_x)]
    # the final head: the chosen C, refit on every labelled row's embedding from the trained body
    model.model_head = LogisticRegression(C=c, max_iter=HEAD_MAX_ITER).fit(
        np.concatenate([train_x, val_x]), [*splits.train.labels, *splits.validation.labels])
    test_pred = _predict(model, splits.test.texts) if config.evaluate_test else []
    return _metrics("setfit-tuned", config, splits, val_pred, test_pred, time.perf_counter() - started,
                    train_size=len(splits.train) + len(splits.validation), validation_in_training=False,
                    pool_use="body trained on train; head C chosen on validation; head refit on train + validation "
                             "(validation scores: the chosen head before the refit)",
                    setfit_tuned=settings, setfit_pairs=pairs, head_c=c, head_c_at_edge=_at_edge(c, grid),
                    head_validation_macro_f1_by_c=by_c)


# --- FastFit ---------------------------------------------------------------------------------------------------------


def readable_labels(labels: Sequence[str]) -> dict[str, str]:
    """FastFit scores a text against its label *names*: ``ShareCurrentLocation`` -> ``share current location``,
    ``alarm_set`` -> ``alarm set``, ``comp.sys.mac`` -> ``comp sys mac``, as its users would name them. A name that
    would collide with another's stays as it was."""
    import re

    def words(label: str) -> str:
        text = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", " ", label)
        return re.sub(r"[_.\-]+", " ", text).strip().lower() or label

    out = {label: words(label) for label in labels}
    taken = Counter(out.values())
    return {label: name if taken[name] == 1 else label for label, name in out.items()}


def _fastfit(config: Any, splits: Any, settings: dict[str, Any], started: float) -> dict[str, Any]:
    """FastFit in its own venv, on the pool: the split goes to fastfit_peer.py as JSON, predictions come back."""
    from phasefit.models.encoder import load_encoder, resolve_model_path
    from phasefit.run_data import run_max_length

    python, script = fastfit_runner()
    max_length = run_max_length(config, splits, load_encoder(config.model))
    texts, labels = _pool(splits)
    names = readable_labels(splits.label_names)
    back = {name: label for label, name in names.items()}
    labels = [names[label] for label in labels]
    predict = {"validation": list(splits.validation.texts)}
    if config.evaluate_test:
        predict["test"] = list(splits.test.texts)  # texts only: FastFit never sees a test label
    with tempfile.TemporaryDirectory(prefix="phasefit-fastfit-") as scratch:
        request = Path(scratch) / "request.json"
        output = Path(scratch) / "predictions.json"
        request.write_text(json.dumps({
            "model": str(resolve_model_path(config.model.name)), "train": {"texts": texts, "labels": labels},
            "predict": predict, "max_length": max_length, "seed": config.seed, "settings": settings,
            "output": str(output)}), encoding="utf-8")
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
               "TOKENIZERS_PARALLELISM": "false"}
        env.pop("PYTHONPATH", None)  # its own venv's packages, not phasefit's
        done = subprocess.run([str(python), str(script), str(request)], capture_output=True, text=True, env=env,
                              check=False)
        if done.returncode != 0 or not output.is_file():
            raise RuntimeError(f"FastFit failed (exit {done.returncode}) in {python}:\n{done.stderr[-4000:]}")
        result = json.loads(output.read_text(encoding="utf-8"))
    recipe_steps = math.ceil(len(texts) / settings["per_device_train_batch_size"]) * settings["num_train_epochs"]
    run = {"steps": result["steps"], "epochs": result["epochs"], "recipe_steps": recipe_steps,
           "fraction_of_recipe_steps": round(result["steps"] / recipe_steps, 6), "max_length": max_length,
           "train_seconds": result["train_seconds"], "versions": result["versions"]}
    predictions = {part: [back[name] for name in predicted] for part, predicted in result["predictions"].items()}
    return _metrics("fastfit", config, splits, predictions["validation"],
                    predictions.get("test", []), time.perf_counter() - started, label_texts=names,
                    train_size=len(texts), validation_in_training=True,
                    pool_use="trained on train + validation for its recipe's fixed epochs; no model selection",
                    fastfit=settings, fastfit_run=run)
