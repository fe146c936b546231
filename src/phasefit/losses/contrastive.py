"""In-batch contrastive losses: supervised contrastive (SCL / SupCon) and SimCLR's NT-Xent.

One formula serves all three. For l2-normalised embeddings z_1..z_M in a batch and anchor i with positives P(i):

    L = (1/M') sum_i  -1/|P(i)| sum_{p in P(i)} log( exp(z_i . z_p / tau) / sum_{a != i} exp(z_i . z_a / tau) )

averaged over the M' anchors that have at least one positive.

* Gunel et al. 2021, eq. 2 (paper 002, ``scl`` recipe): one view per example, P(i) = other examples of i's class.
* Khosla et al. 2020 SupCon, eq. 1 (paper 003, ``supcon`` phase): V views per example, P(i) = every other view
  of every example of i's class.
* Chen et al. 2020 SimCLR / NT-Xent, eq. 2-4 (paper 003, ``simclr`` phase): V = 2 dropout views, P(i) = the other
  view of the same example (labels = example index).
"""

from __future__ import annotations

import torch
from torch import nn


def supervised_contrastive_loss(embeddings: torch.Tensor, labels: torch.Tensor, temperature: float,
                                reduction: str = "mean") -> torch.Tensor:
    """The formula above for ``embeddings`` (M, D) (normalised here) and ``labels`` (M,).

    ``reduction="mean"`` averages over the anchors that have a positive (the formula above); ``"sum"`` sums over
    them, as Gunel et al. eq. 2 writes L_SCL (while their CE, eq. 1, is a mean), so that lambda and tau mean what
    they mean in paper 002: with a sum the SCL term grows with the batch size. Anchors without a positive in the
    batch are skipped; a batch with no positive pair at all gives 0 (with a gradient path, so the caller's
    backward still works).
    """
    if reduction not in {"mean", "sum"}:
        raise ValueError(f"reduction must be 'mean' or 'sum', got {reduction!r}")
    z = nn.functional.normalize(embeddings, dim=-1)
    logits = z @ z.T / temperature  # (M, M)
    m = z.shape[0]
    self_mask = torch.eye(m, dtype=torch.bool, device=z.device)
    logits = logits.masked_fill(self_mask, float("-inf"))  # a != i in the denominator
    log_prob = logits - torch.logsumexp(logits, dim=1, keepdim=True)  # (M, M)
    positives = (labels[:, None] == labels[None, :]) & ~self_mask  # (M, M)
    counts = positives.sum(dim=1)  # |P(i)|
    has_positive = counts > 0
    if not bool(has_positive.any()):
        return embeddings.sum() * 0.0
    per_anchor = -(log_prob.masked_fill(~positives, 0.0).sum(dim=1)[has_positive] / counts[has_positive])
    return per_anchor.sum() if reduction == "sum" else per_anchor.mean()


class SupConLoss(nn.Module):
    """Supervised contrastive loss over views (Khosla et al. 2020 eq. 1; Gunel et al. 2021 eq. 2 with one view).

    Args:
        temperature: tau (paper 002 searches 0.1-0.9, best 0.3 in few-shot; paper 003 uses 0.1-0.5).

    Inputs: ``features`` (B, V, D) — V views of each of B examples — and ``labels`` (B,). With ``labels=None`` the
    loss is SimCLR's NT-Xent: each example is its own class, so the only positives are its other views.
    """

    def __init__(self, temperature: float = 0.3):
        super().__init__()
        self.temperature = temperature

    def forward(self, features: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        from phasefit.distributed import gather_with_grad, rank

        b, v, d = features.shape
        if labels is None:  # each example its own class; numbered globally when processes share the batch
            labels = torch.arange(b, device=features.device) + rank() * b
        # With several processes the negatives are the global batch's (the gradient reaches each process's rows).
        flat = gather_with_grad(features.reshape(b * v, d))  # (B*V, D), views of one example adjacent
        return supervised_contrastive_loss(flat, gather_with_grad(labels.repeat_interleave(v)), self.temperature)
