"""Siamese cosine-similarity regression (paper 000 §3.2, eq. 3).

    L_CL = (1/N) sum_(u,v) (label_uv - cos(u, v))^2

with label_uv = 1 for the same class, 0 otherwise, or the fraction of matching levels of hierarchical labels.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import nn

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer


class CosineMSELoss(nn.Module):
    """MSE between the pair target and the cosine of the two sentence embeddings.

    Inputs: ``a`` and ``b`` (tokenised first and second texts of each pair) and ``labels`` (targets in [0, 1]).
    """

    def __init__(self, encoder: SentenceTransformer):
        super().__init__()
        self.encoder = encoder

    def forward(self, a: dict[str, torch.Tensor], b: dict[str, torch.Tensor], labels: torch.Tensor) -> torch.Tensor:
        u = self.encoder(dict(a))["sentence_embedding"]  # (B, D)
        v = self.encoder(dict(b))["sentence_embedding"]  # (B, D)
        cosine = nn.functional.cosine_similarity(u, v, dim=-1)  # (B,)
        return nn.functional.mse_loss(cosine, labels.to(cosine.dtype))
