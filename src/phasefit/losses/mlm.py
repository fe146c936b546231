"""Masked-language-model adaptation of the encoder (the ``mlm`` phase, an alternative phase 1 to DAE).

BERT's pre-training objective on the task's own texts: 15% of the non-special tokens are chosen, 80% of those
replaced by ``[MASK]``, 10% by a random token, 10% kept, and the model predicts the originals
(``transformers.DataCollatorForLanguageModeling`` draws the masks). The masked-LM model is built from the
encoder's config with the encoder's own Transformer inside it, so training updates the sentence encoder in place;
its LM head is the checkpoint's own where it has one (BERT/RoBERTa pre-training checkpoints), else random with
the decoder tied to the word embeddings (all-MiniLM-L6-v2 ships without a head).
"""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from phasefit.errors import PhasefitError
from phasefit.losses.dae import load_pretrained_lm_head, transformer_of

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer


class MaskedLMUnavailableError(PhasefitError, ValueError):
    """The encoder's architecture has no masked-LM class, so the mlm phase cannot train it."""


def check_masked_lm_support(encoder: SentenceTransformer) -> None:
    """Fail before any training when the encoder's architecture has no masked-LM class."""
    from transformers import MODEL_FOR_MASKED_LM_MAPPING

    config = transformer_of(encoder).config
    if type(config) not in MODEL_FOR_MASKED_LM_MAPPING:
        raise MaskedLMUnavailableError(
            f"the mlm phase needs a masked-LM class of the encoder's architecture, and model type "
            f"{config.model_type!r} has none; use a recipe with dae as phase 1 (3phase) or none (cl-ft)")


class MaskedLanguageModelLoss(nn.Module):
    """Masked-LM cross-entropy of the encoder's Transformer with an LM head on top.

    ``forward(batch)`` takes the collator's ``input_ids``/``attention_mask``/``labels`` (``-100`` where nothing is
    to be predicted) and returns the mean loss over the masked tokens. ``head_source`` says whether the head came
    from the checkpoint ("pretrained") or started random.
    """

    def __init__(self, encoder: SentenceTransformer):
        super().__init__()
        from transformers import AutoModelForMaskedLM

        check_masked_lm_support(encoder)
        transformer = transformer_of(encoder)
        model = AutoModelForMaskedLM.from_config(copy.deepcopy(transformer.config))
        setattr(model, model.base_model_prefix, transformer)  # the encoder's own weights, trained in place
        model.to(next(transformer.parameters()).device)
        if getattr(transformer.config, "tie_word_embeddings", True):
            output = model.get_output_embeddings()
            if output is not None:
                output.weight = transformer.get_input_embeddings().weight
        self.head_source = "pretrained" if load_pretrained_lm_head(model, transformer) else "random"
        self.model = model

    def forward(self, batch: dict[str, Any]) -> torch.Tensor:
        """The mean cross-entropy over the masked tokens of the *global* batch: with P processes each one returns
        P x (its tokens' loss sum) / (all processes' masked tokens), so the gradient average over processes is the
        single-process gradient even though every process masks a different number of tokens."""
        from phasefit.distributed import num_processes, sum_over_processes

        labels = batch["labels"]
        logits = self.model(**{k: v for k, v in batch.items() if k != "labels"}).logits  # (B, T, V)
        total = nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), labels.reshape(-1),
                                            ignore_index=-100, reduction="sum")
        masked = sum_over_processes((labels != -100).sum()).clamp(min=1)
        return total * num_processes() / masked


class MaskingCollator:
    """Pads token dicts and masks them as ``DataCollatorForLanguageModeling`` does (its rule, its special-token and
    padding handling); each example's mask is drawn from a generator seeded by (seed, epoch, example), so it is
    fresh every epoch, the same after a resume, and the same whatever batch or process the example lands in.
    ``epoch_source`` is the epoch-seeded sampler."""

    def __init__(self, tokenizer: Any, probability: float, seed: int, epoch_source: Any = None):
        from transformers import DataCollatorForLanguageModeling

        self.inner = DataCollatorForLanguageModeling(tokenizer, mlm_probability=probability)
        self.tokenizer = tokenizer
        self.seed = seed
        self.epoch_source = epoch_source

    def __call__(self, items: list[dict[str, Any]]) -> dict[str, Any]:
        epoch = getattr(self.epoch_source, "epoch", 0)
        batch = dict(self.tokenizer.pad([{k: v for k, v in item.items() if k != "index"} for item in items],
                                        return_tensors="pt"))
        labels = torch.full_like(batch["input_ids"], -100)
        right = self.tokenizer.padding_side == "right"
        for row, item in enumerate(items):  # each example masked on its own, unpadded tokens
            ids = torch.tensor([item["input_ids"]])
            special = torch.tensor([self.tokenizer.get_special_tokens_mask(item["input_ids"],
                                                                           already_has_special_tokens=True)],
                                   dtype=torch.bool)
            state = np.random.SeedSequence([self.seed, epoch, item["index"]]).generate_state(1, np.uint64)[0]
            self.inner.generator = torch.Generator().manual_seed(int(state))
            masked, target = self.inner.torch_mask_tokens(ids, special)
            span = slice(0, ids.shape[1]) if right else slice(batch["input_ids"].shape[1] - ids.shape[1], None)
            batch["input_ids"][row, span] = masked[0]
            labels[row, span] = target[0]
        batch["labels"] = labels
        return {"mlm": batch}
