"""Paired comparisons (phasefit.evaluation.stats): the p-values read the differences as the scores mean them, not
their floating-point noise; the corrected resampled t-test and Holm's correction match hand computations; fewer
than 3 pairs give no p-value."""

from __future__ import annotations

import math

import pytest
from scipy.stats import t as student_t
from scipy.stats import ttest_rel, wilcoxon

from phasefit.evaluation.stats import corrected_ttest, format_p, holm, paired


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


def test_corrected_ttest_matches_nadeau_bengio_by_hand() -> None:
    # 10 splits of one pool, 20% test / 80% train: rho = 0.25
    diffs = [2.0, 3.5, -1.0, 4.0, 1.5, 0.5, 3.0, 2.5, -0.5, 1.0]
    mean = sum(diffs) / 10  # 1.65
    s2 = sum((d - mean) ** 2 for d in diffs) / 9
    t = mean / math.sqrt((1 / 10 + 0.25) * s2)
    expected = 2 * student_t.sf(abs(t), df=9)
    a = {k: 80 + d for k, d in enumerate(diffs)}
    b = {k: 80.0 for k in range(10)}
    result = paired(a, b, test_train_ratio=0.25)
    assert result.p_corrected == pytest.approx(expected, rel=1e-9)
    assert result.p == result.p_corrected and result.test == "corrected t"
    plain = ttest_rel(list(a.values()), list(b.values())).pvalue
    assert result.p_ttest == pytest.approx(plain)  # the plain test stays available beside it
    assert plain == pytest.approx(0.0121, abs=1e-4) and expected == pytest.approx(0.1287, abs=1e-4)
    assert plain < 0.05 < result.p_corrected  # the correction is what turns this one into noise
    assert result.reading() == "within seed noise"
    assert corrected_ttest(diffs, 0.0) == pytest.approx(plain)  # no overlap: the plain t-test
    assert corrected_ttest([1.0, 1.0, 1.0], 0.25) is None  # no spread to read


def test_without_a_ratio_p_is_the_plain_ttest() -> None:
    result = paired({0: 0.9, 1: 0.8, 2: 0.7, 3: 0.6}, {0: 0.8, 1: 0.75, 2: 0.6, 3: 0.58})
    assert result.p_corrected is None and result.test == "t" and result.p == result.p_ttest


def test_corrected_ttest_refuses_a_negative_ratio() -> None:
    with pytest.raises(ValueError, match="n_test / n_train"):
        paired({k: 0.9 + 0.01 * k for k in range(3)}, {k: 0.8 for k in range(3)}, test_train_ratio=-0.25)


def test_holm_worked_example_in_input_order() -> None:
    # sorted 0.005, 0.01, 0.03, 0.04 times 4, 3, 2, 1 = 0.02, 0.03, 0.06, 0.04 -> running max 0.02, 0.03, 0.06, 0.06
    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])


def test_holm_skips_missing_tests_and_caps_at_one() -> None:
    adjusted = holm([0.5, None, 0.01, 0.4])  # three tests ran: m = 3
    assert adjusted[1] is None
    assert adjusted == [pytest.approx(0.8), None, pytest.approx(0.03), pytest.approx(0.8)]
    assert holm([0.6, 0.7]) == [1.0, 1.0]
    assert holm([]) == [] and holm([None]) == [None]


def test_fewer_than_three_pairs_give_no_p_value() -> None:
    two = paired({0: 0.9, 1: 0.7}, {0: 0.8, 1: 0.75}, scale=100, test_train_ratio=0.25)
    assert two.n == 2 and two.std is not None
    assert two.p_ttest is None and two.p_wilcoxon is None and two.p_corrected is None and two.p is None
    assert two.reading() == "too few seeds to judge (fewer than 3)"
    assert format_p(two.p, two.n) == "n < 3"
    three = paired({0: 0.9, 1: 0.7, 2: 0.8}, {0: 0.8, 1: 0.75, 2: 0.7}, scale=100, test_train_ratio=0.25)
    assert three.p_ttest is not None and three.p_wilcoxon is not None and three.p_corrected is not None
    assert format_p(three.p, three.n) == f"{three.p:.3f}" and format_p(None, 3) == "–"
