"""Label-aware batch order for in-batch supervised contrastive losses (SCL, SupCon).

With random batches a class can sit alone in its batch and then has no positive, so its anchors add nothing to
the contrastive term. :class:`LabelAwareSampler` orders each epoch as shuffled *pairs of same-class examples*;
with an even batch size every batch then holds at least two examples of each class it contains.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
from torch.utils.data import Sampler


class LabelAwareSampler(Sampler[int]):
    """Indices in same-class pairs, pairs shuffled, reshuffled every epoch (seeded).

    A class with an odd count repeats one of its examples to complete its last pair; one-example classes are
    paired with each other (they can have no positive anyway). The epoch length is therefore fixed:
    ``len(labels)`` plus one per odd class of two or more examples (plus one if the singletons are odd).
    """

    def __init__(self, labels: Sequence[int], seed: int):
        self.labels = np.asarray(labels)
        self.seed = seed
        self.epoch = 0
        self._length = len(self._order(np.random.default_rng(seed)))

    def _order(self, rng: np.random.Generator) -> list[int]:
        pairs: list[list[int]] = []
        singletons: list[int] = []
        for label in np.unique(self.labels):
            members = rng.permutation(np.flatnonzero(self.labels == label)).tolist()
            if len(members) == 1:
                singletons.extend(members)
                continue
            if len(members) % 2:
                members.append(int(rng.choice(members[:-1])))
            pairs.extend(members[i : i + 2] for i in range(0, len(members), 2))
        if len(singletons) % 2:
            singletons.append(singletons[0])
        pairs.extend(singletons[i : i + 2] for i in range(0, len(singletons), 2))
        return [index for k in rng.permutation(len(pairs)) for index in pairs[k]]

    def set_epoch(self, epoch: int) -> None:
        """Called by the Trainer before each epoch, so a resumed run draws the same order as an uninterrupted one."""
        self.epoch = epoch

    def __iter__(self) -> Iterator[int]:
        rng = np.random.default_rng([self.seed, self.epoch])
        self.epoch += 1
        return iter(self._order(rng))

    def __len__(self) -> int:
        return self._length


class EpochSeededSampler(Sampler[int]):
    """A random permutation per epoch from ``(seed, epoch)``; ``epoch`` is also what per-example noise is drawn
    from (see :class:`phasefit.phases.staged.DAECollator`), so noise and order survive a resume bit for bit."""

    def __init__(self, size: int, seed: int):
        self.size = size
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self) -> Iterator[int]:
        order = np.random.default_rng([self.seed, self.epoch]).permutation(self.size).tolist()
        return iter(order)

    def __len__(self) -> int:
        return self.size
