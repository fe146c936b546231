"""`phasefit select`: candidates chosen on labelled rows only (cross-validated or held out), the one-standard-error
rule, the refit on the whole pool, and the final model's test score alone."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from phasefit.cli import main
from phasefit.experiments.select import (FoldScores, clearly_behind, one_standard_error_choice, recommend,
                                         refit_epochs)
from phasefit.evaluation.stats import paired
from tests.conftest import tiny_overrides


def _row(recipe: str, seed: int, val: float, minutes: float, test: float = 0.5, size: int = 50) -> dict:
    return {"recipe": recipe, "seed": seed, "validation_macro_f1": val, "validation_accuracy": val,
            "test_accuracy": test, "test_macro_f1": test, "total_seconds": 60 * minutes, "validation_size": size}


def test_winner_is_chosen_on_validation_never_on_test() -> None:
    rows = [_row("ft", s, 0.80 + 0.01 * s, 1.0, test=0.99) for s in range(3)]
    rows += [_row("3phase", s, 0.90 + 0.01 * s, 4.0, test=0.10) for s in range(3)]
    rec = recommend(rows)
    assert rec.winner.recipe == "3phase"  # best validation, although its test scores are far worse
    assert rec.vs_baseline is not None and rec.vs_baseline.mean == pytest.approx(10.0)
    assert rec.vs_baseline.n == 3


def test_equal_validation_goes_to_the_cheaper_recipe() -> None:
    rows = [_row("3phase", s, 0.9, 4.0) for s in range(3)] + [_row("ft", s, 0.9, 1.0) for s in range(3)]
    assert recommend(rows).winner.recipe == "ft"


def test_a_cheaper_recipe_within_noise_is_named_with_the_minutes_it_saves() -> None:
    winner = [0.90, 0.93, 0.91]
    close = [0.91, 0.90, 0.91]  # paired differences -1, +3, 0 points: within noise
    rows = [_row("3phase", s, v, 4.0) for s, v in enumerate(winner)] + [_row("ft", s, v, 1.0) for s, v in enumerate(close)]
    rec = recommend(rows)
    assert rec.winner.recipe == "3phase" and rec.cheaper is not None and rec.cheaper.recipe == "ft"
    from phasefit.experiments.select import format_recommendation

    text = format_recommendation(rec)
    assert "cheaper and within validation noise: ft" in text and "n < 3" not in text and "saves 3.0 min" in text


def test_a_clearly_worse_cheap_recipe_is_not_offered() -> None:
    rows = [_row("3phase", s, 0.95 + 0.001 * s, 4.0) for s in range(4)]
    rows += [_row("ft", s, 0.80 + 0.002 * s, 1.0) for s in range(4)]
    assert recommend(rows).cheaper is None


def test_one_example_behind_on_every_seed_is_within_noise() -> None:
    # 3 seeds, the cheap recipe exactly one validation example (2 points of 50) behind each time: the t-test has no
    # spread to judge, and the gap is the smallest one possible
    rows = [_row("3phase", s, 0.90 + 0.02 * s, 4.0) for s in range(3)]
    rows += [_row("ft", s, 0.88 + 0.02 * s, 1.0) for s in range(3)]
    rec = recommend(rows)
    assert rec.winner.recipe == "3phase" and rec.cheaper is not None and rec.cheaper.recipe == "ft"


def test_only_the_candidates_are_recommended_and_ft_is_the_yardstick() -> None:
    rows = [_row("ft", s, 0.95, 1.0) for s in range(3)]  # trained for the comparison, not asked about
    rows += [_row("3phase", s, 0.90 + 0.01 * s, 4.0) for s in range(3)]
    rows += [_row("scl", s, 0.85, 1.5) for s in range(3)]
    rec = recommend(rows, candidates=["3phase", "scl"])
    assert rec.winner.recipe == "3phase" and [c.recipe for c in rec.ranking] == ["3phase", "scl"]
    assert rec.vs_baseline is not None and rec.vs_baseline.mean == pytest.approx(-4.0)  # ft was better: said


def test_paired_statistics() -> None:
    result = paired({0: 0.9, 1: 0.8, 2: 0.7, 3: 0.6}, {0: 0.8, 1: 0.75, 2: 0.6, 3: 0.58, 9: 0.1}, scale=100)
    assert result.n == 4 and result.mean == pytest.approx(6.75)
    assert 0 < result.p_ttest < 0.05 and result.p_wilcoxon is not None
    assert paired({0: 1.0}, {1: 1.0}) is None


def _folds(recipe: str, scores: list[float], minutes: float) -> FoldScores:
    return FoldScores(recipe, dict(enumerate(scores)), {f: minutes for f in range(len(scores))})


def test_one_standard_error_rule_takes_the_cheapest_within_one_error_of_the_best() -> None:
    best = _folds("scl", [90, 94, 92, 96, 88], 2.0)  # mean 92, s.e. sqrt(10)/sqrt(5) = 1.41
    within = _folds("ft-frozen", [91, 91, 91, 91, 91], 0.1)  # 1.0 below: within one s.e., and the cheapest
    middle = _folds("ft", [91.5] * 5, 1.0)
    chosen, top = one_standard_error_choice([best, within, middle])
    assert top.recipe == "scl" and chosen.recipe == "ft-frozen"


def test_one_standard_error_rule_keeps_the_best_when_the_cheap_one_is_outside() -> None:
    best = _folds("scl", [90, 94, 92, 96, 88], 2.0)
    outside = _folds("ft-frozen", [90.5] * 5, 0.1)  # 1.5 below > 1.41
    chosen, top = one_standard_error_choice([outside, best])
    assert chosen.recipe == top.recipe == "scl"


def test_equally_cheap_candidates_within_one_error_go_to_the_best_mean() -> None:
    best = _folds("scl", [90, 94, 92, 96, 88], 1.1)
    close = _folds("ft", [91.5] * 5, 1.0)  # within one s.e. and cheaper, but by less than the timing noise
    chosen, _ = one_standard_error_choice([close, best])
    assert chosen.recipe == "scl"


def test_equal_means_go_to_the_cheaper_candidate() -> None:
    chosen, top = one_standard_error_choice([_folds("scl", [90, 90], 2.0), _folds("ft", [90, 90], 1.0)])
    assert chosen.recipe == top.recipe == "ft"


def test_clearly_behind_needs_two_folds_and_a_margin_beyond_noise() -> None:
    leader = _folds("ft", [95, 96], 1.0)
    assert clearly_behind(_folds("ft-frozen", [80, 82], 0.1), leader, one_example=2.0)
    assert not clearly_behind(_folds("ft-frozen", [94, 95], 0.1), leader, one_example=2.0)  # one example behind
    assert not clearly_behind(_folds("ft-frozen", [80], 0.1), _folds("ft", [95], 1.0), one_example=2.0)
    noisy = _folds("scl", [80, 99], 1.0)  # -15 then +3: the spread says it may catch up
    assert not clearly_behind(noisy, leader, one_example=2.0)


def test_refit_epochs_is_the_rounded_up_median_of_the_folds() -> None:
    assert refit_epochs([3.0, 5.0, 4.0, 8.0, 2.0], default=15) == 4
    assert refit_epochs([2.0, 3.0], default=15) == 3  # median 2.5, rounded up
    assert refit_epochs([None, None], default=15) == 15


def test_cross_validation_folds_are_stratified_disjoint_and_the_same_for_every_recipe(toy_data_dir: Path) -> None:
    from collections import Counter

    from phasefit.recipes import build_config
    from phasefit.run_data import load_run_data

    folds = 4
    held_out, trains = [], []
    for fold in range(folds):
        settings = {"data.path": str(toy_data_dir), "data.cv_folds": folds, "data.cv_fold": fold, "seed": 3}
        a = load_run_data(build_config("ft", settings=settings))
        b = load_run_data(build_config("scl", settings={**settings, "seed": 3}))
        assert a.validation.ids == b.validation.ids and a.train.ids == b.train.ids  # same folds for every recipe
        assert not set(a.validation.ids) & set(a.train.ids)
        held_out.append(a.validation)
        trains.append(a.train)
        assert a.test.ids == load_run_data(build_config("ft", settings={"data.path": str(toy_data_dir),
                                                                        "seed": 3})).test.ids  # test untouched
    plain = load_run_data(build_config("ft", settings={"data.path": str(toy_data_dir), "seed": 3}))
    pool = set(plain.train.ids) | set(plain.validation.ids)
    every = [i for part in held_out for i in part.ids]
    assert sorted(every) == sorted(pool)  # each pool row validates exactly once
    for label in set(plain.train.labels):  # stratified: each fold holds a class's share, give or take one row
        counts = [Counter(part.labels)[label] for part in held_out]
        assert max(counts) - min(counts) <= 1


def test_a_fold_is_required_with_the_fold_count() -> None:
    from phasefit.config import ConfigError
    from phasefit.recipes import build_config

    with pytest.raises(ConfigError, match="cv_folds and cv_fold together"):
        build_config("ft", settings={"data.cv_folds": 5})
    with pytest.raises(ConfigError, match="must be below cv_folds"):
        build_config("ft", settings={"data.cv_folds": 5, "data.cv_fold": 5})


@pytest.fixture(scope="module")
def cv_selection(tiny_model_dir: Path, toy_data_dir_module: Path, tmp_path_factory: pytest.TempPathFactory):
    """`phasefit select --cv 3` on the toy data with two cheap candidates; the order in which the choice and every
    test-set evaluation happened."""
    import phasefit.experiments.select as select
    import phasefit.pipeline as pipeline

    out = tmp_path_factory.mktemp("select") / "cv"
    events: list[str] = []
    evaluate, choose = pipeline.evaluate_split, select.one_standard_error_choice

    def spy_evaluate(classifier, splits, part):  # noqa: ANN001
        events.append("test" if part is splits.test else "validation")
        return evaluate(classifier, splits, part)

    def spy_choose(candidates):  # noqa: ANN001
        events.append("choice")
        return choose(candidates)

    monkeypatch = pytest.MonkeyPatch()
    monkeypatch.setattr(pipeline, "evaluate_split", spy_evaluate)
    monkeypatch.setattr(select, "one_standard_error_choice", spy_choose)
    sets = [item for o in tiny_overrides(tiny_model_dir) for item in ("--set", o)]
    try:
        code = main(["select", "--data", str(toy_data_dir_module), "--recipes", "ft-frozen", "ft", "--cv", "3",
                     "--output", str(out), *sets, "--set", "ft.max_steps=2", "--quiet"])
    finally:
        monkeypatch.undo()
    assert code == 0
    return out, events


def test_cv_select_reads_test_only_after_the_choice(cv_selection) -> None:
    out, events = cv_selection
    assert "choice" in events and events.count("test") == 1
    assert events.index("test") > events.index("choice")
    for fold_metrics in out.glob("cv/*/fold-*/metrics.json"):
        assert json.loads(fold_metrics.read_text())["test"] is None  # no fold run scored test


def test_cv_select_uses_the_same_folds_for_every_candidate(cv_selection) -> None:
    out, _ = cv_selection
    for fold in range(3):
        a = json.loads((out / "cv" / "ft" / f"fold-{fold}" / "split.json").read_text())["ids"]
        b = json.loads((out / "cv" / "ft-frozen" / f"fold-{fold}" / "split.json").read_text())["ids"]
        assert a == b


def test_cv_select_refits_the_choice_on_the_whole_pool(cv_selection, toy_data_dir_module: Path, capsys) -> None:
    out, _ = cv_selection
    selection = json.loads((out / "selection.json").read_text())
    assert selection["mode"] == "cv" and len(selection["runs"]) == 1
    refit = out / selection["runs"][0]
    metrics = json.loads((refit / "metrics.json").read_text())
    split = json.loads((refit / "split.json").read_text())
    fold = json.loads((out / "cv" / "ft" / "fold-0" / "split.json").read_text())["ids"]
    pool = set(fold["train"]) | set(fold["validation"])
    assert set(split["ids"]["train"]) == pool and metrics["validation_in_training"] is True
    assert metrics["test"] is not None and (refit / "model" / "classifier.json").is_file()
    assert not (out / "cv" / "ft" / "fold-0" / "model").exists()  # fold models are not kept
    assert "test score of the final model only" in (out / "recommendation.md").read_text()
    # the select folder predicts like the chosen run
    assert main(["predict", str(out), "play some jazz songs"]) == 0
    assert capsys.readouterr().out.strip()


def test_held_out_select_uses_one_split_for_every_seed(tiny_model_dir: Path, toy_data_dir_module: Path,
                                                      tmp_path: Path, capsys) -> None:
    out = tmp_path / "select"
    sets = [item for o in tiny_overrides(tiny_model_dir) for item in ("--set", o)]
    code = main(["select", "--data", str(toy_data_dir_module), "--recipes", "ft-frozen", "ft", "--seeds", "0", "1",
                 "--cv", "0", "--output", str(out), *sets, "--set", "ft.max_steps=2", "--quiet"])
    assert code == 0
    printed = capsys.readouterr().out
    assert printed.count("test score of the final model only") == 1
    assert "test       accuracy" not in printed  # no per-run test scores while choosing
    zero = json.loads((out / "ft" / "seed-0" / "split.json").read_text())["ids"]
    one = json.loads((out / "ft" / "seed-1" / "split.json").read_text())["ids"]
    assert zero == one  # seed 1's validation rows are not seed 0's test rows
    for recipe in ("ft", "ft-frozen"):
        for seed in (0, 1):
            assert json.loads((out / recipe / f"seed-{seed}" / "metrics.json").read_text())["test"] is None
    refit = json.loads((out / "selection.json").read_text())["runs"][0]
    sizes = json.loads((out / refit / "metrics.json").read_text())["sizes"]
    assert sizes["train"] == len(zero["train"]) + len(zero["validation"])


def test_ensemble_is_scored_fold_by_fold_from_the_saved_probabilities(tmp_path: Path) -> None:
    import numpy as np

    from phasefit.experiments.select import PREDICTIONS_FILE, cross_validated_ensemble

    gold = np.array([0, 1, 1, 0])
    # a: right on rows 0-2 (sure of row 3's wrong class); b: right on rows 0, 1, 3, sure of row 2's wrong class
    a = np.array([[0.9, 0.1], [0.2, 0.8], [0.4, 0.6], [0.45, 0.55]], dtype=np.float32)
    b = np.array([[0.8, 0.2], [0.3, 0.7], [0.9, 0.1], [0.9, 0.1]], dtype=np.float32)
    for recipe, proba in (("a", a), ("b", b)):
        for fold in range(2):
            (tmp_path / recipe / f"fold-{fold}").mkdir(parents=True)
            np.savez(tmp_path / recipe / f"fold-{fold}" / PREDICTIONS_FILE, proba=proba, gold=gold)
    scores = cross_validated_ensemble(["a", "b"], tmp_path, 2, "accuracy")
    # averaged: row 2 -> [0.65, 0.35] (wrong), row 3 -> [0.675, 0.325] (right): 3 of 4
    assert scores.scores == {0: 75.0, 1: 75.0}
    (tmp_path / "b" / "fold-1" / PREDICTIONS_FILE).unlink()
    assert cross_validated_ensemble(["a", "b"], tmp_path, 2, "accuracy") is None  # a fold without predictions


def test_python_select_returns_the_refit_model(tiny_model_dir: Path, toy_data_dir_module: Path,
                                               tmp_path: Path) -> None:
    import phasefit

    model = phasefit.select(toy_data_dir_module, output=tmp_path / "sel", recipes=["ft-frozen"], cv=2,
                            model=str(tiny_model_dir), ft={"epochs": 2, "batch_size": 8, "max_steps": 2},
                            data_config={"max_length": 32}, progress=False)
    assert model.selection.chosen == "ft-frozen" and model.selection.mode == "cv"
    assert model.predict("play some jazz songs") in model.label_names
    assert set(model.selection.details["fold_scores"]["ft-frozen"]) == {0, 1}
