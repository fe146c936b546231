"""The committed runs of issue 13's studies (docs/findings.md): each one a `phasefit study` command, resumable
across machines and sessions.

    python benchmarks/studies/run.py NAME [NAME ...]     # restore, run (resumes), publish
    python benchmarks/studies/run.py --publish NAME ...  # publish what runs/studies/NAME holds now
    python benchmarks/studies/run.py --list

A study trains into runs/studies/NAME (ignored by git). Publishing copies its results.csv, report.md and the report's
plots to benchmarks/studies/NAME/, with each finished cell's small files (metrics, config, split row ids,
fingerprint; no weights) under benchmarks/studies/NAME/runs/. Before a study runs, those are restored into
runs/studies/NAME, so a fresh checkout continues where the last one stopped; a restored cell is reused only when its
config and data fingerprints match, like any grid cell. Run one study at a time (2 CPU cores).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
OUT = Path("runs/studies")  # relative to ROOT, so the data paths in the cells' configs are the same everywhere
SST2 = OUT / "data" / "sst2"  # SST-2's train split, with the GLUE dev set (872 sentences) as the test set

CPU = ["--quiet", "--set", "plots=false"]
IMBALANCE = ["--recipes", "ft", "ft-balanced", "3phase", "3phase-no-imb", "3phase-extra-imb"]
STUDIES: dict[str, list[str]] = {
    "imbalance-snips7": ["imbalance", "--data", "../shared/data/snips7_goo", *IMBALANCE, "--largest", "20", "--ratios", "1", "5",
                         "20", "--seeds", "0", "1", "2", *CPU, "--set", "data.max_length=32",
                         "--set", "data.max_validation_examples=200"],
    # the summary paper's "e.g., 100:1": the largest class 100 examples, the rarest 1
    "imbalance-snips7-100": ["imbalance", "--data", "../shared/data/snips7_goo", *IMBALANCE, "--largest", "100", "--ratios", "100",
                             "--seeds", "0", "1", "2", *CPU, "--set", "data.max_length=32",
                             "--set", "data.max_validation_examples=200"],
    "phase1-snips": ["phase1", "--data", "builtin:snips", "--seeds", "0", "1", "2", "--train-size", "0",
                     "--validation-size", "0", *CPU, "--set", "data.test_fraction=0.2", "--set", "data.max_length=48"],
    "size-sst2": ["size", "--data", str(SST2), "--recipes", "ft", "scl", "3phase", "setfit", "--sizes", "20", "50",
                  "100", "200", "--draws", "3", "--validation-size", "200", *CPU, "--set", "data.max_length=64",
                  "--set", "setfit.num_iterations=5"],
    "imbalance-sst5": ["imbalance", "--data", "../shared/data/sst5", *IMBALANCE, "--largest", "20", "--ratios", "1", "5", "20",
                       "--seeds", "0", "1", "2", *CPU, "--set", "data.max_length=64",
                       "--set", "data.max_validation_examples=200"],
    "phase1-sst2-100": ["phase1", "--data", str(SST2), "--seeds", "0", "1", "2", "--train-size", "0",
                        "--validation-size", "200", *CPU, "--set", "data.few_shot_n=100", "--set", "data.split_seed=0",
                        "--set", "data.max_length=64"],
}


def command(name: str) -> str:
    """The study's command line, as docs/findings.md shows it."""
    return " ".join(["phasefit", "study", *STUDIES[name], "--output", str(OUT / name)])


def prepare_data() -> None:
    SST2.mkdir(parents=True, exist_ok=True)
    for name, source in (("train.csv", "train.csv"), ("test.csv", "validation.csv")):
        link = SST2 / name
        if not link.exists():
            link.symlink_to((ROOT.parent / "shared" / "data" / "sst2" / source).resolve())


def publish(name: str) -> int:
    from phasefit.experiments.grid import publish_cells

    output, target = OUT / name, HERE / name
    if not (output / "results.csv").is_file():
        raise SystemExit(f"{output} has no results.csv: run the study first")
    count = publish_cells(output, target / "runs")
    for file in ("results.csv", "report.md"):
        if (output / file).is_file():
            shutil.copy2(output / file, target / file)
    if (output / "report_files").is_dir():
        shutil.rmtree(target / "report_files", ignore_errors=True)  # ours: the previous publication's plots
        shutil.copytree(output / "report_files", target / "report_files")
    return count


def run(name: str) -> int:
    from phasefit.cli import main as phasefit
    from phasefit.experiments.grid import restore_cells

    prepare_data()
    restored = restore_cells(HERE / name / "runs", OUT / name)
    print(f"{name}: restored {restored} finished cells from {HERE / name / 'runs'}", flush=True)
    code = phasefit(["study", *STUDIES[name], "--output", str(OUT / name)])
    if (OUT / name / "results.csv").is_file():
        print(f"{name}: published {publish(name)} cells to {HERE / name}", flush=True)
    return code


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("names", nargs="*", metavar="NAME", help=", ".join(STUDIES))
    parser.add_argument("--publish", action="store_true", help="only publish what runs/studies/NAME holds")
    parser.add_argument("--list", action="store_true", help="print each study's command")
    parser.add_argument("--root", type=Path, help="the checkout to run in and publish to (default: this file's; "
                        "for running a snapshot of this script against the working checkout)")
    args = parser.parse_args(argv)
    if args.root is not None:
        global HERE, ROOT
        ROOT = args.root.resolve()
        HERE = ROOT / "benchmarks" / "studies"
    unknown = [name for name in args.names if name not in STUDIES]
    if unknown:
        parser.error(f"unknown study {', '.join(unknown)}; studies: {', '.join(STUDIES)}")
    os.chdir(ROOT)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if args.list:
        print("\n".join(f"{name}: {command(name)}" for name in STUDIES))
        return 0
    for name in args.names:
        if args.publish:
            print(f"{name}: published {publish(name)} cells to {HERE / name}")
        elif run(name) != 0:
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
