"""The phase interface: a phase takes the run's state (encoder, data, settings), trains, and returns its record.

Phases run in order over one :class:`PhaseContext`. A phase replaces ``ctx.encoder`` with the encoder it trained
(DAE, CL, contrastive pre-training) or sets ``ctx.classifier`` (FT). Tokenised splits are cached on the context, so
no phase tokenises the same texts twice.
"""

from __future__ import annotations

from typing import Any, ClassVar, Protocol

# PhaseContext lives with the training helpers that read it; re-exported here, beside the interface that takes it.
from phasefit.training.context import DIAGNOSTIC_TRAIN_LIMIT, PhaseContext, tokenize

__all__ = ["DIAGNOSTIC_TRAIN_LIMIT", "Phase", "PhaseContext", "tokenize"]


class Phase(Protocol):
    """One training phase. ``run`` trains in place on ``ctx`` and returns its record.

    The record holds at least ``examples`` (training examples processed, for examples/s), ``trainable_parameters``
    and ``final_loss``; the pipeline adds time, memory and embedding diagnostics around it.
    """

    name: ClassVar[str]

    def run(self, ctx: PhaseContext) -> dict[str, Any]: ...
