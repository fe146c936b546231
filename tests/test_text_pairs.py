"""Text pairs end to end (issue 11 item 3): ``data.text_pair_column`` reaches training, evaluation, prediction, the
frozen-encoder path, save/load and the ONNX graph, on a small NLI-style set (premise, hypothesis, label)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import phasefit
from phasefit.pipeline import evaluate_split, load_run_data

def _pair_frame(source: Path, seed: int) -> pd.DataFrame:
    """(premise, hypothesis, label): two toy queries (words the tiny model's vocabulary knows) and whether they ask
    for the same thing, "entailment", or not, "contradiction"; both labels equally often."""
    frame = pd.read_csv(source)
    rng = np.random.default_rng(seed)
    rows = []
    for i, (text, label) in enumerate(zip(frame["text"], frame["label"])):
        same = frame[(frame["label"] == label) & (frame.index != i)]
        other = frame[frame["label"] != label]
        for pool, target in ((same, "entailment"), (other, "contradiction")):
            rows.append({"premise": text, "hypothesis": pool["text"].iloc[rng.integers(len(pool))], "label": target})
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def pair_run(tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path, toy_data_dir_module: Path):
    folder = tmp_path_factory.mktemp("nli")
    for seed, split in enumerate(("train", "validation", "test")):
        _pair_frame(toy_data_dir_module / f"{split}.csv", seed).to_csv(folder / f"{split}.csv", index=False)
    clf = phasefit.train("ft", data=folder, output=folder / "run", model=str(tiny_model_dir), progress=False,
                         plots=False, ft={"epochs": 2, "batch_size": 8},
                         data_config={"text_column": "premise", "text_pair_column": "hypothesis", "max_length": 32})
    return clf, folder


def test_pairs_reach_prediction_and_evaluation(pair_run) -> None:
    clf, folder = pair_run
    test = pd.read_csv(folder / "test.csv")
    premises, hypotheses = test["premise"].tolist(), test["hypothesis"].tolist()
    assert clf.text_pairs
    with pytest.raises(phasefit.PhasefitError, match="trained on text pairs"):
        clf.predict(premises)
    logits = clf.predict_logits(premises, hypotheses)
    # The second text is read: the same premises with the hypotheses shuffled give other logits.
    assert not np.allclose(logits, clf.predict_logits(premises, hypotheses[::-1]), atol=1e-4)
    one = clf.predict(premises[0], hypotheses[0])
    assert one == clf.predict(premises, hypotheses)[0]
    # The run's test score is what predict with pairs gives.
    config, splits = clf.run.metrics, load_run_data(phasefit.RunConfig.model_validate(
        __import__("yaml").safe_load((folder / "run" / "config.yaml").read_text())))
    assert evaluate_split(clf, splits, splits.test)["accuracy"] == pytest.approx(config["test"]["accuracy"])
    predicted = clf.predict(splits.test.texts, splits.test.text_pairs)
    gold = splits.test.labels
    assert np.mean([p == g for p, g in zip(predicted, gold)]) == pytest.approx(config["test"]["accuracy"])


def test_pairs_survive_save_and_load(pair_run, tmp_path: Path) -> None:
    clf, folder = pair_run
    test = pd.read_csv(folder / "test.csv")
    clf.save_pretrained(tmp_path / "saved")
    again = phasefit.PhaseFitClassifier.from_pretrained(tmp_path / "saved")
    assert again.text_pairs
    args = (test["premise"].tolist(), test["hypothesis"].tolist())
    np.testing.assert_array_equal(again.predict_proba(*args), clf.predict_proba(*args))


def test_onnx_graph_agrees_on_pairs(pair_run, tmp_path: Path) -> None:
    pytest.importorskip("onnxruntime")
    from phasefit.export import export_onnx, onnx_predict

    clf, folder = pair_run
    test = pd.read_csv(folder / "test.csv")
    args = (test["premise"].tolist(), test["hypothesis"].tolist())
    path = export_onnx(clf, tmp_path / "model.onnx")
    np.testing.assert_allclose(onnx_predict(path, clf, *args), clf.predict_logits(*args), atol=1e-4)


def test_frozen_encoder_embeds_the_pairs(tiny_model_dir: Path, pair_run) -> None:
    _, folder = pair_run
    clf = phasefit.train("ft-frozen", data=folder, output=folder / "frozen", model=str(tiny_model_dir),
                         progress=False, plots=False, ft={"epochs": 2},
                         data_config={"text_column": "premise", "text_pair_column": "hypothesis", "max_length": 32})
    test = pd.read_csv(folder / "test.csv")
    premises, hypotheses = test["premise"].tolist(), test["hypothesis"].tolist()
    # The head trained on pair embeddings; its predictions come from pair embeddings too.
    assert clf.text_pairs
    assert not np.allclose(clf.predict_logits(premises, hypotheses),
                           clf.predict_logits(premises, hypotheses[::-1]), atol=1e-4)
