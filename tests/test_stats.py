"""Paired comparisons (phasefit.experiments.stats.paired): the p-values read the differences as the scores mean
them, not their floating-point noise."""

from __future__ import annotations

import pytest
from scipy.stats import ttest_rel, wilcoxon

from phasefit.experiments.stats import paired


def test_differences_equal_on_paper_are_identical_differences() -> None:
    # three examples of 66 apart on every split: 100 * 4/66 - 100 * 1/66 and 100 * 3/66 - 0 differ in the last bits
    a = {0: 3 / 66, 1: 3 / 66, 2: 4 / 66}
    b = {0: 0 / 66, 1: 0 / 66, 2: 1 / 66}
    result = paired(a, b, scale=100)
    assert result.mean == pytest.approx(300 / 66)
    assert result.std == 0 and result.p_ttest is None
    assert result.reading() == "identical differences"


def test_wilcoxon_ties_are_ties() -> None:
    a = {k: v / 66 for k, v in enumerate([50, 60, 55, 57, 61])}
    b = {k: v / 66 for k, v in enumerate([49, 59, 56, 55, 58])}
    result = paired(a, b, scale=100)
    assert result.p_wilcoxon == pytest.approx(wilcoxon([1, 1, -1, 2, 3]).pvalue)  # in examples: exact ties
    assert result.p_ttest == pytest.approx(ttest_rel([50, 60, 55, 57, 61], [49, 59, 56, 55, 58]).pvalue)


def test_paired_uses_only_shared_keys_and_matches_scipy() -> None:
    a = {0: 0.91, 1: 0.88, 2: 0.95, 3: 0.90, 9: 0.5}
    b = {0: 0.89, 1: 0.89, 2: 0.92, 3: 0.86, 7: 0.1}
    result = paired(a, b)
    assert result.n == 4
    assert result.mean == pytest.approx(0.02)
    assert result.p_ttest == pytest.approx(ttest_rel([0.91, 0.88, 0.95, 0.90], [0.89, 0.89, 0.92, 0.86]).pvalue)
    assert paired({0: 1.0}, {1: 1.0}) is None
    single = paired({0: 0.9}, {0: 0.8})
    assert single.n == 1 and single.std is None and single.p_ttest is None and single.p_wilcoxon is None
