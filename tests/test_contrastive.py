"""SCL / SupCon / SimCLR losses against naive double loops (values and gradients), and the label-aware sampler."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from phasefit.losses.contrastive import SupConLoss, supervised_contrastive_loss
from phasefit.training.sampling import LabelAwareSampler


def naive_scl(embeddings: torch.Tensor, labels: list[int], tau: float) -> torch.Tensor:
    """Gunel et al. eq. 2, written as the paper's sums (one anchor at a time)."""
    z = [e / e.norm() for e in embeddings]
    n = len(z)
    total = embeddings.sum() * 0.0
    anchors = 0
    for i in range(n):
        positives = [j for j in range(n) if j != i and labels[j] == labels[i]]
        if not positives:
            continue
        anchors += 1
        denominator = sum(torch.exp(z[i] @ z[k] / tau) for k in range(n) if k != i)
        term = sum(torch.log(torch.exp(z[i] @ z[j] / tau) / denominator) for j in positives)
        total = total - term / len(positives)
    return total / anchors


@pytest.mark.parametrize("tau", [0.1, 0.3, 0.9])
def test_scl_matches_naive_loop_with_gradients(tau: float) -> None:
    torch.manual_seed(0)
    labels = [0, 1, 0, 2, 1, 0, 3]  # class 3 has no positive: skipped as an anchor, still a negative
    x1 = torch.randn(7, 5, dtype=torch.float64, requires_grad=True)
    x2 = x1.detach().clone().requires_grad_(True)
    fast = supervised_contrastive_loss(x1, torch.tensor(labels), tau)
    slow = naive_scl(x2, labels, tau)
    assert fast.item() == pytest.approx(slow.item(), rel=1e-10)
    fast.backward()
    slow.backward()
    assert torch.allclose(x1.grad, x2.grad, atol=1e-10)


def test_no_positive_in_batch_gives_zero_with_gradient_path() -> None:
    x = torch.randn(3, 4, requires_grad=True)
    loss = supervised_contrastive_loss(x, torch.tensor([0, 1, 2]), 0.3)
    assert loss.item() == 0.0
    loss.backward()
    assert x.grad is not None


def test_supcon_views_equal_flattened_scl() -> None:
    torch.manual_seed(1)
    features = torch.randn(4, 2, 6, dtype=torch.float64)  # (B, V, D)
    labels = torch.tensor([0, 1, 0, 1])
    got = SupConLoss(0.2)(features, labels)
    flat_labels = [0, 0, 1, 1, 0, 0, 1, 1]  # views of one example are adjacent
    assert got.item() == pytest.approx(naive_scl(features.reshape(8, 6), flat_labels, 0.2).item(), rel=1e-10)


def test_simclr_is_nt_xent_of_two_views() -> None:
    """Chen et al. eq. 2-4: l(i, j) = -log(exp(sim_ij/tau) / sum_{k != i} exp(sim_ik/tau)), averaged over 2N."""
    torch.manual_seed(2)
    b, tau = 5, 0.5
    features = torch.randn(b, 2, 8, dtype=torch.float64)
    got = SupConLoss(tau)(features, None)
    z = torch.nn.functional.normalize(features.reshape(2 * b, 8), dim=-1)
    total = 0.0
    for i in range(2 * b):
        j = i + 1 if i % 2 == 0 else i - 1
        denominator = sum(math.exp(float(z[i] @ z[k]) / tau) for k in range(2 * b) if k != i)
        total += -math.log(math.exp(float(z[i] @ z[j]) / tau) / denominator)
    assert got.item() == pytest.approx(total / (2 * b), rel=1e-10)


def test_label_aware_sampler_puts_pairs_in_every_batch() -> None:
    labels = [0] * 7 + [1] * 5 + [2] * 2 + [3] * 9 + [4]  # odd classes and a singleton
    sampler = LabelAwareSampler(labels, seed=0)
    first = list(sampler)
    second = list(sampler)
    assert len(first) == len(second) == len(sampler)
    assert first != second  # reshuffled every epoch
    assert set(first) == set(range(len(labels)))  # every example appears
    for order in (first, second):
        for start in range(0, len(order), 8):  # even batch size: pairs are never split
            batch = [labels[i] for i in order[start : start + 8]]
            for label in set(batch) - {4}:
                assert batch.count(label) >= 2, (batch, label)
    assert list(LabelAwareSampler(labels, seed=0)) == first  # seeded


def test_label_aware_sampler_is_deterministic_and_covers_classes() -> None:
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 10, size=101).tolist()
    order = list(LabelAwareSampler(labels, seed=3))
    assert sorted(set(order)) == list(range(101))
    assert list(LabelAwareSampler(labels, seed=3)) == order  # same seed, same order
    assert list(LabelAwareSampler(labels, seed=4)) != order  # another seed, another order
    # A resumed run sets the epoch before iterating and must see what the uninterrupted run saw in that epoch.
    uninterrupted = LabelAwareSampler(labels, seed=3)
    epochs = [list(uninterrupted) for _ in range(3)]
    resumed = LabelAwareSampler(labels, seed=3)
    resumed.set_epoch(2)
    assert list(resumed) == epochs[2] and epochs[1] != epochs[2]
