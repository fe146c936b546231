"""The state a run's phases train on: :class:`PhaseContext` (config, splits, current encoder, run folder), passed
from one phase to the next, and the tokenisation it caches.

It lives in ``training`` (not in ``phases``, whose interface takes it) because the training helpers read it too:
the Trainer's arguments, checkpoints and best-epoch selection need the run's settings and scratch folder, and a
lower layer must not import a higher one. ``phasefit.phases.base`` re-exports it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

    from phasefit.config import RunConfig
    from phasefit.data import DatasetSplits, LabelledSplit
    from phasefit.models.classifier import PhaseFitClassifier

DIAGNOSTIC_TRAIN_LIMIT = 2000  # k-NN reference set size cap, so diagnostics stay cheap on big data


@dataclass
class PhaseContext:
    config: RunConfig
    splits: DatasetSplits
    encoder: SentenceTransformer
    max_length: int
    work_dir: Path  # scratch space of the run (checkpoints); the run directory itself is the pipeline's
    unlabelled_texts: list[str] = field(default_factory=list)
    classifier: PhaseFitClassifier | None = None
    callbacks: list[Any] = field(default_factory=list)  # extra Trainer callbacks for every phase (e.g. pruning)
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
        from phasefit.training.trainer import checkpoints

        complete = checkpoints(self.work_dir / "checkpoints" / phase, complete=True)
        return str(complete[0]) if complete else None

    def embedding_scores(self) -> tuple[dict[str, Any], np.ndarray]:
        """k-NN accuracy and silhouette of the current encoder's validation embeddings (the reference set is the
        training split, capped at a seeded sample of :data:`DIAGNOSTIC_TRAIN_LIMIT`), and those embeddings."""
        from phasefit.evaluation.embeddings import embedding_diagnostics

        train = self.splits.train
        keep = np.arange(len(train))
        if len(train) > DIAGNOSTIC_TRAIN_LIMIT:
            keep = np.sort(np.random.default_rng(self.seed).choice(len(train), DIAGNOSTIC_TRAIN_LIMIT, replace=False))
        train_labels = np.asarray(self.splits.label_ids(train))[keep]
        pairs = None if train.text_pairs is None else [train.text_pairs[i] for i in keep]
        train_vectors = self.embed([train.texts[i] for i in keep], pairs)
        val_vectors = self.embed(self.splits.validation.texts, self.splits.validation.text_pairs)
        scores = embedding_diagnostics(train_vectors, train_labels, val_vectors,
                                       self.splits.label_ids(self.splits.validation))
        record = {"validation_knn_accuracy": scores["knn_accuracy"], "validation_silhouette": scores["silhouette"]}
        return record, val_vectors

    @torch.no_grad()
    def embed(self, texts: list[str], text_pairs: list[str] | None = None, *, batch_size: int = 64) -> np.ndarray:
        """Sentence embeddings of the current encoder (eval mode), shape (N, D); of (text, pair) inputs, tokenised
        together as the classifier sees them, when ``text_pairs`` is given."""
        self.encoder.max_seq_length = self.max_length
        if text_pairs is None:
            return self.encoder.encode(
                texts, batch_size=batch_size, convert_to_numpy=True, show_progress_bar=False
            ).astype(np.float32)
        was_training = self.encoder.training
        self.encoder.eval()
        device = next(self.encoder.parameters()).device
        out = []
        for start in range(0, len(texts), batch_size):
            features = self.encoder.tokenizer(texts[start : start + batch_size], text_pairs[start : start + batch_size],
                                              padding=True, truncation=True, max_length=self.max_length,
                                              return_tensors="pt")
            features = {k: v.to(device) for k, v in features.items()}
            out.append(self.encoder(features)["sentence_embedding"].float().cpu().numpy())
        self.encoder.train(was_training)
        if not out:
            from phasefit.models.encoder import embedding_dimension

            return np.zeros((0, embedding_dimension(self.encoder)), dtype=np.float32)
        return np.concatenate(out)


def tokenize(
    encoder: SentenceTransformer, texts: list[str], max_length: int, text_pairs: list[str] | None = None
) -> list[dict[str, list[int]]]:
    tokenizer = encoder.tokenizer
    encoded = tokenizer(list(texts), text_pairs, truncation=True, max_length=max_length)
    keys = list(encoded.keys())
    return [{key: encoded[key][i] for key in keys} for i in range(len(texts))]
