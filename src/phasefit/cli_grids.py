"""The subcommands that train or read many runs into one --output: run, select, experiment, search, report,
study and paper 002's protocols (few-shot, noise, transfer). ``phasefit.cli`` parses the arguments and dispatches
through :data:`COMMANDS`; what both command groups need is in :mod:`phasefit.cli_common`.

This is where experiments and reporting meet: a command trains its grid (``phasefit.experiments``), then writes
the report from its rows (``phasefit.reporting``); neither package imports the other."""

from __future__ import annotations

import argparse
from pathlib import Path

from phasefit.cli_common import config_settings, format_run


def _cmd_run(args: argparse.Namespace) -> int:
    import time

    from phasefit.experiments.compare import DEFAULT_RUN_RECIPES, compare_recipes, format_summary

    recipes = args.recipes or DEFAULT_RUN_RECIPES
    seeds = args.seeds or ([0] if args.fast else [0, 1, 2])
    output = Path(args.output or f"runs/run-{time.strftime('%Y%m%d-%H%M%S')}")
    print(f"phasefit run: {', '.join(recipes)} x seeds {seeds} on {args.data} -> {output}")
    summary = compare_recipes(recipes, seeds, output, settings=config_settings(args),
                              on_progress=_print_progress, overwrite=args.overwrite)
    from phasefit.reporting.report import write_report

    _, report = write_report(output)
    print()
    print(format_summary(summary))
    print(f"\nrun directories: {output}/<recipe>/seed-<n>\nsummary: {output / 'summary.md'}\nreport:  {report}")
    return 0


def _cmd_select(args: argparse.Namespace) -> int:
    from phasefit.experiments.select import select_recipe

    output = Path(args.output)
    how = "held-out validation" if args.cv == 0 else f"{args.cv or 'auto'}-fold cross-validation"
    print(f"phasefit select: {' '.join(args.recipes)} on {args.data} by {how} ({args.metric}) -> {output}")

    def progress(p) -> None:  # noqa: ANN001 - test scores are not shown while choosing
        _print_progress(p, show_test=False)

    selection = select_recipe(args.recipes, args.seeds, output, settings=config_settings(args),
                              metric=args.metric, cv=args.cv, ensemble=args.ensemble, on_progress=progress,
                              overwrite=args.overwrite)
    print("\n" + selection.text)
    print(f"\nrecommendation: {output / 'recommendation.md'}\nmodel: "
          + ", ".join(str(output / run / "model") for run in selection.runs)
          + f"\npredict with: phasefit predict {output} TEXT ...")
    return 0


def _cmd_experiment(args: argparse.Namespace) -> int:
    from phasefit.experiments.compare import summarise
    from phasefit.experiments.experiment import run_experiment

    output = Path(args.output)
    rows = run_experiment(args.config, output, settings=config_settings(args), on_progress=_print_progress,
                          overwrite=args.overwrite, launcher=args.launcher)
    print(f"\n{len(rows)} runs; results: {output / 'results.csv'}")
    from phasefit.experiments.compare import format_mean_std

    for entry in summarise(rows, by=("dataset", "recipe", "variant")):
        print(f"  {entry['dataset']:<16} {entry['recipe']:<18} {entry['variant']:<10} test accuracy "
              f"{format_mean_std(entry['test_accuracy'], entry['test_accuracy_std'])} (n={entry['runs']})")
    if not args.no_report:
        from phasefit.reporting.report import write_report

        md, page = write_report(output)
        print(f"report: {md}  {page}")
    return 0


def _cmd_search(args: argparse.Namespace) -> int:
    import logging as std_logging

    from phasefit.experiments.search import run_search

    std_logging.getLogger("optuna").setLevel(std_logging.WARNING)

    def show(trial: dict) -> None:
        value = "" if trial["value"] is None else f"  validation {args.metric} {trial['value']:.4f}"
        retry = "" if trial.get("retry_of") is None else f" (re-run of killed trial {trial['retry_of']})"
        print(f"trial {trial['number']}{retry}: {trial['state']}{value}  {trial['params']}", flush=True)

    result = run_search(recipe=args.recipe, config_file=args.config, settings=config_settings(args),
                        trials=args.trials, output=Path(args.output), storage=args.storage, study_name=args.study_name,
                        space_file=args.space, metric=args.metric, seed=args.seed or 0, on_trial=show,
                        overwrite=args.overwrite, heartbeat=args.heartbeat, grace_period=args.grace_period,
                        max_retry=args.max_retry)
    print(f"best trial {result['best_trial']}: validation {args.metric} {result['best_value']:.4f}")
    print(f"best config: {result['best_config']}  (phasefit train --config {result['best_config']} ...)")
    return 0


def _cmd_report(args: argparse.Namespace) -> int:
    from phasefit.reporting.report import write_report

    md, page = write_report(Path(args.folder))
    print(f"wrote {md}\nwrote {page}")
    return 0


def _print_progress(progress, *, show_test: bool = True) -> None:  # noqa: ANN001 - experiments.grid.Progress
    left = f", about {progress.seconds_left / 60:.0f} min left" if progress.seconds_left else ""
    reused = " (finished earlier, reused)" if progress.reused else ""
    print(f"[{progress.done}/{progress.total}{left}] {progress.cell.key}{reused}")
    print(format_run(progress.metrics, show_test=show_test), flush=True)


def _cmd_few_shot(args: argparse.Namespace) -> int:
    from phasefit.experiments.protocols import run_few_shot

    table = run_few_shot(args.recipes, args.sizes, args.draws, args.seeds, Path(args.output),
                         validation_size=args.validation_size, settings=config_settings(args),
                         on_progress=_print_progress, overwrite=args.overwrite)
    print("\n" + table + f"\n\nsummary: {Path(args.output) / 'summary.md'}   rows: {Path(args.output) / 'results.csv'}")
    return 0


def _cmd_noise(args: argparse.Namespace) -> int:
    from phasefit.experiments.protocols import run_noise_robustness

    table = run_noise_robustness(args.recipes, args.levels, args.n, args.draws, args.seeds, Path(args.output),
                                 copies=args.copies, validation_size=args.validation_size,
                                 settings=config_settings(args), on_progress=_print_progress, overwrite=args.overwrite)
    print("\n" + table + f"\n\nsummary: {Path(args.output) / 'summary.md'}")
    return 0


def _cmd_transfer(args: argparse.Namespace) -> int:
    from phasefit.experiments.protocols import run_transfer
    from phasefit.recipes import settings_from_overrides

    table = run_transfer(args.recipes, args.source, args.target, args.k, args.draws, args.seeds, Path(args.output),
                         source_settings=settings_from_overrides(args.source_set),
                         target_settings=settings_from_overrides(args.target_set),
                         settings=config_settings(args), on_progress=_print_progress, overwrite=args.overwrite)
    print("\n" + table + f"\n\nsummary: {Path(args.output) / 'summary.md'}")
    return 0


def _cmd_study(args: argparse.Namespace) -> int:
    from phasefit.experiments import studies

    output = Path(args.output)
    if args.study == "imbalance":
        largest = (args.largest if args.largest is not None
                   else studies.default_largest(args.data, config_settings(args)))
        cells = studies.imbalance_cells(args.data, args.recipes, args.ratios, args.seeds, largest=largest)
        what = f"ratios {' '.join(f'{r:g}' for r in args.ratios)} (largest class {largest}) x seeds {args.seeds}"
    elif args.study == "size":
        cells = studies.size_cells(args.data, args.recipes, args.sizes, args.draws,
                                   validation_size=args.validation_size or None)
        what = f"sizes {' '.join(map(str, args.sizes))} x {args.draws} draws"
    else:
        cells = studies.phase1_cells(args.data, args.recipes, args.seeds, train_size=args.train_size or None,
                                     validation_size=args.validation_size or None)
        what = f"seeds {args.seeds}"
    print(f"phasefit study {args.study}: {', '.join(args.recipes)} x {what} on {args.data} -> {output} "
          f"({len(cells)} runs)")
    rows = studies.run_study(cells, output, settings=config_settings(args), on_progress=_print_progress,
                             overwrite=args.overwrite)
    from phasefit.reporting.report import write_report

    md, page = write_report(output, rows)
    print(f"\nresults: {output / 'results.csv'}\nreport:  {md}  {page}")
    return 0


# command name -> handler, merged into phasefit.cli's dispatch
COMMANDS = {"run": _cmd_run, "select": _cmd_select, "experiment": _cmd_experiment, "report": _cmd_report,
            "search": _cmd_search, "few-shot": _cmd_few_shot, "noise": _cmd_noise, "transfer": _cmd_transfer,
            "study": _cmd_study}
