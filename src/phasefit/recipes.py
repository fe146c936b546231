"""Recipes: named presets of the run config (phases and their settings).

A recipe is configuration, not code: adding one is a dict entry here (or any ``phases: [...]`` list in a YAML file).
Ablations of paper 000 (Table 4) differ from ``3phase`` only by their phase list or one setting.
"""

from __future__ import annotations

from typing import Any

from phasefit.config import ConfigError

# paper 003's protocol: the classifier trains on the frozen pre-trained encoder (embeddings cached, so cheap epochs)
_FROZEN_HEAD = {"freeze_encoder": True, "epochs": 100, "patience": 10, "head_lr": 1e-3, "warmup_ratio": 0.0}

# Paper 000's own protocol, as its authors' code ran it: phase 3 embeds under no_grad, so FT (the baseline and the
# last phase of 3-Phase / Joint) trains the head alone on a frozen encoder, with one learning rate for all it trains
# (Table 5, all-MiniLM-L12-v2 on SNIPS: AdamW eps 2e-5, batch 32, at most 70 epochs with early stopping). The rate
# is 1e-3, not Table 5's 5e-5: on phasefit's MLP head over L2-normalised embeddings 5e-5 does not converge in 70
# epochs (SNIPS split 0: 48% validation accuracy, against 92% at 1e-3; docs/method.md). Phases 1-2 keep
# phasefit's settings, so paper-3phase differs from 3phase by the FT protocol alone.
_PAPER_FT = {"freeze_encoder": True, "lr": 1e-3, "head_lr": 1e-3, "adam_epsilon": 2e-5, "batch_size": 32,
             "epochs": 70, "patience": 10, "schedule": "constant", "warmup_ratio": 0.0}

RECIPES: dict[str, dict[str, Any]] = {
    "3phase": {"phases": ["dae", "cl", "ft"]},
    "joint": {"phases": ["joint", "ft"]},
    "dae-ft": {"phases": ["dae", "ft"]},
    "cl-ft": {"phases": ["cl", "ft"]},
    "ft": {"phases": ["ft"]},
    "3phase-no-imb": {"phases": ["dae", "cl", "ft"], "cl": {"imbalance": False}},
    "3phase-extra-imb": {"phases": ["dae", "cl", "ft"], "cl": {"min_ratio": 1.5, "max_ratio": 20.0}},
    "scl": {"phases": ["ft"], "ft": {"scl_weight": 0.9, "scl_temperature": 0.3, "sampler": "label-aware"}},
    "supcon-ft": {"phases": ["supcon", "ft"], "ft": _FROZEN_HEAD},
    "simclr-ft": {"phases": ["simclr", "ft"], "ft": _FROZEN_HEAD},
    "ft-frozen": {"phases": ["ft"], "ft": _FROZEN_HEAD},
    "3phase-setfit": {"phases": ["dae", "cl", "ft"], "cl": {"sampling": "setfit"}},
    "paper-ft": {"phases": ["ft"], "ft": _PAPER_FT},
    "paper-joint": {"phases": ["joint", "ft"], "ft": _PAPER_FT},
    "paper-3phase": {"phases": ["dae", "cl", "ft"], "ft": _PAPER_FT},
}

RECIPE_HELP: dict[str, str] = {
    "3phase": "paper 000: DAE -> CL with imbalance correction (1.5, 4) -> FT",
    "joint": "paper 000 §3.3.1: DAE and CL trained together (L_DAE + L_CL) -> FT",
    "dae-ft": "ablation: DAE -> FT",
    "cl-ft": "ablation: CL (with imbalance correction) -> FT",
    "ft": "plain fine-tuning: encoder + MLP head, cross-entropy (the baseline)",
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
    import copy

    return copy.deepcopy(RECIPES[name])
