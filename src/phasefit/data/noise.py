"""Word-level text noise: TSDAE deletion (phase 1), stop-word deletion (phase-2 oversampling), robustness noise.

Every function takes an explicit :class:`numpy.random.Generator` and draws afresh on each call, so calling it once
per epoch gives a new noisy view every epoch (SPEC §1, Phase 1). Words are whitespace-split; the output rejoins the
surviving words with single spaces. No function ever changes the casing of a word: the authors' code lower-cased
only the oversampled classes, which leaks the label (SPEC §7).
"""

from __future__ import annotations

import math
import string
from collections.abc import Sequence

import numpy as np
from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

__all__ = [
    "DEFAULT_STOP_WORDS",
    "NEGATION_WORDS",
    "delete_stop_words",
    "delete_words",
    "insert_words",
    "swap_words",
]

#: Negations in scikit-learn's English stop-word list. Deleting them can flip a text's class ("not good"), so
#: oversampling noise must not touch them.
NEGATION_WORDS: frozenset[str] = frozenset(
    {"no", "not", "nor", "never", "neither", "none", "nobody", "noone", "nothing", "nowhere",
     "cannot", "cant", "couldnt", "hasnt", "without"}
)

#: scikit-learn's ``ENGLISH_STOP_WORDS`` (offline, unlike nltk's corpus) minus :data:`NEGATION_WORDS`.
DEFAULT_STOP_WORDS: frozenset[str] = frozenset(ENGLISH_STOP_WORDS) - NEGATION_WORDS


def _check_ratio(ratio: float, *, upper_open: bool) -> None:
    bad = not (0.0 <= ratio < 1.0) if upper_open else not (0.0 <= ratio <= 1.0)
    if bad or math.isnan(ratio):
        bounds = "[0, 1)" if upper_open else "[0, 1]"
        raise ValueError(f"ratio must be in {bounds}, got {ratio!r}")


def _round_half_up(x: float) -> int:
    return math.floor(x + 0.5)


def _keep_words(words: list[str], delete: np.ndarray, rng: np.random.Generator) -> str:
    """Join the words not marked in ``delete``; if all are marked, keep one chosen at random."""
    if delete.all():
        delete = delete.copy()
        delete[rng.integers(len(words))] = False
    return " ".join(w for w, d in zip(words, delete) if not d)


def delete_words(text: str, ratio: float, rng: np.random.Generator) -> str:
    """TSDAE noise: delete each word independently with probability ``ratio`` (paper 000 §3.1, eq. 1 input).

    ``ratio`` is the fraction of words *deleted* (the sentence-transformers ``DenoisingAutoEncoderDataset``
    example keeps words with probability ``del_ratio``, inverting the meaning). At least one word always survives.

    Args:
        text: the clean text.
        ratio: deletion probability per word, in ``[0, 1)``.
        rng: source of randomness; each call draws afresh.

    Returns:
        The noisy text; empty and one-word texts come back unchanged.

    Raises:
        ValueError: if ``ratio`` is outside ``[0, 1)``.
    """
    _check_ratio(ratio, upper_open=True)
    words = text.split()
    if len(words) <= 1:
        return text
    return _keep_words(words, rng.random(len(words)) < ratio, rng)


def delete_stop_words(
    text: str,
    rng: np.random.Generator,
    *,
    ratio: float = 1.0,
    stop_words: frozenset[str] | None = None,
) -> str:
    """Delete stop words, each with probability ``ratio``: the oversampling noise of paper 000 §3.2.1.

    A word is a stop word when, stripped of surrounding punctuation and lower-cased, it is in ``stop_words``; the
    whole word (punctuation included) is then deleted. The text's casing is never changed. At least one word
    always survives.

    Args:
        text: the text to perturb.
        rng: source of randomness.
        ratio: deletion probability per stop word, in ``[0, 1]``.
        stop_words: lower-case stop words; default :data:`DEFAULT_STOP_WORDS` (scikit-learn's list, negations kept).

    Raises:
        ValueError: if ``ratio`` is outside ``[0, 1]``.
    """
    _check_ratio(ratio, upper_open=False)
    stop = DEFAULT_STOP_WORDS if stop_words is None else stop_words
    words = text.split()
    if len(words) <= 1:
        return text
    is_stop = np.array([w.strip(string.punctuation).lower() in stop for w in words])
    return _keep_words(words, is_stop & (rng.random(len(words)) < ratio), rng)


def swap_words(text: str, ratio: float, rng: np.random.Generator) -> str:
    """Swap ``round(ratio * n)`` randomly chosen adjacent word pairs, one after another (noise-robustness tests).

    Raises:
        ValueError: if ``ratio`` is outside ``[0, 1]``.
    """
    _check_ratio(ratio, upper_open=False)
    words = text.split()
    if len(words) <= 1:
        return text
    for i in rng.integers(len(words) - 1, size=_round_half_up(ratio * len(words))):
        words[i], words[i + 1] = words[i + 1], words[i]
    return " ".join(words)


def insert_words(text: str, ratio: float, rng: np.random.Generator, vocabulary: Sequence[str]) -> str:
    """Insert ``round(ratio * n)`` words drawn uniformly from ``vocabulary`` at random positions.

    Raises:
        ValueError: if ``ratio`` is outside ``[0, 1]``, or words must be inserted from an empty vocabulary.
    """
    _check_ratio(ratio, upper_open=False)
    words = text.split()
    k = _round_half_up(ratio * len(words))
    if k == 0:
        return text
    if len(vocabulary) == 0:
        raise ValueError("insert_words needs a non-empty vocabulary to insert from")
    for v in rng.integers(len(vocabulary), size=k):
        words.insert(int(rng.integers(len(words) + 1)), vocabulary[v])
    return " ".join(words)


def word_noise(text: str, level: float, rng: np.random.Generator, vocabulary: Sequence[str]) -> str:
    """Mixed word-level noise for the robustness protocol (stands in for paper 002's back-translation).

    Back-translation models cannot be downloaded offline, so a noisy copy is made by word operations whose
    strength grows with ``level`` in [0, 1), the role the sampling temperature plays in paper 002 §4.2:
    stop-word removal (share ``level``), word deletion (``level / 2``), adjacent swaps (``level / 2``) and
    random insertions from the training vocabulary (``level / 4``).
    """
    _check_ratio(level, upper_open=True)
    if level == 0:
        return text
    text = delete_stop_words(text, rng, ratio=level)
    text = delete_words(text, level / 2, rng)
    text = swap_words(text, level / 2, rng)
    return insert_words(text, level / 4, rng, vocabulary)
