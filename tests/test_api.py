"""The Python API (issue 11): ``phasefit.train`` on data from a path or from memory, ``PhaseFitClassifier``'s
predict/predict_proba on a string and a list, and the Hub-standard save_pretrained -> from_pretrained round trip."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import phasefit
from phasefit.config import ConfigError
from phasefit.data import DataError

FAST = {"progress": False, "plots": False, "ft": {"epochs": 2, "batch_size": 8}, "data_config": {"max_length": 32}}


def _frames(folder: Path) -> dict[str, pd.DataFrame]:
    return {split: pd.read_csv(folder / f"{split}.csv") for split in ("train", "validation", "test")}


def _train(tiny_model_dir: Path, output: Path, data, **kwargs):
    settings = {**FAST, **kwargs}
    return phasefit.train("ft", data=data, output=output, model=str(tiny_model_dir), **settings)


@pytest.fixture(scope="module")
def frame_run(tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path, toy_data_dir_module: Path):
    frames = _frames(toy_data_dir_module)
    output = tmp_path_factory.mktemp("api") / "run"
    clf = _train(tiny_model_dir, output, frames["train"], validation=frames["validation"], test=frames["test"])
    return clf, frames, output


def test_train_on_a_dataframe_returns_a_classifier_and_its_run(frame_run) -> None:
    clf, frames, output = frame_run
    labels = sorted(frames["train"]["label"].unique())
    assert clf.labels == labels
    one = clf.predict("book a table for two")
    assert isinstance(one, str) and one in labels
    many = clf.predict(["book a table for two", "play some jazz"])
    assert isinstance(many, list) and len(many) == 2 and many[0] == one
    proba = clf.predict_proba(["book a table for two", "play some jazz"])
    assert proba.shape == (2, len(labels)) and np.allclose(proba.sum(axis=1), 1, atol=1e-5)
    assert clf.predict_proba("book a table for two").shape == (len(labels),)
    assert clf.run.run_dir == output and (output / "metrics.json").is_file()
    metrics = clf.run.metrics
    assert metrics["sizes"] == {split: len(frame) for split, frame in frames.items()}  # given splits kept as given
    assert metrics["data"].startswith("memory:")
    assert (output / "config.yaml").read_text().count("memory:") == 1


@pytest.mark.parametrize("form", ["dataset", "datasetdict", "lists", "dict", "records"])
def test_train_accepts_datasets_lists_and_dicts(form: str, tmp_path: Path, tiny_model_dir: Path,
                                                toy_data_dir_module: Path) -> None:
    import datasets

    frames = _frames(toy_data_dir_module)
    extra = {}
    if form == "dataset":
        names = sorted(frames["train"]["label"].unique())
        features = datasets.Features({"text": datasets.Value("string"), "label": datasets.ClassLabel(names=names)})
        data = datasets.Dataset.from_pandas(frames["train"], features=features, preserve_index=False)
        assert isinstance(data[0]["label"], int)  # ClassLabel ids: phasefit must train on the names
    elif form == "datasetdict":
        data = datasets.DatasetDict({split: datasets.Dataset.from_pandas(frame, preserve_index=False)
                                     for split, frame in frames.items()})
    elif form == "lists":
        data = (frames["train"]["text"].tolist(), frames["train"]["label"].tolist())
        extra["validation"] = (frames["validation"]["text"].tolist(), frames["validation"]["label"].tolist())
    elif form == "dict":
        data = {"text": frames["train"]["text"].tolist(), "label": frames["train"]["label"].tolist()}
    else:
        data = frames["train"].to_dict("records")
    clf = _train(tiny_model_dir, tmp_path / "run", data, **extra)
    assert clf.labels == sorted(frames["train"]["label"].unique())
    sizes = clf.run.metrics["sizes"]
    if form == "datasetdict":
        assert sizes == {split: len(frame) for split, frame in frames.items()}
    elif form == "lists":
        assert sizes["validation"] == len(frames["validation"])
        assert sizes["train"] + sizes["test"] == len(frames["train"])  # test made from train
    else:
        assert sum(sizes.values()) == len(frames["train"])  # validation and test made from train


def test_train_on_a_path_matches_the_same_data_in_memory(frame_run, tiny_model_dir: Path,
                                                         toy_data_dir_module: Path, tmp_path: Path) -> None:
    clf, frames, _ = frame_run
    from_path = _train(tiny_model_dir, tmp_path / "run", toy_data_dir_module)
    assert from_path.run.metrics["data"] == str(toy_data_dir_module)
    texts = frames["test"]["text"].tolist()
    # Same rows, seed and settings: the same classifier, whatever container the data came in.
    np.testing.assert_allclose(from_path.predict_proba(texts), clf.predict_proba(texts), atol=1e-6)


def test_save_pretrained_round_trip_and_model_card(frame_run, tmp_path: Path) -> None:
    from huggingface_hub import ModelCard
    from sentence_transformers import SentenceTransformer

    clf, frames, output = frame_run
    texts = frames["test"]["text"].tolist()
    folder = tmp_path / "saved"
    clf.save_pretrained(folder)
    again = phasefit.PhaseFitClassifier.from_pretrained(folder)
    np.testing.assert_array_equal(again.predict_proba(texts), clf.predict_proba(texts))
    assert again.predict(texts) == clf.predict(texts)
    # The encoder part is a sentence-transformers folder on its own.
    np.testing.assert_allclose(SentenceTransformer(str(folder)).encode(texts), clf.encoder.encode(texts), atol=1e-6)
    # A run directory and its model/ load too, to the same predictions.
    for source in (output, output / "model"):
        np.testing.assert_array_equal(phasefit.PhaseFitClassifier.from_pretrained(source).predict_proba(texts),
                                      clf.predict_proba(texts))
    card = ModelCard.load(folder / "README.md")
    assert card.data.library_name == "phasefit"
    assert card.data.pipeline_tag == "text-classification"
    assert "recipe:ft" in card.data.tags
    results = {r.metric_type: r.metric_value for r in card.data.eval_results}
    assert results["accuracy"] == pytest.approx(clf.run.metrics["test"]["accuracy"])
    assert "](https://github.com/)" not in card.text  # no placeholder links


def test_save_pretrained_refuses_a_folder_of_other_files(frame_run, tmp_path: Path) -> None:
    clf, _, _ = frame_run
    folder = tmp_path / "notes"
    folder.mkdir()
    (folder / "mine.txt").write_text("keep me")
    with pytest.raises(phasefit.PhasefitError, match="did not write"):
        clf.save_pretrained(folder)
    assert sorted(p.name for p in folder.iterdir()) == ["mine.txt"]
    clf.save_pretrained(tmp_path / "saved")
    clf.save_pretrained(tmp_path / "saved")  # an earlier phasefit save is replaced


def test_api_errors_name_the_key_or_row(tiny_model_dir: Path, tmp_path: Path, toy_data_dir_module: Path) -> None:
    frames = _frames(toy_data_dir_module)
    with pytest.raises(ConfigError, match="epochz"):
        _train(tiny_model_dir, tmp_path / "a", frames["train"], ft={"epochz": 1})
    broken = frames["train"].copy()
    broken.loc[3, "label"] = None
    with pytest.raises(DataError, match=r"memory:train row 4: missing label in column 'label'"):
        _train(tiny_model_dir, tmp_path / "b", broken)
    with pytest.raises(ConfigError, match="validation= and test= go with data in memory"):
        _train(tiny_model_dir, tmp_path / "c", toy_data_dir_module, validation=frames["validation"])
    with pytest.raises(DataError, match="texts but"):
        _train(tiny_model_dir, tmp_path / "d", (["a", "b"], ["x"]))
    assert not any((tmp_path / name).exists() for name in "abcd")  # nothing half-written


def test_a_memory_spec_in_a_config_says_where_the_data_went(tmp_path: Path) -> None:
    from phasefit.data import load_splits

    with pytest.raises(DataError, match="passed from Python"):
        load_splits("memory:0123456789abcdef")


def test_import_phasefit_is_light() -> None:
    code = "import sys, phasefit; print(phasefit.__version__); print(sorted(m for m in ('torch', 'pandas', " \
           "'sklearn', 'transformers') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split("\n")
    from importlib.metadata import version

    assert out[0] == version("phasefit") and out[1] == "[]"
    assert set(phasefit.__all__) >= {"train", "PhaseFitClassifier", "RunConfig", "PhasefitError", "__version__"}


def test_report_to_tensorboard_writes_event_files(tiny_model_dir: Path, toy_data_dir_module: Path,
                                                  tmp_path: Path) -> None:
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    clf = phasefit.train("dae-ft", data=toy_data_dir_module, output=tmp_path / "run", model=str(tiny_model_dir),
                         trainer={"report_to": "tensorboard"}, dae={"epochs": 1, "batch_size": 8}, **FAST)
    for phase in ("dae", "ft"):
        folder = tmp_path / "run" / "logs" / phase
        assert list(folder.glob("events.out.tfevents.*")), f"no event file for {phase}"
        events = EventAccumulator(str(folder))
        events.Reload()
        losses = events.Scalars("train/loss")
        assert len(losses) >= 2 and all(np.isfinite(e.value) for e in losses)
    assert clf.run.metrics["phases"][0]["name"] == "dae"


def test_mixed_precision_auto_is_off_on_cpu_and_fp16_needs_a_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    from phasefit.training.trainer import TrainerOptionError, precision_arguments

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert precision_arguments("auto") == {"bf16": False, "fp16": False}
    assert precision_arguments("bf16") == {"bf16": True, "fp16": False}
    with pytest.raises(TrainerOptionError, match="fp16 needs a CUDA GPU"):
        precision_arguments("fp16")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda: False)
    assert precision_arguments("auto") == {"bf16": False, "fp16": True}


def test_trainer_options_reach_the_training_arguments(tmp_path: Path) -> None:
    from phasefit.recipes import build_config
    from phasefit.phases.base import PhaseContext
    from phasefit.training.trainer import build_training_arguments

    config = build_config("ft", settings={"trainer": {"report_to": ["tensorboard", "mlflow"],
                                                      "gradient_accumulation_steps": 4,
                                                      "dataloader_num_workers": 2, "mixed_precision": "auto"}})
    ctx = PhaseContext.__new__(PhaseContext)
    ctx.config, ctx.work_dir = config, tmp_path
    args = build_training_arguments(ctx, phase="ft", cfg=config.ft)
    assert args.gradient_accumulation_steps == 4 and args.dataloader_num_workers == 2
    assert args.report_to == ["mlflow"]  # tensorboard goes through phasefit's own writer, to RUN/logs
    assert not args.bf16 and not args.fp16  # auto: off on this CPU


def test_trainer_section_keeps_earlier_runs_reusable() -> None:
    from phasefit.recipes import build_config
    from phasefit.fingerprint import config_differences, result_config

    before = build_config("ft").to_dict()
    del before["trainer"]  # a config.yaml written before the section existed
    unfused = build_config("ft", settings={"trainer": {"fused_optimizer": False}}).to_dict()
    assert config_differences(before, unfused) == []  # what those runs did: still reusable
    # the fused AdamW (the default since) rounds differently: an earlier run is not a result of today's default
    assert config_differences(before, build_config("ft").to_dict()) == ["trainer.fused_optimizer: None -> True"]
    logged = build_config("ft", settings={"trainer": {"report_to": ["tensorboard"], "dataloader_num_workers": 3}})
    assert result_config(logged) == result_config(build_config("ft"))  # logging cannot change a result
    accumulated = build_config("ft", settings={"trainer": {"gradient_accumulation_steps": 2, "fused_optimizer": False}})
    assert config_differences(before, accumulated.to_dict()) == ["trainer.gradient_accumulation_steps: None -> 2"]


def test_a_setfit_model_folder_is_a_starting_encoder(tiny_model_dir: Path, toy_data_dir_module: Path,
                                                     tmp_path: Path) -> None:
    """SetFit saves its body as a sentence-transformers folder beside ``model_head.pkl`` (a scikit-learn head) and
    ``config_setfit.json``; phasefit starts any recipe from the body and never unpickles the head."""
    import json
    import shutil

    import joblib
    from sentence_transformers import SentenceTransformer
    from sklearn.linear_model import LogisticRegression

    folder = tmp_path / "setfit-model"
    shutil.copytree(tiny_model_dir, folder)
    joblib.dump(LogisticRegression().fit([[0.0], [1.0]], [0, 1]), folder / "model_head.pkl")
    (folder / "config_setfit.json").write_text(json.dumps({"labels": None, "normalize_embeddings": False}))
    clf = _train(tiny_model_dir, tmp_path / "run", toy_data_dir_module)  # the plain body, for comparison
    from_setfit = phasefit.train("ft", data=toy_data_dir_module, output=tmp_path / "run-setfit", model=str(folder),
                                 **FAST)
    texts = ["book a table for two", "play some jazz"]
    np.testing.assert_array_equal(from_setfit.predict_proba(texts), clf.predict_proba(texts))
    start = SentenceTransformer(str(folder)).encode(texts)
    np.testing.assert_allclose(start, SentenceTransformer(str(tiny_model_dir)).encode(texts), atol=1e-6)


def test_report_returns_dataframes_and_figures(frame_run, tiny_model_dir: Path, toy_data_dir_module: Path,
                                               tmp_path: Path) -> None:
    import matplotlib.figure

    clf, _, output = frame_run
    other = phasefit.train("ft-frozen", data=toy_data_dir_module, output=tmp_path / "frozen",
                           model=str(tiny_model_dir), **FAST)
    rep = phasefit.report([output, other.run.run_dir], output=tmp_path / "report")
    accuracy = rep.tables["Accuracy (paper 000 Table 3)"]
    assert list(accuracy.columns) == ["data set", "ft", "ft-frozen"]
    cell = accuracy.loc[accuracy["data set"] == toy_data_dir_module.name, "ft-frozen"].item()
    assert cell.startswith(f"{100 * other.run.metrics['test']['accuracy']:.2f} ± 0.00 (n=1)")
    assert rep.figures and all(isinstance(f, matplotlib.figure.Figure) for f in rep.figures.values())
    assert rep.html.is_file() and rep.markdown.is_file() and "<table" in rep._repr_html_()
