"""Departures from the papers found by review (issue 9, section 3): each fix or option has a test here."""

from __future__ import annotations

import json
import math
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest
import torch

from phasefit.config import ConfigError, ModelConfig
from phasefit.recipes import build_config
from phasefit.losses.contrastive import supervised_contrastive_loss
from phasefit.models.encoder import load_encoder
from phasefit.pipeline import train
from tests.conftest import tiny_overrides


def _base(tiny_model_dir: Path, data: Path) -> list[str]:
    return [*tiny_overrides(tiny_model_dir), f"data.path={data}", "dae.batch_size=8", "cl.batch_size=8",
            "joint.batch_size=8", "supcon.batch_size=8", "ft.max_steps=2"]


# 1. Joint gets the budget of DAE + CL ----------------------------------------------------------------------------


def test_joint_epochs_give_each_stream_its_staged_budget() -> None:
    from phasefit.phases.staged import joint_epochs

    # 100 texts, 600 pairs: CL's 3 epochs over the pairs decide (3), DAE's 4 over the texts need only 1.
    assert joint_epochs(100, 600, 4, 3) == 3
    # 500 texts, 200 pairs: DAE's 4 passes over the texts decide.
    assert joint_epochs(500, 200, 4, 3) == 4
    # 300 texts, 400 pairs, DAE 4 epochs: 4 * 300 / 400 = 3 epochs over the longer stream, CL needs 3.
    assert joint_epochs(300, 400, 4, 3) == 3
    assert joint_epochs(300, 400, 12, 3) == 9


def test_joint_trains_as_long_as_dae_plus_cl(tiny_model_dir: Path, toy_data_dir_module: Path, tmp_path: Path) -> None:
    from phasefit.phases.staged import joint_epochs

    config = build_config("joint", None, [*_base(tiny_model_dir, toy_data_dir_module), "dae.epochs=2", "cl.epochs=2"])
    assert config.joint.epochs is None  # the default is the staged budget, not 1 epoch
    metrics = train(config, tmp_path / "run").metrics
    joint = metrics["phases"][0]
    length = max(joint["texts"], joint["pairs"])
    epochs = joint_epochs(joint["texts"], joint["pairs"], 2, 2)
    assert epochs >= 2
    assert joint["steps"] == epochs * math.ceil(length / 8)


# 2. DAE's bottleneck before the normalisation ----------------------------------------------------------------------


@pytest.fixture
def normalized_model_dir(tiny_model_dir: Path, tmp_path: Path) -> Path:
    """The tiny model ending in Normalize, like all-MiniLM-L6-v2."""
    from sentence_transformers.sentence_transformer.modules import Normalize

    encoder = load_encoder(ModelConfig(name=str(tiny_model_dir)))
    encoder.append(Normalize())
    encoder.save(str(tmp_path / "normalized"), safe_serialization=True)
    return tmp_path / "normalized"


@pytest.mark.parametrize("position", ["before_normalize", "after_normalize"])
def test_dae_bottleneck_position(position: str, normalized_model_dir: Path, toy_data_dir_module: Path,
                                 tmp_path: Path) -> None:
    from sentence_transformers.sentence_transformer.modules import Dense, Normalize

    config = build_config("dae-ft", None, [*_base(normalized_model_dir, toy_data_dir_module), "dae.max_steps=1",
                                           f"dae.bottleneck={position}"])
    result = train(config, tmp_path / "run")
    kinds = [type(module) for module in result.classifier.encoder]
    if position == "before_normalize":
        assert kinds[-2:] == [Dense, Normalize]  # the decoder read the raw pooled vector through the Dense
    else:
        assert kinds[-2:] == [Normalize, Dense]
    vectors = result.classifier.encoder.encode(["play some jazz songs", "will it rain"], convert_to_tensor=True)
    norms = vectors.norm(dim=-1)
    if position == "before_normalize":
        assert torch.allclose(norms, torch.ones_like(norms), atol=1e-5)  # the model's output is still unit length


def test_dense_layer_is_appended_when_there_is_no_normalize(tiny_model_dir: Path, toy_data_dir_module: Path) -> None:
    from sentence_transformers.sentence_transformer.modules import Dense
    from phasefit.phases.base import PhaseContext
    from phasefit.phases.staged import add_dense_layer
    from phasefit.pipeline import load_run_data

    config = build_config("dae-ft", None, _base(tiny_model_dir, toy_data_dir_module))
    encoder = load_encoder(config.model)
    ctx = PhaseContext(config=config, splits=load_run_data(config), encoder=encoder, max_length=32,
                       work_dir=Path("."))
    index = add_dense_layer(ctx, before_normalize=True)
    assert index == len(encoder) - 1 and isinstance(encoder[-1], Dense)


# 3. Per-epoch validation selection in the encoder phases -----------------------------------------------------------


def test_select_epoch_keeps_the_best_validation_epoch(tiny_model_dir: Path, toy_data_dir_module: Path,
                                                      tmp_path: Path) -> None:
    config = build_config("cl-ft", None, [*_base(tiny_model_dir, toy_data_dir_module), "cl.epochs=3",
                                          "cl.select_epoch=true", "cl.lr=5e-3"])
    metrics = train(config, tmp_path / "run").metrics
    cl = metrics["phases"][0]
    history = cl["epoch_validation_knn"]
    assert [round(h["epoch"]) for h in history] == [1, 2, 3]
    best = max(history, key=lambda h: h["validation_knn_accuracy"])  # first of equals: strict improvement only
    assert cl["selected_epoch"] == best["epoch"]
    # The encoder handed on is the selected epoch's: its validation k-NN accuracy is the best epoch's.
    assert cl["validation_knn_accuracy"] == pytest.approx(best["validation_knn_accuracy"])


def test_select_epoch_is_off_by_default() -> None:
    config = build_config("3phase")
    assert not config.dae.select_epoch and not config.cl.select_epoch and not config.joint.select_epoch


# 4. SCL's reduction ---------------------------------------------------------------------------------------------


def test_scl_sum_is_the_mean_times_the_anchors_with_a_positive() -> None:
    torch.manual_seed(0)
    x = torch.randn(6, 8)
    labels = torch.tensor([0, 0, 1, 1, 2, 3])  # anchors 4 and 5 have no positive
    mean = supervised_contrastive_loss(x, labels, 0.3)
    total = supervised_contrastive_loss(x, labels, 0.3, reduction="sum")
    assert total.item() == pytest.approx(4 * mean.item(), rel=1e-6)
    with pytest.raises(ValueError, match="reduction"):
        supervised_contrastive_loss(x, labels, 0.3, reduction="max")


def test_scl_reduction_reaches_the_loss(tiny_model_dir: Path) -> None:
    from phasefit.models.classifier import MLPHead, PhaseFitClassifier
    from phasefit.phases.ft import CrossEntropySCL

    encoder = load_encoder(ModelConfig(name=str(tiny_model_dir)))
    head = MLPHead(32, 8, 3, dropout=0.0)
    classifier = PhaseFitClassifier(encoder, head, ["a", "b", "c"], max_length=16).eval()
    batch = dict(encoder.tokenizer(["play some jazz", "play rock", "will it rain", "is it sunny"], padding=True,
                                   return_tensors="pt"))
    labels = torch.tensor([0, 0, 1, 1])
    losses = {}
    for reduction in ("mean", "sum"):
        with torch.no_grad():
            losses[reduction] = CrossEntropySCL(classifier, 1.0, 0.3, reduction)(labels=labels, **batch)["loss"]
    assert losses["sum"].item() == pytest.approx(4 * losses["mean"].item(), rel=1e-5)
    assert build_config("scl").ft.scl_reduction == "mean"


# 5. SupCon/SimCLR projection head and paper 003's LLRD + warm-up -------------------------------------------------------


def test_contrastive_phases_follow_paper_003_defaults() -> None:
    config = build_config("supcon-ft")
    for section in (config.supcon, config.simclr):
        assert section.projection and section.layer_decay == 0.9 and section.warmup_ratio == 0.2
    assert config.simclr.projection_dropout == 0.9  # paper 003 Table 6


def test_projection_head_trains_with_the_loss_and_is_dropped_after(tiny_model_dir: Path, toy_data_dir_module: Path,
                                                                   tmp_path: Path, monkeypatch) -> None:
    from phasefit.phases import contrastive

    seen = []
    original = contrastive._MultiViewObjective.forward

    def spy(self, views, labels):
        seen.append(self.projection)
        return original(self, views, labels)

    monkeypatch.setattr(contrastive._MultiViewObjective, "forward", spy)
    config = build_config("supcon-ft", None, [*_base(tiny_model_dir, toy_data_dir_module), "supcon.max_steps=2",
                                              "supcon.projection_dim=16"])
    result = train(config, tmp_path / "run")
    assert seen and isinstance(seen[0], contrastive.ProjectionHead) and seen[0].linear.out_features == 16
    before = len(load_encoder(ModelConfig(name=str(tiny_model_dir))))
    assert len(result.classifier.encoder) == before  # the projection head is not part of the encoder


def test_projection_changes_the_loss(tiny_model_dir: Path) -> None:
    from phasefit.losses.contrastive import SupConLoss
    from phasefit.phases.contrastive import ProjectionHead, _MultiViewObjective

    encoder = load_encoder(ModelConfig(name=str(tiny_model_dir))).eval()
    views = [dict(encoder.tokenizer(["play some jazz", "will it rain"], padding=True, return_tensors="pt"))] * 2
    labels = torch.tensor([0, 1])
    torch.manual_seed(0)
    plain = _MultiViewObjective(encoder, SupConLoss(0.1), 2, True)(views, labels)["loss"]
    projected = _MultiViewObjective(encoder, SupConLoss(0.1), 2, True, ProjectionHead(32, 8, 0.0))(views, labels)["loss"]
    assert not torch.isclose(plain, projected)


# 6. The paper-* recipes use the paper's single FT learning rate ------------------------------------------------------


@pytest.mark.parametrize("recipe", ["paper-ft", "paper-joint", "paper-3phase"])
def test_paper_protocol_recipes_freeze_the_encoder_with_one_learning_rate(recipe: str) -> None:
    config = build_config(recipe)
    assert config.ft.freeze_encoder and config.ft.head_lr == config.ft.lr == 1e-3
    assert config.ft.adam_epsilon == 2e-5 and config.ft.epochs == 70
    plain = build_config(recipe.removeprefix("paper-"))
    assert config.phases == plain.phases
    # FT differs, and the pairs: the paper's always, where phasefit's default (auto) may draw SetFit-style ones
    assert config.dae == plain.dae and config.joint == plain.joint
    assert config.cl == plain.cl.model_copy(update={"sampling": "paper"})


# 7. SCL with a frozen encoder is refused ---------------------------------------------------------------------------


def test_scl_with_a_frozen_encoder_is_refused() -> None:
    with pytest.raises(ConfigError, match="freeze_encoder"):
        build_config("scl", None, ["ft.freeze_encoder=true"])


# 8. Unlabelled DAE texts that occur in validation/test ---------------------------------------------------------------


@pytest.mark.parametrize("policy", ["drop", "keep"])
def test_unlabelled_texts_in_validation_or_test_are_dropped(policy: str, tiny_model_dir: Path,
                                                             toy_data_dir_module: Path, tmp_path: Path,
                                                             monkeypatch, caplog) -> None:
    from phasefit.phases import staged

    leaked = pd.read_csv(toy_data_dir_module / "test.csv").text[0]
    unlabelled = tmp_path / "extra.txt"
    unlabelled.write_text(f"play the jazz album tonight\n{leaked}\n")
    seen: list[list[str]] = []
    original = staged.dae_texts
    monkeypatch.setattr(staged, "dae_texts", lambda ctx, cap: seen.append(original(ctx, cap)) or seen[-1])
    config = build_config("dae-ft", None, [*_base(tiny_model_dir, toy_data_dir_module), "dae.max_steps=1",
                                           f"data.unlabelled_path={unlabelled}", f"data.unlabelled_overlap={policy}"])
    with caplog.at_level("WARNING"):
        metrics = train(config, tmp_path / "run").metrics
    assert "1 unlabelled text(s) also occur in validation/test" in caplog.text
    assert metrics["unlabelled"]["evaluation_overlap"] == 1
    assert (leaked in seen[0]) == (policy == "keep")
    assert "play the jazz album tonight" in seen[0]


# 9. The decoder keeps a pre-trained LM head ----------------------------------------------------------------------------


def test_decoder_keeps_the_checkpoints_lm_head(tiny_hf_dir: Path, tmp_path: Path) -> None:
    from transformers import AutoTokenizer, BertConfig, BertForMaskedLM

    from phasefit.losses.dae import DenoisingAutoEncoderLoss

    config = BertConfig.from_pretrained(str(tiny_hf_dir))
    torch.manual_seed(1)
    masked_lm = BertForMaskedLM(config)
    folder = tmp_path / "mlm"
    masked_lm.save_pretrained(str(folder), safe_serialization=True)
    AutoTokenizer.from_pretrained(str(tiny_hf_dir)).save_pretrained(str(folder))
    encoder = load_encoder(ModelConfig(name=str(folder)))
    loss = DenoisingAutoEncoderLoss(encoder, pad_token_id=0)
    assert loss.lm_head_source == "pretrained"
    got = loss.decoder.cls.predictions.transform.dense.weight
    assert torch.equal(got, masked_lm.cls.predictions.transform.dense.weight)
    # A checkpoint without a head (a sentence-transformers model such as all-MiniLM-L6-v2) starts random.
    assert DenoisingAutoEncoderLoss(load_encoder(ModelConfig(name=str(tiny_hf_dir))),
                                    pad_token_id=0).lm_head_source == "random"


# 10. Pair construction: the SetFit-style alternative is a recipe ------------------------------------------------------


def test_setfit_pairs_recipe_differs_from_3phase_only_in_sampling() -> None:
    a, b = build_config("3phase"), build_config("3phase-setfit")
    assert b.cl.sampling == "setfit" and a.cl.sampling == "auto"
    assert a.cl.model_copy(update={"sampling": "setfit"}) == b.cl and a.ft == b.ft and a.dae == b.dae


def test_paper_protocol_recipes_keep_the_papers_pairs() -> None:
    """auto (phasefit's default) may draw SetFit-style pairs; the paper's protocol builds the paper's."""
    assert build_config("paper-3phase").cl.sampling == "paper" and build_config("paper-joint").cl.sampling == "paper"
    assert build_config("3phase").cl.sampling == build_config("joint").cl.sampling == "auto"


def test_phase_records_name_the_lm_head(tiny_model_dir: Path, toy_data_dir_module: Path, tmp_path: Path) -> None:
    config = build_config("dae-ft", None, [*_base(tiny_model_dir, toy_data_dir_module), "dae.max_steps=1"])
    train(config, tmp_path / "run")
    record = json.loads((tmp_path / "run" / "metrics.json").read_text())["phases"][0]
    assert record["lm_head"] == "random"


def _pair_context(labels: list[str], seed: int = 0) -> SimpleNamespace:
    """What contrastive_pairs reads of a phase context: the seed and the training split."""
    texts = [f"example {i} of {label}" for i, label in enumerate(labels)]
    return SimpleNamespace(seed=seed, splits=SimpleNamespace(train=SimpleNamespace(texts=texts, labels=labels),
                                                             label_separator=None))


@pytest.mark.parametrize("classes, per_class, expected", [(30, 4, "setfit"), (2, 30, "paper")])
def test_auto_sampling_draws_setfit_pairs_only_when_the_papers_give_few_positives(classes: int, per_class: int,
                                                                                  expected: str) -> None:
    from phasefit.phases.staged import contrastive_pairs

    ctx = _pair_context([f"c{k}" for k in range(classes) for _ in range(per_class)])
    cl = build_config("3phase").cl
    pairs, stats = contrastive_pairs(ctx, cl.model_copy(update={"sampling": "auto"}))
    reference, _ = contrastive_pairs(ctx, cl.model_copy(update={"sampling": expected}))
    _, paper_stats = contrastive_pairs(ctx, cl.model_copy(update={"sampling": "paper"}))
    assert stats["sampling"] == expected
    assert stats["paper_positives_per_class"] == paper_stats["positive_pairs"] / classes
    assert (stats["paper_positives_per_class"] < cl.auto_min_positives) == (expected == "setfit")
    # the very pairs of the named construction, same seed, same order
    assert list(pairs.texts[pairs.a]) == list(reference.texts[reference.a])
    assert list(pairs.texts[pairs.b]) == list(reference.texts[reference.b])
    assert list(pairs.targets) == list(reference.targets)
