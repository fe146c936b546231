"""Contrastive pre-training of the encoder (paper 003 §3.3): SupCon with class labels, or SimCLR without.

Each text is encoded ``views`` times in training mode, so dropout makes the views differ (SimCLR's "dropout
views"; optionally plus word deletion). SupCon pulls together all views of all examples of a class (Khosla et al.
eq. 1); SimCLR only the views of the same text (NT-Xent, eq. 2-4). The classifier phase that follows trains on the
frozen encoder in paper 003's protocol (``ft.freeze_encoder=true`` in the ``supcon-ft`` / ``simclr-ft`` recipes).
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from phasefit.data.noise import delete_words
from phasefit.losses.contrastive import SupConLoss
from phasefit.models.encoder import embedding_dimension
from phasefit.training.context import PhaseContext
from phasefit.training.objective import train_objective


class ProjectionHead(nn.Module):
    """Paper 003's projection head: sentence vector -> dropout -> linear. Used by the loss only, dropped after the
    phase (the classifier reads the encoder's own vector), as in SupCon and SimCLR."""

    def __init__(self, dim: int, out_dim: int, dropout: float):
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.linear = nn.Linear(dim, out_dim)

    def forward(self, embeddings: torch.Tensor) -> torch.Tensor:
        return self.linear(self.dropout(embeddings))  # (B, D) -> (B, out_dim)


class _MultiViewObjective(nn.Module):
    def __init__(self, encoder: nn.Module, loss: SupConLoss, views: int, supervised: bool,
                 projection: ProjectionHead | None = None):
        super().__init__()
        self.encoder = encoder
        self.loss = loss
        self.views = views
        self.supervised = supervised
        self.projection = projection

    def forward(self, views: list[dict[str, torch.Tensor]], labels: torch.Tensor) -> dict[str, torch.Tensor]:
        # One forward pass per view: dropout masks differ between passes. (B, V, D)
        features = torch.stack([self.encoder(dict(view))["sentence_embedding"] for view in views], dim=1)
        if self.projection is not None:
            features = self.projection(features)
        return {"loss": self.loss(features, labels if self.supervised else None)}


class MultiViewCollator:
    """Tokenises each text ``views`` times (with optional word deletion per view, drawn per (seed, epoch,
    example, view) so a resumed run sees the same views)."""

    def __init__(self, tokenizer: Any, max_length: int, views: int, noise_ratio: float, seed: int,
                 epoch_source: Any = None):
        self.tokenizer = tokenizer
        self.max_length = max_length
        self.views = views
        self.noise_ratio = noise_ratio
        self.seed = seed
        self.epoch_source = epoch_source

    def __call__(self, items: list[dict[str, Any]]) -> dict[str, Any]:
        texts = [item["text"] for item in items]
        epoch = getattr(self.epoch_source, "epoch", 0)
        views = []
        for view in range(self.views):
            noisy = [delete_words(item["text"], self.noise_ratio,
                                  np.random.default_rng([self.seed, epoch, item["index"], view])) for item in items
                     ] if self.noise_ratio else texts
            views.append(self.tokenizer(noisy, padding=True, truncation=True, max_length=self.max_length,
                                        return_tensors="pt"))
        return {"views": views, "labels": torch.tensor([item["labels"] for item in items])}


class _ContrastivePhase:
    name: ClassVar[str]
    supervised: ClassVar[bool]

    def run(self, ctx: PhaseContext) -> dict[str, Any]:
        from phasefit.training.sampling import EpochSeededSampler, LabelAwareSampler

        cfg = getattr(ctx.config, self.name)
        train = ctx.splits.train
        labels = ctx.splits.label_ids(train)
        items = [{"text": text, "labels": label, "index": i} for i, (text, label) in enumerate(zip(train.texts, labels))]
        projection = None
        if cfg.projection:
            dim = embedding_dimension(ctx.encoder)
            torch.manual_seed(ctx.seed)  # the head's initial weights depend on the run seed only
            projection = ProjectionHead(dim, cfg.projection_dim or dim, cfg.projection_dropout).to(ctx.encoder.device)
        objective = _MultiViewObjective(ctx.encoder, SupConLoss(cfg.temperature), cfg.views, self.supervised,
                                        projection)
        sampler = (LabelAwareSampler(labels, ctx.seed) if cfg.sampler == "label-aware"
                   else EpochSeededSampler(len(items), ctx.seed))
        collator = MultiViewCollator(ctx.encoder.tokenizer, ctx.max_length, cfg.views, cfg.view_noise_ratio,
                                     ctx.seed, sampler)
        return train_objective(ctx, self.name, objective, items, collator, cfg, sampler=sampler)


class SupConPhase(_ContrastivePhase):
    """SupCon pre-training: positives are all views of same-class examples (Khosla et al. 2020 eq. 1)."""

    name = "supcon"
    supervised = True


class SimCLRPhase(_ContrastivePhase):
    """SimCLR pre-training with dropout views: positives are the other views of the same text (NT-Xent)."""

    name = "simclr"
    supervised = False
