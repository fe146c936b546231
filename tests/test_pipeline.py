"""End-to-end runs of the ft recipe on the tiny random BERT and toy intents, plus config and optimiser units.

One trained run is shared by the module (``trained_run``); tests that need other settings train their own, each in
about a second on a CPU. No network: the model is the local tiny folder from conftest.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from conftest import TOY_LABELS, tiny_overrides

from phasefit.config import ConfigError, RunConfig
from phasefit.recipes import build_config, parse_override
from phasefit.models.classifier import PhaseFitClassifier
from phasefit.pipeline import RunDirectoryError, RunResult, train
from phasefit.training.optim import parameter_groups


def ft_config(model_dir: Path, data_dir: Path, *extra: str) -> RunConfig:
    return build_config("ft", overrides=[*tiny_overrides(model_dir), f"data.path={data_dir}", *extra])


def read_test_texts(data_dir: Path) -> list[str]:
    import pandas as pd

    return pd.read_csv(data_dir / "test.csv")["text"].tolist()


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path, toy_data_dir_module: Path) -> RunResult:
    """The ft recipe trained once on the toy data (seed 0); read-only for the tests that use it."""
    config = ft_config(tiny_model_dir, toy_data_dir_module)
    return train(config, tmp_path_factory.mktemp("runs") / "ft-seed0")


# --- the run directory ---------------------------------------------------------------------------------------------


def test_run_directory_holds_config_split_metrics_and_model(trained_run: RunResult) -> None:
    run = trained_run.run_dir
    for name in ("config.yaml", "split.json", "metrics.json"):
        assert (run / name).is_file(), name
    assert not (run / "checkpoints").exists()  # Trainer checkpoints are scratch space, removed at the end

    config = yaml.safe_load((run / "config.yaml").read_text())
    assert config["recipe"] == "ft" and config["seed"] == 0 and config["ft"]["epochs"] == 2

    split = json.loads((run / "split.json").read_text())
    assert split["label_names"] == TOY_LABELS
    assert {name: len(ids) for name, ids in split["ids"].items()} == {"train": 48, "validation": 15, "test": 15}

    model = run / "model"
    assert (model / "head.safetensors").is_file() and (model / "classifier.json").is_file()
    assert list((model / "encoder").glob("**/*.safetensors")), "encoder weights must be safetensors"
    assert not list((model / "encoder").glob("**/*.bin")), "no pickle weights"


def test_metrics_record_scores_and_phase_cost(trained_run: RunResult) -> None:
    metrics = json.loads((trained_run.run_dir / "metrics.json").read_text())
    assert metrics == json.loads(json.dumps(trained_run.metrics))  # the file is what train() returned
    assert metrics["recipe"] == "ft" and metrics["seed"] == 0
    for split in ("test", "validation"):
        for key in ("accuracy", "macro_f1", "macro_precision", "macro_recall"):
            assert 0.0 <= metrics[split][key] <= 1.0, (split, key)
    assert metrics["test"]["examples"] == 15

    (phase,) = metrics["phases"]
    assert phase["name"] == "ft"
    assert phase["seconds"] > 0 and phase["examples_per_second"] > 0 and phase["peak_memory_mb"] > 0
    assert phase["trainable_parameters"] > 0
    assert math.isfinite(phase["final_loss"])
    assert 0.0 <= phase["validation_knn_accuracy"] <= 1.0
    assert -1.0 <= phase["validation_silhouette"] <= 1.0
    assert (trained_run.run_dir / "curves" / "1-ft.json").is_file()


def test_saved_classifier_predicts_like_the_trained_one(trained_run: RunResult, toy_data_dir_module: Path) -> None:
    texts = read_test_texts(toy_data_dir_module)
    loaded = PhaseFitClassifier.load(trained_run.run_dir / "model")
    assert loaded.label_names == TOY_LABELS
    assert loaded.predict(texts) == trained_run.classifier.predict(texts)
    np.testing.assert_allclose(loaded.predict_proba(texts), trained_run.classifier.predict_proba(texts), atol=1e-6)


def test_predictions_do_not_depend_on_batch_size_or_order(trained_run: RunResult, toy_data_dir_module: Path) -> None:
    texts = read_test_texts(toy_data_dir_module)
    classifier = trained_run.classifier
    whole = classifier.predict_proba(texts)
    np.testing.assert_allclose(classifier.predict_proba(texts, batch_size=4), whole, atol=1e-5)
    np.testing.assert_allclose(classifier.predict_proba(texts[::-1]), whole[::-1], atol=1e-5)
    assert classifier.predict([]) == []


def test_same_config_and_seed_give_identical_predictions(
    trained_run: RunResult, tiny_model_dir: Path, toy_data_dir_module: Path, tmp_path: Path
) -> None:
    again = train(ft_config(tiny_model_dir, toy_data_dir_module), tmp_path / "again")
    texts = read_test_texts(toy_data_dir_module)
    assert again.classifier.predict(texts) == trained_run.classifier.predict(texts)
    np.testing.assert_allclose(again.classifier.predict_proba(texts), trained_run.classifier.predict_proba(texts),
                               atol=1e-6)
    assert again.metrics["test"] == trained_run.metrics["test"]
    assert again.metrics["phases"][0]["final_loss"] == trained_run.metrics["phases"][0]["final_loss"]


def test_existing_run_directory_is_refused_without_overwrite(
    trained_run: RunResult, tiny_model_dir: Path, toy_data_dir_module: Path, tmp_path: Path
) -> None:
    run = tmp_path / "run"
    run.mkdir()
    (run / "notes.txt").write_text("keep me")
    config = ft_config(tiny_model_dir, toy_data_dir_module)
    with pytest.raises(RunDirectoryError, match="--overwrite"):
        train(config, run)
    assert sorted(p.name for p in run.iterdir()) == ["notes.txt"]  # refused before anything was written

    with pytest.raises(RunDirectoryError, match="not a phasefit run"):  # --overwrite replaces only runs
        train(config, run, overwrite=True)
    assert sorted(p.name for p in run.iterdir()) == ["notes.txt"]

    other = tmp_path / "other"
    train(config, other)
    result = train(config, other, overwrite=True)  # a phasefit run is replaced
    assert (other / "metrics.json").is_file() and result.metrics["test"] == trained_run.metrics["test"]


def test_empty_existing_directory_is_used(tiny_model_dir: Path, toy_data_dir: Path, tmp_path: Path) -> None:
    run = tmp_path / "empty"
    run.mkdir()
    train(ft_config(tiny_model_dir, toy_data_dir, "ft.epochs=1"), run)
    assert (run / "metrics.json").is_file()


def test_frozen_encoder_trains_only_the_head(tiny_model_dir: Path, toy_data_dir: Path, tmp_path: Path) -> None:
    from sentence_transformers import SentenceTransformer

    before = {k: v.clone() for k, v in SentenceTransformer(str(tiny_model_dir), device="cpu").state_dict().items()}
    result = train(ft_config(tiny_model_dir, toy_data_dir, "ft.freeze_encoder=true"), tmp_path / "frozen")

    head_parameters = sum(p.numel() for p in result.classifier.head.parameters())
    assert result.metrics["phases"][0]["trainable_parameters"] == head_parameters
    after = result.classifier.encoder.state_dict()
    assert after.keys() == before.keys()
    for key, value in before.items():
        assert torch.equal(after[key].cpu(), value), f"encoder weight {key} changed"
    # The saved encoder is the untouched one too.
    saved = SentenceTransformer(str(result.run_dir / "model" / "encoder"), device="cpu").state_dict()
    assert all(torch.equal(saved[key], value) for key, value in before.items())


def test_unfrozen_run_trains_the_encoder_too(trained_run: RunResult, tiny_model_dir: Path) -> None:
    from sentence_transformers import SentenceTransformer

    classifier = trained_run.classifier
    encoder_parameters = sum(p.numel() for p in classifier.encoder.parameters())
    head_parameters = sum(p.numel() for p in classifier.head.parameters())
    assert trained_run.metrics["phases"][0]["trainable_parameters"] == encoder_parameters + head_parameters
    before = SentenceTransformer(str(tiny_model_dir), device="cpu").state_dict()
    after = classifier.encoder.state_dict()
    assert any(not torch.equal(after[key].cpu(), before[key]) for key in before)


@pytest.mark.parametrize("schedule", ["constant", "linear", "cosine"])
def test_each_schedule_runs(schedule: str, tiny_model_dir: Path, toy_data_dir: Path, tmp_path: Path) -> None:
    config = ft_config(tiny_model_dir, toy_data_dir, "ft.epochs=1", f"ft.schedule={schedule}", "ft.lr=0.001")
    result = train(config, tmp_path / schedule)
    assert math.isfinite(result.metrics["phases"][0]["final_loss"])
    history = json.loads((result.run_dir / "curves" / "1-ft.json").read_text())
    rates = [entry["learning_rate"] for entry in history if "learning_rate" in entry]
    assert rates, "the Trainer logs the learning rate"
    # 48 examples / batch 8 = 6 steps, 1 warm-up step; the last log (step 5) is past the warm-up.
    if schedule == "constant":
        assert rates[-1] == pytest.approx(0.001)
    else:
        assert 0 < rates[-1] < 0.001


def test_hierarchical_labels_keep_their_path(tiny_model_dir: Path, toy_hier_dir: Path, tmp_path: Path) -> None:
    result = train(ft_config(tiny_model_dir, toy_hier_dir, "data.label_separator=."), tmp_path / "hier")
    assert result.metrics["label_names"] == ["a.x", "a.y", "b.z"]
    assert json.loads((result.run_dir / "split.json").read_text())["label_separator"] == "."
    loaded = PhaseFitClassifier.load(result.run_dir / "model")
    assert loaded.label_separator == "." and loaded.label_names == ["a.x", "a.y", "b.z"]
    assert set(loaded.predict(read_test_texts(toy_hier_dir))) <= {"a.x", "a.y", "b.z"}


def test_label_depth_merges_hierarchical_classes(tiny_model_dir: Path, toy_hier_dir: Path, tmp_path: Path) -> None:
    config = ft_config(tiny_model_dir, toy_hier_dir, "data.label_separator=.", "data.label_depth=1", "ft.epochs=1")
    result = train(config, tmp_path / "depth1")
    assert result.metrics["label_names"] == ["a", "b"]
    assert result.classifier.head.shape["num_labels"] == 2


def test_tiny_model_learns_the_toy_intents(tiny_model_dir: Path, toy_data_dir: Path, tmp_path: Path) -> None:
    # The end-to-end run must actually learn: distinct words per intent, enough steps at a high lr.
    config = ft_config(tiny_model_dir, toy_data_dir, "ft.epochs=15", "ft.lr=0.002", "ft.patience=15")
    result = train(config, tmp_path / "learn")
    assert result.metrics["validation"]["accuracy"] >= 0.9
    assert result.metrics["test"]["accuracy"] >= 0.8


def test_plain_hugging_face_folder_loads_with_mean_pooling(
    tiny_hf_dir: Path, toy_data_dir: Path, tmp_path: Path
) -> None:
    assert not (tiny_hf_dir / "modules.json").exists()
    result = train(ft_config(tiny_hf_dir, toy_data_dir, "ft.epochs=1"), tmp_path / "hf")
    assert result.classifier.head.shape["in_dim"] == 32
    assert (result.run_dir / "model" / "encoder" / "modules.json").is_file()


# --- layer-wise learning-rate decay --------------------------------------------------------------------------------


def test_layer_decay_gives_lower_layers_lower_learning_rates(tiny_hf_dir: Path) -> None:
    from transformers import BertModel

    encoder = BertModel.from_pretrained(str(tiny_hf_dir))
    head = torch.nn.Linear(32, 3)
    lr, decay, num_layers = 1e-3, 0.5, 2
    groups = parameter_groups(encoder, head, lr=lr, head_lr=0.01, weight_decay=0.01, layer_decay=decay)
    rate_of = {id(param): group["lr"] for group in groups for param in group["params"]}
    decay_of = {id(param): group["weight_decay"] for group in groups for param in group["params"]}
    named = dict(encoder.named_parameters())

    def rate(name: str) -> float:
        return rate_of[id(named[name])]

    # Each step down the stack multiplies the lr by `decay` (paper 003: pooler at lr, embeddings lowest).
    pooler = rate("pooler.dense.weight")
    top = rate(f"encoder.layer.{num_layers - 1}.attention.self.query.weight")
    bottom = rate("encoder.layer.0.attention.self.query.weight")
    embeddings = rate("embeddings.word_embeddings.weight")
    assert pooler == pytest.approx(lr)
    assert top == pytest.approx(pooler * decay)
    assert bottom == pytest.approx(top * decay)
    assert embeddings == pytest.approx(bottom * decay)
    # Every parameter of a layer shares its rate.
    for name in named:
        if name.startswith("encoder.layer.0."):
            assert rate(name) == bottom, name
    assert all(rate_of[id(p)] == 0.01 for p in head.parameters())
    # Biases and LayerNorm weights get no weight decay.
    assert decay_of[id(named["encoder.layer.0.attention.self.query.bias"])] == 0.0
    assert decay_of[id(named["embeddings.LayerNorm.weight"])] == 0.0
    assert decay_of[id(named["encoder.layer.0.attention.self.query.weight"])] == 0.01
    # Every trainable parameter is in exactly one group.
    assert sum(len(g["params"]) for g in groups) == len(named) + 2


def test_no_layer_decay_gives_one_encoder_rate(tiny_hf_dir: Path) -> None:
    from transformers import BertModel

    encoder = BertModel.from_pretrained(str(tiny_hf_dir))
    groups = parameter_groups(encoder, None, lr=1e-3, head_lr=0.01, weight_decay=0.0, layer_decay=1.0)
    assert {group["lr"] for group in groups} == {1e-3}


def test_layer_decay_finds_the_layers_of_a_sentence_transformer(tiny_model_dir: Path) -> None:
    # The FT phase passes the SentenceTransformer, whose parameter names carry a module prefix.
    from sentence_transformers import SentenceTransformer

    encoder = SentenceTransformer(str(tiny_model_dir), device="cpu")
    groups = parameter_groups(encoder, None, lr=1.0, head_lr=1.0, weight_decay=0.0, layer_decay=0.5)
    assert {group["lr"] for group in groups} == {1.0, 0.5, 0.25, 0.125}


# --- config --------------------------------------------------------------------------------------------------------


def test_unknown_key_is_named() -> None:
    with pytest.raises(ConfigError, match=r"ft\.epoks: unknown key"):
        build_config("ft", overrides=["ft.epoks=3"])


@pytest.mark.parametrize("item", ["ft.lr=-1", "ft.lr=0", "ft.head_lr=-0.5"])
def test_non_positive_learning_rate_is_refused(item: str) -> None:
    key = item.split("=")[0]
    with pytest.raises(ConfigError, match=rf"{key}: Input should be greater than 0"):
        build_config("ft", overrides=[item])


def test_unknown_recipe_lists_the_recipes() -> None:
    with pytest.raises(ConfigError, match=r"unknown recipe 'nope'; available: .*\bft\b"):
        build_config("nope")


def test_unknown_phase_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"unknown phase.*nonsense.*available"):
        build_config("ft", overrides=["phases=[nonsense, ft]"])


@pytest.mark.parametrize(
    ("item", "keys", "value"),
    [
        ("ft.epochs=5", ["ft", "epochs"], 5),
        ("ft.lr=0.0005", ["ft", "lr"], 0.0005),
        ("ft.warmup_ratio=.1", ["ft", "warmup_ratio"], 0.1),
        ("progress=false", ["progress"], False),
        ("ft.freeze_encoder=True", ["ft", "freeze_encoder"], True),
        ("phases=[dae, ft]", ["phases"], ["dae", "ft"]),
        ("data.max_length=model", ["data", "max_length"], "model"),
        ("data.label_separator=.", ["data", "label_separator"], "."),
        ("model.name=/models/a=b", ["model", "name"], "/models/a=b"),  # split on the first '=' only
        ("data.text_pair_column=", ["data", "text_pair_column"], ""),
    ],
)
def test_set_values_are_read_as_yaml(item: str, keys: list[str], value: object) -> None:
    assert parse_override(item) == (keys, value)


def test_set_overrides_reach_the_config() -> None:
    config = build_config("ft", overrides=["ft.epochs=5", "ft.lr=1e-4", "progress=false", "seed=7",
                                           "data.max_length=48"])
    assert config.ft.epochs == 5 and config.ft.lr == pytest.approx(1e-4) and isinstance(config.ft.lr, float)
    assert config.progress is False and config.seed == 7 and config.data.max_length == 48


@pytest.mark.parametrize("item", ["ft.epochs", "=3"])
def test_malformed_set_item_is_refused(item: str) -> None:
    with pytest.raises(ConfigError, match="--set"):
        build_config("ft", overrides=[item])


def test_config_file_then_overrides_then_recipe_argument(tmp_path: Path) -> None:
    file = tmp_path / "run.yaml"
    file.write_text("recipe: nope\nft:\n  epochs: 4\n  batch_size: 2\n")
    config = build_config("ft", file, ["ft.epochs=6"])
    assert config.recipe == "ft"  # --recipe wins over the file's recipe key
    assert config.ft.epochs == 6 and config.ft.batch_size == 2


def test_wrong_type_names_key_and_value() -> None:
    with pytest.raises(ConfigError, match=r"seed: .*integer.*'abc'"):
        build_config("ft", overrides=["seed=abc"])
