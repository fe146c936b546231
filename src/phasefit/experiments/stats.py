"""Paired statistics moved to :mod:`phasefit.evaluation.stats`: reports use them too, and reporting imports no
experiment code. Re-exported here for benchmarks/ and scripts written before the move."""

from phasefit.evaluation.stats import MIN_PAIRS, Paired, corrected_ttest, format_p, holm, paired

__all__ = ["MIN_PAIRS", "Paired", "corrected_ttest", "format_p", "holm", "paired"]
