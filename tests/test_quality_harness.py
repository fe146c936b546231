"""The quality benchmark's own logic (benchmarks/quality/run.py) on synthetic rows: phasefit-auto chooses on
validation and pays for every candidate, the summary pairs methods by split, published runs restore."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

HARNESS = Path(__file__).resolve().parent.parent / "benchmarks" / "quality" / "run.py"


@pytest.fixture(scope="module")
def harness():
    spec = importlib.util.spec_from_file_location("quality_run", HARNESS)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


GRID = {"methods": ["ft-frozen", "ft", "scl", "3phase", "3phase-setfit", "setfit", "paper-ft", "paper-3phase"],
        "holdout_candidates": ["ft-frozen", "ft", "scl", "3phase", "3phase-setfit"],
        "cells": {"toy": {"data": "builtin:snips", "seeds": [0, 1, 2]}}}


def _row(method: str, split: int, val: float, test: float, seconds: float) -> dict:
    return {"cell": "toy", "method": method, "recipe": method, "split": split, "seed": split,
            "validation_accuracy": val, "validation_macro_f1": val, "test_accuracy": test, "test_macro_f1": test,
            "total_seconds": seconds, "train_size": 100, "validation_size": 50, "test_size": 60}


def test_plan_keeps_the_given_methods_in_their_order_on_the_given_splits(harness) -> None:
    grid = {**GRID, "cells": {"toy": {"seeds": [0, 1, 2], "method_seeds": {"3phase-setfit": [0]},
                                      "extra_methods": ["scl-sum"], "extra_seeds": [1, 2]}}}
    everything = harness.plan(grid, ["toy"])
    assert [m for _, m, _ in everything] == GRID["methods"] + ["scl-sum"]
    assert dict((m, s) for _, m, s in everything)["3phase-setfit"] == [0]
    chosen = harness.plan(grid, ["toy"], ["scl-sum", "3phase-setfit", "ft"], [1, 2])
    assert chosen == [("toy", "scl-sum", [1, 2]), ("toy", "ft", [1, 2])]  # 3phase-setfit has no split left


def test_unknown_methods_are_refused_before_anything_runs(harness, tmp_path: Path) -> None:
    grid = tmp_path / "grid.yaml"
    grid.write_text(json.dumps(GRID), encoding="utf-8")
    with pytest.raises(SystemExit):
        harness.main(["--grid", str(grid), "--output", str(tmp_path / "out"), "--methods", "3phsae"])
    assert not (tmp_path / "out").exists()


def test_a_variant_is_paired_with_its_vs_or_its_recipe(harness) -> None:
    grid = {**GRID, "variants": {"3phase-extra": {"recipe": "3phase"},
                                 "3phase-leak": {"recipe": "3phase", "vs": "3phase-extra"}}}
    rows = [_row(m, s, 0.8 + 0.01 * s + bump, 0.7 + bump, 60.0) for s in range(3)
            for m, bump in [("3phase", 0.0), ("3phase-extra", 0.03), ("3phase-leak", 0.05)]]
    table = "\n".join(harness.variants_table(grid, rows))
    assert "| toy | 3phase-extra | 3phase | +3.0 (n=3" in table
    assert "| toy | 3phase-leak | 3phase-extra | +2.0 (n=3" in table


def test_auto_chooses_on_validation_and_pays_for_every_candidate(harness) -> None:
    rows = []
    for split in range(3):
        rows += [_row("ft-frozen", split, 0.80, 0.99, 5), _row("ft", split, 0.90, 0.70, 30),
                 _row("scl", split, 0.85, 0.95, 40), _row("3phase", split, 0.90, 0.60, 120),
                 _row("3phase-setfit", split, 0.70, 0.98, 130)]
    auto = harness.auto_rows(GRID, rows)
    assert len(auto) == 3
    # ft and 3phase tie on validation: the cheaper (ft) wins; test scores (where ft-frozen is best) play no part.
    assert {r["chosen"] for r in auto} == {"ft"} and all(r["test_accuracy"] == 0.70 for r in auto)
    assert all(r["total_seconds"] == 5 + 30 + 40 + 120 + 130 for r in auto)


def test_auto_waits_for_every_candidate(harness) -> None:
    rows = [_row("ft", 0, 0.9, 0.9, 30), _row("3phase", 0, 0.9, 0.9, 120)]
    assert harness.auto_rows(GRID, rows) == []


def test_summary_pairs_by_split_and_reads_both_protocols(harness) -> None:
    rows = []
    for split, shift in enumerate((0.00, 0.02, 0.01)):
        rows += [_row("ft", split, 0.9, 0.80 + shift, 30), _row("3phase", split, 0.9, 0.82 + shift, 120),
                 _row("setfit", split, 0.9, 0.79 + shift, 60), _row("paper-ft", split, 0.8, 0.60 + shift, 5),
                 _row("paper-3phase", split, 0.8, 0.70 + shift, 100)]
    text = harness.summary(GRID, rows, "python benchmarks/quality/run.py")
    assert "**Partial: 15 of 24 planned runs have finished**" in text
    assert "| 3phase | 3 | " in text and "+2.0 (n=3, p –)" in text  # +2 points on every split: no t-test spread
    assert "| toy | 3phase − ft | +10.0 (n=3, p –) | +2.0 (n=3, p –) |" in text
    assert "| 3phase | 3 | 83.0 ± 1.0 | 83.0 ± 1.0 | 2.00 | +2.0 (n=3, p –) | +3.0 (n=3, p –) |" in text


def _write_splits(runs: Path, cell: str, splits: dict[int, dict[str, list[str]]], methods=("ft", "setfit")) -> None:
    for method in methods:
        for seed, ids in splits.items():
            folder = runs / cell / method / f"seed-{seed}"
            folder.mkdir(parents=True)
            (folder / "split.json").write_text(json.dumps({"seed": seed, "ids": ids}))


def test_split_designs_choose_the_test_from_the_rows_the_splits_share(harness, tmp_path: Path) -> None:
    pool = [f"train.csv:{i}" for i in range(10)]
    fixed_test = [f"test.csv:{i}" for i in range(4)]
    _write_splits(tmp_path, "pool", {  # every split reshuffles the same 10 rows: 6 train, 2 validation, 2 test
        # (disjoint test rows, like k folds: the overlapping training rows still correlate the differences)
        0: {"train": pool[:6], "validation": pool[6:8], "test": pool[8:]},
        1: {"train": pool[4:], "validation": pool[:2], "test": pool[2:4]}})
    _write_splits(tmp_path, "fixed", {  # the same test file on every split, training rows re-drawn
        0: {"train": pool[:3], "validation": pool[3:5], "test": fixed_test},
        1: {"train": pool[5:8], "validation": pool[8:], "test": fixed_test}})
    _write_splits(tmp_path, "drawn", {  # 4 test rows per split drawn from a larger test file, 1 in common
        0: {"train": pool[:3], "validation": pool[3:5], "test": fixed_test},
        1: {"train": pool[5:8], "validation": pool[8:], "test": fixed_test[3:] + ["test.csv:7", "test.csv:8",
                                                                                   "test.csv:9"]}})
    grid = {"cells": {"pool": {}, "fixed": {}, "drawn": {}, "unpublished": {}}}
    designs = harness.split_designs(grid, tmp_path)
    pooled = designs["pool"]
    assert pooled["same_pool"] and pooled["splits"] == 2 and not pooled["disagree"]
    assert pooled["ratio"]["test"] == pytest.approx(2 / 6)  # Nadeau-Bengio: n_test / n_train
    assert pooled["shared"]["train"] == pytest.approx(2 / 6)  # pool[4:6] trains in both
    assert pooled["train_in_test"] == pytest.approx(1.0)  # each split's test rows train the other
    assert designs["fixed"]["ratio"] == {"validation": None, "test": None}  # fixed test, disjoint validation
    assert "same 4 test rows" in designs["fixed"]["why"]["test"]
    assert designs["drawn"]["shared"]["test"] == pytest.approx(0.25)
    assert designs["drawn"]["ratio"]["test"] == pytest.approx(0.25 / 0.75)  # f / (1 - f), f measured
    assert designs["unpublished"]["ratio"]["test"] is None and designs["unpublished"]["splits"] == 0
    (tmp_path / "pool" / "setfit" / "seed-1" / "split.json").write_text(json.dumps({"ids": {"train": pool}}))
    assert harness.split_designs(grid, tmp_path)["pool"]["disagree"] == [1]  # methods must share a split's rows


def test_summary_corrects_per_cell_and_per_family(harness) -> None:
    rows = []
    for split, (ft, sf) in enumerate([(0.80, 0.78), (0.83, 0.80), (0.81, 0.80), (0.84, 0.80)]):
        rows += [_row("ft", split, 0.9, ft, 30), _row("setfit", split, 0.9, sf, 60),
                 _row("3phase", split, 0.9, ft - 0.01 * (split % 2), 120)]
    rows += [_row("scl", split, 0.9, 0.85, 40) for split in (0, 1)]  # two pairs: no test
    grid = {**GRID, "cells": {"toy": {"data": "builtin:snips", "seeds": [0, 1, 2, 3]}}}
    ratio = 0.25
    designs = {"toy": {"splits": 4, "disagree": [], "sizes": {"train": 196, "validation": 66, "test": 66},
                       "shared": {"train": 0.6, "validation": 0.2, "test": 0.2}, "train_in_test": 0.6,
                       "same_pool": True, "ratio": {"validation": ratio, "test": ratio},
                       "why": {"validation": "corrected", "test": "corrected"}}}
    text = harness.summary(grid, rows, "python benchmarks/quality/run.py", designs)
    stats = pytest.importorskip("phasefit.experiments.stats")
    ft_sf = stats.paired({r["split"]: r["test_accuracy"] for r in rows if r["method"] == "ft"},
                         {r["split"]: r["test_accuracy"] for r in rows if r["method"] == "setfit"},
                         scale=100, test_train_ratio=ratio)
    ph_ft = stats.paired({r["split"]: r["test_accuracy"] for r in rows if r["method"] == "3phase"},
                         {r["split"]: r["test_accuracy"] for r in rows if r["method"] == "ft"},
                         scale=100, test_train_ratio=ratio)
    ph_sf = stats.paired({r["split"]: r["test_accuracy"] for r in rows if r["method"] == "3phase"},
                         {r["split"]: r["test_accuracy"] for r in rows if r["method"] == "setfit"},
                         scale=100, test_train_ratio=ratio)
    assert ft_sf.p_corrected > ft_sf.p_ttest  # the table prints the corrected p, not the plain one
    holm = stats.holm([ft_sf.p, ph_ft.p, ph_sf.p])  # ft - setfit and setfit - ft are one test: 3 in the family
    assert "| ft | 4 | " in text and f"+2.5 (n=4, p {ft_sf.p:.3f}, Holm {holm[0]:.3f}) |" in text
    assert "| setfit | 4 | " in text and f"-2.5 (n=4, p {ft_sf.p:.3f}, Holm {holm[0]:.3f}) |" in text
    assert f"| {ph_ft.mean:+.1f} (n=4, p {ph_ft.p:.3f}, Holm {holm[1]:.3f}) " in text
    assert "| scl | 2 | " in text and "(n=2, no p: n < 3)" in text
    # the paper-protocol table is its own family: 3phase - ft alone there, Holm's p is its p
    assert f"| toy | 3phase − ft | – | {ph_ft.mean:+.1f} (n=4, p {ph_ft.p:.3f}, Holm {ph_ft.p:.3f}) |" in text
    assert "Tests run: 4 in all (toy 3, paper protocol 1, variants 0)" in text
    assert "p: corrected resampled t-test (ratio 0.250)" in text


def test_published_runs_restore_into_a_new_output(harness, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(harness, "PUBLISHED", tmp_path / "published")
    run = tmp_path / "out" / "runs" / "toy" / "ft" / "seed-0"
    run.mkdir(parents=True)
    files = ("metrics.json", "config.yaml", "split.json", "fingerprint.json")
    for name in files:
        (run / name).write_text(json.dumps({"name": name}))
    (run / "model").mkdir()  # big files are not published
    cached = tmp_path / "out" / "runs" / "phase-cache" / "1-dae-x"
    cached.mkdir(parents=True)
    (cached / "metrics.json").write_text("{}")  # the phase cache is not a cell
    assert harness.publish_runs(tmp_path / "out") == 1
    assert sorted(p.name for p in (tmp_path / "published" / "toy" / "ft" / "seed-0").iterdir()) == sorted(files)
    assert not (tmp_path / "published" / "phase-cache").exists()
    fresh = tmp_path / "fresh"
    (fresh / "runs" / "toy" / "ft" / "seed-0").mkdir(parents=True)  # an interrupted local attempt
    assert harness.restore_runs(fresh) == 1
    assert (fresh / "runs" / "toy" / "ft" / "seed-0" / "metrics.json").is_file()
    assert harness.restore_runs(fresh) == 0  # finished runs are never replaced


def test_the_probe_peer_runs_on_the_cell_split(harness, tmp_path: Path, tiny_model_dir: Path,
                                               toy_data_dir_module: Path) -> None:
    """The benchmark's peers are phasefit.experiments.peers, on the rows phasefit's loader gives the cell."""
    grid = {"set": {"model.name": str(tiny_model_dir), "data.max_length": 32}, "setfit": {},
            "cells": {"toy": {"data": str(toy_data_dir_module), "seeds": [0]}}}
    metrics = harness.run_peer("probe", grid, "toy", 0, tmp_path)
    assert metrics["recipe"] == "probe" and 0 <= metrics["test"]["accuracy"] <= 1
    assert json.loads((tmp_path / "runs/toy/probe/seed-0/metrics.json").read_text()) == metrics
    assert harness.run_peer("probe", grid, "toy", 0, tmp_path) == metrics  # read back, not retrained
