"""Experiment grids, reports, search and export, end to end on the tiny model (subprocesses where it matters)."""

from __future__ import annotations

import csv
import importlib.util
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

from phasefit.cli import main
from tests.conftest import tiny_overrides

FAST = {"ft.epochs": 2, "ft.max_steps": 3, "cl.max_steps": 2, "cl.batch_size": 4, "progress": False}


def _grid(path: Path, model_dir: Path, data_dir: Path, recipes: list[str], seeds: list[int]) -> Path:
    settings = dict(item.split("=", 1) for item in tiny_overrides(model_dir))
    grid = {"recipes": recipes, "seeds": seeds, "set": {**settings, **FAST},
            "datasets": {"toy": {"path": str(data_dir)}}}
    path.write_text(yaml.safe_dump(grid))
    return path


def _rows(folder: Path) -> list[list[str]]:
    """results.csv rows without the wall-clock columns (timings differ between any two runs)."""
    with open(folder / "results.csv", newline="") as handle:
        reader = csv.DictReader(handle)
        keep = [c for c in reader.fieldnames if "second" not in c and "memory" not in c]
        return [[row[c] for c in keep] for row in reader]


@pytest.fixture(scope="module")
def grid_run(tiny_model_dir: Path, toy_data_dir_module: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("grid")
    grid = _grid(folder / "grid.yaml", tiny_model_dir, toy_data_dir_module, ["cl-ft", "ft"], [0, 1])
    assert main(["experiment", "--config", str(grid), "--output", str(folder / "out")]) == 0
    return folder / "out"


def test_experiment_writes_one_row_per_run(grid_run: Path) -> None:
    rows = [json.loads(line) for line in (grid_run / "results.jsonl").read_text().splitlines()]
    assert [(r["dataset"], r["recipe"], r["seed"]) for r in rows] == [
        ("toy", "cl-ft", 0), ("toy", "cl-ft", 1), ("toy", "ft", 0), ("toy", "ft", 1)]
    assert {"test_accuracy", "validation_macro_f1", "cl_seconds", "ft_trainable_parameters"} <= set(rows[0])
    assert len(_rows(grid_run)) == 4


def test_report_has_paper_tables_paired_test_and_embedded_images(grid_run: Path) -> None:
    assert main(["report", str(grid_run)]) == 0
    md = (grid_run / "report.md").read_text()
    for heading in ("Accuracy (paper 000 Table 3)", "Macro precision and recall (paper 000 Table 6)",
                    "Macro F1 (paper 000 Table 7)", "Cost per phase", "Paired comparison with ft"):
        assert heading in md
    assert "(n=2)" in md and "**" in md  # mean ± std with the seed count, best in bold
    page = (grid_run / "report.html").read_text()
    assert page.count("data:image/png;base64,") >= 3
    assert "src=\"http" not in page and "<script" not in page  # self-contained


def _chromium() -> tuple[str, str] | None:
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    if importlib.util.find_spec("selenium") is None:
        return None
    return (browser, driver) if browser and driver else None


def test_report_renders_in_headless_chromium(grid_run: Path, tmp_path: Path) -> None:
    """Skips on a developer machine without the browser; in CI (CI=true, where .ci/run installs Debian's chromium
    and chromium-driver) a missing browser is a failure, never a silent skip."""
    if _chromium() is None:
        message = "needs Debian's chromium + chromium-driver (apt-get install chromium chromium-driver) and selenium"
        if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
            pytest.fail(f"CI=true but the report's browser test cannot run: {message}")
        pytest.skip(message)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    browser, driver = _chromium()
    main(["report", str(grid_run)])
    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--window-size=1280,2000",
                 f"--user-data-dir={tmp_path / 'profile'}"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    session = webdriver.Chrome(service=Service(driver), options=options)
    try:
        session.get((grid_run / "report.html").resolve().as_uri())
        loaded = session.execute_script(
            "return Array.from(document.images).map(i => i.complete && i.naturalWidth > 0)")
        errors = [entry for entry in session.get_log("browser") if entry["level"] == "SEVERE"]
        tables = session.execute_script("return document.querySelectorAll('table').length")
        session.save_screenshot(str(grid_run / "report-screenshot.png"))
    finally:
        session.quit()
    assert loaded and all(loaded), loaded
    assert errors == []
    assert tables >= 5


def _phasefit(*args: str) -> list[str]:
    return [sys.executable, "-m", "phasefit.cli", *args]


def test_killed_experiment_resumes_to_the_same_rows(tiny_model_dir: Path, toy_data_dir_module: Path,
                                                     tmp_path: Path, grid_run: Path) -> None:
    grid = _grid(tmp_path / "grid.yaml", tiny_model_dir, toy_data_dir_module, ["cl-ft", "ft"], [0, 1])
    out = tmp_path / "out"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    process = subprocess.Popen(_phasefit("experiment", "--config", str(grid), "--output", str(out), "--no-report"),
                               env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while not (out / "cl-ft" / "seed-1").exists() and not (out / "toy" / "cl-ft" / "seed-1").exists():
        assert process.poll() is None, "the grid ended before it could be killed"
        assert time.monotonic() < deadline
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)  # mid-grid: cell 1 begun, cells 2-3 never started
    process.wait(timeout=60)
    assert len(_rows(out)) == 1
    subprocess.run(_phasefit("experiment", "--config", str(grid), "--output", str(out), "--no-report"), env=env,
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=600)
    assert _rows(out) == _rows(grid_run)


def test_two_search_workers_share_one_study(tiny_model_dir: Path, toy_data_dir_module: Path, tmp_path: Path) -> None:
    import optuna

    db = f"sqlite:///{tmp_path / 'study.db'}"
    sets = [arg for item in [*tiny_overrides(tiny_model_dir), "ft.max_steps=3", "ft.epochs=2"]
            for arg in ("--set", item)]
    space = tmp_path / "space.yaml"
    space.write_text(yaml.safe_dump({"ft.lr": [1e-3, 5e-4, 1e-4], "ft.batch_size": [4, 8], "ft.head_hidden": [16, 32]}))
    command = _phasefit("search", "--data", str(toy_data_dir_module), "--recipe", "ft", "--trials", "5",
                        "--storage", db, "--space", str(space), "--output", str(tmp_path / "search"), *sets)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    workers = [subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
               for _ in range(2)]
    outputs = [worker.communicate(timeout=600) for worker in workers]
    assert [w.returncode for w in workers] == [0, 0], outputs
    study = optuna.load_study(study_name="phasefit", storage=db)
    done = [t for t in study.trials if t.state in (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)]
    assert sorted(t.number for t in done) == [0, 1, 2, 3, 4]  # N in total, none lost, none twice
    over = [t for t in study.trials if t.state == optuna.trial.TrialState.FAIL]
    assert all(t.user_attrs.get("over_budget") for t in over) and all(t.number >= 5 for t in over)
    ran = sorted(p.name for p in (tmp_path / "search").glob("trial-*"))
    assert ran == [f"trial-{i}" for i in range(5)]
    for trial_dir in (tmp_path / "search").glob("trial-*"):
        metrics = trial_dir / "metrics.json"
        if metrics.exists():
            assert json.loads(metrics.read_text())["test"] is None  # selection never reads the test split
    best = tmp_path / "search" / "best-config.yaml"
    assert main(["train", "--config", str(best), "--output", str(tmp_path / "best-run")]) == 0


def test_export_onnx_agrees_with_pytorch(grid_run: Path, tmp_path: Path, toy_data_dir_module: Path) -> None:
    import pandas as pd
    from sentence_transformers import SentenceTransformer

    from phasefit.export import onnx_predict
    from phasefit.models.classifier import PhaseFitClassifier

    run = grid_run / "toy" / "ft" / "seed-0"
    assert main(["export", str(run), "--output", str(tmp_path / "export")]) == 0
    exported = tmp_path / "export"
    frame = pd.concat([pd.read_csv(toy_data_dir_module / f"{split}.csv") for split in ("train", "validation", "test")])
    single = frame["text"].tolist()
    texts = (single + [f"{a} and {b}" for a, b in zip(single, single[1:])])[:100]  # assorted lengths
    assert len(texts) == 100
    classifier = PhaseFitClassifier.load(exported)
    torch_logits = classifier.predict_logits(texts)
    onnx_logits = onnx_predict(exported / "model.onnx", classifier, texts)
    assert (onnx_logits.argmax(1) == torch_logits.argmax(1)).all()
    assert np.allclose(onnx_logits, torch_logits, atol=1e-4)
    assert classifier.predict(texts) == PhaseFitClassifier.load(run / "model").predict(texts)
    assert SentenceTransformer(str(exported), device="cpu").encode(["play some jazz"]).shape[1] == 32
    card = (exported / "README.md").read_text()
    assert "recipe `ft`" in card and "PhaseFitClassifier.from_pretrained" in card
    assert card.startswith("---\nlibrary_name: phasefit\n")


def test_export_quantize_writes_an_int8_graph_that_predicts(grid_run: Path, tmp_path: Path,
                                                             toy_data_dir_module: Path) -> None:
    import onnx
    import pandas as pd

    from phasefit.export import onnx_predict
    from phasefit.models.classifier import PhaseFitClassifier

    run = grid_run / "toy" / "ft" / "seed-0"
    exported = tmp_path / "export"
    assert main(["export", str(run), "--output", str(exported), "--quantize"]) == 0
    quantized = exported / "model_quantized.onnx"
    graph = onnx.load(str(quantized))
    int8 = [t for t in graph.graph.initializer if t.data_type == onnx.TensorProto.INT8]
    assert int8, "no int8 weights in the quantised graph"
    texts = pd.read_csv(toy_data_dir_module / "test.csv")["text"].tolist()
    classifier = PhaseFitClassifier.load(exported)
    logits = onnx_predict(quantized, classifier, texts)
    assert logits.shape == (len(texts), len(classifier.label_names)) and np.isfinite(logits).all()
    assert "model_quantized.onnx" in (exported / "README.md").read_text()
    assert main(["export", str(run), "--output", str(tmp_path / "bad"), "--quantize", "--no-onnx"]) == 2


def test_report_escapes_names_from_the_data(tiny_model_dir: Path, toy_data_dir: Path, tmp_path: Path) -> None:
    """A data folder named like markup appears as text in report.html, never as markup."""
    odd = tmp_path / "toy<b>&amp"
    shutil.copytree(toy_data_dir, odd)
    sets = [arg for item in [*tiny_overrides(tiny_model_dir), "ft.max_steps=2"] for arg in ("--set", item)]
    out = tmp_path / "cmp"
    assert main(["run", "--data", str(odd), "--recipes", "ft", "--seeds", "0", "--output", str(out), *sets]) == 0
    page = (out / "report.html").read_text()
    assert "toy&lt;b&gt;&amp;amp" in page and "toy<b>" not in page
