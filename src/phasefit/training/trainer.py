"""``TrainingArguments`` shared by every phase: one place decides checkpoints, logging, seeds and sampling."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from phasefit.errors import PhasefitError

from phasefit.training.optim import scheduler_arguments

if TYPE_CHECKING:
    from transformers import TrainingArguments

    from phasefit.config import OptimConfig

    from phasefit.training.context import PhaseContext


def build_training_arguments(
    ctx: PhaseContext,
    *,
    phase: str,
    cfg: OptimConfig,
    evaluate: bool = False,
    metric: str = "macro_f1",
    group_by_length: bool = True,
) -> TrainingArguments:
    """Arguments for one phase's Trainer from its settings: epoch checkpoints under
    ``work_dir/checkpoints/<phase>``, the run seed for weights and data order, the phase's schedule, length-grouped
    batches (dynamic padding wastes less on similar lengths) and, when ``evaluate``, per-epoch validation with the
    best epoch restored at the end."""
    from transformers import TrainingArguments

    from phasefit.distributed import use_cpu_processes

    trainer = ctx.config.trainer
    eval_args: dict[str, Any] = {"eval_strategy": "no"}
    if evaluate:
        eval_args = {
            "eval_strategy": "epoch",
            "load_best_model_at_end": True,
            "metric_for_best_model": metric,
            "greater_is_better": True,
            "per_device_eval_batch_size": max(64, cfg.batch_size),
        }
    return TrainingArguments(
        output_dir=str(ctx.work_dir / "checkpoints" / phase),
        num_train_epochs=cfg.epochs,
        max_steps=cfg.max_steps if cfg.max_steps is not None else -1,
        per_device_train_batch_size=cfg.batch_size,
        learning_rate=cfg.lr,
        weight_decay=cfg.weight_decay,
        max_grad_norm=cfg.max_grad_norm,
        save_strategy="epoch",
        save_total_limit=1,
        logging_strategy="steps",
        logging_steps=1,  # per-step losses: exact curves, and a resumed run logs the same values
        logging_first_step=True,
        report_to=[name for name in trainer.report_to if name != "tensorboard"] or "none",
        run_name=f"{ctx.work_dir.name}-{phase}",
        gradient_accumulation_steps=trainer.gradient_accumulation_steps,
        dataloader_num_workers=trainer.dataloader_num_workers,
        **precision_arguments(trainer.mixed_precision),
        seed=ctx.seed,
        data_seed=ctx.seed,
        disable_tqdm=not ctx.config.progress,
        train_sampling_strategy="group_by_length" if group_by_length else "random",
        remove_unused_columns=False,
        label_names=["labels"],
        dataloader_pin_memory=torch.cuda.is_available(),
        use_cpu=use_cpu_processes(),  # several CPU processes: a gloo process group, not P lone trainings
        restore_callback_states_from_checkpoint=True,  # early-stopping patience survives a resume
        **eval_args,
        **scheduler_arguments(cfg.schedule, cfg.warmup_ratio, cfg.min_lr_ratio),
    )


def precision_arguments(mode: str) -> dict[str, bool]:
    """``bf16``/``fp16`` flags of ``TrainingArguments`` for ``trainer.mixed_precision``: ``auto`` is bf16 on a GPU
    that supports it, fp16 on other GPUs, and off on CPU (bf16 runs slower than fp32 on CPUs without AMX: SPEC §8)."""
    if mode == "auto":
        if not torch.cuda.is_available():
            return {"bf16": False, "fp16": False}
        mode = "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    if mode == "fp16" and not torch.cuda.is_available():
        raise TrainerOptionError("trainer.mixed_precision=fp16 needs a CUDA GPU; use 'auto' (off on CPU), 'bf16' or "
                                 "'no'")
    return {"bf16": mode == "bf16", "fp16": mode == "fp16"}


def reporting_callbacks(ctx: PhaseContext, phase: str) -> list[Any]:
    """A TensorBoard writer for the phase when ``trainer.report_to`` names tensorboard: event files go to
    ``RUN/logs/<phase>`` (the Trainer's default, under the checkpoints, is deleted when the run finishes). Other
    integrations (wandb, mlflow, ...) are the Trainer's own, through ``report_to``."""
    from phasefit.distributed import is_main_process

    if "tensorboard" not in ctx.config.trainer.report_to or not is_main_process():  # one writer per run
        return []
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        raise TrainerOptionError("trainer.report_to=tensorboard needs the tensorboard package: pip install "
                                 "tensorboard (or pip install 'phasefit[tensorboard]')") from None
    from transformers.integrations import TensorBoardCallback

    return [TensorBoardCallback(SummaryWriter(log_dir=str(ctx.work_dir / "logs" / phase)))]


def no_final_checkpoint() -> Any:
    """A callback that skips the Trainer's checkpoint at the end of the last epoch of an encoder phase: the pipeline
    saves the phase's encoder to ``state/phase-i`` right after, and that is its resume state (a checkpoint of the
    objective, decoder and optimiser included, would be a second, larger copy that nothing reads)."""
    from transformers import TrainerCallback

    class NoFinalCheckpoint(TrainerCallback):
        def on_epoch_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            if state.max_steps and state.global_step >= state.max_steps:
                control.should_save = False

    return NoFinalCheckpoint()


class TrainerOptionError(PhasefitError, ValueError):
    """A ``trainer.*`` option this machine or environment cannot honour."""


def final_train_loss(log_history: list[dict[str, Any]], result: Any = None) -> float | None:
    """The last logged training loss (the per-step value, not the run average)."""
    for entry in reversed(log_history):
        if "loss" in entry:
            return float(entry["loss"])
    if result is not None and getattr(result, "training_loss", None) is not None:
        return float(result.training_loss)
    return None


def quiet_trainer(trainer: Any) -> None:
    """The Trainer prints every log dict to stdout (PrinterCallback without progress bars, ProgressCallback's
    ``on_log`` with them); the library never prints. Progress bars stay; the logs go to the run's curves."""
    from transformers.trainer_callback import PrinterCallback, ProgressCallback

    class _BarsOnly(ProgressCallback):
        def on_log(self, args: Any, state: Any, control: Any, logs: Any = None, **kwargs: Any) -> None:
            return None

    trainer.remove_callback(PrinterCallback)
    if any(isinstance(cb, ProgressCallback) for cb in trainer.callback_handler.callbacks):
        trainer.remove_callback(ProgressCallback)
        trainer.add_callback(_BarsOnly())


class NonFiniteLossError(PhasefitError, RuntimeError):
    """Training produced a NaN or infinite loss; the phase stops before the optimiser applies it."""


def phase_trainer_class() -> type:
    """``transformers.Trainer`` with a custom training sampler (e.g. the label-aware one) and a guard that stops
    at the first non-finite loss, before the optimiser step, so no checkpoint ever holds the broken weights."""
    from transformers import Trainer

    class PhaseTrainer(Trainer):
        train_sampler: Any = None
        phase_name: str = "?"

        def __init__(self, *args: Any, **kwargs: Any):
            super().__init__(*args, **kwargs)
            # Our objectives take the batch as **features, which the Trainer reads as "accepts loss kwargs": it
            # would then skip the division by gradient_accumulation_steps and multiply the loss by the number of
            # processes (the rule for token-count-normalised LM losses). Every phasefit loss is a mean over its
            # batch, so it needs neither: gradients equal the single-process, no-accumulation ones.
            self.model_accepts_loss_kwargs = False

        def _get_train_sampler(self, train_dataset: Any = None) -> Any:
            if self.train_sampler is not None:
                return self.train_sampler
            return super()._get_train_sampler(train_dataset)

        def compute_loss(self, model: Any, inputs: Any, return_outputs: bool = False, **kwargs: Any) -> Any:
            result = super().compute_loss(model, inputs, return_outputs=return_outputs, **kwargs)
            loss = result[0] if return_outputs else result
            if model.training and not torch.isfinite(loss.detach()).all():
                lr = self.optimizer.param_groups[0]["lr"] if self.optimizer is not None else float("nan")
                last = self.state.best_model_checkpoint or _last_checkpoint(self.args.output_dir)
                raise NonFiniteLossError(
                    f"phase {self.phase_name}: the training loss became {loss.item()} at step "
                    f"{self.state.global_step + 1}; the likely cause is a learning rate too high (now {lr:.3g}) "
                    f"or fp16 overflow. Lower {self.phase_name}.lr (e.g. --set {self.phase_name}.lr=...) and train "
                    f"again. Last good checkpoint: {last or 'none yet'}."
                )
            return result

    return PhaseTrainer


def checkpoints(folder: str | Path, *, complete: bool = False) -> list[Path]:
    """A phase's Trainer checkpoints, newest (highest step) first; with ``complete``, only those the Trainer
    finished writing: ``trainer_state.json`` is written last and not atomically, so a kill while saving leaves it
    missing, empty or cut short."""
    found = sorted(Path(folder).glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[-1]), reverse=True)
    return [p for p in found if _complete_state(p / "trainer_state.json")] if complete else found


def _complete_state(path: Path) -> bool:
    import json

    try:
        return isinstance(json.loads(path.read_text(encoding="utf-8")), dict)
    except (OSError, ValueError):
        return False


def _last_checkpoint(folder: str) -> str | None:
    found = checkpoints(folder)
    return str(found[0]) if found else None
