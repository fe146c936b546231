"""Recipes: named presets of the run config (phases and their settings).

A recipe is configuration, not code: adding one is a dict entry here (or any ``phases: [...]`` list in a YAML file).
Ablations of paper 000 (Table 4) differ from ``3phase`` only by their phase list or one setting.
"""

from __future__ import annotations

from typing import Any

from phasefit.config import ConfigError

RECIPES: dict[str, dict[str, Any]] = {
    "3phase": {"phases": ["dae", "cl", "ft"]},
    "joint": {"phases": ["joint", "ft"]},
    "dae-ft": {"phases": ["dae", "ft"]},
    "cl-ft": {"phases": ["cl", "ft"]},
    "ft": {"phases": ["ft"]},
    "3phase-no-imb": {"phases": ["dae", "cl", "ft"], "cl": {"imbalance": False}},
    "3phase-extra-imb": {"phases": ["dae", "cl", "ft"], "cl": {"min_ratio": 1.5, "max_ratio": 20.0}},
}

RECIPE_HELP: dict[str, str] = {
    "3phase": "paper 000: DAE -> CL with imbalance correction (1.5, 4) -> FT",
    "joint": "paper 000 §3.3.1: DAE and CL trained together (L_DAE + L_CL) -> FT",
    "dae-ft": "ablation: DAE -> FT",
    "cl-ft": "ablation: CL (with imbalance correction) -> FT",
    "ft": "plain fine-tuning: encoder + MLP head, cross-entropy (the baseline)",
    "3phase-no-imb": "ablation: 3phase without the imbalance correction",
    "3phase-extra-imb": "ablation: 3phase with extra imbalance correction (1.5, 20)",
}


def register_recipe(name: str, preset: dict[str, Any], help_text: str) -> None:
    RECIPES[name] = preset
    RECIPE_HELP[name] = help_text


def recipe_preset(name: str) -> dict[str, Any]:
    """The config keys a recipe sets; ConfigError naming the known recipes for an unknown name."""
    if name not in RECIPES:
        raise ConfigError(f"unknown recipe {name!r}; available: {', '.join(sorted(RECIPES))}")
    import copy

    return copy.deepcopy(RECIPES[name])
