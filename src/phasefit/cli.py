"""The ``phasefit`` command line. Subcommands only; the one place that configures logging and prints.

Heavy libraries (torch, transformers, sentence-transformers) are imported inside the subcommands, so
``phasefit --help`` answers at once.
"""

from __future__ import annotations

import argparse
import errno
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from phasefit.cli_common import config_settings, format_run

EXIT_USER_ERROR = 2


def _add_grid_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags of every command that trains many runs into one --output and reuses the finished ones."""
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config key in every run")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.add_argument("--overwrite", action="store_true",
                        help="retrain finished runs in --output that were made from another config or other data")


def _add_config_arguments(parser: argparse.ArgumentParser, *, recipe_default: str | None = None) -> None:
    parser.add_argument("--data", help="data: a folder of train/validation/test files, a file, 'hf:NAME' or "
                        "'builtin:snips' (sets data.path)")
    parser.add_argument("--recipe", default=recipe_default,
                        help="recipe name, e.g. ft, 3phase (see `phasefit recipes`)")
    parser.add_argument("--model", help="encoder: hub name (must be cached) or local folder (sets model.name)")
    parser.add_argument("--config", help="YAML run config; --recipe and --set win over it")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config key, e.g. --set ft.epochs=5 (repeatable)")
    parser.add_argument("--seed", type=int, help="random seed (sets seed)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")


def _recipes_help(recipes: list[str], peers: bool = True) -> str:
    what = ("recipes, and the peers setfit / probe run by their own libraries on the same rows (setfit: pip install "
            "-e '.[bench]'; --set setfit.num_iterations=N)" if peers else
            "recipes (no peers: a target run starts from a source run's phasefit encoder)")
    return f"{what} (default: {' '.join(recipes)})"


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="phasefit",
        description="Staged fine-tuning of Transformer encoders into text classifiers "
        "(DAE -> contrastive -> fine-tune), with honest comparisons.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = sub.add_parser("run", help="the main job: compare recipes on the bundled SNIPS set over seeds",
                         description="Train each recipe over several seeds on the bundled SNIPS intents with the "
                         "default model and print the comparison table.")
    run.add_argument("--recipes", nargs="+", help="recipes to compare (default: the main comparison)")
    run.add_argument("--seeds", type=int, nargs="+", help="seeds (default 0 1 2; --fast: 0)")
    run.add_argument("--fast", action="store_true", help="one seed (a quick look)")
    run.add_argument("--output", help="folder for the runs and the summary (default runs/run-<time>)")
    run.add_argument("--data", default="builtin:snips", help="data (default: bundled SNIPS)")
    run.add_argument("--model", help="encoder (default: all-MiniLM-L6-v2, packaged)")
    _add_grid_arguments(run)

    select = sub.add_parser("select", help="choose a recipe for your data by cross-validation and train it on all "
                            "your labels", description="Cross-validate candidate recipes on the labelled pool "
                            "(train + validation; the same stratified folds for each, candidates clearly behind "
                            "stopped early), choose the cheapest within one standard error of the best, refit it on "
                            "the whole pool and save it (OUTPUT/refit/<recipe>/model); its test score is printed "
                            "alone, after the choice. --cv 0: rank on held-out validation over --seeds instead.")
    select.add_argument("--data", default="builtin:snips", help="data (default: bundled SNIPS)")
    select.add_argument("--recipes", nargs="+", default=["auto"],
                        help="candidates; 'auto' = ft-frozen ft ft-balanced scl (add 3phase, 3phase-setfit, ... "
                        "by name)")
    select.add_argument("--cv", type=int, default=None, metavar="K",
                        help="folds of cross-validation (default: 5 for pools of at most 2,000 labelled rows, "
                        "else 0 = held-out validation)")
    select.add_argument("--ensemble", action="store_true",
                        help="also cross-validate the top candidates' averaged probabilities; chosen only if they win")
    select.add_argument("--seeds", type=int, nargs="+", default=None,
                        help="seeds (default: 0 with cross-validation, 0 1 2 with held-out validation); every seed "
                        "uses one split")
    select.add_argument("--output", required=True, help="folder of the candidate runs, the refit model and "
                        "recommendation.md")
    select.add_argument("--metric", default="macro_f1", choices=["macro_f1", "accuracy"],
                        help="validation metric to rank by")
    select.add_argument("--model", help="encoder (default: all-MiniLM-L6-v2, packaged)")
    _add_grid_arguments(select)

    train = sub.add_parser("train", help="train one recipe and write a run directory")
    _add_config_arguments(train)
    train.add_argument("--output", required=True, help="run directory to create")
    train.add_argument("--overwrite", action="store_true", help="replace an existing run directory")
    train.add_argument("--resume", action="store_true",
                       help="continue an interrupted run in --output from its last checkpoint (its saved config)")
    train.add_argument("--trust-remote-code", action="store_true",
                       help="allow model code shipped with the checkpoint to run (off: never for untrusted models)")

    evaluate = sub.add_parser("evaluate", help="score a trained run on a split of its data or of other data")
    evaluate.add_argument("run_dir", help="a run directory written by `phasefit train`")
    evaluate.add_argument("--data", help="other data (same label set); default: the run's own data and split")
    evaluate.add_argument("--split", default="test", choices=["train", "validation", "test"])

    predict = sub.add_parser("predict", help="label texts with a trained run")
    predict.add_argument("run_dir", help="a run directory written by `phasefit train`")
    predict.add_argument("texts", nargs="*", help="texts to label")
    predict.add_argument("--input", help="file of texts: one per line (.txt) or a CSV/TSV/JSONL with a text column")
    predict.add_argument("--text-column", default="text", help="text column of --input tables")
    predict.add_argument("--text-pair-column", default="text_pair",
                         help="second-text column of --input tables, for a run trained on text pairs")
    predict.add_argument("--output", help="write predictions as CSV (text, label, probability)")

    def protocol_parser(name: str, help_text: str, recipes: list[str], peers: bool = True) -> argparse.ArgumentParser:
        parser = sub.add_parser(name, help=help_text, description=help_text)
        parser.add_argument("--recipes", nargs="+", default=recipes, help=_recipes_help(recipes, peers))
        parser.add_argument("--draws", type=int, default=3, help="training-set draws (paper: 10)")
        parser.add_argument("--seeds", type=int, nargs="+", default=[0], help="training seeds per draw")
        parser.add_argument("--output", required=True, help="folder of the runs and summary.md")
        _add_grid_arguments(parser)
        return parser

    fs = protocol_parser("few-shot", "paper 002's few-shot protocol: N examples x draws x seeds per recipe",
                         ["ft", "scl", "3phase"])
    fs.add_argument("--data", required=True, help="data set (its train split is drawn from)")
    fs.add_argument("--sizes", type=int, nargs="+", default=[20, 100], help="training-set sizes N (paper: 20 100 1000)")
    fs.add_argument("--validation-size", type=int, default=500, help="validation examples drawn (paper: ~500)")

    noise = protocol_parser("noise", "paper 002's robustness protocol: few-shot train set + noisy copies per level",
                            ["ft", "scl"])
    noise.add_argument("--data", required=True)
    noise.add_argument("--n", type=int, default=100, help="training examples drawn")
    noise.add_argument("--levels", type=float, nargs="+", default=[0.0, 0.1, 0.3, 0.5],
                       help="word-noise levels (0 = no augmentation)")
    noise.add_argument("--copies", type=int, default=1, help="noisy copies per training text")
    noise.add_argument("--validation-size", type=int, default=500)

    transfer = protocol_parser("transfer", "paper 002's transfer protocol: source task, then K-per-class target",
                               ["ft", "scl"], peers=False)
    transfer.add_argument("--source", required=True, help="source data (e.g. ../shared/data/sst2)")
    transfer.add_argument("--target", required=True, help="target data (e.g. ../shared/data/imdb)")
    transfer.add_argument("--k", type=int, default=20, help="target examples per class (paper: 20)")
    transfer.add_argument("--source-set", action="append", default=[], metavar="KEY=VALUE",
                          help="override for the source runs only (e.g. data.max_train_examples=2000)")
    transfer.add_argument("--target-set", action="append", default=[], metavar="KEY=VALUE",
                          help="override for the target runs only (e.g. data.max_test_examples=1000)")

    study = sub.add_parser("study", help="the method's open questions on your data: imbalance, size, phase 1",
                           description="Grids that answer the open questions of the 3-Phase method on a data set "
                           "(resumable; results.csv and a report with the curves in --output). See docs/findings.md.")
    studies = study.add_subparsers(dest="study", required=True, metavar="STUDY")
    from phasefit.experiments.studies import (IMBALANCE_LARGEST, IMBALANCE_RATIOS, IMBALANCE_RECIPES,
                                              PHASE1_RECIPES, PHASE1_TRAIN, SIZE_RECIPES, SIZE_VALIDATION, SIZES)

    def study_parser(name: str, help_text: str, recipes: list[str]) -> argparse.ArgumentParser:
        parser = studies.add_parser(name, help=help_text, description=help_text)
        parser.add_argument("--data", required=True, help="data set (its training split is what the study varies)")
        parser.add_argument("--recipes", nargs="+", default=recipes, help=_recipes_help(recipes))
        parser.add_argument("--output", required=True, help="folder of the runs, results.csv and report.md")
        parser.add_argument("--model", help="encoder (default: all-MiniLM-L6-v2, packaged)")
        _add_grid_arguments(parser)
        return parser

    imbalance = study_parser("imbalance", "down-sample classes geometrically to each largest:smallest ratio and "
                             "compare recipes on accuracy, macro-F1 and rare-class recall", IMBALANCE_RECIPES)
    imbalance.add_argument("--ratios", type=float, nargs="+", default=IMBALANCE_RATIOS,
                           help=f"largest:smallest class-size ratios (default: {' '.join(f'{r:g}' for r in IMBALANCE_RATIOS)})")
    imbalance.add_argument("--largest", type=int,
                           help=f"training examples of the largest class, at most the smallest class count of train "
                                f"(default: {IMBALANCE_LARGEST}, or that count when lower; CPU-sized)")
    imbalance.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2],
                           help="seeds; each also picks which classes become rare (default 0 1 2)")
    size = study_parser("size", "a learning curve: N training examples drawn per size and draw, the same "
                        "validation and test sets throughout", SIZE_RECIPES)
    size.add_argument("--sizes", type=int, nargs="+", default=SIZES,
                      help=f"training-set sizes (default: {' '.join(map(str, SIZES))})")
    size.add_argument("--draws", type=int, default=3, help="independent draws per size (each its own seed; default 3)")
    size.add_argument("--validation-size", type=int, default=SIZE_VALIDATION,
                      help=f"validation texts, a stratified subset kept the same for every size and draw (default "
                           f"{SIZE_VALIDATION}, as paper 002; 0 = the whole validation split)")
    phase1 = study_parser("phase1", "what phase 1 should be: none (cl-ft), DAE (3phase) or masked-LM (mlm-cl-ft)",
                          PHASE1_RECIPES)
    phase1.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="seeds (default 0 1 2)")
    phase1.add_argument("--train-size", type=int, default=PHASE1_TRAIN,
                        help=f"training texts, a stratified subset drawn with each seed's split (default "
                             f"{PHASE1_TRAIN}: CPU-sized; 0 = the whole training split)")
    phase1.add_argument("--validation-size", type=int, default=SIZE_VALIDATION,
                        help=f"validation texts, a stratified subset (default {SIZE_VALIDATION}; 0 = the whole "
                             f"validation split)")

    experiment = sub.add_parser("experiment", help="a grid of data sets x recipes x seeds from a YAML file",
                                description="Train every cell of a grid (resumable: finished cells are reused) "
                                "and write results.csv / results.jsonl, one row per run.")
    experiment.add_argument("--config", required=True, help="grid YAML (see configs/)")
    experiment.add_argument("--output", required=True, help="folder of the grid's runs and results")
    _add_grid_arguments(experiment)
    experiment.add_argument("--no-report", action="store_true", help="skip writing the report at the end")
    experiment.add_argument("--launcher", choices=["local", "slurm", "submitit-local"], default="local",
                            help="local (default): train the cells one by one here; slurm: submit each cell as a "
                            "Slurm job through submitit (resources from the grid file's launcher section) and wait; "
                            "submitit-local: the slurm path on this machine (for testing)")

    report = sub.add_parser("report", help="write report.md and report.html for a grid or run folder")
    report.add_argument("folder", help="a folder with results.jsonl (from experiment, run or a protocol)")

    search = sub.add_parser("search", help="Optuna hyper-parameter search (validation objective, shared studies)",
                            description="Search paper 000's Table 5 space (narrowed for CPU) or --space FILE; "
                            "writes OUT/best-config.yaml for `phasefit train --config`. Several workers may share "
                            "one --storage study.")
    _add_config_arguments(search)
    search.add_argument("--trials", type=int, required=True, help="trials in total over all workers of the study")
    search.add_argument("--output", required=True, help="folder of trial runs and best-config.yaml")
    search.add_argument("--storage", help="Optuna storage URL (default sqlite:///OUT/study.db); any RDB URL works")
    search.add_argument("--study-name", default="phasefit", help="study name inside the storage")
    search.add_argument("--space", help="YAML mapping key -> list of values (default: built-in Table 5 space)")
    search.add_argument("--metric", default="macro_f1", choices=["macro_f1", "accuracy"],
                        help="validation metric to maximise")
    search.add_argument("--overwrite", action="store_true",
                        help="let another study replace the trial folders an earlier study left in --output")
    search.add_argument("--heartbeat", type=int, default=60, metavar="SECONDS",
                        help="a training trial records a heartbeat this often; 0 turns crash recovery off")
    search.add_argument("--grace-period", type=int, metavar="SECONDS",
                        help="a RUNNING trial silent this long is a killed worker's: it is failed and re-run with "
                        "its parameters (default 2 x --heartbeat; the same in every worker)")
    search.add_argument("--max-retry", type=int, default=2,
                        help="re-runs of one configuration at most after killed workers")

    export = sub.add_parser("export", help="export a run: sentence-transformers folder + head, ONNX, model card")
    export.add_argument("run_dir", help="a run directory written by `phasefit train`")
    export.add_argument("--output", required=True, help="export folder")
    export.add_argument("--no-onnx", action="store_true", help="skip the ONNX graph")
    export.add_argument("--quantize", action="store_true",
                        help="also write model_quantized.onnx: int8 weights, faster on CPU (see docs/scaling.md)")
    export.add_argument("--overwrite", action="store_true",
                        help="replace an earlier phasefit export in --output (never any other folder)")

    sub.add_parser("recipes", help="list the recipes")
    config = sub.add_parser("config", help="print every config key with its default")
    config.add_argument("--recipe", help="print the resolved config of this recipe instead")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # never wait on the hub: models resolve locally
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    for noisy in ("httpx", "sentence_transformers", "transformers", "datasets", "filelock"):
        logging.getLogger(noisy).setLevel(logging.WARNING)

    from phasefit.errors import PhasefitError  # the base of every error a user can fix: no layer imported for it

    if args.command in {"run", "train", "evaluate", "predict", "few-shot", "noise", "transfer", "experiment", "search",
                        "select", "study"}:
        _quiet_libraries()
    from phasefit.cli_grids import COMMANDS as GRID_COMMANDS  # the commands of many runs: run, select, study, ...

    handlers = {"train": _cmd_train, "evaluate": _cmd_evaluate, "predict": _cmd_predict, "export": _cmd_export,
                "recipes": _cmd_recipes, "config": _cmd_config, **GRID_COMMANDS}
    errors = (PhasefitError, FileNotFoundError)
    try:
        return handlers[args.command](args)
    except errors as err:
        print(f"phasefit: error: {err}", file=sys.stderr)
        if args.command == "train":
            _write_error_log(Path(args.output), err)
        return EXIT_USER_ERROR
    except OSError as err:
        if err.errno != errno.ENOSPC:
            raise
        print(f"phasefit: error: disk full while writing ({err.filename or 'a run file'}); free space, then "
              "continue with `phasefit train --output DIR --resume`", file=sys.stderr)
        return EXIT_USER_ERROR


def _write_error_log(output: Path, err: Exception) -> None:
    """A failed `train` leaves only OUTPUT/error.log behind (never beside a run it did not start)."""
    try:
        if output.exists() and any(p.name != "error.log" for p in output.iterdir()):
            return
        from phasefit.io import atomic_write_text

        atomic_write_text(output / "error.log", f"{type(err).__name__}: {err}\n")
    except OSError:
        pass


def _quiet_libraries() -> None:
    """Weight-loading and shard-writing bars of transformers say nothing useful in a CLI run; keep the output
    to phasefit's own progress and results."""
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()


def _cmd_train(args: argparse.Namespace) -> int:
    from phasefit.recipes import build_config
    from phasefit.pipeline import train

    from phasefit.recipes import merge_settings

    settings = merge_settings(config_settings(args),
                              {"model.trust_remote_code": True} if args.trust_remote_code else {})
    config = build_config(args.recipe, args.config, settings=settings)
    result = train(config, args.output, overwrite=args.overwrite, resume=args.resume)
    if not result.metrics:  # another process of `accelerate launch`: the main one reports
        return 0
    print(format_run(result.metrics))
    print(f"run directory: {result.run_dir}")
    return 0


def _cmd_export(args: argparse.Namespace) -> int:
    from phasefit.export import export_run

    folder = export_run(args.run_dir, args.output, onnx=not args.no_onnx, overwrite=args.overwrite,
                        quantize=args.quantize)
    print(f"exported to {folder}: sentence-transformers encoder + head.safetensors"
          + ("" if args.no_onnx else " + model.onnx") + (" + model_quantized.onnx" if args.quantize else "")
          + " + README.md (model card)")
    return 0


def _cmd_evaluate(args: argparse.Namespace) -> int:
    import json

    from phasefit.pipeline import evaluate_split, load_run, load_run_data

    config, classifier = load_run(args.run_dir)
    if args.data:
        config = config.model_copy(update={"data": config.data.model_copy(update={"path": args.data})})
    splits = load_run_data(config)
    unknown = sorted(set(splits.label_names) - set(classifier.label_names))
    if unknown:
        from phasefit.data.errors import DataError

        raise DataError(f"{args.data}: labels {unknown[:5]} are not among the run's labels; evaluate on data with "
                        "the same label set")
    scores = evaluate_split(classifier, splits, getattr(splits, args.split))
    print(json.dumps({k: v for k, v in scores.items() if k not in {"per_class", "confusion_matrix"}}, indent=2))
    return 0


def _cmd_predict(args: argparse.Namespace) -> int:
    from phasefit.pipeline import load_run

    texts = list(args.texts)
    from pathlib import Path

    from phasefit.pipeline import selected_runs

    chosen = selected_runs(Path(args.run_dir))
    if chosen is not None and len(chosen) > 1:  # `phasefit select --ensemble` chose averaged members
        from phasefit.experiments.select import load_selected_runs

        classifier = load_selected_runs(chosen)
    else:
        _, classifier = load_run(args.run_dir)
    pairs = None
    if classifier.text_pairs:
        if texts or not args.input:
            from phasefit.errors import ConfigError

            raise ConfigError("this run was trained on text pairs: give them as --input TABLE with columns "
                              f"{args.text_column!r} and {args.text_pair_column!r} (--text-column, "
                              "--text-pair-column)")
        from phasefit.data import read_texts

        texts, pairs = read_texts(args.input, args.text_column), read_texts(args.input, args.text_pair_column)
    elif args.input:
        from phasefit.data import read_texts

        texts += read_texts(args.input, args.text_column)
    if not texts:
        from phasefit.errors import ConfigError

        raise ConfigError("give texts as arguments or --input FILE")
    probabilities = classifier.predict_proba(texts, pairs)
    labels = [classifier.label_names[i] for i in probabilities.argmax(axis=1)]
    if args.output:
        import pandas as pd

        from phasefit.io import atomic_write_text

        columns = {"text": texts, **({"text_pair": pairs} if pairs is not None else {}), "label": labels,
                   "probability": probabilities.max(axis=1).round(4)}
        frame = pd.DataFrame(columns)
        atomic_write_text(Path(args.output), frame.to_csv(index=False))
        print(f"wrote {len(texts)} predictions to {args.output}")
    else:
        for label in labels:
            print(label)
    return 0


def _cmd_recipes(args: argparse.Namespace) -> int:
    from phasefit.recipes import RECIPE_HELP, RECIPES

    for name in RECIPES:
        print(f"{name:<18} {' -> '.join(RECIPES[name]['phases']):<16} {RECIPE_HELP[name]}")
    return 0


def _cmd_config(args: argparse.Namespace) -> int:
    from phasefit.config import describe_config
    from phasefit.recipes import build_config

    if args.recipe:
        import yaml

        print(yaml.safe_dump(build_config(args.recipe).to_dict(), sort_keys=False))
    else:
        print(describe_config())
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
