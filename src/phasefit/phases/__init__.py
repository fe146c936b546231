"""Phases by name: the registry recipes compose (``phases: [dae, cl, ft]``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from phasefit.phases.base import Phase

# name -> "module:Class"; imported on first use so that `phasefit --help` stays instant. Its names are
# phasefit.config.PHASE_NAMES, which config validation checks without importing this package (tests/test_imports.py).
PHASES: dict[str, str] = {
    "dae": "phasefit.phases.staged:DAEPhase",
    "mlm": "phasefit.phases.staged:MLMPhase",
    "cl": "phasefit.phases.staged:CLPhase",
    "joint": "phasefit.phases.staged:JointPhase",
    "supcon": "phasefit.phases.contrastive:SupConPhase",
    "simclr": "phasefit.phases.contrastive:SimCLRPhase",
    "ft": "phasefit.phases.ft:FTPhase",
}


def get_phase(name: str) -> Phase:
    import importlib

    module_name, class_name = PHASES[name].split(":")
    return getattr(importlib.import_module(module_name), class_name)()
