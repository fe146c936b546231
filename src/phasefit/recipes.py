"""Recipes: named presets of the run config (phases and their settings).

A recipe is configuration, not code: adding one is a dict entry here (or any ``phases: [...]`` list in a YAML file).
Ablations of paper 000 (Table 4) differ from ``3phase`` only by their phase list or one setting.
"""

from __future__ import annotations

from typing import Any

from phasefit.config import ConfigError

RECIPES: dict[str, dict[str, Any]] = {
    "ft": {"phases": ["ft"]},
}

RECIPE_HELP: dict[str, str] = {
    "ft": "plain fine-tuning: encoder + MLP head, cross-entropy (the baseline)",
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
