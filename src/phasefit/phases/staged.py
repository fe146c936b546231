"""The encoder-shaping phases of paper 000: DAE (phase 1), CL (phase 2) and Joint (DAE + CL at once), and MLM, the
alternative phase 1 that open question 2 of the summary paper asks about.

Each phase wraps its loss in a small ``nn.Module`` objective and trains it with ``transformers.Trainer`` (so
``accelerate launch`` works); the encoder inside is ``ctx.encoder`` itself, trained in place and handed to the next
phase in memory. Phase 1 adds the Dense bottleneck layer, phase 2 one more Dense layer (paper 000 §3.1-3.2); both
start as the identity, so the pre-trained embedding space is where training starts from.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from phasefit.config import CLConfig
from phasefit.data.noise import delete_words
from phasefit.data.pairs import Pairs, balance_classes, build_pairs, sample_setfit_pairs
from phasefit.losses.dae import DenoisingAutoEncoderLoss
from phasefit.models.encoder import embedding_dimension
from phasefit.training.context import PhaseContext, tokenize
from phasefit.training.sampling import EpochSeededSampler
from phasefit.training.objective import train_objective

logger = logging.getLogger(__name__)


# --------------------------------------------------------------------------------------------------------------
# Building blocks


def add_dense_layer(ctx: PhaseContext, *, before_normalize: bool = False) -> int:
    """Add a hidden -> hidden Dense layer, initialised to the identity, on top of the encoder; returns its index.

    With ``before_normalize`` and an encoder that ends in ``Normalize`` (all-MiniLM-L6-v2 does), the layer goes
    between pooling and the normalisation, so what it reads (and, in DAE, what the decoder attends to) is the raw
    pooled vector, as in TSDAE; otherwise it is appended after the last module.
    """
    from sentence_transformers.sentence_transformer.modules import Dense, Normalize

    dim = embedding_dimension(ctx.encoder)
    dense = Dense(dim, dim, activation_function=nn.Identity(), init_weight=torch.eye(dim), init_bias=torch.zeros(dim))
    dense = dense.to(ctx.encoder.device)
    if before_normalize and isinstance(ctx.encoder[-1], Normalize):
        index = len(ctx.encoder) - 1
        ctx.encoder.insert(index, dense)
        return index
    ctx.encoder.append(dense)
    return len(ctx.encoder) - 1


def cosine_pair_loss(encoder: Any) -> nn.Module:
    """Paper 000 eq. 3, L_CL = mean over pairs of (target - cos(u, v))^2: sentence-transformers'
    ``CosineSimilarityLoss`` (MSE between the cosine of the two embeddings and the pair target)."""
    from sentence_transformers.sentence_transformer.losses import CosineSimilarityLoss

    return CosineSimilarityLoss(encoder)


class _Objective(nn.Module):
    """A loss as a Trainer model: ``forward(**batch) -> {"loss"}``.

    Tied DAE weights share storage, which safetensors refuses to save twice: ``state_dict`` keeps the first name
    of each shared tensor (the Trainer reloads checkpoints non-strictly, and one name restores the shared tensor).
    """

    def __init__(self, **losses: nn.Module):
        super().__init__()
        self.losses = nn.ModuleDict(losses)
        self.weights = {name: 1.0 for name in losses}

    def forward(self, **batch: Any) -> dict[str, torch.Tensor]:
        parts = {}
        if "dae" in self.losses:
            parts["dae"] = self.losses["dae"]([batch["source"], batch["target"]])
        if "cl" in self.losses:
            parts["cl"] = self.losses["cl"]([batch["a"], batch["b"]], batch["labels"])
        if "mlm" in self.losses:
            parts["mlm"] = self.losses["mlm"](batch["mlm"])
        return {"loss": sum(self.weights[name] * value for name, value in parts.items())}

    def _duplicate_names(self, state: dict[str, torch.Tensor]) -> list[str]:
        seen: set[int] = set()
        duplicates = []
        for name, tensor in state.items():
            key = tensor.untyped_storage().data_ptr() if tensor.numel() else id(tensor)
            if key in seen:
                duplicates.append(name)
            seen.add(key)
        return duplicates

    def state_dict(self, *args: Any, **kwargs: Any) -> dict[str, torch.Tensor]:
        state = super().state_dict(*args, **kwargs)
        for name in self._duplicate_names(state):
            del state[name]
        return state

    @property
    def _keys_to_ignore_on_save(self) -> list[str]:
        """The Trainer's name for keys a checkpoint leaves out on purpose (here: second names of shared tensors);
        when exactly these are missing on load it calls :meth:`tie_weights` instead of warning."""
        return self._duplicate_names(super().state_dict())

    def tie_weights(self) -> None:
        """Nothing to re-tie: shared tensors are one object, restored through their first name."""


def noise_rng(seed: int, epoch: int, index: int) -> np.random.Generator:
    """The generator of one example's noise in one epoch: fresh every epoch, identical after a resume."""
    return np.random.default_rng([seed, epoch, index])


class DAECollator:
    """Tokenises (noisy, clean) text batches; word-deletion noise is drawn per (seed, epoch, example), so it is
    afresh every epoch and a resumed run sees the same noise. ``epoch_source`` is the epoch-seeded sampler."""

    def __init__(self, tokenizer: Any, max_length: int, ratio: float, seed: int, epoch_source: Any = None):
        self.tokenizer = tokenizer
        self.max_length = max_length
        self.ratio = ratio
        self.seed = seed
        self.epoch_source = epoch_source

    def encode(self, texts: list[str]) -> dict[str, torch.Tensor]:
        return self.tokenizer(texts, padding=True, truncation=True, max_length=self.max_length, return_tensors="pt")

    def __call__(self, items: list[dict[str, Any]]) -> dict[str, Any]:
        epoch = getattr(self.epoch_source, "epoch", 0)
        clean = [item["text"] for item in items]
        noisy = [delete_words(item["text"], self.ratio, noise_rng(self.seed, epoch, item["index"])) for item in items]
        return {"source": self.encode(noisy), "target": self.encode(clean)}


class PairCollator:
    """Pads pre-tokenised pairs; ``items`` hold token dicts ``a``, ``b`` and the float target ``labels``."""

    def __init__(self, tokenizer: Any):
        self.tokenizer = tokenizer

    def __call__(self, items: list[dict[str, Any]]) -> dict[str, Any]:
        return {
            "a": self.tokenizer.pad([item["a"] for item in items], return_tensors="pt"),
            "b": self.tokenizer.pad([item["b"] for item in items], return_tensors="pt"),
            "labels": torch.tensor([item["labels"] for item in items], dtype=torch.float32),
        }


class JointCollator:
    """One batch of pairs and one batch of texts per step: L = L_DAE + L_CL over both streams."""

    def __init__(self, dae: DAECollator, pairs: PairCollator):
        self.dae = dae
        self.pairs = pairs

    def __call__(self, items: list[dict[str, Any]]) -> dict[str, Any]:
        return {**self.pairs([item["pair"] for item in items]), **self.dae([item["dae"] for item in items])}


def dae_texts(ctx: PhaseContext, max_texts: int | None) -> list[str]:
    """Phase-1 texts: every labelled training text plus the unlabelled ones; never validation or test text."""
    texts = list(ctx.splits.train.texts) + list(ctx.unlabelled_texts)
    if max_texts is not None and len(texts) > max_texts:
        rng = np.random.default_rng(ctx.seed)
        texts = [texts[i] for i in sorted(rng.choice(len(texts), max_texts, replace=False))]
    return texts


def contrastive_pairs(ctx: PhaseContext, cfg: CLConfig) -> tuple[Pairs, dict[str, Any]]:
    """Pairs of phase 2: imbalance-corrected training set -> shuffled zips (or SetFit draws), seeded.

    ``cl.sampling: auto`` builds the paper's pairs and keeps them unless they give fewer than
    ``cl.auto_min_positives`` positive pairs per class; then it draws SetFit-style pairs instead, the very pairs
    ``sampling: setfit`` gives (docs/method.md, departure 10)."""
    sampling = "paper" if cfg.sampling == "auto" else cfg.sampling
    pairs, stats = _draw_pairs(ctx, cfg, sampling)
    if cfg.sampling == "auto":
        per_class = stats["positive_pairs"] / max(1, len(set(ctx.splits.train.labels)))
        if per_class < cfg.auto_min_positives:
            sampling = "setfit"
            pairs, stats = _draw_pairs(ctx, cfg, sampling)
        stats.update(paper_positives_per_class=per_class)
    return pairs, {**stats, "sampling": sampling}


def _draw_pairs(ctx: PhaseContext, cfg: CLConfig, sampling: str) -> tuple[Pairs, dict[str, Any]]:
    rng = np.random.default_rng(ctx.seed)
    train = ctx.splits.train
    texts, labels = list(train.texts), list(train.labels)
    if cfg.imbalance:
        texts, labels = balance_classes(texts, labels, rng, min_ratio=cfg.min_ratio, max_ratio=cfg.max_ratio,
                                        noise_min_words=cfg.noise_min_words, stop_word_ratio=cfg.stop_word_ratio)
    separator = ctx.splits.label_separator
    if sampling == "setfit":
        pairs = sample_setfit_pairs(texts, labels, rng, num_iterations=cfg.setfit_iterations, separator=separator)
    else:
        pairs = build_pairs(texts, labels, rng, augmentation_factor=cfg.augmentation_factor,
                            balance_targets=cfg.balance_targets, separator=separator)
    if cfg.max_pairs is not None and len(pairs) > cfg.max_pairs:
        pairs = pairs.take(np.sort(rng.choice(len(pairs), cfg.max_pairs, replace=False)))
    pairs = pairs.take(rng.permutation(len(pairs)))
    targets = pairs.targets
    stats = {
        "balanced_texts": len(texts),
        "pairs": len(pairs),
        "positive_pairs": int((targets == 1.0).sum()),
        "positive_share": float((targets == 1.0).mean()) if len(pairs) else None,
    }
    return pairs, stats


class PairItems(Sequence):
    """The training items of a phase on pairs: ``items[i]`` is ``{"a": tokens, "b": tokens, "labels": target}`` of
    pair ``i``, made when the data loader asks for it (millions of pairs stay arrays, not dicts)."""

    def __init__(self, pairs: Pairs, tokens: list[dict[str, Any]], a: np.ndarray, b: np.ndarray) -> None:
        self.pairs, self.tokens, self.a, self.b = pairs, tokens, a, b

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, index):  # type: ignore[override]
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        return {"a": self.tokens[self.a[index]], "b": self.tokens[self.b[index]],
                "labels": float(self.pairs.targets[index])}


def pair_items(ctx: PhaseContext, pairs: Pairs) -> PairItems:
    """Pairs as token dicts, each distinct text tokenised once."""
    used, inverse = np.unique(np.concatenate([pairs.a, pairs.b]), return_inverse=True)
    texts = pairs.texts[used].tolist()
    unique = sorted(set(texts))
    by_text = dict(zip(unique, tokenize(ctx.encoder, unique, ctx.max_length)))
    tokens = [by_text[text] for text in texts]
    return PairItems(pairs, tokens, inverse[:len(pairs)], inverse[len(pairs):])


# --------------------------------------------------------------------------------------------------------------
# The phases


class DAEPhase:
    """Phase 1: TSDAE on training (+ unlabelled) texts with word-deletion noise (paper 000 §3.1, eq. 1)."""

    name: ClassVar[str] = "dae"

    def run(self, ctx: PhaseContext) -> dict[str, Any]:
        cfg = ctx.config.dae
        add_dense_layer(ctx, before_normalize=cfg.bottleneck == "before_normalize")  # the bottleneck layer
        loss = DenoisingAutoEncoderLoss(ctx.encoder, pad_token_id=ctx.encoder.tokenizer.pad_token_id,
                                        tie=cfg.tie_decoder)
        texts = dae_texts(ctx, cfg.max_texts)
        sampler = EpochSeededSampler(len(texts), ctx.seed)
        collator = DAECollator(ctx.encoder.tokenizer, ctx.max_length, cfg.noise_ratio, ctx.seed, sampler)
        items = [{"text": t, "index": i} for i, t in enumerate(texts)]
        record = train_objective(ctx, self.name, _Objective(dae=loss), items, collator, cfg, sampler=sampler)
        return {**record, "texts": len(texts), "lm_head": loss.lm_head_source}


class MLMPhase:
    """An alternative phase 1: masked-language-model adaptation on the same texts DAE reads (training +
    unlabelled), the model's own MLM head where its checkpoint has one (issue 13's open question 2)."""

    name: ClassVar[str] = "mlm"

    def run(self, ctx: PhaseContext) -> dict[str, Any]:
        from phasefit.losses.mlm import MaskedLanguageModelLoss, MaskingCollator

        cfg = ctx.config.mlm
        loss = MaskedLanguageModelLoss(ctx.encoder)
        texts = dae_texts(ctx, cfg.max_texts)
        sampler = EpochSeededSampler(len(texts), ctx.seed)
        collator = MaskingCollator(ctx.encoder.tokenizer, cfg.mask_probability, ctx.seed, sampler)
        items = [{**tokens, "index": i} for i, tokens in enumerate(tokenize(ctx.encoder, texts, ctx.max_length))]
        record = train_objective(ctx, self.name, _Objective(mlm=loss), items, collator, cfg, sampler=sampler)
        return {**record, "texts": len(texts), "lm_head": loss.head_source}


class CLPhase:
    """Phase 2: siamese cosine-MSE on class pairs after the imbalance correction (paper 000 §3.2, eq. 3-6)."""

    name: ClassVar[str] = "cl"

    def run(self, ctx: PhaseContext) -> dict[str, Any]:
        cfg = ctx.config.cl
        add_dense_layer(ctx)
        pairs, stats = contrastive_pairs(ctx, cfg)
        objective = _Objective(cl=cosine_pair_loss(ctx.encoder))
        items = pair_items(ctx, pairs)
        record = train_objective(ctx, self.name, objective, items, PairCollator(ctx.encoder.tokenizer), cfg,
                                 sampler=EpochSeededSampler(len(items), ctx.seed))
        return {**record, **stats}


class JointPhase:
    """Joint: one run of L_DAE + L_CL, each step a batch of pairs and a batch of noisy texts (paper 000 §3.3.1).

    Unlike the authors' code (which labelled every Joint pair 0), pair targets here are the real class targets.
    The epoch is as long as the longer stream; the shorter one is cycled.
    """

    name: ClassVar[str] = "joint"

    def run(self, ctx: PhaseContext) -> dict[str, Any]:
        cfg = ctx.config.joint
        add_dense_layer(ctx, before_normalize=ctx.config.dae.bottleneck == "before_normalize")  # DAE's bottleneck
        loss_dae = DenoisingAutoEncoderLoss(ctx.encoder, pad_token_id=ctx.encoder.tokenizer.pad_token_id,
                                            tie=cfg.tie_decoder)
        objective = _Objective(dae=loss_dae, cl=cosine_pair_loss(ctx.encoder))
        objective.weights = {"dae": cfg.dae_weight, "cl": cfg.cl_weight}
        pairs, stats = contrastive_pairs(ctx, ctx.config.cl)
        pair_list = pair_items(ctx, pairs)
        texts = dae_texts(ctx, ctx.config.dae.max_texts)
        length = max(len(pair_list), len(texts))
        items = [{"pair": pair_list[i % len(pair_list)], "dae": {"text": texts[i % len(texts)], "index": i}}
                 for i in range(length)]
        epochs = cfg.epochs or joint_epochs(len(texts), len(pair_list), ctx.config.dae.epochs, ctx.config.cl.epochs)
        sampler = EpochSeededSampler(len(items), ctx.seed)
        collator = JointCollator(DAECollator(ctx.encoder.tokenizer, ctx.max_length, cfg.noise_ratio, ctx.seed, sampler),
                                 PairCollator(ctx.encoder.tokenizer))
        record = train_objective(ctx, self.name, objective, items, collator, cfg.model_copy(update={"epochs": epochs}),
                                 sampler=sampler)
        return {**record, **stats, "texts": len(texts), "lm_head": loss_dae.lm_head_source}


def joint_epochs(texts: int, pairs: int, dae_epochs: int, cl_epochs: int) -> int:
    """Joint's epochs (over the longer stream) so that each stream gets at least its staged budget: ``dae_epochs``
    passes over the texts and ``cl_epochs`` over the pairs, as DAE then CL would give them."""
    length = max(texts, pairs, 1)
    return max(1, math.ceil(dae_epochs * texts / length), math.ceil(cl_epochs * pairs / length))
