"""`phasefit select`: candidates ranked on validation only, cost weighed, the winner's test score alone."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from phasefit.cli import main
from phasefit.experiments.select import recommend
from phasefit.experiments.stats import paired
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
    assert "cheaper and within validation noise: ft" in text and "saves 3.0 min" in text


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


def test_select_command_prints_only_the_winners_test_score(tiny_model_dir: Path, toy_data_dir_module: Path,
                                                          tmp_path: Path, capsys) -> None:
    out = tmp_path / "select"
    sets = [item for o in tiny_overrides(tiny_model_dir) for item in ("--set", o)]
    code = main(["select", "--data", str(toy_data_dir_module), "--recipes", "ft-frozen", "ft", "--seeds", "0", "1",
                 "--output", str(out), *sets, "--set", "ft.max_steps=2", "--quiet"])
    assert code == 0
    printed = capsys.readouterr().out
    assert printed.count("test score of the recommended recipe only") == 1
    assert "test       accuracy" not in printed  # no per-run test scores while choosing
    text = (out / "recommendation.md").read_text()
    assert "recommended:" in text and "| ft-frozen |" in text and "| ft |" in text
    for recipe in ("ft", "ft-frozen"):  # every run's test score stays in its own files
        assert json.loads((out / recipe / "seed-0" / "metrics.json").read_text())["test"] is not None
