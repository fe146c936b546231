"""Phase 3, FT: fine-tune encoder + MLP head with cross-entropy (paper 000 §3.3, eq. 7-9).

Runs on ``transformers.Trainer`` so that ``accelerate launch`` gives multi-GPU training, mixed precision,
checkpoints and ``report_to`` without code of ours. Early stopping watches a *validation* metric and the best
epoch's weights are restored at the end; the test split is never seen here. With ``freeze_encoder`` the encoder
embeds the data once and only the head trains, on the cached embeddings.
"""

from __future__ import annotations

import logging
import math
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from phasefit.config import FTConfig
from phasefit.distributed import gather_with_grad
from phasefit.evaluation.metrics import classification_metrics
from phasefit.losses.contrastive import supervised_contrastive_loss
from phasefit.models.classifier import HeadOnly, MLPHead, PhaseFitClassifier, logits_and_loss
from phasefit.models.encoder import embedding_dimension
from phasefit.training.context import PhaseContext
from phasefit.training.cost import trainable_parameters
from phasefit.training.optim import make_optimizer, parameter_groups
from phasefit.training.objective import ListDataset, global_batch
from phasefit.training.trainer import (build_training_arguments, final_train_loss, quiet_trainer,
                                       reporting_callbacks)

logger = logging.getLogger(__name__)


class CrossEntropySCL(nn.Module):
    """L = (1 - lambda) CE + lambda SCL on the l2-normalised sentence embeddings (paper 002 eq. 1-3)."""

    def __init__(self, classifier: PhaseFitClassifier, weight: float, temperature: float, reduction: str = "mean"):
        super().__init__()
        self.classifier = classifier
        self.weight = weight
        self.temperature = temperature
        self.reduction = reduction

    def forward(self, labels: torch.Tensor | None = None, **features: torch.Tensor) -> dict[str, torch.Tensor]:
        embeddings = self.classifier.encoder(dict(features))["sentence_embedding"]  # (B, D)
        out = logits_and_loss(self.classifier.head(embeddings), labels, self.classifier.class_weight)  # (B, C)
        if labels is not None:  # SCL over the global batch when processes share it (CE stays a local mean)
            scl = supervised_contrastive_loss(gather_with_grad(embeddings), gather_with_grad(labels),
                                              self.temperature, self.reduction)
            out["loss"] = (1 - self.weight) * out["loss"] + self.weight * scl
        return out


def class_weights(labels: list[int], num_labels: int, rule: str) -> torch.Tensor | None:
    """Cross-entropy class weights of ``ft.class_weight``: None for "none"; for "balanced", n / (C x n_c) over the
    C classes present in training (scikit-learn's rule), 1 for a class absent from it (it has no examples to
    weigh)."""
    if rule == "none":
        return None
    from sklearn.utils.class_weight import compute_class_weight

    present = np.unique(labels)
    weights = np.ones(num_labels, dtype=np.float32)
    weights[present] = compute_class_weight("balanced", classes=present, y=np.asarray(labels))
    return torch.from_numpy(weights)


class FTPhase:
    """Encoder + 2-layer MLP head, cross-entropy, AdamW/SGD, warm-up + schedule, layer-wise lr decay."""

    name: ClassVar[str] = "ft"

    def settings(self, ctx: PhaseContext) -> FTConfig:
        return ctx.config.ft

    def run(self, ctx: PhaseContext) -> dict[str, Any]:
        from transformers import DataCollatorWithPadding, EarlyStoppingCallback, default_data_collator

        from phasefit.training.sampling import LabelAwareSampler
        from phasefit.training.trainer import phase_trainer_class

        cfg = self.settings(ctx)
        splits = ctx.splits
        torch.manual_seed(ctx.seed)  # the head's initial weights depend on the run seed only
        head = MLPHead(embedding_dimension(ctx.encoder), cfg.head_hidden, splits.num_labels,
                       dropout=cfg.head_dropout, activation=cfg.activation)
        classifier = PhaseFitClassifier(ctx.encoder, head, splits.label_names, max_length=ctx.max_length,
                                        label_separator=splits.label_separator,
                                        text_pairs=splits.train.text_pairs is not None)
        train_labels = splits.label_ids(splits.train)
        val_labels = splits.label_ids(splits.validation)
        classifier.class_weight = class_weights(train_labels, splits.num_labels, cfg.class_weight)

        if cfg.freeze_encoder:
            # Embed once; the Trainer then sees only the head and cached vectors.
            for param in ctx.encoder.parameters():
                param.requires_grad_(False)
            train_vectors = ctx.embed(splits.train.texts, splits.train.text_pairs)
            val_vectors = ctx.embed(splits.validation.texts, splits.validation.text_pairs)
            train_rows = [{"embeddings": torch.from_numpy(v), "labels": y} for v, y in zip(train_vectors, train_labels)]
            val_rows = [{"embeddings": torch.from_numpy(v), "labels": y} for v, y in zip(val_vectors, val_labels)]
            model: torch.nn.Module = HeadOnly(head, classifier.class_weight)
            collator = default_data_collator
            groups = parameter_groups(None, head, lr=cfg.lr, head_lr=cfg.head_lr, weight_decay=cfg.weight_decay)
        else:
            train_rows = [{**tok, "labels": y} for tok, y in zip(ctx.tokenized("train"), train_labels)]
            val_rows = [{**tok, "labels": y} for tok, y in zip(ctx.tokenized("validation"), val_labels)]
            model = classifier if cfg.scl_weight == 0 else CrossEntropySCL(classifier, cfg.scl_weight,
                                                                            cfg.scl_temperature, cfg.scl_reduction)
            collator = DataCollatorWithPadding(ctx.encoder.tokenizer)
            groups = parameter_groups(ctx.encoder, head, lr=cfg.lr, head_lr=cfg.head_lr,
                                      weight_decay=cfg.weight_decay, layer_decay=cfg.layer_decay)

        optimizer = make_optimizer(groups, cfg, fused=ctx.config.trainer.fused_optimizer)
        args = build_training_arguments(ctx, phase=self.name, cfg=cfg, evaluate=cfg.early_stopping, metric=cfg.metric,
                                        group_by_length=(cfg.group_by_length and not cfg.freeze_encoder
                                                         and cfg.sampler == "random"))
        label_names = splits.label_names

        def compute_metrics(prediction: Any) -> dict[str, float]:
            logits = prediction.predictions[0] if isinstance(prediction.predictions, tuple) else prediction.predictions
            scores = classification_metrics(prediction.label_ids, np.argmax(logits, axis=-1), label_names,
                                            detailed=False)
            return {"accuracy": scores["accuracy"], "macro_f1": scores["macro_f1"]}

        trainer = phase_trainer_class()(
            model=model,
            args=args,
            train_dataset=ListDataset(train_rows),
            eval_dataset=ListDataset(val_rows) if cfg.early_stopping else None,
            data_collator=collator,
            compute_metrics=compute_metrics if cfg.early_stopping else None,
            optimizers=(optimizer, None),
            callbacks=[*([EarlyStoppingCallback(early_stopping_patience=cfg.patience)] if cfg.early_stopping else []),
                       *ctx.callbacks, *reporting_callbacks(ctx, self.name)],
        )
        if cfg.sampler == "label-aware":
            trainer.train_sampler = LabelAwareSampler(train_labels, ctx.seed)
        trainer.phase_name = self.name
        quiet_trainer(trainer)
        trainable = trainable_parameters(model)
        result = trainer.train(resume_from_checkpoint=ctx.resume_checkpoint(self.name))
        state = trainer.state
        epochs_run = math.ceil(state.epoch or 0)
        classifier.class_weight = None
        ctx.classifier = classifier.eval()
        for param in ctx.encoder.parameters():
            param.requires_grad_(True)
        best_epoch = None if cfg.early_stopping else epochs_run  # a fixed-epoch refit keeps its last epoch
        best_metric = state.best_metric
        for entry in state.log_history:
            if f"eval_{cfg.metric}" in entry and entry[f"eval_{cfg.metric}"] == best_metric:
                best_epoch = entry.get("epoch")
                break
        return {
            "examples": min(len(train_rows) * max(1, epochs_run), state.global_step * global_batch(ctx, cfg)),
            "steps": state.global_step,
            "trainable_parameters": trainable,
            "final_loss": final_train_loss(state.log_history, result),
            "epochs_run": epochs_run,
            "best_epoch": best_epoch,
            f"best_validation_{cfg.metric}": best_metric,
            "log_history": state.log_history,
        }
