"""phasefit: staged fine-tuning of Transformer encoders into text classifiers (DAE -> CL -> FT and its peers).

    import phasefit
    clf = phasefit.train("3phase", data=df, output="runs/x", ft={"epochs": 10})
    clf.predict("book a table")                      # one label for one string, a list for a list
    clf = phasefit.PhaseFitClassifier.from_pretrained("runs/x")
    model = phasefit.select("my_data/", output="runs/select")   # cross-validated choice, refit on all labels

Names load on first use, so ``import phasefit`` (and the ``phasefit`` command) does not import torch.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"  # the same as pyproject.toml's (tests/test_api.py checks); importlib.metadata costs 50 ms

_EXPORTS = {
    "train": "phasefit.api",
    "recipes": "phasefit.api",
    "select": "phasefit.api",
    "PhaseFitClassifier": "phasefit.models.classifier",
    "RunConfig": "phasefit.config",
    "build_config": "phasefit.recipes",
    "RunResult": "phasefit.pipeline",
    "report": "phasefit.reporting.report",
    "PhasefitError": "phasefit.errors",
    "ConfigError": "phasefit.config",
    "DataError": "phasefit.data.errors",
}

__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'phasefit' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
