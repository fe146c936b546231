"""Recommend a recipe for the user's data: train the candidates, rank them on validation only, weigh the cost.

The rule (:func:`recommend`), used by ``phasefit select`` and by the quality benchmark's ``phasefit-auto``:

1. Each candidate's score is its mean *validation* metric over the seeds (macro-F1 by default, accuracy breaks
   ties). Test scores are never read here; they stay in the runs' files.
2. The best mean wins; among equal means, the cheaper recipe (minutes per run).
3. Every other candidate is compared with the winner on the seeds both ran (paired). A candidate that is cheaper
   than the winner and within validation noise of it — a mean gap no larger than one validation example (in
   points of the metric: a rough unit for macro-F1, which one example can move by more), or, with 3 or more seeds,
   a paired t-test p >= 0.05 — is named as the cheaper alternative, with the minutes it saves.
4. The winner's paired validation difference to ``ft`` is reported, so the user sees what the choice buys over
   plain fine-tuning.
5. Only the candidates are ranked: ``phasefit select --recipes 3phase scl`` also trains ``ft`` for step 4, but
   recommends one of the two it was asked about.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from phasefit.experiments.grid import group_rows
from phasefit.experiments.stats import Paired, paired

# Candidates of `phasefit select --recipes auto`: plain fine-tuning, the cheap frozen-encoder head, the staged
# method with both pair constructions, and CE+SCL. Ordered from cheapest to dearest (the tie-break when timings
# are missing).
AUTO_CANDIDATES = ["ft-frozen", "ft", "scl", "3phase", "3phase-setfit"]


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
    """Apply the selection rule above to result rows (``recipe``, ``seed``, ``validation_*``, ``total_seconds``)."""
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


def format_recommendation(rec: Recommendation, winner_test: dict[str, float] | None = None) -> str:
    """The ranking on validation, the winner, its gain over the baseline, the cheaper alternative, and the
    winner's test score alone."""
    lines = [f"| rank | recipe | seeds | validation {rec.metric} | minutes / run | vs winner (points, paired p) |",
             "|---|---|---|---|---|---|"]
    for rank, c in enumerate(rec.ranking, start=1):
        gap = "–"
        if c.vs_winner is not None:
            p = "–" if c.vs_winner.p_ttest is None else f"{c.vs_winner.p_ttest:.3f}"
            gap = f"{c.vs_winner.mean:+.2f} (p {p})"
        lines.append(f"| {rank} | {c.recipe} | {c.seeds} | {c.validation:.4f} ± {c.validation_std:.4f} "
                     f"| {c.minutes:.1f} | {gap} |")
    w = rec.winner
    lines.append("")
    lines.append(f"recommended: {w.recipe} (best mean validation {rec.metric}, {w.minutes:.1f} min per run)")
    if rec.vs_baseline is not None:
        p = "–" if rec.vs_baseline.p_ttest is None else f"{rec.vs_baseline.p_ttest:.3f}"
        lines.append(f"  vs {rec.baseline} on validation: {rec.vs_baseline.mean:+.2f} points over {rec.vs_baseline.n} "
                     f"paired seed(s) (paired t-test p {p}: {rec.vs_baseline.reading()})")
    elif w.recipe == rec.baseline:
        lines.append(f"  plain fine-tuning ({rec.baseline}) is the best candidate on validation")
    if rec.cheaper is not None:
        saved = w.minutes - rec.cheaper.minutes
        lines.append(f"  cheaper and within validation noise: {rec.cheaper.recipe} "
                     f"({rec.cheaper.vs_winner.mean:+.2f} points, saves {saved:.1f} min per run)")
    for note in rec.notes:
        lines.append(f"  note: {note}")
    if winner_test is not None:
        lines.append(f"  test score of the recommended recipe only (never used to choose): accuracy "
                     f"{winner_test['accuracy']:.4f}  macro-F1 {winner_test['macro_f1']:.4f}")
    return "\n".join(lines)


def select_recipe(recipes: Sequence[str], seeds: Sequence[int], output: Any, *, settings: dict[str, Any] | None = None,
                  metric: str = "macro_f1", baseline: str = "ft", on_progress: Any = None,
                  overwrite: bool = False) -> tuple[Recommendation, str]:
    """Train ``recipes`` (``["auto"]``: :data:`AUTO_CANDIDATES`) x ``seeds`` into ``output``, recommend one on
    validation, and write ``output/recommendation.md``. Returns the recommendation and its text."""
    from pathlib import Path

    from phasefit.experiments.grid import Cell, run_cells, with_phase_cache
    from phasefit.io import atomic_write_text

    candidates = list(AUTO_CANDIDATES) if list(recipes) == ["auto"] else list(recipes)
    names = candidates if baseline in candidates else [*candidates, baseline]  # the gain over ft is in the answer
    cells = [Cell(f"{recipe}/seed-{seed}", recipe, {"seed": seed}, {"seed": seed})
             for recipe in names for seed in seeds]
    settings = with_phase_cache(settings, Path(output))  # 3phase and 3phase-setfit share their DAE
    rows = run_cells(cells, Path(output), base_settings=settings, on_progress=on_progress, overwrite=overwrite)
    rec = recommend(rows, metric=metric, baseline=baseline, candidates=candidates)
    winner_rows = [row for row in rows if row["recipe"] == rec.winner.recipe]
    winner_test = None
    if all(row.get("test_accuracy") is not None for row in winner_rows):
        winner_test = {"accuracy": statistics.fmean(row["test_accuracy"] for row in winner_rows),
                       "macro_f1": statistics.fmean(row["test_macro_f1"] for row in winner_rows)}
    text = format_recommendation(rec, winner_test)
    atomic_write_text(Path(output) / "recommendation.md", text + "\n")
    return rec, text
