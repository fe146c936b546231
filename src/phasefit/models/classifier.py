"""The trained classifier: a sentence encoder plus a 2-layer MLP head (paper 000 eq. 7-9).

Saved as a folder: ``encoder/`` (a sentence-transformers model, safetensors), ``head.safetensors`` and
``classifier.json`` (labels, head shape, token limit). :meth:`TextClassifier.load` restores it bit for bit, so a
saved run predicts the same labels as the model that was trained.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torch import nn

from phasefit.io import atomic_directory, commit_directory

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

_ACTIVATIONS: dict[str, type[nn.Module]] = {"gelu": nn.GELU, "relu": nn.ReLU, "tanh": nn.Tanh}
FORMAT_VERSION = 1


class MLPHead(nn.Module):
    """Linear -> activation -> dropout -> Linear (paper 000 eq. 7-8; the paper's code forgot the activation)."""

    def __init__(self, in_dim: int, hidden: int, num_labels: int, *, dropout: float = 0.1, activation: str = "gelu"):
        super().__init__()
        self.shape = {"in_dim": in_dim, "hidden": hidden, "num_labels": num_labels, "dropout": dropout,
                      "activation": activation}
        self.net = nn.Sequential(
            nn.Linear(in_dim, hidden), _ACTIVATIONS[activation](), nn.Dropout(dropout), nn.Linear(hidden, num_labels)
        )

    def forward(self, embeddings: torch.Tensor) -> torch.Tensor:
        return self.net(embeddings)  # (B, D) -> (B, num_labels)


class HeadOnly(nn.Module):
    """The head alone, trained on cached embeddings when the encoder is frozen (the encoder never runs again)."""

    def __init__(self, head: MLPHead):
        super().__init__()
        self.head = head

    def forward(self, embeddings: torch.Tensor, labels: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        logits = self.head(embeddings)
        out = {"logits": logits}
        if labels is not None:
            out["loss"] = nn.functional.cross_entropy(logits, labels)
        return out


class TextClassifier(nn.Module):
    """Sentence encoder + MLP head with cross-entropy; the model the Trainer fine-tunes in the FT phase.

    ``forward`` takes the tokenizer's features (``input_ids``, ``attention_mask``, ...) and optional ``labels``
    and returns ``{"loss", "logits"}``, the contract of ``transformers.Trainer``.
    """

    def __init__(
        self,
        encoder: SentenceTransformer,
        head: MLPHead,
        label_names: Sequence[str],
        *,
        max_length: int,
        label_separator: str | None = None,
    ):
        super().__init__()
        self.encoder = encoder
        self.head = head
        self.label_names = list(label_names)
        self.max_length = int(max_length)
        self.label_separator = label_separator
        encoder.max_seq_length = self.max_length

    # -- training -------------------------------------------------------------------------------------------------
    def forward(self, labels: torch.Tensor | None = None, **features: torch.Tensor) -> dict[str, torch.Tensor]:
        embeddings = self.encoder(dict(features))["sentence_embedding"]  # (B, D)
        logits = self.head(embeddings)  # (B, C)
        out = {"logits": logits}
        if labels is not None:
            out["loss"] = nn.functional.cross_entropy(logits, labels)
        return out

    # -- inference ------------------------------------------------------------------------------------------------
    @property
    def device(self) -> torch.device:
        return next(self.head.parameters()).device

    def tokenize(self, texts: Sequence[str]) -> dict[str, torch.Tensor]:
        return self.encoder.tokenizer(
            list(texts), padding=True, truncation=True, max_length=self.max_length, return_tensors="pt"
        )

    @torch.no_grad()
    def predict_proba(self, texts: Sequence[str], *, batch_size: int = 64) -> np.ndarray:
        """Class probabilities, shape (len(texts), num_labels), columns in ``label_names`` order."""
        return torch.softmax(torch.from_numpy(self.predict_logits(texts, batch_size=batch_size)), dim=-1).numpy()

    @torch.no_grad()
    def predict_logits(self, texts: Sequence[str], *, batch_size: int = 64) -> np.ndarray:
        was_training = self.training
        self.eval()
        texts = list(texts)
        # Sort by length so each batch pads to similar lengths; results are put back in input order.
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        out = np.zeros((len(texts), len(self.label_names)), dtype=np.float32)
        for start in range(0, len(order), batch_size):
            idx = order[start : start + batch_size]
            features = {k: v.to(self.device) for k, v in self.tokenize([texts[i] for i in idx]).items()}
            out[idx] = self(**features)["logits"].float().cpu().numpy()
        self.train(was_training)
        return out

    def predict(self, texts: Sequence[str], *, batch_size: int = 64) -> list[str]:
        """Predicted label names, one per text."""
        if not len(texts):
            return []
        ids = self.predict_logits(texts, batch_size=batch_size).argmax(axis=-1)
        return [self.label_names[i] for i in ids]

    # -- persistence ----------------------------------------------------------------------------------------------
    def save(self, folder: str | Path) -> None:
        """Write the classifier to ``folder`` atomically (a kill never leaves a half-written model)."""
        folder = Path(folder)
        tmp = atomic_directory(folder)
        self.encoder.save(str(tmp / "encoder"), safe_serialization=True)
        save_file({k: v.detach().cpu().contiguous() for k, v in self.head.state_dict().items()},
                  str(tmp / "head.safetensors"))
        meta: dict[str, Any] = {
            "format_version": FORMAT_VERSION,
            "label_names": self.label_names,
            "label_separator": self.label_separator,
            "max_length": self.max_length,
            "head": self.head.shape,
        }
        (tmp / "classifier.json").write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
        commit_directory(tmp, folder)

    @classmethod
    def load(cls, folder: str | Path, *, device: str | None = None) -> TextClassifier:
        """Load a classifier saved by :meth:`save` or exported by ``phasefit export`` (safetensors only, no
        remote code)."""
        from sentence_transformers import SentenceTransformer

        folder = Path(folder)
        meta_path = folder / "classifier.json"
        if not meta_path.is_file():
            raise FileNotFoundError(f"{folder} is not a saved phasefit classifier (no classifier.json)")
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        # A run's model/ keeps the encoder in encoder/; an export keeps it flat beside the head.
        encoder_dir = folder / "encoder" if (folder / "encoder").is_dir() else folder
        encoder = SentenceTransformer(str(encoder_dir), device=device, local_files_only=True,
                                      trust_remote_code=False, model_kwargs={"use_safetensors": True})
        shape = meta["head"]
        head = MLPHead(shape["in_dim"], shape["hidden"], shape["num_labels"], dropout=shape["dropout"],
                       activation=shape["activation"])
        head.load_state_dict(load_file(str(folder / "head.safetensors")))
        model = cls(encoder, head, meta["label_names"], max_length=meta["max_length"],
                    label_separator=meta.get("label_separator"))
        model.to(encoder.device)
        return model.eval()
