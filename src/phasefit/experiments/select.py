"""Recommend a recipe for the user's data and hand back that model, trained on all their labels.

``phasefit select`` has two ways to choose, both on labelled rows only (the test split is never read before the
choice is made):

Cross-validation (``--cv K``; the default for pools of at most :data:`CV_MAX_POOL` labelled rows, where a held-out
validation set of a few dozen rows ranks candidates by noise):

1. The labelled pool (train + validation) is cut into K stratified folds, seeded by the split seed: the same folds
   for every candidate, so candidates are compared fold by fold (paired).
2. Candidates train fold by fold, cheapest first. After each fold from the second on, a candidate *clearly behind*
   the leader stops (:func:`clearly_behind`: its paired mean gap, plus two standard errors, is still worse than one
   held-out example), so the cost approaches the winner's own cross-validation, not the sum of every candidate's.
3. Every candidate that ran all folds is scored by its mean fold score. Among those within one standard error of
   the best mean (the one-standard-error rule, Breiman et al. 1984; Hastie, Tibshirani and Friedman 2009, §7.10),
   the cheapest wins (:func:`one_standard_error_choice`).
4. With ``--ensemble``, the averaged probabilities of the top candidates are cross-validated on the same folds
   and chosen only if their mean fold score beats the single winner's.
5. The winner is refit on the whole pool for the median of its folds' best epochs (:func:`refit_epochs`), with no
   early stopping, and saved: ``OUTPUT/refit/<recipe>/model`` is the classifier to predict with and export. Its
   test score is printed alone, once, after the choice.

Held-out validation (``--cv 0``, the default for larger pools): every candidate trains on train with each seed,
on one split shared by every seed (``data.split_seed``: the first seed's, unless given), and is ranked by its mean
validation score (:func:`recommend`); the winner is then refit on train + validation like above.
"""

from __future__ import annotations

import json
import math
import shutil
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from phasefit.evaluation.stats import Paired, paired
from phasefit.pipeline import SELECTION_FILE
from phasefit.results import group_rows

# Candidates of `--recipes auto`, cheapest first (the order candidates train in, and the tie-break before any
# minutes are known). The quality benchmark found the staged recipes (3phase, 3phase-setfit) behind plain ft on
# every cell at 3-15x its cost: they are candidates on request (`--recipes auto 3phase`), not by default.
AUTO_CANDIDATES = ["ft-frozen", "ft", "ft-balanced", "scl"]
# Cross-validation is the default up to this many labelled rows (train + validation). Measured: a held-out ranking
# of ft-frozen / ft / scl / 3phase lost 0.6-2.1 test points against the best of them on every quality-benchmark
# cell (66-300 validation rows; benchmarks/quality/holdout_regret.py). Beyond that, calculated: at 25 % validation
# 2,000 rows hold out 500, where an accuracy near 85 % still has a standard error of 1.6 points.
CV_MAX_POOL = 2000
DEFAULT_FOLDS = 5


# ---------------------------------------------------------------------------------------------------------------
# The rules, on scores alone (unit-tested without training)


@dataclass
class FoldScores:
    """A candidate's cross-validation: its validation score (points) and minutes on each fold it ran."""

    recipe: str
    scores: dict[int, float] = field(default_factory=dict)
    minutes: dict[int, float] = field(default_factory=dict)
    best_epochs: dict[int, float | None] = field(default_factory=dict)
    stopped_after: int | None = None  # folds run before it was found clearly behind

    @property
    def mean(self) -> float:
        return statistics.fmean(self.scores.values())

    @property
    def standard_error(self) -> float:
        values = list(self.scores.values())
        return statistics.stdev(values) / math.sqrt(len(values)) if len(values) > 1 else 0.0

    @property
    def mean_minutes(self) -> float:
        return statistics.fmean(self.minutes.values()) if self.minutes else 0.0

    @property
    def typical_minutes(self) -> float:
        """The median fold's minutes: one fold slowed by other work on the machine moves it little."""
        return statistics.median(self.minutes.values()) if self.minutes else 0.0


def clearly_behind(candidate: FoldScores, leader: FoldScores, one_example: float) -> bool:
    """True when ``candidate`` trails ``leader`` on the folds both ran (at least 2) by more than two standard errors
    of the paired differences plus one held-out example (``one_example``, in points): it would need an unlikely
    turn of the remaining folds to come within one standard error of the leader."""
    folds = [f for f in candidate.scores if f in leader.scores]
    if len(folds) < 2 or candidate.recipe == leader.recipe:
        return False
    diffs = [candidate.scores[f] - leader.scores[f] for f in folds]
    error = statistics.stdev(diffs) / math.sqrt(len(diffs))
    return statistics.fmean(diffs) + 2 * error + one_example < 0


# Candidates whose typical fold minutes are within this factor of the cheapest eligible one count as equally cheap
# (timings on a shared machine vary more than that between runs of one recipe): the best mean among them wins.
COST_TOLERANCE = 1.25


def one_standard_error_choice(candidates: Sequence[FoldScores]) -> tuple[FoldScores, FoldScores]:
    """(chosen, best): ``best`` has the highest mean fold score (ties: fewer minutes); ``chosen`` is the cheapest
    candidate whose mean is within one standard error of ``best``'s (the one-standard-error rule). Cost is the
    median fold's minutes; candidates within :data:`COST_TOLERANCE` of the cheapest are equally cheap, and the best
    mean among them is chosen (nothing is traded for a saving that is not there)."""
    if not candidates:
        raise ValueError("no candidate finished every fold")
    best = max(candidates, key=lambda c: (round(c.mean, 9), -c.typical_minutes))
    floor = best.mean - best.standard_error - 1e-9
    eligible = [c for c in candidates if c.mean >= floor]
    cheapest = min(c.typical_minutes for c in eligible)
    cheap = [c for c in eligible if c.typical_minutes <= COST_TOLERANCE * cheapest + 1e-9]
    chosen = max(cheap, key=lambda c: (round(c.mean, 9), -c.typical_minutes))
    return chosen, best


def refit_epochs(best_epochs: Sequence[float | None], default: int) -> int:
    """Epochs of the refit on the whole pool: the median of the folds' best epochs, rounded up (``default``, the
    recipe's maximum, when no fold recorded one)."""
    known = [float(e) for e in best_epochs if e is not None]
    return max(1, math.ceil(statistics.median(known))) if known else default


# ---------------------------------------------------------------------------------------------------------------
# Held-out validation: the rule on rows of runs (also the quality benchmark's first phasefit-auto)


@dataclass
class Candidate:
    recipe: str
    seeds: int
    validation: float  # mean validation metric
    validation_std: float
    minutes: float  # mean minutes per run
    vs_winner: Paired | None = None


@dataclass
class Recommendation:
    metric: str
    winner: Candidate
    ranking: list[Candidate]
    vs_baseline: Paired | None  # winner - baseline on validation (points)
    baseline: str
    cheaper: Candidate | None = None  # cheaper and within validation noise of the winner
    notes: list[str] = field(default_factory=list)


def _by_seed(members: Sequence[dict[str, Any]], key: str) -> dict[Any, float]:
    return {m["seed"]: float(m[key]) for m in members}


def recommend(rows: Sequence[dict[str, Any]], *, metric: str = "macro_f1", baseline: str = "ft",
              candidates: Sequence[str] | None = None) -> Recommendation:
    """Rank result rows (``recipe``, ``seed``, ``validation_*``, ``total_seconds``) by mean validation metric
    (accuracy breaks ties, then fewer minutes); name a cheaper candidate within validation noise of the winner
    (a gap of at most one validation example, or a paired p >= 0.05 over 3 or more seeds) and the winner's paired
    gain over ``baseline``. Test scores are never read."""
    key = f"validation_{metric}"
    every = {recipe: members for (recipe,), members in group_rows(rows, "recipe").items()}
    groups = {recipe: members for recipe, members in every.items() if candidates is None or recipe in candidates}
    if not groups:
        raise ValueError("no finished runs of the candidate recipes to choose from")
    ranked = []
    for recipe, members in groups.items():
        values = [float(m[key]) for m in members]
        tie = statistics.fmean(float(m["validation_accuracy"]) for m in members)
        minutes = statistics.fmean(float(m["total_seconds"]) for m in members) / 60
        ranked.append((statistics.fmean(values), tie, -minutes,
                       Candidate(recipe, len(members), statistics.fmean(values),
                                 statistics.stdev(values) if len(values) > 1 else 0.0, minutes)))
    ranked.sort(key=lambda entry: entry[:3], reverse=True)
    ranking = [entry[-1] for entry in ranked]
    winner = ranking[0]
    win_scores = _by_seed(groups[winner.recipe], key)
    for candidate in ranking[1:]:
        candidate.vs_winner = paired(_by_seed(groups[candidate.recipe], key), win_scores, scale=100)
    validation_size = max((int(m.get("validation_size") or 0) for m in rows), default=0)
    one_example = 100 / validation_size if validation_size else 0.0
    cheaper = None
    for candidate in sorted(ranking[1:], key=lambda c: c.minutes):
        if candidate.minutes >= winner.minutes or candidate.vs_winner is None:
            continue
        gap = candidate.vs_winner
        if abs(gap.mean) <= one_example + 1e-9 or gap.n >= 3 and gap.p_ttest is not None and gap.p_ttest >= 0.05:
            cheaper = candidate
            break
    vs_baseline = None
    if winner.recipe != baseline and baseline in every:
        vs_baseline = paired(win_scores, _by_seed(every[baseline], key), scale=100)
    notes = []
    if winner.seeds < 3:
        notes.append(f"{winner.seeds} seed(s): too few to tell the candidates apart reliably; use 3 or more")
    return Recommendation(metric, winner, ranking, vs_baseline, baseline, cheaper, notes)


def _p(result: Paired) -> str:
    if result.n < 3:
        return "n < 3"
    if result.p is None:
        return "same difference on every pair"
    return f"{'corrected ' if result.test_train_ratio is not None else ''}p {result.p:.3f}"


def format_recommendation(rec: Recommendation) -> str:
    """The held-out ranking, the winner, its gain over the baseline and the cheaper alternative."""
    lines = [f"| rank | recipe | seeds | validation {rec.metric} | minutes / run | vs winner (points, paired) |",
             "|---|---|---|---|---|---|"]
    for rank, c in enumerate(rec.ranking, start=1):
        gap = "–" if c.vs_winner is None else f"{c.vs_winner.mean:+.2f} ({_p(c.vs_winner)})"
        lines.append(f"| {rank} | {c.recipe} | {c.seeds} | {c.validation:.4f} ± {c.validation_std:.4f} "
                     f"| {c.minutes:.1f} | {gap} |")
    w = rec.winner
    lines += ["", f"chosen: {w.recipe} (best mean validation {rec.metric}, {w.minutes:.1f} min per run)"]
    if rec.vs_baseline is not None:
        lines.append(f"  vs {rec.baseline} on validation: {rec.vs_baseline.mean:+.2f} points over {rec.vs_baseline.n} "
                     f"paired seed(s) ({_p(rec.vs_baseline)}: {rec.vs_baseline.reading()})")
    elif w.recipe == rec.baseline:
        lines.append(f"  plain fine-tuning ({rec.baseline}) is the best candidate on validation")
    if rec.cheaper is not None:
        saved = w.minutes - rec.cheaper.minutes
        lines.append(f"  cheaper and within validation noise: {rec.cheaper.recipe} "
                     f"({rec.cheaper.vs_winner.mean:+.2f} points, saves {saved:.1f} min per run)")
    for note in rec.notes:
        lines.append(f"  note: {note}")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------------------------
# Training the candidates


@dataclass
class Selection:
    """What ``phasefit select`` chose and where the model is."""

    mode: str  # "cv" or "holdout"
    metric: str
    chosen: str  # a recipe, or "ensemble"
    members: list[str]  # the refit recipes the final model is made of (one, or the ensemble's)
    refit_epochs: dict[str, int]
    runs: list[str]  # refit run folders, relative to the output
    test: dict[str, float] | None  # the final model's test scores (read after the choice)
    minutes: float  # every training of the selection: folds (or seeds) and refits
    text: str = ""
    details: dict[str, Any] = field(default_factory=dict)


def pool_size(settings: dict[str, Any]) -> int:
    """Labelled rows (train + validation) of the data the settings describe."""
    from phasefit.recipes import build_config
    from phasefit.run_data import load_run_data

    splits = load_run_data(build_config("ft", settings=settings))
    return len(splits.train) + len(splits.validation)


def candidate_names(recipes: Sequence[str]) -> list[str]:
    """``auto`` expands to :data:`AUTO_CANDIDATES`, anywhere in the list; duplicates are an error."""
    names: list[str] = []
    for recipe in recipes:
        names.extend(AUTO_CANDIDATES if recipe == "auto" else [recipe])
    names = list(dict.fromkeys(names))
    from phasefit.recipes import RECIPES

    unknown = [n for n in names if n not in RECIPES]
    if unknown:
        from phasefit.errors import ConfigError

        raise ConfigError(f"unknown recipe(s) {', '.join(unknown)} for select; see `phasefit recipes`")
    return names


def select_recipe(recipes: Sequence[str], seeds: Sequence[int] | None, output: Any, *,
                  settings: dict[str, Any] | None = None,
                  metric: str = "macro_f1", baseline: str = "ft", cv: int | None = None, ensemble: bool = False,
                  on_progress: Any = None, overwrite: bool = False) -> Selection:
    """Choose among ``recipes`` (``auto``: :data:`AUTO_CANDIDATES`) on labelled rows only, refit the choice on the
    whole pool and save it; writes ``OUTPUT/recommendation.md`` and ``OUTPUT/selection.json``.

    ``cv``: folds of cross-validation (None: :data:`DEFAULT_FOLDS` when the pool has at most :data:`CV_MAX_POOL`
    rows, else held-out validation; 0: held-out validation). Cross-validation trains with the first seed; held-out
    validation with every seed, on one split (``seeds`` None: [0] for cross-validation, [0, 1, 2] held out).
    ``ensemble``: also try the top candidates' averaged probabilities.
    """
    from phasefit.experiments.grid import with_phase_cache
    from phasefit.recipes import merge_settings

    output = Path(output)
    candidates = candidate_names(recipes)
    given = seeds is not None
    seeds = list(seeds) if given else [0]
    if not seeds or len(set(seeds)) != len(seeds):
        from phasefit.errors import ConfigError

        raise ConfigError(f"--seeds {' '.join(map(str, seeds))}: give one or more distinct seeds")
    settings = with_phase_cache(settings, output)  # 3phase and 3phase-setfit share their DAE
    from phasefit.fingerprint import flatten

    flat = flatten(settings)
    split_seed = flat.get("data.split_seed")
    if split_seed is None:  # one split for every seed and fold: no seed's validation rows are another's test rows
        split_seed = seeds[0]
        settings = merge_settings(settings, {"data.split_seed": split_seed})
    if cv is None:
        cv = DEFAULT_FOLDS if pool_size({**flat, "data.split_seed": split_seed}) <= CV_MAX_POOL else 0
    if not cv and not given:
        seeds = [*seeds, 1, 2]  # a held-out ranking needs seeds to average its noise over
    if cv == 1 or cv < 0:
        from phasefit.errors import ConfigError

        raise ConfigError(f"--cv {cv}: give 2 or more folds, or 0 for held-out validation")
    if cv:
        selection = _cross_validated(candidates, seeds[0], output, settings, metric=metric, folds=cv,
                                     ensemble=ensemble, on_progress=on_progress, overwrite=overwrite)
    else:
        selection = _held_out(candidates, seeds, output, settings, metric=metric, baseline=baseline,
                              on_progress=on_progress, overwrite=overwrite)
    from phasefit.io import atomic_write_json, atomic_write_text

    atomic_write_text(output / "recommendation.md", selection.text + "\n")
    record = {key: value for key, value in selection.__dict__.items() if key != "text"}
    atomic_write_json(output / SELECTION_FILE, record)
    return selection


def _max_epochs(recipe: str, settings: dict[str, Any]) -> int:
    from phasefit.recipes import build_config

    return build_config(recipe, settings=settings).ft.epochs


def _cross_validated(candidates: list[str], seed: int, output: Path, settings: dict[str, Any], *, metric: str,
                     folds: int, ensemble: bool, on_progress: Any, overwrite: bool) -> Selection:
    from phasefit.experiments.grid import Cell, run_cells
    from phasefit.recipes import merge_settings

    cv_settings = merge_settings(settings, {"seed": seed, "evaluate_test": False, "data.cv_folds": folds})
    results = {recipe: FoldScores(recipe) for recipe in candidates}
    alive = list(candidates)
    cells: list[Cell] = []
    fold_sizes: list[int] = []
    stopped: list[str] = []

    def progress(p: Any) -> None:
        save_fold_predictions(output / "cv" / p.cell.key)  # also a reused fold killed before it had saved them
        if on_progress is not None and p.cell.tags["fold"] == fold:  # earlier folds were reported already
            on_progress(p)

    for fold in range(folds):
        cells += [Cell(f"{recipe}/fold-{fold}", recipe, {"data.cv_fold": fold}, {"fold": fold}) for recipe in alive]
        rows = run_cells(cells, output / "cv", base_settings=cv_settings, on_progress=progress, overwrite=overwrite)
        for row in rows:
            if row["fold"] != fold:
                continue
            scores = results[row["recipe"]]
            scores.scores[fold] = 100 * float(row[f"validation_{metric}"])
            scores.minutes[fold] = float(row["total_seconds"]) / 60
            scores.best_epochs[fold] = _best_epoch(output / "cv" / row["cell"])
            fold_sizes.append(int(row["validation_size"]))
        if fold >= 1:
            leader = max((results[r] for r in alive), key=lambda c: c.mean)
            one_example = 100 / min(fold_sizes)
            for recipe in list(alive):
                if clearly_behind(results[recipe], leader, one_example):
                    alive.remove(recipe)
                    results[recipe].stopped_after = fold + 1
                    stopped.append(recipe)
    complete = [results[r] for r in alive]
    chosen, best = one_standard_error_choice(complete)
    members = [chosen.recipe]
    ensemble_scores = None
    if ensemble:
        ranked = sorted(complete, key=lambda c: c.mean, reverse=True)[:3]
        if len(ranked) >= 2:
            ensemble_scores = cross_validated_ensemble([c.recipe for c in ranked], output / "cv", folds, metric)
            if ensemble_scores is not None and ensemble_scores.mean > best.mean + 1e-9:
                members = [c.recipe for c in ranked]
    epochs = {r: refit_epochs([results[r].best_epochs[f] for f in range(folds)], _max_epochs(r, settings))
              for r in members}
    refit_minutes, runs, test = _refit(members, epochs, seed, output, settings, on_progress, overwrite)
    cv_minutes = sum(sum(c.minutes.values()) for c in results.values())
    label = "ensemble" if len(members) > 1 else chosen.recipe
    text = format_cross_validation(results, candidates, chosen, best, folds, metric, epochs, members, ensemble_scores,
                                   test, cv_minutes, refit_minutes)
    details = {"folds": folds, "seed": seed, "fold_scores": {r: c.scores for r, c in results.items()},
               "fold_minutes": {r: c.minutes for r, c in results.items()},
               "best_epochs": {r: c.best_epochs for r, c in results.items()}, "stopped_early": stopped,
               "best_mean": best.recipe,
               "ensemble_scores": None if ensemble_scores is None else ensemble_scores.scores}
    return Selection("cv", metric, label, members, epochs, runs, test, cv_minutes + refit_minutes, text, details)


def _best_epoch(run_dir: Path) -> float | None:
    metrics = json.loads((run_dir / "metrics.json").read_text(encoding="utf-8"))
    return metrics["phases"][-1].get("best_epoch")


PREDICTIONS_FILE = "validation_predictions.npz"


def save_fold_predictions(run_dir: Path) -> None:
    """A finished fold's held-out class probabilities (for ``--ensemble``), then its model and embeddings go: a
    fold's model is never used again, and 20 of them would take about 2 GB with the default encoder."""
    import numpy as np

    from phasefit.pipeline import load_run
    from phasefit.run_data import load_run_data

    if not (run_dir / "model").is_dir():
        return
    config, classifier = load_run(run_dir)
    splits = load_run_data(config)
    proba = classifier.predict_proba(splits.validation.texts, splits.validation.text_pairs)
    partial = run_dir / f".{PREDICTIONS_FILE}.partial.npz"  # written whole, then renamed: a kill leaves no half file
    np.savez(partial, proba=proba.astype(np.float32), gold=np.asarray(splits.label_ids(splits.validation)))
    partial.replace(run_dir / PREDICTIONS_FILE)
    for name in ("model", "embeddings"):  # only after the predictions are safe
        shutil.rmtree(run_dir / name, ignore_errors=True)


def cross_validated_ensemble(recipes: Sequence[str], cv_dir: Path, folds: int, metric: str) -> FoldScores | None:
    """Fold scores of the candidates' averaged probabilities; None when a fold's predictions are missing (a run
    finished before they were kept)."""
    import numpy as np

    from phasefit.evaluation.metrics import classification_metrics

    scores = FoldScores("ensemble(" + " + ".join(recipes) + ")")
    for fold in range(folds):
        files = [cv_dir / recipe / f"fold-{fold}" / PREDICTIONS_FILE for recipe in recipes]
        if not all(f.is_file() for f in files):
            return None
        loaded = [np.load(f) for f in files]
        proba = np.mean([item["proba"] for item in loaded], axis=0)
        gold = loaded[0]["gold"]
        labels = [str(i) for i in range(proba.shape[1])]
        result = classification_metrics(gold.tolist(), proba.argmax(axis=1).tolist(), labels, detailed=False)
        scores.scores[fold] = 100 * result[metric]
    return scores


def _refit(members: list[str], epochs: dict[str, int], seed: int, output: Path, settings: dict[str, Any],
           on_progress: Any, overwrite: bool) -> tuple[float, list[str], dict[str, float] | None]:
    """Train the chosen recipe(s) on the whole pool for their cross-validated epochs, then score test, once."""
    from phasefit.experiments.grid import Cell, run_cells
    from phasefit.recipes import merge_settings

    refit = merge_settings(settings, {"seed": seed, "evaluate_test": True, "data.train_on": "pool",
                                      "ft.early_stopping": False})
    cells = [Cell(recipe, recipe, {"ft.epochs": epochs[recipe]}, {}) for recipe in members]
    rows = run_cells(cells, output / "refit", base_settings=refit, on_progress=on_progress, overwrite=overwrite)
    minutes = sum(float(row["total_seconds"]) for row in rows) / 60
    runs = [f"refit/{recipe}" for recipe in members]
    if len(members) == 1:
        test = {"accuracy": rows[0]["test_accuracy"], "macro_f1": rows[0]["test_macro_f1"]}
    else:
        test = ensemble_test_scores([output / run for run in runs])
    return minutes, runs, test


def ensemble_test_scores(run_dirs: Sequence[Path]) -> dict[str, float]:
    """The ensemble's test scores, through the pipeline's own scoring (an Ensemble predicts like a classifier)."""
    from phasefit.config import read_yaml, validate_config
    from phasefit.pipeline import evaluate_split
    from phasefit.run_data import load_run_data

    model = load_selected_runs(run_dirs)
    splits = load_run_data(validate_config(read_yaml(Path(run_dirs[0]) / "config.yaml")))  # members share the rows
    result = evaluate_split(model, splits, splits.test)
    return {"accuracy": result["accuracy"], "macro_f1": result["macro_f1"]}


class Ensemble:
    """Refit classifiers whose class probabilities are averaged (``phasefit select --ensemble``); predicts like one
    classifier."""

    def __init__(self, members: Sequence[Any]):
        names = [list(m.label_names) for m in members]
        if any(n != names[0] for n in names):
            raise ValueError("ensemble members were trained on different label sets")
        self.members = list(members)
        self.label_names = names[0]
        self.text_pairs = members[0].text_pairs

    def predict_proba(self, texts: Any, text_pairs: Any = None, *, batch_size: int = 64) -> Any:
        import numpy as np

        return np.mean([m.predict_proba(texts, text_pairs, batch_size=batch_size) for m in self.members], axis=0)

    def predict(self, texts: Any, text_pairs: Any = None, *, batch_size: int = 64) -> Any:
        if isinstance(texts, str):
            return self.predict([texts], None if text_pairs is None else [text_pairs], batch_size=batch_size)[0]
        proba = self.predict_proba(list(texts), text_pairs, batch_size=batch_size)
        return [self.label_names[i] for i in proba.argmax(axis=-1)]


def load_selected_runs(run_dirs: Sequence[Path]) -> Any:
    from phasefit.pipeline import load_run

    classifiers = [load_run(run)[1] for run in run_dirs]
    return classifiers[0] if len(classifiers) == 1 else Ensemble(classifiers)


def load_selection(output: str | Path) -> Any:
    """The model ``phasefit select`` chose in ``output``: a classifier, or an :class:`Ensemble` of them."""
    output = Path(output)
    record = json.loads((output / SELECTION_FILE).read_text(encoding="utf-8"))
    return load_selected_runs([output / run for run in record["runs"]])


def format_cross_validation(results: dict[str, FoldScores], candidates: list[str], chosen: FoldScores,
                            best: FoldScores, folds: int, metric: str, epochs: dict[str, int], members: list[str],
                            ensemble_scores: FoldScores | None, test: dict[str, float] | None, cv_minutes: float,
                            refit_minutes: float) -> str:
    lines = [f"| recipe | folds run | CV {metric} (mean ± s.e., points) | minutes / fold (median) | vs best (paired) |",
             "|---|---|---|---|---|"]
    for recipe in sorted(candidates, key=lambda r: (results[r].stopped_after is not None, -results[r].mean)):
        c = results[recipe]
        gap = "–"
        if recipe != best.recipe:
            # folds share training rows: the Nadeau-Bengio correction, with held-out/training = 1/(K-1)
            diff = paired(c.scores, best.scores, test_train_ratio=1 / (folds - 1))
            gap = f"{diff.mean:+.2f} ({_p(diff)})"
        state = f"{len(c.scores)}" + (" (stopped: clearly behind)" if c.stopped_after else "")
        lines.append(f"| {recipe} | {state} | {c.mean:.2f} ± {c.standard_error:.2f} | {c.typical_minutes:.2f} | {gap} |")
    if ensemble_scores is not None:
        lines.append(f"| {ensemble_scores.recipe} | {len(ensemble_scores.scores)} | {ensemble_scores.mean:.2f} ± "
                     f"{ensemble_scores.standard_error:.2f} | – | {ensemble_scores.mean - best.mean:+.2f} |")
    lines += ["", f"{folds}-fold stratified cross-validation over train + validation; test never read to choose."]
    if len(members) > 1:
        lines.append(f"chosen: the ensemble of {', '.join(members)} (its CV mean beats the best single recipe, "
                     f"{best.recipe})")
    elif chosen.recipe == best.recipe:
        lines.append(f"chosen: {chosen.recipe} (best CV mean; nothing cheaper within one standard error)")
    else:
        lines.append(f"chosen: {chosen.recipe}, the cheapest within one standard error of the best CV mean "
                     f"({best.recipe}: {best.mean:.2f} ± {best.standard_error:.2f}; {chosen.recipe}: "
                     f"{chosen.mean:.2f}, {chosen.typical_minutes:.2f} vs {best.typical_minutes:.2f} min a fold)")
    refits = ", ".join(f"{r} for {e} epoch(s)" for r, e in epochs.items())
    lines.append(f"refit on the whole pool: {refits} (median of the folds' best epochs), no early stopping")
    lines.append(f"cost: {cv_minutes:.1f} min of cross-validation + {refit_minutes:.1f} min of refit")
    if test is not None:
        lines.append(f"test score of the final model only (read once, after the choice): accuracy "
                     f"{test['accuracy']:.4f}  macro-F1 {test['macro_f1']:.4f}")
    return "\n".join(lines)


def _held_out(candidates: list[str], seeds: list[int], output: Path, settings: dict[str, Any], *, metric: str,
              baseline: str, on_progress: Any, overwrite: bool) -> Selection:
    from phasefit.experiments.grid import Cell, run_cells
    from phasefit.recipes import merge_settings

    names = candidates if baseline in candidates else [*candidates, baseline]  # the gain over ft is in the answer
    cells = [Cell(f"{recipe}/seed-{seed}", recipe, {"seed": seed}, {"seed": seed}) for recipe in names for seed in seeds]
    held_out = merge_settings(settings, {"evaluate_test": False})
    rows = run_cells(cells, output, base_settings=held_out, on_progress=on_progress, overwrite=overwrite)
    rec = recommend(rows, metric=metric, baseline=baseline, candidates=candidates)
    winner = rec.winner.recipe
    best = [_best_epoch(output / row["cell"]) for row in rows if row["recipe"] == winner]
    epochs = {winner: refit_epochs(best, _max_epochs(winner, settings))}
    refit_minutes, runs, test = _refit([winner], epochs, seeds[0], output, settings, on_progress, overwrite)
    text = format_recommendation(rec)
    text += (f"\nrefit on train + validation: {winner} for {epochs[winner]} epoch(s) (median of its best epochs), "
             "no early stopping")
    if test is not None:
        text += (f"\ntest score of the final model only (read once, after the choice): accuracy "
                 f"{test['accuracy']:.4f}  macro-F1 {test['macro_f1']:.4f}")
    minutes = sum(float(row["total_seconds"]) for row in rows) / 60 + refit_minutes
    return Selection("holdout", metric, winner, [winner], epochs, runs, test, minutes, text,
                     {"seeds": seeds, "ranking": [c.recipe for c in rec.ranking]})

