"""Peers: what a user would train instead of phasefit, run by their own libraries on phasefit's splits.

* ``probe``: logistic regression on the frozen encoder's embeddings, C in {0.01 .. 100} chosen by validation
  macro-F1 (a tuned probe; scikit-learn).
* ``setfit``: SetFit 1.x's standard recipe (contrastive fine-tuning of the body on sentence pairs, then logistic
  regression), from the same local model folder (``pip install -e '.[bench]'``). Its settings are the ``setfit``
  section of a grid's settings (``--set setfit.num_iterations=5``), :data:`SETFIT_DEFAULTS` otherwise.

A grid or study names a peer where it names a recipe (``phasefit study size --recipes ft 3phase setfit``): the
cell's config is resolved as for ``ft``, and only its data, model and seed matter, so the peer trains and is scored on
exactly the rows phasefit's recipes use (:func:`phasefit.run_data.load_run_data`). A peer's run directory holds
``config.yaml``, ``split.json``, ``fingerprint.json`` (its config hash covers the data, model and seed keys and the
peer's own settings) and ``metrics.json`` in the layout of a recipe's, so grids resume, refuse stale cells, and
report peers like recipes.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

PEERS = ("probe", "setfit")
PEER_FILE = "peer.json"  # in a peer's run directory: which peer, with which settings
SETFIT_DEFAULTS = {"num_iterations": 20, "num_epochs": 1, "batch_size": 16}


def is_peer(name: str) -> bool:
    return name in PEERS


def split_peer_settings(settings: dict[str, Any]) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """Nested settings without the peers' sections, and those sections ({"setfit": {...}})."""
    config_settings = {key: value for key, value in settings.items() if key not in PEERS}
    return config_settings, {key: dict(settings[key]) for key in PEERS if isinstance(settings.get(key), dict)}


def peer_settings(name: str, sections: dict[str, dict[str, Any]] | None = None) -> dict[str, Any]:
    """The peer's effective settings: its section over its defaults; unknown keys are an error."""
    given = dict((sections or {}).get(name, {}))
    defaults = SETFIT_DEFAULTS if name == "setfit" else {}
    unknown = sorted(set(given) - set(defaults))
    if unknown:
        from phasefit.config import ConfigError

        known = ", ".join(f"{name}.{key}" for key in defaults) or "none"
        raise ConfigError(f"unknown {name} setting(s) {', '.join(f'{name}.{k}' for k in unknown)}; known: {known}")
    return {**defaults, **given}


def check_peer_data(name: str, splits: Any) -> None:
    """The peers classify single texts: a text-pair data set is an error, not a silently dropped second text."""
    if splits.train.text_pairs is not None:
        from phasefit.config import ConfigError

        raise ConfigError(f"the {name} peer classifies single texts, but this data set has text pairs "
                          "(data.text_pair_column); leave the peer out for text-pair tasks")


def require_peer_library(name: str) -> None:
    """Fail before a grid trains anything when a peer's library is missing."""
    import importlib.util

    if name == "setfit" and importlib.util.find_spec("setfit") is None:
        from phasefit.config import ConfigError

        raise ConfigError("the setfit peer needs the setfit library: pip install -e '.[bench]' (after torch)")


def peer_config_hash(name: str, config: Any, settings: dict[str, Any]) -> str:
    """What a peer's fingerprint records as its config: the keys that choose its rows and model, and its settings."""
    from phasefit.fingerprint import effective_config, sha256

    keys = {key: value for key, value in effective_config(config).items()  # flattened: "data.path", ...
            if key in ("seed", "evaluate_test") or key.split(".")[0] in ("data", "model")}
    return sha256({"peer": name, "settings": settings, "config": keys})


def train_peer(name: str, config: Any, run_dir: Path, settings: dict[str, Any], *,
               body_dir: Path | None = None) -> dict[str, Any]:
    """Train and score peer ``name`` on the splits of ``config`` into ``run_dir`` (replaced if there); returns its
    metrics. ``body_dir``: where SetFit's trained body is kept (``run_dir/body`` when None)."""
    from phasefit.fingerprint import FINGERPRINT_FILE, run_fingerprint
    from phasefit.io import atomic_write_json
    from phasefit.config import save_config
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
    model load). SetFit's trained body is saved to ``body_dir`` when given."""
    from phasefit.models.encoder import load_encoder
    from phasefit.run_data import run_max_length

    check_peer_data(name, splits)
    started = time.perf_counter()
    if name == "probe":
        encoder = load_encoder(config.model)
        return _probe(encoder, config, splits, run_max_length(config, splits, encoder), started)
    if name == "setfit":
        return _setfit(config, splits, settings, body_dir, started)
    raise ValueError(f"unknown peer {name!r}; peers: {', '.join(PEERS)}")


def _scores(labels: list[str], gold: list[str], predicted: list[str]) -> dict[str, Any]:
    from phasefit.evaluation.metrics import classification_metrics

    index = {label: i for i, label in enumerate(labels)}
    return classification_metrics([index[g] for g in gold], [index[p] for p in predicted], labels)


def _metrics(name: str, config: Any, splits: Any, val_pred: list[str], test_pred: list[str], seconds: float,
             **extra: Any) -> dict[str, Any]:
    """A peer's metrics.json, in the layout of a recipe's (no phases)."""
    out = {
        "recipe": name, "seed": config.seed, "model": config.model.name, "data": config.data.path,
        "label_names": splits.label_names,
        "sizes": {"train": len(splits.train), "validation": len(splits.validation), "test": len(splits.test)},
        "validation": _scores(splits.label_names, splits.validation.labels, val_pred),
        # like a recipe's run: no test score when the config says not to score it (evaluate_test=false)
        "test": _scores(splits.label_names, splits.test.labels, test_pred) if config.evaluate_test else None,
        "initial_embeddings": None, "phases": [], "total_seconds": round(seconds, 3), **extra,
    }
    if "imbalance" in splits.record:  # the rare classes, for the imbalance study's rare-class recall
        out["imbalance"] = splits.record["imbalance"]
    return out


def _probe(encoder: Any, config: Any, splits: Any, max_length: int, started: float) -> dict[str, Any]:
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import f1_score

    encoder.max_seq_length = max_length

    def embed(texts: Any) -> Any:
        return encoder.encode(list(texts), batch_size=64, convert_to_numpy=True)

    train, val = embed(splits.train.texts), embed(splits.validation.texts)
    test = embed(splits.test.texts) if config.evaluate_test else None
    best = None
    for c in (0.01, 0.1, 1.0, 10.0, 100.0):
        model = LogisticRegression(C=c, max_iter=3000).fit(train, splits.train.labels)
        score = f1_score(splits.validation.labels, model.predict(val), average="macro")
        if best is None or score > best[0]:
            best = (score, c, model)
    _, c, model = best
    return _metrics("probe", config, splits, list(model.predict(val)), [] if test is None else list(model.predict(test)),
                    time.perf_counter() - started, probe_c=c)


def _setfit(config: Any, splits: Any, settings: dict[str, Any], body_dir: Path | None,
            started: float) -> dict[str, Any]:
    try:
        from datasets import Dataset
        from setfit import SetFitModel, Trainer, TrainingArguments
    except ImportError as err:
        from phasefit.config import ConfigError

        raise ConfigError("the setfit peer needs the setfit library: pip install -e '.[bench]' "
                          f"(after torch) ({err})") from err
    from phasefit.models.encoder import resolve_model_path
    from phasefit.run_data import run_max_length

    model = SetFitModel.from_pretrained(str(resolve_model_path(config.model.name)), local_files_only=True)
    max_length = run_max_length(config, splits, model.model_body)  # its body is the same sentence-transformer
    model.model_body.max_seq_length = max_length
    args = TrainingArguments(batch_size=settings["batch_size"], num_epochs=settings["num_epochs"],
                             num_iterations=settings["num_iterations"], seed=config.seed, max_length=max_length,
                             show_progress_bar=False, report_to="none", save_strategy="no", eval_strategy="no")
    train = Dataset.from_dict({"text": list(splits.train.texts), "label": list(splits.train.labels)})
    Trainer(model=model, args=args, train_dataset=train).train()
    val_pred = [str(p) for p in model.predict(list(splits.validation.texts), as_numpy=True)]
    test_pred = ([str(p) for p in model.predict(list(splits.test.texts), as_numpy=True)] if config.evaluate_test
                 else [])
    seconds = time.perf_counter() - started
    if body_dir is not None:
        body_dir.parent.mkdir(parents=True, exist_ok=True)
        model.model_body.save(str(body_dir), safe_serialization=True)
    return _metrics("setfit", config, splits, val_pred, test_pred, seconds, setfit=settings)
