"""The phase interface: a phase takes the run's state (encoder, data, settings), trains, and returns its record.

Phases run in order over one :class:`PhaseContext`. A phase replaces ``ctx.encoder`` with the encoder it trained
(DAE, CL, contrastive pre-training) or sets ``ctx.classifier`` (FT). Tokenised splits are cached on the context, so
no phase tokenises the same texts twice.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

import numpy as np
import torch

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

    from phasefit.config import RunConfig
    from phasefit.data import DatasetSplits, LabelledSplit
    from phasefit.models.classifier import TextClassifier

logger = logging.getLogger(__name__)


@dataclass
class PhaseContext:
    config: RunConfig
    splits: DatasetSplits
    encoder: SentenceTransformer
    max_length: int
    work_dir: Path  # scratch space of the run (checkpoints); the run directory itself is the pipeline's
    unlabelled_texts: list[str] = field(default_factory=list)
    classifier: TextClassifier | None = None
    callbacks: list[Any] = field(default_factory=list)  # extra Trainer callbacks for the FT phase (e.g. pruning)
    resume: bool = False  # continue each phase from its last complete Trainer checkpoint
    _tokens: dict[str, list[dict[str, list[int]]]] = field(default_factory=dict, repr=False)

    @property
    def seed(self) -> int:
        return self.config.seed

    def split(self, name: str) -> LabelledSplit:
        return getattr(self.splits, name)

    def tokenized(self, name: str) -> list[dict[str, list[int]]]:
        """Unpadded token ids of a split's texts (cached; batches are padded dynamically by the collator)."""
        if name not in self._tokens:
            part = self.split(name)
            self._tokens[name] = tokenize(self.encoder, part.texts, self.max_length, part.text_pairs)
        return self._tokens[name]

    def resume_checkpoint(self, phase: str) -> str | None:
        """The phase's latest *complete* checkpoint when resuming (a kill while saving leaves an incomplete one,
        recognisable by its missing ``trainer_state.json``, which the Trainer writes last)."""
        if not self.resume:
            return None
        folder = self.work_dir / "checkpoints" / phase
        candidates = sorted(folder.glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[-1]), reverse=True)
        for candidate in candidates:
            if (candidate / "trainer_state.json").is_file():
                return str(candidate)
        return None

    @torch.no_grad()
    def embed(self, texts: list[str], *, batch_size: int = 64) -> np.ndarray:
        """Sentence embeddings of the current encoder (eval mode), shape (N, D)."""
        self.encoder.max_seq_length = self.max_length
        return self.encoder.encode(
            texts, batch_size=batch_size, convert_to_numpy=True, show_progress_bar=False
        ).astype(np.float32)


def tokenize(
    encoder: SentenceTransformer, texts: list[str], max_length: int, text_pairs: list[str] | None = None
) -> list[dict[str, list[int]]]:
    tokenizer = encoder.tokenizer
    encoded = tokenizer(list(texts), text_pairs, truncation=True, max_length=max_length)
    keys = list(encoded.keys())
    return [{key: encoded[key][i] for key in keys} for i in range(len(texts))]


class Phase(Protocol):
    """One training phase. ``run`` trains in place on ``ctx`` and returns its record.

    The record holds at least ``examples`` (training examples processed, for examples/s), ``trainable_parameters``
    and ``final_loss``; the pipeline adds time, memory and embedding diagnostics around it.
    """

    name: ClassVar[str]

    def run(self, ctx: PhaseContext) -> dict[str, Any]: ...
