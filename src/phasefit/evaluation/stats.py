"""Paired comparisons over seeds (or splits): the one place that computes a difference and its p-values.

Two methods run on the same seeds share the split and the initialisation, so their per-seed difference is the
honest measure; its spread, not the spread of either method alone, says whether the difference is beyond noise.

Which test reads that spread depends on how the splits were drawn:

- a fixed test set (or disjoint ones), training rows re-drawn per split: the differences are independent given the
  test set, and the plain paired t-test (or the Wilcoxon signed-rank test) applies;
- splits that reshuffle one pool of rows (a row trains in one split and is tested in the next): the differences
  are correlated, the plain t-test's variance is too small and its p-values too low. The corrected resampled
  t-test of Nadeau & Bengio (2003) inflates the variance for that: ``paired(..., test_train_ratio=n_test/n_train)``.

A p-value is reported only from ``MIN_PAIRS`` pairs up; a family of them is corrected together with ``holm``.

References:
    Nadeau, C. & Bengio, Y. (2003). Inference for the Generalization Error. Machine Learning 52, 239-281.
    Holm, S. (1979). A Simple Sequentially Rejective Multiple Test Procedure. Scand. J. Statistics 6, 65-70.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any


_DECIMALS = 9  # far below any score's resolution (one example in a billion), far above float noise
MIN_PAIRS = 3  # below this no test is run: two pairs give a t-test with one degree of freedom, Wilcoxon p >= 0.5


@dataclass(frozen=True)
class Paired:
    n: int  # shared seeds
    mean: float  # mean of a - b
    std: float | None  # sample std of the differences (None below 2 pairs)
    p_ttest: float | None  # paired t-test (None below MIN_PAIRS pairs or with identical differences)
    p_wilcoxon: float | None  # Wilcoxon signed-rank (None below MIN_PAIRS pairs or when every difference is 0)
    # Nadeau-Bengio corrected resampled t-test, when the caller gave the splits' test/train ratio (else None)
    p_corrected: float | None = None
    test_train_ratio: float | None = None  # the ratio the corrected test used; None: the splits do not overlap

    @property
    def p(self) -> float | None:
        """The p-value of the test the splits call for: corrected when a test/train ratio was given, else plain."""
        return self.p_corrected if self.test_train_ratio is not None else self.p_ttest

    @property
    def test(self) -> str:
        return "corrected t" if self.test_train_ratio is not None else "t"

    def reading(self, alpha: float = 0.05) -> str:
        if self.n < MIN_PAIRS:
            return "too few seeds to judge (fewer than 3)"
        if self.p is None:
            return "identical differences" if self.mean == 0 or self.std == 0 else "cannot judge"
        if self.p < alpha:
            return "better" if self.mean > 0 else "worse"
        return "within seed noise"


def paired(a: Mapping[Any, float], b: Mapping[Any, float], *, scale: float = 1.0,
           test_train_ratio: float | None = None) -> Paired | None:
    """``a - b`` over the keys (seeds, split ids) both have, times ``scale``; None when they share none.

    Args:
        a, b: scores by seed or split id.
        scale: multiplies the differences (100: fractions to points).
        test_train_ratio: n_test / n_train of splits that reshuffle one pool of rows; given, ``p_corrected`` holds
            the Nadeau-Bengio corrected t-test and ``p`` reads it. Leave it None for fixed or disjoint test sets.

    Each difference is rounded to 9 decimals before scaling, so differences that are equal on paper (3 of 66 test
    examples on every split) are equal as floats: otherwise their last-bit noise gives a t-test p near 0 instead of
    "identical differences", and breaks the Wilcoxon test's ties at random. Below ``MIN_PAIRS`` pairs every
    p-value is None.
    """
    from scipy.stats import ttest_1samp, wilcoxon

    keys = [key for key in a if key in b]
    if not keys:
        return None
    diffs = [round(a[key] - b[key], _DECIMALS) * scale for key in keys]
    std = statistics.stdev(diffs) if len(diffs) > 1 else None
    p_t = p_w = p_c = None
    if len(diffs) >= MIN_PAIRS and len(set(diffs)) > 1:
        p_t = float(ttest_1samp(diffs, 0.0).pvalue)
    if len(diffs) >= MIN_PAIRS and any(d != 0 for d in diffs):
        p_w = float(wilcoxon(diffs).pvalue)
    if test_train_ratio is not None:
        p_c = corrected_ttest(diffs, test_train_ratio) if len(diffs) >= MIN_PAIRS else None
    return Paired(len(keys), statistics.fmean(diffs), std, p_t, p_w, p_c, test_train_ratio)


def corrected_ttest(diffs: Sequence[float], test_train_ratio: float) -> float | None:
    """Two-sided p of the corrected resampled t-test (Nadeau & Bengio 2003).

    The J differences come from splits that reshuffle one pool, so they are positively correlated; the variance of
    their mean is ``(1/J + n_test/n_train) * s^2`` instead of ``s^2 / J``:
    ``t = mean / sqrt((1/J + rho) * s^2)`` with ``rho = n_test / n_train``, on J - 1 degrees of freedom.
    None with fewer than 2 differences or when they are all equal (no spread to read).
    """
    from scipy.stats import t as student_t

    if test_train_ratio < 0 or not math.isfinite(test_train_ratio):
        raise ValueError(f"test_train_ratio must be a finite number >= 0 (n_test / n_train), got {test_train_ratio}")
    n = len(diffs)
    if n < 2 or len(set(diffs)) == 1:
        return None
    variance = statistics.variance(diffs)
    t = statistics.fmean(diffs) / math.sqrt((1 / n + test_train_ratio) * variance)
    return float(2 * student_t.sf(abs(t), n - 1))


def holm(pvalues: Sequence[float | None]) -> list[float | None]:
    """Holm's step-down adjusted p-values (Holm 1979), in the input order; None (no test run) stays None.

    The m p-values that exist are sorted, the i-th smallest (i from 1) multiplied by m - i + 1, kept monotone by a
    running maximum and capped at 1. A hypothesis is rejected at level alpha when its adjusted p is <= alpha, which
    bounds the family-wise error rate by alpha.
    """
    present = sorted((p, i) for i, p in enumerate(pvalues) if p is not None)
    m = len(present)
    adjusted: list[float | None] = [None] * len(pvalues)
    running = 0.0
    for rank, (p, i) in enumerate(present):
        running = max(running, min(1.0, (m - rank) * p))
        adjusted[i] = running
    return adjusted


def format_p(p: float | None, n: int) -> str:
    """A p-value as the tables print it: "n < 3" when too few pairs ran a test, "–" when the test is undefined
    (every difference equal), else three decimals."""
    if n < MIN_PAIRS:
        return f"n < {MIN_PAIRS}"
    return "–" if p is None else f"{p:.3f}"
