"""The experimental protocols of paper 002 (Gunel et al.), as grids of ordinary runs.

* Few-shot (§4.1): N labelled examples drawn with the training label distribution, D draws, S seeds each; report
  mean ± std of test accuracy over all runs, and, labelled as such, the paper's "top-3 by validation" figure (mean
  test accuracy of the 3 runs with the best validation accuracy). The validation set is a small separate draw
  (paper: about 500 examples of the original validation set).
* Noise robustness (§4.2): the few-shot training set plus noisy copies at several levels. Back-translation is not
  available offline, so the copies get word-level noise (:func:`phasefit.data.noise.word_noise`), whose level plays
  the role of the paper's sampling temperature.
* Transfer (§5.4): train on a source task, then few-shot fine-tune on a related target from the source encoder,
  with and without the SCL term, beside the same target runs from the plain pre-trained encoder.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from phasefit.config import ConfigError
from phasefit.experiments.compare import mean_std
from phasefit.experiments.grid import Cell, Progress, run_cells
from phasefit.io import atomic_write_text
from phasefit.results import group_rows


def few_shot_cells(recipes: Sequence[str], sizes: Sequence[int], draws: int, seeds: Sequence[int],
                   validation_size: int | None, extra: dict[str, Any] | None = None, prefix: str = "",
                   tags: dict[str, Any] | None = None) -> list[Cell]:
    cells = []
    for n in sizes:
        for recipe in recipes:
            for draw in range(draws):
                for seed in seeds:
                    settings = {"data.few_shot_n": n, "data.few_shot_seed": draw, "seed": seed, **(extra or {})}
                    if validation_size:
                        settings["data.max_validation_examples"] = validation_size
                    cells.append(Cell(f"{prefix}n{n}/{recipe}/draw-{draw}-seed-{seed}", recipe, settings,
                                      {"n": n, "draw": draw, "seed": seed, **(tags or {})}))
    return cells


def summarise_few_shot(rows: Sequence[dict[str, Any]], by: Sequence[str] = ("n", "recipe"), top: int = 3) -> list[dict[str, Any]]:
    out = []
    for values, members in group_rows(rows, *by).items():
        accuracy, accuracy_std = mean_std([m["test_accuracy"] for m in members])
        f1, f1_std = mean_std([m["test_macro_f1"] for m in members])
        best = sorted(members, key=lambda m: m["validation_accuracy"], reverse=True)[:top]
        top_mean, top_std = mean_std([m["test_accuracy"] for m in best])
        minutes, _ = mean_std([m["total_seconds"] / 60 for m in members])
        out.append({**dict(zip(by, values)), "runs": len(members), "test_accuracy": accuracy,
                    "test_accuracy_std": accuracy_std, "test_macro_f1": f1, "test_macro_f1_std": f1_std,
                    f"top{top}_by_validation_test_accuracy": top_mean, f"top{top}_std": top_std,
                    "minutes": minutes})
    return out


def format_few_shot(summary: Sequence[dict[str, Any]], by: Sequence[str] = ("n", "recipe"), top: int = 3) -> str:
    head = " | ".join(by)
    lines = [f"| {head} | runs | test accuracy (mean ± std, all runs) | test macro-F1 | "
             f"test accuracy of the top-{top} runs by validation (paper 002's protocol) | minutes / run |",
             "|" + "---|" * (len(by) + 5)]
    for e in summary:
        keys = " | ".join(str(e[k]) for k in by)
        lines.append(f"| {keys} | {e['runs']} | {e['test_accuracy']:.4f} ± {e['test_accuracy_std']:.4f} "
                     f"| {e['test_macro_f1']:.4f} ± {e['test_macro_f1_std']:.4f} "
                     f"| {e[f'top{top}_by_validation_test_accuracy']:.4f} ± {e[f'top{top}_std']:.4f} "
                     f"| {e['minutes']:.1f} |")
    return "\n".join(lines)


def run_few_shot(recipes: Sequence[str], sizes: Sequence[int], draws: int, seeds: Sequence[int], output: Path, *,
                 validation_size: int | None = 500, settings: dict[str, Any] | None = None,
                 on_progress: Callable[[Progress], None] | None = None, overwrite: bool = False) -> str:
    cells = few_shot_cells(recipes, sizes, draws, seeds, validation_size)
    rows = run_cells(cells, Path(output), base_settings=settings, on_progress=on_progress, overwrite=overwrite)
    table = format_few_shot(summarise_few_shot(rows))
    atomic_write_text(Path(output) / "summary.md", "# Few-shot (paper 002 §4.1)\n\n" + table + "\n")
    return table


def run_noise_robustness(recipes: Sequence[str], levels: Sequence[float], n: int, draws: int, seeds: Sequence[int],
                         output: Path, *, copies: int = 1, validation_size: int | None = 500,
                         settings: dict[str, Any] | None = None,
                         on_progress: Callable[[Progress], None] | None = None, overwrite: bool = False) -> str:
    cells = []
    for level in levels:
        extra = {"data.augment_noise_level": level, "data.augment_copies": copies} if level > 0 else {}
        cells += few_shot_cells(recipes, [n], draws, seeds, validation_size, extra, prefix=f"noise-{level}/",
                                tags={"noise_level": level})
    rows = run_cells(cells, Path(output), base_settings=settings, on_progress=on_progress, overwrite=overwrite)
    table = format_few_shot(summarise_few_shot(rows, by=("noise_level", "recipe")), by=("noise_level", "recipe"))
    text = ("# Noise robustness (paper 002 §4.2, word-level noise in place of back-translation)\n\n"
            f"N = {n} training examples plus {copies} noisy cop{'y' if copies == 1 else 'ies'} each; level 0 = no "
            "augmentation.\n\n" + table + "\n")
    atomic_write_text(Path(output) / "summary.md", text)
    return table


def run_transfer(recipes: Sequence[str], source: str, target: str, k: int, draws: int, seeds: Sequence[int],
                 output: Path, *, source_settings: dict[str, Any] | None = None,
                 target_settings: dict[str, Any] | None = None, settings: dict[str, Any] | None = None,
                 on_progress: Callable[[Progress], None] | None = None, overwrite: bool = False) -> str:
    """Source runs, then K-per-class target runs from each source encoder and from the pre-trained encoder."""
    from phasefit.experiments.peers import is_peer
    from phasefit.recipes import merge_settings

    peers = [r for r in recipes if is_peer(r)]
    if peers:  # a target run starts from the source run's encoder, which a peer does not leave
        raise ConfigError(f"transfer needs recipes that train a phasefit encoder; leave out the peer(s) "
                          f"{', '.join(peers)} (they fit in few-shot, noise and the studies)")
    output = Path(output)
    source_cells = [Cell(f"source/{r}/seed-{s}", r, merge_settings({"data.path": source, "seed": s}, source_settings),
                         {"stage": "source", "start": "pre-trained", "seed": s}) for r in recipes for s in seeds]
    run_cells(source_cells, output / "source-grid", base_settings=settings, on_progress=on_progress,
              overwrite=overwrite)
    cells = []
    for recipe in recipes:
        for seed in seeds:
            encoder = (output / "source-grid" / f"source/{recipe}/seed-{seed}" / "model" / "encoder").resolve()
            for start, model in (("source " + recipe, {"model.name": str(encoder)}), ("pre-trained", {})):
                for draw in range(draws):
                    key = f"target/{recipe}/{'transfer' if model else 'direct'}/draw-{draw}-seed-{seed}"
                    cells.append(Cell(key, recipe, merge_settings(
                                          {"data.path": target, "data.few_shot_k": k, "data.few_shot_seed": draw,
                                           "seed": seed}, model, target_settings),
                                      {"stage": "target", "start": start, "draw": draw, "seed": seed}))
    rows = run_cells(cells, output, base_settings=settings, on_progress=on_progress, overwrite=overwrite)
    table = format_few_shot(summarise_few_shot(rows, by=("recipe", "start")), by=("recipe", "start"))
    text = (f"# Transfer (paper 002 §5.4): {source} -> {target}, {k} examples per class\n\n"
            "`start` is the encoder the target run began from: a source run's encoder, or the pre-trained one.\n\n"
            + table + "\n")
    atomic_write_text(output / "summary.md", text)
    return table
