"""The trained classifier: a sentence encoder plus a 2-layer MLP head (paper 000 eq. 7-9).

:class:`PhaseFitClassifier` follows the Hugging Face Hub conventions of SetFit's ``SetFitModel``
(``huggingface_hub.ModelHubMixin``): ``save_pretrained(DIR)`` writes a sentence-transformers folder (it loads with
``SentenceTransformer(DIR)``) plus ``head.safetensors``, ``classifier.json`` (labels, head shape, token limit, how it
was trained) and a model card with YAML metadata; ``from_pretrained`` reads such a folder, a Hub repository, an export
or a run. A run's ``model/`` keeps the encoder in ``encoder/`` instead of flat; both load bit for bit, so a saved
classifier predicts the same labels as the one that was trained.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from huggingface_hub import ModelHubMixin
from safetensors.torch import load_file, save_file
from torch import nn

from phasefit.errors import PhasefitError

from phasefit.io import atomic_directory, commit_directory

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

_ACTIVATIONS: dict[str, type[nn.Module]] = {"gelu": nn.GELU, "relu": nn.ReLU, "tanh": nn.Tanh}
FORMAT_VERSION = 1
CLASSIFIER_FILE = "classifier.json"
HEAD_FILE = "head.safetensors"


class ModelFolderError(PhasefitError, ValueError):
    """A folder is not a phasefit classifier, or saving there would replace files phasefit did not write."""


def logits_and_loss(logits: torch.Tensor, labels: torch.Tensor | None,
                    class_weight: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
    """The Trainer's output contract for a classifier: ``{"logits"}``, plus the cross-entropy ``"loss"`` when
    labels are given (weighted per class by ``class_weight``, shape (C,), when set)."""
    out = {"logits": logits}
    if labels is not None:
        weight = None if class_weight is None else class_weight.to(logits.device, logits.dtype)
        out["loss"] = nn.functional.cross_entropy(logits, labels, weight=weight)
    return out


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

    def __init__(self, head: MLPHead, class_weight: torch.Tensor | None = None):
        super().__init__()
        self.head = head
        self.class_weight = class_weight  # cross-entropy weights while training (ft.class_weight), not saved

    def forward(self, embeddings: torch.Tensor, labels: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        return logits_and_loss(self.head(embeddings), labels, self.class_weight)


class PhaseFitClassifier(nn.Module, ModelHubMixin, library_name="phasefit", pipeline_tag="text-classification",
                         tags=["phasefit", "text-classification", "sentence-transformers"]):
    """Sentence encoder + MLP head with cross-entropy: what every recipe trains, and what predicts.

    ``forward`` takes the tokenizer's features (``input_ids``, ``attention_mask``, ...) and optional ``labels``
    and returns ``{"loss", "logits"}``, the contract of ``transformers.Trainer``.

    Example:
        >>> clf = PhaseFitClassifier.from_pretrained("runs/x/model")      # doctest: +SKIP
        >>> clf.predict("book a table for two")                           # doctest: +SKIP
        'BookRestaurant'
        >>> clf.predict_proba(["play some jazz", "rain tomorrow?"]).shape  # doctest: +SKIP
        (2, 7)
    """

    def __init__(
        self,
        encoder: SentenceTransformer,
        head: MLPHead,
        label_names: Sequence[str],
        *,
        max_length: int,
        label_separator: str | None = None,
        training_info: dict[str, Any] | None = None,
        text_pairs: bool = False,
    ):
        super().__init__()
        self.encoder = encoder
        self.head = head
        self.label_names = list(label_names)
        self.max_length = int(max_length)
        self.label_separator = label_separator
        self.training_info = dict(training_info or {})  # recipe, base model, data, seed, scores: for the model card
        self.text_pairs = bool(text_pairs)  # trained on (text, text_pair) inputs: predicting needs both
        self.class_weight: torch.Tensor | None = None  # cross-entropy weights while training (ft.class_weight)
        encoder.max_seq_length = self.max_length

    @property
    def labels(self) -> list[str]:
        """Class names, in the order of ``predict_proba``'s columns."""
        return self.label_names

    # -- training -------------------------------------------------------------------------------------------------
    def forward(self, labels: torch.Tensor | None = None, **features: torch.Tensor) -> dict[str, torch.Tensor]:
        embeddings = self.encoder(dict(features))["sentence_embedding"]  # (B, D)
        return logits_and_loss(self.head(embeddings), labels, self.class_weight)  # logits (B, C)

    # -- inference ------------------------------------------------------------------------------------------------
    @property
    def device(self) -> torch.device:
        return next(self.head.parameters()).device

    def tokenize(self, texts: Sequence[str], text_pairs: Sequence[str] | None = None) -> dict[str, torch.Tensor]:
        return self.encoder.tokenizer(
            list(texts), None if text_pairs is None else list(text_pairs), padding=True, truncation=True,
            max_length=self.max_length, return_tensors="pt",
        )

    def _check_pairs(self, texts: Sequence[str], text_pairs: Sequence[str] | None) -> None:
        if self.text_pairs and text_pairs is None:
            raise ModelFolderError("this classifier was trained on text pairs (data.text_pair_column): pass "
                                   "text_pairs=, one second text per text")
        if not self.text_pairs and text_pairs is not None:
            raise ModelFolderError("this classifier was trained on single texts; drop text_pairs=")
        if text_pairs is not None and len(text_pairs) != len(texts):
            raise ModelFolderError(f"{len(texts)} texts but {len(text_pairs)} text_pairs; give one pair per text")

    @torch.no_grad()
    def predict_logits(self, texts: str | Sequence[str], text_pairs: str | Sequence[str] | None = None, *,
                       batch_size: int = 64) -> np.ndarray:
        """Logits, shape (len(texts), num_labels), or (num_labels,) for one string."""
        if isinstance(texts, str):
            pairs = None if text_pairs is None else [text_pairs] if isinstance(text_pairs, str) else text_pairs
            return self.predict_logits([texts], pairs, batch_size=batch_size)[0]
        self._check_pairs(texts, text_pairs)
        was_training = self.training
        self.eval()

        def logits(features: dict[str, torch.Tensor]) -> np.ndarray:
            features = {k: v.to(self.device) for k, v in features.items()}
            return self(**features)["logits"].float().cpu().numpy()

        out = self.logits_in_length_order(logits, texts, text_pairs, batch_size=batch_size)
        self.train(was_training)
        return out

    def logits_in_length_order(self, logits: Any, texts: Sequence[str], text_pairs: Sequence[str] | None = None, *,
                               batch_size: int = 64) -> np.ndarray:
        """``logits(features) -> (B, C)`` over batches of the texts sorted by length (each batch pads to similar
        lengths), put back in input order: (N, C). PyTorch and the ONNX graph both predict through it."""
        texts = list(texts)
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]) + (len(text_pairs[i]) if text_pairs else 0))
        out = np.zeros((len(texts), len(self.label_names)), dtype=np.float32)
        for start in range(0, len(order), batch_size):
            idx = order[start : start + batch_size]
            pairs = None if text_pairs is None else [text_pairs[i] for i in idx]
            out[idx] = logits(self.tokenize([texts[i] for i in idx], pairs))
        return out

    def predict_proba(self, texts: str | Sequence[str], text_pairs: str | Sequence[str] | None = None, *,
                      batch_size: int = 64) -> np.ndarray:
        """Class probabilities, shape (len(texts), num_labels) with columns in ``labels`` order, or (num_labels,)
        for one string. ``text_pairs``: the second texts, for a classifier trained on pairs."""
        logits = torch.from_numpy(np.asarray(self.predict_logits(texts, text_pairs, batch_size=batch_size)))
        return torch.softmax(logits, dim=-1).numpy()

    def predict(self, texts: str | Sequence[str], text_pairs: str | Sequence[str] | None = None, *,
                batch_size: int = 64) -> str | list[str]:
        """The predicted label of one string, or a list of labels, one per text of a list. ``text_pairs``: the
        second texts, for a classifier trained on pairs."""
        if isinstance(texts, str):
            return self.predict([texts], None if text_pairs is None else [text_pairs], batch_size=batch_size)[0]
        if not len(texts):
            return []
        ids = self.predict_logits(texts, text_pairs, batch_size=batch_size).argmax(axis=-1)
        return [self.label_names[i] for i in ids]

    # -- persistence ----------------------------------------------------------------------------------------------
    def _metadata(self) -> dict[str, Any]:
        return {"format_version": FORMAT_VERSION, "label_names": self.label_names,
                "label_separator": self.label_separator, "max_length": self.max_length, "head": self.head.shape,
                "text_pairs": self.text_pairs, "training": self.training_info or None}

    def _write(self, folder: Path, *, flat: bool) -> None:
        """The files of a classifier: the encoder (in ``encoder/``, or flat beside the head), head and metadata."""
        self.encoder.save(str(folder if flat else folder / "encoder"), safe_serialization=True)
        save_file({k: v.detach().cpu().contiguous() for k, v in self.head.state_dict().items()},
                  str(folder / HEAD_FILE))
        (folder / CLASSIFIER_FILE).write_text(json.dumps(self._metadata(), indent=2) + "\n", encoding="utf-8")

    def save(self, folder: str | Path) -> None:
        """Write the classifier to ``folder`` (a run's ``model/`` layout) atomically: a kill never leaves a
        half-written model."""
        folder = Path(folder)
        tmp = atomic_directory(folder)
        self._write(tmp, flat=False)
        commit_directory(tmp, folder)

    def _save_pretrained(self, save_directory: Path) -> None:
        """``save_pretrained``/``push_to_hub``: a sentence-transformers folder plus head, metadata and model card.
        A folder holding anything but a phasefit classifier is refused (nothing phasefit did not write is
        replaced)."""
        from phasefit.models.card import model_card

        save_directory = Path(save_directory)
        foreign = [p.name for p in save_directory.iterdir()] if save_directory.is_dir() else []
        if foreign and not (save_directory / CLASSIFIER_FILE).is_file():
            raise ModelFolderError(f"{save_directory} holds files phasefit did not write ({', '.join(sorted(foreign)[:5])}"
                                   "); save the classifier to a new or empty folder")
        tmp = atomic_directory(save_directory)
        self._write(tmp, flat=True)
        (tmp / "README.md").write_text(model_card(self._metadata()), encoding="utf-8")
        commit_directory(tmp, save_directory)

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path: str | Path, **kwargs: Any) -> PhaseFitClassifier:
        """Load a classifier: a local folder (``save_pretrained``'s, an export, a run's ``model/`` or the run
        directory itself) or a Hub repository id (downloaded through ``huggingface_hub``; cached thereafter).

        Example:
            >>> clf = PhaseFitClassifier.from_pretrained("runs/x")   # doctest: +SKIP
        """
        if Path(pretrained_model_name_or_path).is_dir():
            return cls.load(pretrained_model_name_or_path, device=kwargs.get("device"))
        return super().from_pretrained(pretrained_model_name_or_path, **kwargs)

    @classmethod
    def _from_pretrained(cls, *, model_id: str, revision: str | None = None, cache_dir: str | Path | None = None,
                         force_download: bool = False, local_files_only: bool = False,
                         token: str | bool | None = None, **model_kwargs: Any) -> PhaseFitClassifier:
        folder = Path(model_id)
        if not folder.is_dir():
            from huggingface_hub import snapshot_download

            folder = Path(snapshot_download(repo_id=model_id, revision=revision, cache_dir=cache_dir,
                                            force_download=force_download, local_files_only=local_files_only,
                                            token=token))
        return cls.load(folder, device=model_kwargs.get("device"))

    @classmethod
    def load(cls, folder: str | Path, *, device: str | None = None) -> PhaseFitClassifier:
        """Load a classifier from a folder: ``save_pretrained``'s or an export (flat), a run's ``model/``, or a run
        directory itself (safetensors only, no remote code)."""
        from sentence_transformers import SentenceTransformer

        folder = Path(folder)
        if not (folder / CLASSIFIER_FILE).is_file() and (folder / "model" / CLASSIFIER_FILE).is_file():
            folder = folder / "model"  # a run directory
        meta_path = folder / CLASSIFIER_FILE
        if not meta_path.is_file():
            raise ModelFolderError(f"{folder} is not a saved phasefit classifier (no {CLASSIFIER_FILE}); pass a "
                                   "folder written by save_pretrained, phasefit export, or a finished run")
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        # A run's model/ keeps the encoder in encoder/; save_pretrained and an export keep it flat beside the head.
        encoder_dir = folder / "encoder" if (folder / "encoder").is_dir() else folder
        encoder = SentenceTransformer(str(encoder_dir), device=device, local_files_only=True,
                                      trust_remote_code=False, model_kwargs={"use_safetensors": True})
        shape = meta["head"]
        head = MLPHead(shape["in_dim"], shape["hidden"], shape["num_labels"], dropout=shape["dropout"],
                       activation=shape["activation"])
        head.load_state_dict(load_file(str(folder / HEAD_FILE)))
        model = cls(encoder, head, meta["label_names"], max_length=meta["max_length"],
                    label_separator=meta.get("label_separator"), training_info=meta.get("training"),
                    text_pairs=meta.get("text_pairs", False))
        model.to(encoder.device)
        return model.eval()
