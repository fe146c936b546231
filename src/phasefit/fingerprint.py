"""Fingerprints of what a run was made from: its resolved config, its data's content, its model's files.

A run directory stores them in ``fingerprint.json`` when it starts. A grid reuses a finished cell, and
``--resume`` continues an interrupted run, only when the fingerprints of the new request match; otherwise the
error names what differs (the config keys, or which part of the data). Settings that cannot change a result
(progress bars, plots, the phase cache) are left out of the config's fingerprint.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from phasefit.config import RunConfig
    from phasefit.data import DatasetSplits

FINGERPRINT_FILE = "fingerprint.json"
NOT_RESULTS = {"progress", "plots", "phase_cache"}  # top-level keys that cannot change a run's numbers
NOT_RESULT_KEYS = {"trainer.report_to", "trainer.dataloader_num_workers"}  # nor can these
# Keys added after runs were made: at these values they do what the earlier runs did, so they leave the fingerprint
# (and the comparison with an earlier run's config.yaml) unchanged.
# (trainer.fused_optimizer defaults to true, but runs made before it existed used the unfused AdamW: at false it
# matches them, at true it does not.)
LATER_KEY_DEFAULTS = {"trainer.mixed_precision": "no", "trainer.gradient_accumulation_steps": 1,
                      "trainer.fused_optimizer": False, "ft.group_by_length": True, "ft.class_weight": "none",
                      "cl.auto_min_positives": 10.0, "data.split_seed": None, "data.imbalance_ratio": None,
                      "data.imbalance_largest": None, "data.imbalance_seed": None,
                      "data.cv_folds": None, "data.cv_fold": None, "data.train_on": "train", "ft.early_stopping": True}
# A config section added after runs were made, left out at its defaults (the mlm phase: a run without it cannot
# have read it).
LATER_SECTIONS = ("mlm",)
_MODEL_FILES = (".safetensors", ".bin", ".json", ".txt", ".model")


def sha256(payload: Any) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode("utf-8")).hexdigest()


def flatten(config: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"ft": {"lr": 1}}`` -> ``{"ft.lr": 1}``."""
    out: dict[str, Any] = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(flatten(value, name + "."))
        else:
            out[name] = value
    return out


def result_config(config: RunConfig | dict[str, Any]) -> dict[str, Any]:
    """The flattened config keys that can change a run's results.

    With gradient accumulation the key ``trainer.accumulation_scaled`` is added for configs of today's code: before
    the phase Trainer's loss-scaling fix an accumulated step was ``gradient_accumulation_steps`` times too big, so a
    run made then with accumulation is not a result of today's code (its saved config.yaml lacks the marker)."""
    raw = config if isinstance(config, dict) else config.to_dict()
    later = {**LATER_KEY_DEFAULTS, **_later_section_defaults()}
    out = {k: v for k, v in flatten(raw).items() if k.split(".")[0] not in NOT_RESULTS and k not in NOT_RESULT_KEYS
           and not (k in later and v == later[k])}
    if out.get("trainer.gradient_accumulation_steps", 1) != 1 and not isinstance(config, dict):
        out["trainer.accumulation_scaled"] = True
    return out


def effective_config(config: RunConfig) -> dict[str, Any]:
    """:func:`result_config` plus what the launch changes: the number of processes, when above 1 (P processes
    train on a P times larger global batch)."""
    from phasefit.distributed import num_processes

    out = result_config(config)
    if num_processes() > 1:
        out["processes"] = num_processes()
    return out


@functools.lru_cache(maxsize=1)
def _later_section_defaults() -> dict[str, Any]:
    from phasefit.config import RunConfig

    defaults = RunConfig().to_dict()
    return {key: value for section in LATER_SECTIONS for key, value in flatten({section: defaults[section]}).items()}


def config_differences(a: dict[str, Any], b: dict[str, Any]) -> list[str]:
    """Keys whose values differ between two configs (flattened, result keys only), e.g. ``ft.lr: 0.0001 -> 0.001``."""
    fa, fb = result_config(a), result_config(b)
    return [f"{k}: {fa.get(k)!r} -> {fb.get(k)!r}" for k in sorted(set(fa) | set(fb)) if fa.get(k) != fb.get(k)]


def model_fingerprint(folder: Path) -> str:
    """Content hash of a model folder's weight, config and tokenizer files (so a retrained folder never matches).

    Hashed once per process for a given set of files (path, size, modification time): a grid checking its
    finished cells, or a run and its phase cache, would otherwise read the same 90 MB of weights again and again."""
    folder = Path(folder).resolve()
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix in _MODEL_FILES)
    stats = tuple((str(p.relative_to(folder)), p.stat().st_size, p.stat().st_mtime_ns) for p in files)
    return _hash_files(folder, stats)


@functools.lru_cache(maxsize=32)
def _hash_files(folder: Path, stats: tuple[tuple[str, int, int], ...]) -> str:
    digest = hashlib.sha256()
    for name, _, _ in stats:
        digest.update(name.encode())
        with (folder / name).open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def split_fingerprints(splits: DatasetSplits) -> dict[str, str]:
    """One hash per split over its ids, texts, second texts and labels, and one over the label set."""
    out = {name: sha256([part.ids, part.texts, part.text_pairs, part.labels])
           for name, part in (("train", splits.train), ("validation", splits.validation), ("test", splits.test))}
    out["labels"] = sha256([splits.label_names, splits.label_separator])
    return out


def data_fingerprint(splits: DatasetSplits, unlabelled: list[str]) -> str:
    return sha256({"splits": split_fingerprints(splits), "unlabelled": sha256(unlabelled)})


def run_fingerprint(config: RunConfig, splits: DatasetSplits, unlabelled: list[str]) -> dict[str, Any]:
    """What ``fingerprint.json`` holds: config hash, per-split data hashes, unlabelled texts and model content."""
    from phasefit.models.encoder import resolve_model_path

    return {
        "config": sha256(effective_config(config)),
        "data": split_fingerprints(splits),
        "unlabelled": sha256(unlabelled),
        "model": model_fingerprint(resolve_model_path(config.model.name)),
        "started_in": os.getcwd(),  # relative paths of the config resolve against it on --resume
    }


def data_differences(saved: dict[str, Any], now: dict[str, Any]) -> list[str]:
    """Human names of the parts that changed between two run fingerprints (data, unlabelled texts, model)."""
    changed = [f"{name} split (its texts, labels or rows)" if name != "labels" else "the label set"
               for name in ("train", "validation", "test", "labels")
               if saved.get("data", {}).get(name) != now["data"].get(name)]
    if saved.get("unlabelled") != now["unlabelled"]:
        changed.append("the unlabelled texts (data.unlabelled_path)")
    if saved.get("model") != now["model"]:
        changed.append("the model's files (model.name)")
    return changed


def read_fingerprint(run_dir: Path) -> dict[str, Any] | None:
    file = Path(run_dir) / FINGERPRINT_FILE
    return json.loads(file.read_text(encoding="utf-8")) if file.is_file() else None
