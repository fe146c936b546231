"""TSDAE denoising auto-encoder loss (paper 000 §3.1, eq. 1; Wang et al. 2021).

The sentence encoder embeds the *noisy* text into one vector; a Transformer decoder of the encoder's own
architecture, with cross-attention to that single vector, reconstructs the *clean* text token by token:

    L_DAE = - sum_t log P(x_t | x_<t, s),   s = encoder(noise(x))

Why not sentence-transformers' ``DenoisingAutoEncoderLoss``: with tied weights it loads the decoder from the
encoder's *original path* and ties the encoder to it, silently discarding any in-memory training of the encoder
(e.g. after another phase). Here the decoder is built from the encoder's config and its shared weights are the
encoder's own parameters, so tying never resets anything.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import torch

from phasefit.errors import PhasefitError
from torch import nn

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer


class DecoderUnavailableError(PhasefitError, ValueError):
    """The encoder's architecture has no causal-LM (decoder) class, so DAE cannot train it."""


def transformer_of(encoder: SentenceTransformer) -> nn.Module:
    """The Hugging Face model inside the sentence-transformers encoder."""
    first = encoder[0]
    for attr in ("auto_model", "model"):
        model = getattr(first, attr, None)
        if isinstance(model, nn.Module):
            return model
    raise DecoderUnavailableError(f"the first module of the encoder ({type(first).__name__}) is not a Transformer")


_NO_DECODER = (
    "DAE needs a decoder of the encoder's architecture, and model type {model_type!r} has no causal-LM class with "
    "cross-attention (MPNet is the known case). Supported families include BERT, MiniLM (BERT), RoBERTa and "
    "ELECTRA; use one of them or a recipe without the dae phase (e.g. cl-ft)."
)


def check_decoder_support(encoder: SentenceTransformer) -> None:
    """Fail before any training when the encoder's architecture has no causal-LM (decoder) class."""
    from transformers import MODEL_FOR_CAUSAL_LM_MAPPING

    config = transformer_of(encoder).config
    if type(config) not in MODEL_FOR_CAUSAL_LM_MAPPING:
        raise DecoderUnavailableError(_NO_DECODER.format(model_type=config.model_type))


def build_decoder(encoder: SentenceTransformer, *, tie: bool = True) -> nn.Module:
    """A causal-LM decoder with cross-attention, of the encoder's architecture, tied to the encoder's weights."""
    from transformers import AutoModelForCausalLM

    transformer = transformer_of(encoder)
    config = copy.deepcopy(transformer.config)
    config.is_decoder = True
    config.add_cross_attention = True
    try:
        decoder = AutoModelForCausalLM.from_config(config)
    except (ValueError, KeyError) as err:
        raise DecoderUnavailableError(_NO_DECODER.format(model_type=config.model_type)) from err
    base = getattr(decoder, decoder.base_model_prefix)
    decoder.to(next(transformer.parameters()).device)
    if tie:
        # Point each decoder parameter with an encoder twin at the encoder's tensor (shared storage).
        encoder_params = dict(transformer.named_parameters())
        modules = dict(base.named_modules())
        for name, param in list(base.named_parameters()):
            twin = encoder_params.get(name)
            if twin is not None and twin.shape == param.shape:
                module_name, _, attr = name.rpartition(".")
                setattr(modules[module_name], attr, twin)
    else:
        base.load_state_dict(transformer.state_dict(), strict=False)
    if getattr(config, "tie_word_embeddings", True):
        output = decoder.get_output_embeddings()
        if output is not None:
            output.weight = decoder.get_input_embeddings().weight  # LM head shares the (encoder's) embeddings
    return decoder


def load_pretrained_lm_head(decoder: nn.Module, transformer: nn.Module) -> bool:
    """Copy the checkpoint's language-model head into the decoder when the encoder's checkpoint has one.

    Masked-LM checkpoints (roberta-base: ``lm_head.*``; BERT pre-training checkpoints: ``cls.predictions.*``) name
    their head as the causal-LM classes do, so the decoder's head parameters (those outside its base model) are
    looked up by name in the checkpoint's safetensors file. A sentence-transformers checkpoint such as
    all-MiniLM-L6-v2 has no head: the decoder's head then starts random, as TSDAE's does. Returns whether any head
    weight was loaded.
    """
    from pathlib import Path

    from safetensors import safe_open

    source = Path(str(getattr(transformer.config, "_name_or_path", "") or ""))
    files = [source / "model.safetensors", source / "0_Transformer" / "model.safetensors"]
    weights = next((f for f in files if str(source) and f.is_file()), None)
    if weights is None:
        return False
    prefix = decoder.base_model_prefix + "."
    head = {name: param for name, param in decoder.named_parameters() if not name.startswith(prefix)}
    loaded = 0
    with safe_open(str(weights), framework="pt") as handle:
        available = set(handle.keys())
        for name, param in head.items():
            if name in available:
                tensor = handle.get_tensor(name)
                if tensor.shape == param.shape:
                    with torch.no_grad():
                        param.copy_(tensor.to(param.dtype))
                    loaded += 1
    return loaded > 0


class DenoisingAutoEncoderLoss(nn.Module):
    """Reconstruction cross-entropy of the clean text from the noisy text's sentence vector.

    The sentence-transformers loss contract (``forward(sentence_features, labels)``, ``get_config_dict``,
    ``citation``), so it also trains in ``SentenceTransformerTrainer``: ``sentence_features`` is
    ``[source, target]``, the tokenised noisy and clean texts, as in sentence-transformers' own
    ``DenoisingAutoEncoderLoss``; ``labels`` is unused.

    Args:
        model: the sentence-transformers model being trained (its output vector is the bottleneck).
        pad_token_id: ignored in the loss.
        tie: share the decoder's weights with the encoder (TSDAE default; halves the parameters).
    """

    citation = """@inproceedings{wang-2021-TSDAE,
    title = "TSDAE: Using Transformer-based Sequential Denoising Auto-Encoderfor Unsupervised Sentence Embedding Learning",
    author = "Wang, Kexin and Reimers, Nils and Gurevych, Iryna",
    booktitle = "Findings of the Association for Computational Linguistics: EMNLP 2021",
    year = "2021",
    pages = "671--688",
}"""

    def __init__(self, model: SentenceTransformer, *, pad_token_id: int, tie: bool = True):
        super().__init__()
        self.model = model
        self.decoder = build_decoder(model, tie=tie)
        pretrained = load_pretrained_lm_head(self.decoder, transformer_of(model))
        self.lm_head_source = "pretrained" if pretrained else "random"  # recorded with the phase
        self.pad_token_id = pad_token_id
        self.tie = tie

    def get_config_dict(self) -> dict[str, Any]:
        return {"tie": self.tie, "pad_token_id": self.pad_token_id, "lm_head": self.lm_head_source}

    def forward(self, sentence_features: Sequence[dict[str, torch.Tensor]],
                labels: torch.Tensor | None = None) -> torch.Tensor:
        source, target = sentence_features
        sentence = self.model(dict(source))["sentence_embedding"]  # (B, D)
        ids = target["input_ids"]  # (B, T)
        logits = self.decoder(
            input_ids=ids[:, :-1],
            attention_mask=target["attention_mask"][:, :-1],
            encoder_hidden_states=sentence[:, None],  # (B, 1, D): attend to the single sentence vector
            encoder_attention_mask=torch.ones(ids.shape[0], 1, dtype=torch.long, device=ids.device),
            use_cache=False,
        ).logits  # (B, T-1, V)
        return nn.functional.cross_entropy(
            logits.reshape(-1, logits.shape[-1]), ids[:, 1:].reshape(-1), ignore_index=self.pad_token_id
        )
