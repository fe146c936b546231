"""Recipes: named presets of the run config (phases and their settings), and building a run config from one.

A recipe is configuration, not code: adding one is a dict entry here (or any ``phases: [...]`` list in a YAML file).
Ablations of paper 000 (Table 4) differ from ``3phase`` only by their phase list or one setting.
:func:`build_config` merges preset <- YAML file <- the Python API's settings <- ``--set`` overrides and validates
the result with :mod:`phasefit.config`'s schema (imported only then: listing recipes needs no pydantic).
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from phasefit.errors import ConfigError

if TYPE_CHECKING:
    from phasefit.config import RunConfig

# paper 003's protocol: the classifier trains on the frozen pre-trained encoder (embeddings cached, so cheap epochs)
_FROZEN_HEAD = {"freeze_encoder": True, "epochs": 100, "patience": 10, "head_lr": 1e-3, "warmup_ratio": 0.0}

# Paper 000's own protocol, as its authors' code ran it: phase 3 embeds under no_grad, so FT (the baseline and the
# last phase of 3-Phase / Joint) trains the head alone on a frozen encoder, with one learning rate for all it trains
# (Table 5, all-MiniLM-L12-v2 on SNIPS: AdamW eps 2e-5, batch 32, at most 70 epochs with early stopping). The rate
# is 1e-3, not Table 5's 5e-5: on phasefit's MLP head over L2-normalised embeddings 5e-5 does not converge in 70
# epochs (SNIPS split 0: 48% validation accuracy, against 92% at 1e-3; docs/method.md). Phases 1-2 keep
# phasefit's settings but the paper's pairs (cl.sampling: paper; phasefit's default, auto, draws SetFit-style pairs
# where the paper's give few per class), so on most data paper-3phase differs from 3phase by the FT protocol alone.
_PAPER_FT = {"freeze_encoder": True, "lr": 1e-3, "head_lr": 1e-3, "adam_epsilon": 2e-5, "batch_size": 32,
             "epochs": 70, "patience": 10, "schedule": "constant", "warmup_ratio": 0.0}

RECIPES: dict[str, dict[str, Any]] = {
    "3phase": {"phases": ["dae", "cl", "ft"]},
    "joint": {"phases": ["joint", "ft"]},
    "dae-ft": {"phases": ["dae", "ft"]},
    "cl-ft": {"phases": ["cl", "ft"]},
    "ft": {"phases": ["ft"]},
    "ft-balanced": {"phases": ["ft"], "ft": {"class_weight": "balanced"}},
    "mlm-cl-ft": {"phases": ["mlm", "cl", "ft"]},
    "3phase-no-imb": {"phases": ["dae", "cl", "ft"], "cl": {"imbalance": False}},
    "3phase-extra-imb": {"phases": ["dae", "cl", "ft"], "cl": {"min_ratio": 1.5, "max_ratio": 20.0}},
    "scl": {"phases": ["ft"], "ft": {"scl_weight": 0.9, "scl_temperature": 0.3, "sampler": "label-aware"}},
    "supcon-ft": {"phases": ["supcon", "ft"], "ft": _FROZEN_HEAD},
    "simclr-ft": {"phases": ["simclr", "ft"], "ft": _FROZEN_HEAD},
    "ft-frozen": {"phases": ["ft"], "ft": _FROZEN_HEAD},
    "3phase-setfit": {"phases": ["dae", "cl", "ft"], "cl": {"sampling": "setfit"}},
    "paper-ft": {"phases": ["ft"], "cl": {"sampling": "paper"}, "ft": _PAPER_FT},  # cl unused: as its siblings
    "paper-joint": {"phases": ["joint", "ft"], "cl": {"sampling": "paper"}, "ft": _PAPER_FT},
    "paper-3phase": {"phases": ["dae", "cl", "ft"], "cl": {"sampling": "paper"}, "ft": _PAPER_FT},
}

RECIPE_HELP: dict[str, str] = {
    "3phase": "paper 000: DAE -> CL with imbalance correction (1.5, 4) -> FT (pairs: cl.sampling=auto)",
    "joint": "paper 000 §3.3.1: DAE and CL trained together (L_DAE + L_CL) -> FT",
    "dae-ft": "ablation: DAE -> FT",
    "cl-ft": "ablation: CL (with imbalance correction) -> FT",
    "ft": "plain fine-tuning: encoder + MLP head, cross-entropy (the baseline)",
    "ft-balanced": "ft with class-weighted cross-entropy (ft.class_weight=balanced), against class imbalance",
    "mlm-cl-ft": "open question 2: masked-LM adaptation in place of DAE -> CL -> FT",
    "3phase-no-imb": "ablation: 3phase without the imbalance correction",
    "3phase-extra-imb": "ablation: 3phase with extra imbalance correction (1.5, 20)",
    "scl": "paper 002: FT with (1-lambda) CE + lambda SCL, lambda 0.9, tau 0.3, label-aware batches",
    "supcon-ft": "paper 003: SupCon pre-training (dropout views) -> classifier on the frozen encoder",
    "simclr-ft": "paper 003: SimCLR pre-training (dropout views) -> classifier on the frozen encoder",
    "ft-frozen": "MLP head on the frozen pre-trained encoder (embeddings cached: seconds, a cheap candidate)",
    "3phase-setfit": "3phase with SetFit-style pairs (equal positive/negative draws per example) in CL",
    "paper-ft": "paper 000's protocol: head only on the frozen encoder, one lr, as the authors' code ran FT",
    "paper-joint": "paper 000's protocol: Joint, then the head only on the frozen encoder, one lr",
    "paper-3phase": "paper 000's protocol: DAE -> CL, then the head only on the frozen encoder, one lr",
}


def recipe_preset(name: str) -> dict[str, Any]:
    """The config keys a recipe sets; ConfigError naming the known recipes for an unknown name."""
    if name not in RECIPES:
        raise ConfigError(f"unknown recipe {name!r}; available: {', '.join(sorted(RECIPES))}")
    return copy.deepcopy(RECIPES[name])


# ----------------------------------------------------------------------------------------------------------------
# Building a config: recipe preset <- YAML file <- keyword settings <- --set overrides


def parse_override(item: str) -> tuple[list[str], Any]:
    """Parse ``a.b=c`` into (["a", "b"], value); the value is read as YAML (so 3, 1e-4, true, [dae, ft] work)."""
    if "=" not in item:
        raise ConfigError(f"--set {item!r}: expected key=value, e.g. --set ft.epochs=5")
    key, raw = item.split("=", 1)
    key = key.strip()
    if not key:
        raise ConfigError(f"--set {item!r}: empty key")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError as err:
        raise ConfigError(f"--set {item!r}: value is not valid YAML ({err})") from err
    if isinstance(value, str):  # YAML 1.1 reads 1e-4 (no dot) as a string
        try:
            value = float(value) if value.strip().lower() not in {"nan", "inf", "-inf", "infinity"} else value
        except ValueError:
            pass
    return key.split("."), value


def deep_update(base: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    """Recursively merge ``update`` into a copy of ``base`` (dicts merge, everything else replaces)."""
    out = copy.deepcopy(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_update(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def nested(settings: dict[str, Any] | None) -> dict[str, Any]:
    """``{"ft.lr": 1e-4, "seed": 3}`` -> ``{"ft": {"lr": 1e-4}, "seed": 3}`` (nested dicts pass through and merge)."""
    out: dict[str, Any] = {}
    for key, value in (settings or {}).items():
        node = out
        parts = str(key).split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"setting {key!r}: {part!r} is not a section")
        if isinstance(value, dict) and isinstance(node.get(parts[-1]), dict):
            node[parts[-1]] = deep_update(node[parts[-1]], value)
        else:
            node[parts[-1]] = copy.deepcopy(value)
    return out


def settings_from_overrides(items: list[str] | tuple[str, ...] | None) -> dict[str, Any]:
    """``--set`` strings (``a.b=c``, values read as YAML), parsed once at the command line, as nested settings."""
    return nested({".".join(keys): value for keys, value in map(parse_override, items or [])})


def merge_settings(*layers: dict[str, Any] | None) -> dict[str, Any]:
    """Settings layers (dotted or nested keys), later ones winning."""
    out: dict[str, Any] = {}
    for layer in layers:
        out = deep_update(out, nested(layer))
    return out


def build_config(
    recipe: str | None = None,
    config_file: str | Path | None = None,
    overrides: list[str] | None = None,
    base: dict[str, Any] | None = None,
    settings: dict[str, Any] | None = None,
) -> RunConfig:
    """Resolve a run config: recipe preset, then ``base``, the YAML file, ``settings`` (the Python API's keyword
    sections) and ``--set`` overrides, in that order; then validate.

    ``recipe`` (the CLI's ``--recipe``) wins over a ``recipe:`` key in the file.
    """
    from phasefit.config import read_yaml, validate_config

    raw: dict[str, Any] = copy.deepcopy(base) if base else {}
    if config_file is not None:
        from_file = read_yaml(config_file)
        check_file_settings(from_file, f"config file {config_file}")
        raw = deep_update(raw, from_file)
    if settings:
        raw = deep_update(raw, nested(settings))
    for item in overrides or []:  # CLI-style strings, for scripts and tests that write them
        keys, value = parse_override(item)
        node = raw
        for key in keys[:-1]:
            node = node.setdefault(key, {})
            if not isinstance(node, dict):
                raise ConfigError(f"--set {item!r}: {key!r} is not a section")
        node[keys[-1]] = value
    name = recipe or raw.get("recipe") or "ft"
    preset = recipe_preset(name)  # raises ConfigError for an unknown name
    resolved = deep_update(preset, {k: v for k, v in raw.items() if k != "recipe"})
    resolved["recipe"] = name
    return validate_config(resolved)


# Keys only the command line (or the Python call) may set: the first two let a checkpoint run code when it loads,
# phase_cache names a folder that runs write to and load encoder weights from. A file a user can be handed (a
# config, a grid, a search space, a best-config) must not set them (docs/security.md). Each maps to why, and to how
# the command line sets it.
COMMAND_LINE_ONLY: dict[str, tuple[str, str]] = {
    "model.trust_remote_code": ("lets a model run code when it loads",
                                "--trust-remote-code (phasefit train) or --set model.trust_remote_code=true"),
    "model.allow_pickle": ("lets a model run code when it loads", "--set model.allow_pickle=true"),
    "phase_cache": ("names a folder to write to and to load encoder weights from", "--set phase_cache=DIR"),
}


def check_file_settings(settings: dict[str, Any], where: str) -> None:
    """Refuse a :data:`COMMAND_LINE_ONLY` key set (to anything but unset or false) in settings read from a file.

    Args:
        settings: the file's settings, nested (``{"model": {"allow_pickle": true}}``), dotted
            (``{"model.allow_pickle": true}``) or both.
        where: the file, as the message names it (``"config file X"``, ``"search space X"``).

    Raises:
        ConfigError: naming ``where``, the key and the command-line flag to use instead.
    """
    for key, value in _dotted_items(settings):
        if key in COMMAND_LINE_ONLY and value not in (None, False):
            why, flag = COMMAND_LINE_ONLY[key]
            raise ConfigError(f"{where} sets {key}, which {why}; only the command line may set it: remove it from "
                              f"the file and pass {flag}")


def check_no_code_execution(model_section: dict[str, Any], where: str) -> None:
    """Refuse ``model.trust_remote_code`` / ``model.allow_pickle`` switched on in a file's ``model`` settings (a
    grid's): a shared file must not be able to run a stranger's code; only the command line may."""
    check_file_settings({"model": model_section}, where)


def _dotted_items(settings: dict[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    """Every leaf of nested or dotted settings under its full dotted key (``model.allow_pickle``)."""
    items: list[tuple[str, Any]] = []
    for key, value in settings.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, dict):
            items += _dotted_items(value, f"{dotted}.")
        else:
            items.append((dotted, value))
    return items
