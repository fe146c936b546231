"""Issue 10, item 7: thousands of classes train, score, plot and save (the confusion-matrix figure crashed every
run above ~1,300 classes after the model was saved, and metrics.json held C x C lists per split)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from phasefit.recipes import build_config
from phasefit.pipeline import train
from tests.conftest import toy_vocabulary, tiny_overrides

CLASSES = 2000


def _many_classes(folder: Path) -> Path:
    rng = np.random.default_rng(0)
    words = toy_vocabulary()
    folder.mkdir(parents=True)
    for split, per_class in (("train", 2), ("validation", 1), ("test", 1)):
        rows = [{"text": " ".join(rng.choice(words, 5)), "label": f"c{k:04d}"}
                for k in range(CLASSES) for _ in range(per_class)]
        pd.DataFrame(rows).to_csv(folder / f"{split}.csv", index=False)
    return folder


def test_two_thousand_classes_train_plot_and_store_sparsely(tiny_model_dir: Path, tmp_path: Path) -> None:
    data = _many_classes(tmp_path / "data")
    config = build_config("ft", None, [*tiny_overrides(tiny_model_dir), f"data.path={data}", "ft.max_steps=1",
                                       "ft.epochs=1"])
    result = train(config, tmp_path / "run")
    run = tmp_path / "run"
    assert (run / "confusion_matrix.png").stat().st_size > 0 and (run / "embeddings.png").stat().st_size > 0
    stored = json.loads((run / "metrics.json").read_text())["test"]["confusion_matrix"]
    assert stored["format"] == "sparse" and stored["shape"] == [CLASSES, CLASSES]
    assert sum(count for _, _, count in stored["entries"]) == CLASSES  # every test example, once
    assert len(stored["entries"]) <= CLASSES
    assert (run / "metrics.json").stat().st_size < 5_000_000
    assert result.metrics["test"]["examples"] == CLASSES


def test_small_label_sets_keep_the_dense_matrix() -> None:
    from phasefit.evaluation.metrics import classification_metrics, confusion_entries

    scores = classification_metrics([0, 1, 1, 2], [0, 1, 2, 2], ["a", "b", "c"])
    assert scores["confusion_matrix"] == [[1, 0, 0], [0, 1, 1], [0, 0, 1]]
    assert sorted(confusion_entries(scores["confusion_matrix"])) == [(0, 0, 1), (1, 1, 1), (1, 2, 1), (2, 2, 1)]
