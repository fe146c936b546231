"""``TrainingArguments`` shared by every phase: one place decides checkpoints, logging, seeds and sampling."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch

if TYPE_CHECKING:
    from transformers import TrainingArguments

    from phasefit.phases.base import PhaseContext


def build_training_arguments(
    ctx: PhaseContext,
    *,
    phase: str,
    epochs: int,
    batch_size: int,
    lr: float,
    weight_decay: float = 0.0,
    max_grad_norm: float = 1.0,
    evaluate: bool = False,
    metric: str = "macro_f1",
    group_by_length: bool = True,
    max_steps: int | None = None,
    **extra: Any,
) -> TrainingArguments:
    """Arguments for one phase's Trainer: epoch checkpoints under ``work_dir/checkpoints/<phase>``, the run
    seed for weights and data order, length-grouped batches (dynamic padding wastes less on similar lengths)
    and, when ``evaluate``, per-epoch validation with the best epoch restored at the end."""
    from transformers import TrainingArguments

    eval_args: dict[str, Any] = {"eval_strategy": "no"}
    if evaluate:
        eval_args = {
            "eval_strategy": "epoch",
            "load_best_model_at_end": True,
            "metric_for_best_model": metric,
            "greater_is_better": True,
            "per_device_eval_batch_size": max(64, batch_size),
        }
    return TrainingArguments(
        output_dir=str(ctx.work_dir / "checkpoints" / phase),
        num_train_epochs=epochs,
        max_steps=max_steps if max_steps is not None else -1,
        per_device_train_batch_size=batch_size,
        learning_rate=lr,
        weight_decay=weight_decay,
        max_grad_norm=max_grad_norm,
        save_strategy="epoch",
        save_total_limit=1,
        logging_strategy="steps",
        logging_steps=5,
        logging_first_step=True,
        report_to="none",
        seed=ctx.seed,
        data_seed=ctx.seed,
        disable_tqdm=not ctx.config.progress,
        train_sampling_strategy="group_by_length" if group_by_length else "random",
        remove_unused_columns=False,
        label_names=["labels"],
        dataloader_pin_memory=torch.cuda.is_available(),
        **eval_args,
        **extra,
    )


def final_train_loss(log_history: list[dict[str, Any]], result: Any = None) -> float | None:
    """The last logged training loss (the per-step value, not the run average)."""
    for entry in reversed(log_history):
        if "loss" in entry:
            return float(entry["loss"])
    if result is not None and getattr(result, "training_loss", None) is not None:
        return float(result.training_loss)
    return None


def quiet_trainer(trainer: Any) -> None:
    """The Trainer prints every log dict to stdout when progress bars are off; the library never prints."""
    from transformers.trainer_callback import PrinterCallback

    trainer.remove_callback(PrinterCallback)


def phase_trainer_class() -> type:
    """``transformers.Trainer`` that can take a custom training sampler (e.g. :class:`LabelAwareSampler`)."""
    from transformers import Trainer

    class PhaseTrainer(Trainer):
        train_sampler: Any = None

        def _get_train_sampler(self, train_dataset: Any = None) -> Any:
            if self.train_sampler is not None:
                return self.train_sampler
            return super()._get_train_sampler(train_dataset)

    return PhaseTrainer
