"""Paired comparisons over seeds (or splits): the one place that computes a difference and its p-values.

Two methods run on the same seeds share the split and the initialisation, so their per-seed difference is the
honest measure; its spread, not the spread of either method alone, says whether the difference is beyond noise.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


_DECIMALS = 9  # far below any score's resolution (one example in a billion), far above float noise


@dataclass(frozen=True)
class Paired:
    n: int  # shared seeds
    mean: float  # mean of a - b
    std: float | None  # sample std of the differences (None below 2 pairs)
    p_ttest: float | None  # paired t-test (None below 2 pairs or with identical differences)
    p_wilcoxon: float | None  # Wilcoxon signed-rank (None below 2 pairs or when every difference is 0)

    def reading(self, alpha: float = 0.05) -> str:
        if self.n < 3:
            return "too few seeds to judge (fewer than 3)"
        if self.p_ttest is None:
            return "identical differences" if self.mean == 0 or self.std == 0 else "cannot judge"
        if self.p_ttest < alpha:
            return "better" if self.mean > 0 else "worse"
        return "within seed noise"


def paired(a: Mapping[Any, float], b: Mapping[Any, float], *, scale: float = 1.0) -> Paired | None:
    """``a - b`` over the keys (seeds, split ids) both have, times ``scale``; None when they share none.

    Each difference is rounded to 9 decimals before scaling, so differences that are equal on paper (3 of 66 test
    examples on every split) are equal as floats: otherwise their last-bit noise gives a t-test p near 0 instead of
    "identical differences", and breaks the Wilcoxon test's ties at random.
    """
    from scipy.stats import ttest_1samp, wilcoxon

    keys = [key for key in a if key in b]
    if not keys:
        return None
    diffs = [round(a[key] - b[key], _DECIMALS) * scale for key in keys]
    std = statistics.stdev(diffs) if len(diffs) > 1 else None
    p_t = p_w = None
    if len(diffs) > 1 and len(set(diffs)) > 1:
        p_t = float(ttest_1samp(diffs, 0.0).pvalue)
    if len(diffs) > 1 and any(d != 0 for d in diffs):
        p_w = float(wilcoxon(diffs).pvalue)
    return Paired(len(keys), statistics.fmean(diffs), std, p_t, p_w)
