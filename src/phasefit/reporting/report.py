"""``phasefit report DIR``: tables shaped like paper 000's, per-phase cost, paired tests and plots.

Reads only ``DIR/results.jsonl`` and the run directories it names, and writes ``report.md`` (images beside it in
``report_files/``) and ``report.html`` (the same content, images embedded, no external requests). Every number is
a mean ± sample std over the runs (seeds) of a cell, with the count; "best" marks the highest mean in a row.
Representative plots come from the run with the best *validation* accuracy, never a test-selected one.
"""

from __future__ import annotations

import base64
import html
import json
import os
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from phasefit.io import atomic_write_text
from phasefit.results import flatten_metrics, group_rows, read_results

ABLATION_RECIPES = ["3phase", "joint", "dae-ft", "cl-ft", "ft", "3phase-no-imb", "3phase-extra-imb"]


@dataclass
class Table:
    header: list[str]
    rows: list[list[str]]
    bold: set[tuple[int, int]] = field(default_factory=set)  # (row, column) cells to emphasise


@dataclass
class Block:
    kind: str  # heading | text | table | image
    content: Any
    caption: str = ""


def _fmt(values: Sequence[float], scale: float = 100.0, digits: int = 2) -> str:
    values = [v for v in values if v is not None]
    if not values:
        return "–"
    mean = statistics.fmean(values) * scale
    std = statistics.stdev(values) * scale if len(values) > 1 else 0.0
    return f"{mean:.{digits}f} ± {std:.{digits}f} (n={len(values)})"


def _ordered(values: Sequence[Any]) -> list[Any]:
    return list(dict.fromkeys(values))


def metric_table(rows: Sequence[dict[str, Any]], metric: str, recipes: Sequence[str]) -> Table:
    """Data set x recipe of ``metric`` (in %), best mean per data set in bold."""
    datasets = _ordered(r["dataset"] for r in rows)
    groups = group_rows(rows, "dataset", "recipe")
    table = Table(["data set", *recipes], [])
    for i, dataset in enumerate(datasets):
        cells, means = [dataset], []
        for recipe in recipes:
            members = groups.get((dataset, recipe), [])
            cells.append(_fmt([m[metric] for m in members]))
            means.append(statistics.fmean(m[metric] for m in members) if members else float("-inf"))
        if any(m > float("-inf") for m in means):
            table.bold.add((i, 1 + int(np.argmax(means))))
        table.rows.append(cells)
    return table


def cost_table(rows: Sequence[dict[str, Any]]) -> Table:
    table = Table(["data set", "recipe", "phase", "minutes", "examples / s", "peak memory (MB)",
                   "trainable parameters", "val k-NN acc. after phase (%)"], [])
    for (dataset, recipe), members in group_rows(rows, "dataset", "recipe").items():
        initial = [m["initial_validation_knn_accuracy"] for m in members if m.get("initial_validation_knn_accuracy") is not None]
        if initial:
            table.rows.append([dataset, recipe, "(pre-trained)", "–", "–", "–", "–", f"{statistics.fmean(initial) * 100:,.2f}"])
        if not members[0]["phases"]:  # a peer (setfit, probe): no phases, one whole-run time
            minutes = statistics.fmean(m["total_seconds"] for m in members) / 60
            table.rows.append([dataset, recipe, "(whole run)", f"{minutes:,.2f}", "–", "–", "–", "–"])
            continue
        for phase in members[0]["phases"].split("+"):
            def mean(key: str, scale: float = 1.0) -> str:
                values = [m.get(f"{phase}_{key}") for m in members if m.get(f"{phase}_{key}") is not None]
                return f"{statistics.fmean(values) * scale:,.2f}" if values else "–"

            table.rows.append([dataset, recipe, phase, mean("seconds", 1 / 60), mean("examples_per_second"),
                               mean("peak_memory_mb"), mean("trainable_parameters").split(".")[0],
                               mean("validation_knn_accuracy", 100)])
    return table


def paired_table(rows: Sequence[dict[str, Any]], baseline: str = "ft", metric: str = "test_accuracy") -> Table | None:
    """Each recipe against ``baseline`` on the seeds both ran (same seed = same split and initialisation)."""
    from phasefit.evaluation.stats import paired

    table = Table(["data set", "recipe", f"vs {baseline}: shared seeds", "mean difference (points)",
                   "std of differences", "paired t-test p", "reading"], [])
    groups = group_rows(rows, "dataset", "recipe", "variant")
    for (dataset, recipe, variant), members in groups.items():
        if recipe == baseline:
            continue
        base = {m["seed"]: m[metric] for m in groups.get((dataset, baseline, variant), []) if m.get(metric) is not None}
        result = paired({m["seed"]: m[metric] for m in members if m.get(metric) is not None}, base, scale=100)
        if result is None:
            continue
        reading = result.reading()
        reading = {"better": "better than baseline", "worse": "worse than baseline"}.get(reading, reading)
        name = recipe if variant in (None, "default") else f"{recipe} ({variant})"
        table.rows.append([dataset, name, str(result.n), f"{result.mean:+.2f}",
                           "–" if result.std is None else f"{result.std:.2f}",
                           "–" if result.p_ttest is None else f"{result.p_ttest:.3f}", reading])
    return table if table.rows else None


# ------------------------------------------------------------------------------------------------------------------
# Plots


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _finish(fig: Any, path: Path, figures: dict[str, Any] | None, caption: str) -> Path:
    """Save ``fig`` to ``path``; keep it open in ``figures`` (the Python API returns them) or close it."""
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    if figures is not None:
        figures[caption] = fig
    else:
        _pyplot().close(fig)
    return path


def bar_chart(rows: Sequence[dict[str, Any]], path: Path, metric: str = "test_accuracy", *,
              figures: dict[str, Any] | None = None, caption: str = "accuracy") -> Path:
    plt = _pyplot()
    datasets = _ordered(r["dataset"] for r in rows)
    recipes = _ordered(r["recipe"] for r in rows)
    groups = group_rows(rows, "dataset", "recipe")
    width = 0.8 / max(1, len(recipes))
    fig, ax = plt.subplots(figsize=(max(5, 1.6 * len(datasets) * max(1, len(recipes)) / 2), 4))
    for j, recipe in enumerate(recipes):
        means, stds = [], []
        for dataset in datasets:
            values = [100 * m[metric] for m in groups.get((dataset, recipe), [])]
            means.append(statistics.fmean(values) if values else 0)
            stds.append(statistics.stdev(values) if len(values) > 1 else 0)
        ax.bar(np.arange(len(datasets)) + j * width, means, width, yerr=stds, capsize=3, label=recipe)
    ax.set_xticks(np.arange(len(datasets)) + width * (len(recipes) - 1) / 2, datasets)
    ax.set_ylabel(f"{metric.replace('_', ' ')} (%), mean ± std over seeds")
    low = min((100 * r[metric] for r in rows), default=0)
    ax.set_ylim(max(0, low - 10), 100)
    ax.legend(fontsize=8, ncol=2)
    return _finish(fig, path, figures, caption)


def curves_plot(run_dir: Path, path: Path, *, figures: dict[str, Any] | None = None,
                caption: str = "curves") -> Path | None:
    """Training loss per phase (by step) and, for the FT phase, validation scores per epoch."""
    files = sorted((run_dir / "curves").glob("*.json"), key=lambda p: int(p.name.split("-")[0]))
    if not files:
        return None
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(files), figsize=(4 * len(files), 3.3), squeeze=False)
    for ax, file in zip(axes[0], files):
        history = json.loads(file.read_text())
        steps = [(h["step"], h["loss"]) for h in history if "loss" in h and "step" in h]
        if steps:
            ax.plot(*zip(*steps), label="training loss", color="tab:blue")
        ax.set_xlabel("step")
        ax.set_title(file.stem.split("-", 1)[1])
        evals = [(h["step"], h["eval_macro_f1"]) for h in history if "eval_macro_f1" in h]
        if evals:
            twin = ax.twinx()
            twin.plot(*zip(*evals), marker="o", color="tab:orange", label="validation macro-F1")
            twin.set_ylim(0, 1.02)
            twin.legend(loc="center right", fontsize=7)
        ax.legend(loc="upper right", fontsize=7)
    return _finish(fig, path, figures, caption)


# ------------------------------------------------------------------------------------------------------------------
# The report


# ------------------------------------------------------------------------------------------------------------------
# Studies (phasefit study imbalance | size | phase1): curves against the study's x value

# The x value of each study: the tag its rows carry (phasefit.experiments.studies writes them) and its axis label.
STUDY_AXES = {"imbalance": ("ratio", "largest:smallest class size"), "size": ("n", "training examples"),
              "phase1": (None, None)}

STUDY_METRICS = {
    "imbalance": [("test_accuracy", "test accuracy (%)"), ("test_macro_f1", "test macro-F1 (%)"),
                  ("test_rare_class_recall", "test recall of the rare classes (%)")],
    "size": [("test_accuracy", "test accuracy (%)"), ("test_macro_f1", "test macro-F1 (%)"),
             ("total_seconds", "minutes per run")],
}


# Each study's paired comparison: the reference recipe and the metrics its differences are taken on.
STUDY_PAIRED = {
    "imbalance": ("ft", [("test_macro_f1", "test macro-F1"), ("test_rare_class_recall", "test recall of the rare "
                                                                                         "classes")]),
    "size": ("ft", []),  # test accuracy: the report's general paired table already pairs each size with ft
    "phase1": ("cl-ft", [("test_accuracy", "test accuracy"), ("cl_validation_knn_accuracy",
                                                              "validation k-NN accuracy after CL")]),
}


def _study_value(row: dict[str, Any], metric: str) -> float | None:
    value = row.get(metric)
    if value is None:
        return None
    return value / 60 if metric == "total_seconds" else 100 * value


def study_table(rows: Sequence[dict[str, Any]], axis: str, metric: str) -> Table:
    """x value x recipe of ``metric``, mean ± std (n) over seeds/draws; best mean per row in bold."""
    recipes = _ordered(r["recipe"] for r in rows)
    groups = group_rows(rows, axis, "recipe")
    xs = sorted({r[axis] for r in rows})
    table = Table([axis, *recipes], [])
    for i, x in enumerate(xs):
        cells, means = [f"{x:g}"], []
        for recipe in recipes:
            values = [v for m in groups.get((x, recipe), []) if (v := _study_value(m, metric)) is not None]
            cells.append(_fmt(values, scale=1.0))
            means.append(statistics.fmean(values) if values else float("-inf"))
        if metric != "total_seconds" and any(m > float("-inf") for m in means):
            table.bold.add((i, 1 + int(np.argmax(means))))
        table.rows.append(cells)
    return table


def study_plot(rows: Sequence[dict[str, Any]], study: str, axis: str, xlabel: str, path: Path, *,
               figures: dict[str, Any] | None = None) -> Path:
    """One panel per metric of the study, a line per recipe (mean over seeds, band = ± std), log x axis."""
    plt = _pyplot()
    metrics = STUDY_METRICS[study]
    fig, axes = plt.subplots(1, len(metrics), figsize=(4.2 * len(metrics), 3.6), squeeze=False)
    groups = group_rows(rows, "recipe", axis)
    for recipe in _ordered(r["recipe"] for r in rows):
        xs = sorted({r[axis] for r in rows if r["recipe"] == recipe})
        for ax, (metric, label) in zip(axes[0], metrics):
            points = [(x, [v for m in groups[(recipe, x)] if (v := _study_value(m, metric)) is not None]) for x in xs]
            points = [(x, values) for x, values in points if values]
            if not points:
                continue
            mean = np.array([statistics.fmean(v) for _, v in points])
            std = np.array([statistics.stdev(v) if len(v) > 1 else 0.0 for _, v in points])
            x = [p[0] for p in points]
            ax.plot(x, mean, marker="o", label=recipe)
            ax.fill_between(x, mean - std, mean + std, alpha=0.15)
            ax.set_xlabel(xlabel)
            ax.set_ylabel(label)
    ticks = sorted({r[axis] for r in rows})
    for ax in axes[0]:  # log x, ticked at the study's own values ("20", not "2 x 10^1")
        ax.set_xscale("log")
        ax.set_xticks(ticks, [f"{t:g}" for t in ticks])
        ax.minorticks_off()
    axes[0][0].legend(fontsize=8)
    return _finish(fig, path, figures, f"{study} study")


def study_blocks(rows: Sequence[dict[str, Any]], files: Path, figures: dict[str, Any] | None = None) -> list[Block]:
    """The study section of a report: per-x tables and the curves (imbalance, size), or the phase-1 table."""
    study = rows[0]["study"]
    axis, xlabel = STUDY_AXES[study]
    if axis is None:  # phase1: final scores next to the embedding quality after each phase
        blocks = [Block("heading", "Phase-1 study: final accuracy and validation k-NN accuracy after each phase"),
                  Block("text", "k-NN accuracy of the validation embeddings (reference: the training split) before "
                                "training and after each phase; does phase 1 help the space that CL then shapes?"),
                  Block("table", phase1_table(rows)),
                  Block("image", phase1_plot(rows, files / "study_phase1.png", figures=figures),
                        "phase1 study: validation k-NN accuracy after each stage, mean over seeds, bars ± std")]
    else:
        seeds = "draws" if study == "size" else "seeds"
        blocks = [Block("heading", f"{study.capitalize()} study: curves against {xlabel}"),
                  Block("image", study_plot(rows, study, axis, xlabel, files / f"study_{study}.png", figures=figures),
                        f"{study} study: mean over {seeds}, band ± std")]
        for metric, label in STUDY_METRICS[study]:
            blocks += [Block("table", study_table(rows, axis, metric), f"{label}, mean ± std over {seeds}")]
    baseline, metrics = STUDY_PAIRED[study]
    for metric, label in metrics:
        table = paired_table(rows, baseline=baseline, metric=metric)
        if table is not None:
            blocks += [Block("table", table, f"{label}: each recipe minus {baseline}, paired by seed (the same rows "
                                             "and initial head) within each data set")]
    return blocks


# The stages of a phase-1 run whose validation k-NN accuracy the study follows; None = the recipe's phase 1.
PHASE1_STAGES = [("pre-trained", "initial_validation_knn_accuracy"), ("phase 1", None),
                 ("CL", "cl_validation_knn_accuracy"), ("FT", "ft_validation_knn_accuracy")]


def _phase1_knn(members: Sequence[dict[str, Any]]) -> list[list[float]]:
    """Per stage of :data:`PHASE1_STAGES`, the validation k-NN accuracies of ``members`` (runs of one recipe)."""
    phases = members[0]["phases"].split("+")
    first = phases[0] if phases[0] != "cl" and len(phases) > 1 else None  # cl-ft has no phase 1
    keys = [key if key is not None else first and f"{first}_validation_knn_accuracy" for _, key in PHASE1_STAGES]
    return [[m[key] for m in members if key and m.get(key) is not None] for key in keys]


def phase1_table(rows: Sequence[dict[str, Any]]) -> Table:
    table = Table(["data set", "recipe", "k-NN before", "k-NN after phase 1", "k-NN after CL", "k-NN after FT",
                   "test accuracy", "test macro-F1", "minutes"], [])
    for (dataset, recipe), members in group_rows(rows, "dataset", "recipe").items():
        scores = [[m[key] for m in members if m.get(key) is not None]
                  for key in ("test_accuracy", "test_macro_f1")]
        table.rows.append([dataset, recipe, *map(_fmt, _phase1_knn(members)), *map(_fmt, scores),
                           _fmt([m["total_seconds"] for m in members], scale=1 / 60)])
    return table


def phase1_plot(rows: Sequence[dict[str, Any]], path: Path, *, figures: dict[str, Any] | None = None) -> Path:
    """One panel per data set: each recipe's validation k-NN accuracy after each stage (a recipe without phase 1
    skips that stage), mean over seeds with ± std bars; does phase 1 help the space that CL then shapes?"""
    plt = _pyplot()
    datasets = _ordered(r["dataset"] for r in rows)
    groups = group_rows(rows, "dataset", "recipe")
    fig, axes = plt.subplots(1, len(datasets), figsize=(4.6 * len(datasets), 3.6), squeeze=False)
    for ax, dataset in zip(axes[0], datasets):
        recipes = _ordered(r["recipe"] for r in rows if r["dataset"] == dataset)
        for j, recipe in enumerate(recipes):
            points = [(i, v) for i, v in enumerate(_phase1_knn(groups[(dataset, recipe)])) if v]
            x = np.array([i for i, _ in points]) + 0.06 * (j - (len(recipes) - 1) / 2)  # side by side, not hidden
            mean = [100 * statistics.fmean(v) for _, v in points]
            std = [100 * statistics.stdev(v) if len(v) > 1 else 0.0 for _, v in points]
            ax.errorbar(x, mean, yerr=std, marker="o", capsize=3, label=recipe)
        ax.set_xticks(range(len(PHASE1_STAGES)), [stage for stage, _ in PHASE1_STAGES])
        ax.set_xlabel("after stage")
        ax.set_ylabel("validation k-NN accuracy (%)")
        ax.set_title(str(dataset))
        ax.legend(fontsize=8)
    return _finish(fig, path, figures, "phase1 study")


def run_rows(run_dirs: Sequence[str | Path]) -> list[dict[str, Any]]:
    """Result rows (as a grid's ``results.jsonl`` holds them) of finished run directories."""
    rows = []
    for run_dir in run_dirs:
        metrics_file = Path(run_dir) / "metrics.json"
        if not metrics_file.is_file():
            raise FileNotFoundError(f"{run_dir} holds no finished run (no metrics.json); pass finished run folders")
        rows.append({"cell": str(Path(run_dir).resolve()),
                     **flatten_metrics(json.loads(metrics_file.read_text(encoding="utf-8")))})
    return rows


def build_report(output: Path, rows: list[dict[str, Any]] | None = None,
                 figures: dict[str, Any] | None = None) -> list[Block]:
    """The report's blocks for the runs of a grid folder (or ``rows``); figures drawn here are kept open in
    ``figures`` when given."""
    rows = read_results(output) if rows is None else rows
    for row in rows:
        row.setdefault("dataset", Path(str(row.get("data"))).name)
        row.setdefault("variant", "default")
    files = output / "report_files"
    files.mkdir(exist_ok=True)
    recipes = _ordered(r["recipe"] for r in rows)
    seeds = sorted({r["seed"] for r in rows})
    # Runs made with evaluate_test=false have no test scores: the report then shows validation scores, and says so.
    split = "test" if all(r.get("test_accuracy") is not None for r in rows) else "validation"
    scored = ("Values are test-set scores in %" if split == "test" else
              "Some runs have no test scores (evaluate_test=false), so values are VALIDATION scores in %")
    blocks = [
        Block("heading", "phasefit report"),
        Block("text", f"{len(rows)} runs from `{output}`: data sets {', '.join(_ordered(r['dataset'] for r in rows))}; "
                      f"recipes {', '.join(recipes)}; seeds {seeds}. {scored}, mean ± sample "
                      "std over seeds (n = runs); bold = best mean of the row. Selection and early stopping used "
                      "validation only; each test set was scored once per run."),
        Block("heading", "Accuracy (paper 000 Table 3)"),
        Block("table", metric_table(rows, f"{split}_accuracy", recipes)),
    ]
    if rows[0].get("study"):
        blocks[2:2] = study_blocks(rows, files, figures)
    ablation = [r for r in ABLATION_RECIPES if r in recipes]
    if set(ablation) - {"3phase", "ft"}:  # otherwise it would repeat Table 3
        blocks += [Block("heading", "Ablation (paper 000 Table 4), accuracy"),
                   Block("table", metric_table(rows, f"{split}_accuracy", ablation))]
    blocks += [
        Block("heading", "Macro precision and recall (paper 000 Table 6)"),
        Block("table", metric_table(rows, f"{split}_macro_precision", recipes), "precision"),
        Block("table", metric_table(rows, f"{split}_macro_recall", recipes), "recall"),
        Block("heading", "Macro F1 (paper 000 Table 7)"),
        Block("table", metric_table(rows, f"{split}_macro_f1", recipes)),
    ]
    paired = paired_table(rows, metric=f"{split}_accuracy")
    if paired is not None:
        blocks += [Block("heading", "Is the gain beyond seed noise? Paired comparison with ft"),
                   Block("text", f"Same seed = same split and same initial head; differences in {split} accuracy "
                                 "points; a two-sided paired t-test over the shared seeds. No reading is given "
                                 "below 3 shared seeds, and with 3 only large, consistent differences reach "
                                 "p < 0.05."),
                   Block("table", paired)]
    blocks += [Block("heading", "Cost per phase (mean over seeds)"),
               Block("text", "Peak memory is the process's peak resident memory on CPU (it never decreases within "
                             "a run) or the peak allocated GPU memory. Examples are texts for DAE/FT and pairs for CL."),
               Block("table", cost_table(rows)),
               Block("heading", "Plots"),
               Block("image", bar_chart(rows, files / "accuracy_bars.png", metric=f"{split}_accuracy", figures=figures,
                                        caption=f"{split} accuracy by recipe"),
                     f"{split} accuracy by recipe (error bars: std over seeds)")]
    for (dataset,), members in group_rows(rows, "dataset").items():
        for (recipe,), runs in group_rows(members, "recipe").items():
            best = max(runs, key=lambda r: r["validation_accuracy"])
            run_dir = output / best["cell"]
            label = f"{dataset} / {recipe}, seed {best['seed']} (best validation accuracy of {len(runs)})"
            if (run_dir / "embeddings.png").is_file():
                blocks.append(Block("image", run_dir / "embeddings.png", f"embeddings after each phase: {label}"))
            curves = curves_plot(run_dir, files / f"curves-{dataset}-{recipe}.png".replace("/", "_"),
                                 figures=figures, caption=f"curves: {dataset} / {recipe}")
            if curves is not None:
                blocks.append(Block("image", curves, f"training and validation curves: {label}"))
        best = max(members, key=lambda r: r["validation_accuracy"])
        if (output / best["cell"] / "confusion_matrix.png").is_file():
            blocks.append(Block("image", output / best["cell"] / "confusion_matrix.png",
                                f"{dataset}: test confusion matrix of the best run by validation ({best['cell']})"))
    return blocks


def _md_table(table: Table) -> str:
    lines = ["| " + " | ".join(table.header) + " |", "|" + "---|" * len(table.header)]
    for i, row in enumerate(table.rows):
        cells = [f"**{c}**" if (i, j) in table.bold else c for j, c in enumerate(row)]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _html_table(table: Table) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in table.header)
    body = []
    for i, row in enumerate(table.rows):
        cells = "".join(f"<td><b>{html.escape(c)}</b></td>" if (i, j) in table.bold else f"<td>{html.escape(c)}</td>"
                        for j, c in enumerate(row))
        body.append(f"<tr>{cells}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


_CSS = """body{font-family:system-ui,sans-serif;max-width:1200px;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:1em 0;font-size:14px}td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}
td:first-child,th:first-child{text-align:left}th{background:#f3f3f3}figure{margin:1.5em 0}img{max-width:100%}
figcaption{font-size:13px;color:#555}code{background:#f3f3f3;padding:1px 4px}"""


def write_report(output: str | Path, rows: list[dict[str, Any]] | None = None,
                 figures: dict[str, Any] | None = None) -> tuple[Path, Path]:
    """Write ``report.md`` and the self-contained ``report.html`` for a grid folder (or for ``rows`` into
    ``output``); returns both paths."""
    return render_report(Path(output), build_report(Path(output), rows, figures))


def render_report(output: Path, blocks: list[Block]) -> tuple[Path, Path]:
    """``report.md`` and ``report.html`` of ``blocks`` in ``output``."""
    md, body = [], []
    for block in blocks:
        if block.kind == "heading":
            level = "#" if block is blocks[0] else "##"
            md.append(f"{level} {block.content}")
            body.append(f"<h{len(level)}>{html.escape(block.content)}</h{len(level)}>")
        elif block.kind == "text":
            md.append(block.content)
            body.append(f"<p>{html.escape(block.content)}</p>")
        elif block.kind == "table":
            md.append((f"*{block.caption}*\n\n" if block.caption else "") + _md_table(block.content))
            body.append((f"<p><i>{html.escape(block.caption)}</i></p>" if block.caption else "")
                        + _html_table(block.content))
        elif block.kind == "image":
            image = Path(block.content)
            link = Path(os.path.relpath(image.resolve(), output.resolve())).as_posix()  # runs may lie outside output
            md.append(f"![{block.caption}]({link})\n\n*{block.caption}*")
            data = base64.b64encode(image.read_bytes()).decode("ascii")
            body.append(f'<figure><img alt="{html.escape(block.caption)}" src="data:image/png;base64,{data}">'
                        f"<figcaption>{html.escape(block.caption)}</figcaption></figure>")
    md_path, html_path = output / "report.md", output / "report.html"
    atomic_write_text(md_path, "\n\n".join(md) + "\n")
    page = (f"<!DOCTYPE html><html lang=en><head><meta charset=utf-8><title>phasefit report</title>"
            f"<style>{_CSS}</style></head><body>{''.join(body)}</body></html>\n")
    atomic_write_text(html_path, page)
    return md_path, html_path


@dataclass
class Report:
    """What :func:`report` returns: the tables as pandas DataFrames and the figures as matplotlib ``Figure``
    objects (both keyed by caption), and the files it wrote."""

    tables: dict[str, Any]
    figures: dict[str, Any]
    markdown: Path
    html: Path

    def _repr_html_(self) -> str:  # a notebook shows the tables
        return "".join(f"<h4>{html.escape(name)}</h4>{frame.to_html()}" for name, frame in self.tables.items())


def report(runs: str | Path | Sequence[str | Path], output: str | Path | None = None) -> Report:
    """Tables and figures of a set of runs, as objects and as ``report.md`` + ``report.html``.

    Args:
        runs: a grid folder (``phasefit run``, ``experiment``, a protocol: it holds ``results.jsonl``), or a list of
            finished run directories (``phasefit.train``'s ``clf.run.run_dir``, ``phasefit train --output``).
        output: where ``report.md``/``report.html`` go (default: the grid folder; required for a list of runs).

    Returns:
        A :class:`Report`: ``tables`` (caption -> DataFrame, values as printed, mean ± std (n)), ``figures``
        (caption -> matplotlib Figure), and the paths ``markdown`` and ``html``.

    Example:
        >>> rep = phasefit.report(["runs/a", "runs/b"], output="reports/ab")   # doctest: +SKIP
        >>> rep.tables["Accuracy (paper 000 Table 3)"]                          # doctest: +SKIP
    """
    import pandas as pd

    if isinstance(runs, (str, Path)):
        folder, rows = Path(runs), None
        output = Path(output) if output is not None else folder
        if output != folder:
            rows = read_results(folder)
            for row in rows:
                row["cell"] = str((folder / row["cell"]).resolve())
    else:
        if output is None:
            from phasefit.errors import ConfigError

            raise ConfigError("report(list of runs) needs output=, the folder for report.md and report.html")
        output, rows = Path(output), run_rows(list(runs))
    output.mkdir(parents=True, exist_ok=True)
    figures: dict[str, Any] = {}
    blocks = build_report(output, rows, figures)
    md_path, html_path = render_report(output, blocks)
    tables: dict[str, Any] = {}
    heading = ""
    for block in blocks:
        if block.kind == "heading":
            heading = block.content
        elif block.kind == "table":
            name = heading + (f" ({block.caption})" if block.caption else "")
            tables[name] = pd.DataFrame(block.content.rows, columns=block.content.header)
    return Report(tables, figures, md_path, html_path)
