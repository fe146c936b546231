"""What the command groups of the ``phasefit`` command line share: the config settings a command's flags give, and
how a finished run prints. :mod:`phasefit.cli` (one run: train, evaluate, predict, ...) and
:mod:`phasefit.cli_grids` (many runs: run, select, experiment, ...) both import it; neither imports the other's
internals."""

from __future__ import annotations

import argparse


def config_settings(args: argparse.Namespace) -> dict:
    """The command line's config settings: its flags, then its ``--set`` items (parsed here, once)."""
    from phasefit.recipes import merge_settings, settings_from_overrides

    flags: dict = {}
    if getattr(args, "data", None):
        flags["data.path"] = args.data
    if getattr(args, "model", None):
        flags["model.name"] = args.model
    if getattr(args, "seed", None) is not None:
        flags["seed"] = args.seed
    if getattr(args, "quiet", False):
        flags["progress"] = False
    return merge_settings(flags, settings_from_overrides(args.overrides))


def format_run(metrics: dict, *, show_test: bool = True) -> str:
    """A finished run's summary lines: recipe, seed and time, each phase's cost, loss and validation k-NN accuracy,
    then the validation (and test) scores."""
    test, val = metrics["test"], metrics["validation"]
    lines = [f"recipe {metrics['recipe']}  seed {metrics['seed']}  ({metrics['total_seconds'] / 60:.1f} min)"]
    for phase in metrics["phases"]:
        knn = phase.get("validation_knn_accuracy")
        knn = float("nan") if knn is None else knn
        loss = phase.get("final_loss") or float("nan")
        lines.append(f"  phase {phase['name']:<6} {phase['seconds']:7.1f} s  "
                     f"{phase['examples_per_second'] or 0:7.1f} ex/s  loss {loss:.4f}  val k-NN {knn:.3f}")
    lines.append(f"  validation accuracy {val['accuracy']:.4f}  macro-F1 {val['macro_f1']:.4f}")
    if show_test and test is not None:
        lines.append(f"  test       accuracy {test['accuracy']:.4f}  macro-F1 {test['macro_f1']:.4f}")
    return "\n".join(lines)
