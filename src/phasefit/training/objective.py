"""Training an objective with the phase Trainer: what the encoder phases (DAE, CL, Joint, SupCon, SimCLR) share —
their items as a dataset, the Trainer run with its optimiser groups, checkpoints and logging, and the optional
best-epoch selection on validation k-NN accuracy (``select_epoch``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from phasefit.training.cost import trainable_parameters
from phasefit.training.optim import make_optimizer, parameter_groups
from phasefit.training.trainer import (build_training_arguments, final_train_loss, no_final_checkpoint,
                                       phase_trainer_class, quiet_trainer, reporting_callbacks)

if TYPE_CHECKING:
    from phasefit.config import OptimConfig
    from phasefit.training.context import PhaseContext


class ListDataset(torch.utils.data.Dataset):
    """A list of prepared examples (token dicts, pairs, cached embeddings) as a map-style dataset."""

    def __init__(self, items: list[Any]):
        self.items = items

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> Any:
        return self.items[index]


def best_epoch_callback(ctx: PhaseContext, phase: str) -> Any:
    """A Trainer callback for ``select_epoch``: after every epoch it scores the encoder's validation k-NN accuracy
    and keeps the best epoch's encoder weights; :meth:`restore` loads them back after training (paper 000 picked
    each phase's best model on validation). The best weights and the per-epoch scores live on disk beside the
    phase's checkpoints, so a resumed phase keeps what it had selected before the kill."""
    import json

    from safetensors.torch import load_file, save_file
    from transformers import TrainerCallback

    from phasefit.io import atomic_directory, atomic_write_json, commit_directory

    folder = ctx.work_dir / "checkpoints" / phase / "best-epoch"

    class BestEpoch(TrainerCallback):
        def __init__(self) -> None:
            record = folder / "record.json"
            saved = json.loads(record.read_text(encoding="utf-8")) if record.is_file() else {}
            self.best: dict[str, Any] | None = saved.get("best")
            self.history: list[dict[str, Any]] = saved.get("history", [])

        def on_epoch_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            scores, _ = ctx.embedding_scores()
            entry = {"epoch": round(state.epoch or 0, 3), "validation_knn_accuracy": scores["validation_knn_accuracy"]}
            self.history.append(entry)
            if self.best is None or entry["validation_knn_accuracy"] > self.best["validation_knn_accuracy"]:
                self.best = entry
                tmp = atomic_directory(folder / "weights")
                state_dict = {k: v.detach().clone().contiguous() for k, v in ctx.encoder.state_dict().items()}
                save_file(state_dict, tmp / "encoder.safetensors")
                commit_directory(tmp, folder / "weights")
            atomic_write_json(folder / "record.json", {"best": self.best, "history": self.history})

        def restore(self) -> dict[str, Any]:
            """Load the best epoch's weights into the encoder; the phase record's selection fields."""
            if self.best is None:  # no epoch finished (max_steps inside the first epoch): keep the last weights
                return {"selected_epoch": None, "epoch_validation_knn": self.history}
            weights = load_file(folder / "weights" / "encoder.safetensors", device=str(ctx.encoder.device))
            ctx.encoder.load_state_dict(weights)
            return {"selected_epoch": self.best["epoch"], "epoch_validation_knn": self.history}

    return BestEpoch()


def global_batch(ctx: PhaseContext, cfg: OptimConfig) -> int:
    """Examples per optimiser step: the per-process batch x accumulation steps x processes."""
    from phasefit.distributed import num_processes

    return cfg.batch_size * ctx.config.trainer.gradient_accumulation_steps * num_processes()


def train_objective(
    ctx: PhaseContext,
    phase: str,
    objective: nn.Module,
    items: list[Any],
    collator: Any,
    cfg: OptimConfig,
    *,
    sampler: torch.utils.data.Sampler | None = None,
) -> dict[str, Any]:
    """Train an objective with the Trainer for ``cfg.epochs`` (no evaluation: these phases shape the encoder)."""
    if not items:
        from phasefit.data.errors import DataError

        raise DataError(f"phase {phase}: nothing to train on (0 examples); give it training texts (every class of "
                        f"the training split needs 2 or more examples for pairs), or drop {phase} from phases")
    groups = parameter_groups(objective, None, lr=cfg.lr, head_lr=cfg.lr, weight_decay=cfg.weight_decay,
                              layer_decay=cfg.layer_decay)
    optimizer = make_optimizer(groups, cfg, fused=ctx.config.trainer.fused_optimizer)
    args = build_training_arguments(ctx, phase=phase, cfg=cfg, group_by_length=False)
    selection = best_epoch_callback(ctx, phase) if getattr(cfg, "select_epoch", False) else None
    callbacks = [*([selection] if selection else []), no_final_checkpoint(), *ctx.callbacks,
                 *reporting_callbacks(ctx, phase)]
    trainer = phase_trainer_class()(model=objective, args=args, train_dataset=ListDataset(items), data_collator=collator,
                                    optimizers=(optimizer, None), callbacks=callbacks)
    trainer.train_sampler = sampler
    trainer.phase_name = phase
    quiet_trainer(trainer)
    trainable = trainable_parameters(objective)
    result = trainer.train(resume_from_checkpoint=ctx.resume_checkpoint(phase))
    selected = selection.restore() if selection is not None else {}
    return {
        **selected,
        "examples": (trainer.state.global_step * global_batch(ctx, cfg) if cfg.max_steps
                     else len(items) * cfg.epochs),
        "trainable_parameters": trainable,
        "final_loss": final_train_loss(trainer.state.log_history, result),
        "epochs_run": round(trainer.state.epoch or 0, 3),
        "steps": trainer.state.global_step,
        "log_history": trainer.state.log_history,
    }
