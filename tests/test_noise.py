"""Unit tests for phasefit.data.noise (word deletion, stop-word deletion, robustness noise)."""

from __future__ import annotations

import numpy as np
import pytest

from phasefit.data.noise import (
    DEFAULT_STOP_WORDS,
    delete_stop_words,
    delete_words,
    insert_words,
    swap_words,
)

SENTENCE = " ".join(f"w{i}" for i in range(20))


def _is_subsequence(short: list[str], long: list[str]) -> bool:
    it = iter(long)
    return all(w in it for w in short)


@pytest.mark.parametrize("p", [0.3, 0.6])
def test_delete_words_deletes_fraction_p(p: float) -> None:
    # p is the fraction DELETED (the sentence-transformers example keeps words with probability p).
    rng = np.random.default_rng(0)
    kept = [len(delete_words(SENTENCE, p, rng).split()) for _ in range(2000)]
    assert abs(1 - np.mean(kept) / 20 - p) < 0.02


def test_delete_words_seed_reproduces_and_draws_differ() -> None:
    a = [delete_words(SENTENCE, 0.6, np.random.default_rng(7)) for _ in range(2)]
    assert a[0] == a[1]
    rng = np.random.default_rng(7)
    draws = {delete_words(SENTENCE, 0.6, rng) for _ in range(20)}  # fresh noise each epoch
    assert len(draws) > 15


def test_delete_words_keeps_at_least_one_word_in_order() -> None:
    rng = np.random.default_rng(1)
    for _ in range(500):
        out = delete_words(SENTENCE, 0.99, rng).split()
        assert len(out) >= 1
        assert _is_subsequence(out, SENTENCE.split())


@pytest.mark.parametrize("text", ["", "single", "  spaced  "])
def test_delete_words_short_text_unchanged(text: str) -> None:
    assert delete_words(text, 0.9, np.random.default_rng(0)) == text


@pytest.mark.parametrize("ratio", [1.0, -0.1, 1.5, float("nan")])
def test_delete_words_rejects_bad_ratio(ratio: float) -> None:
    with pytest.raises(ValueError, match="ratio must be in"):
        delete_words(SENTENCE, ratio, np.random.default_rng(0))


def test_delete_words_ratio_zero_is_identity() -> None:
    assert delete_words(SENTENCE, 0.0, np.random.default_rng(0)) == SENTENCE


def test_delete_stop_words_keeps_casing_and_punctuation() -> None:
    text = "The Quick Brown Fox, AND the dog. The, End"
    out = delete_stop_words(text, np.random.default_rng(0))
    # "The", "AND", "the", "The," are stop words whatever their case or attached punctuation.
    assert out == "Quick Brown Fox, dog. End"


def test_delete_stop_words_never_changes_casing_at_random() -> None:
    text = "Is This THE Best Movie I Have Ever Seen In My Life"
    rng = np.random.default_rng(3)
    for _ in range(200):
        out = delete_stop_words(text, rng, ratio=0.5).split()
        assert _is_subsequence(out, text.split())  # only deletions, exact words (casing included)


def test_delete_stop_words_keeps_negations_by_default() -> None:
    assert "not" not in DEFAULT_STOP_WORDS
    assert delete_stop_words("this is not good", np.random.default_rng(0)) == "not good"


def test_delete_stop_words_keeps_one_word() -> None:
    rng = np.random.default_rng(0)
    outs = {delete_stop_words("the and of", rng) for _ in range(50)}
    assert outs <= {"the", "and", "of"} and len(outs) > 1


def test_delete_stop_words_custom_list_and_ratio() -> None:
    rng = np.random.default_rng(0)
    assert delete_stop_words("Alpha beta Gamma", rng, stop_words=frozenset({"gamma"})) == "Alpha beta"
    assert delete_stop_words("the cat and the hat", rng, ratio=0.0) == "the cat and the hat"
    with pytest.raises(ValueError, match="ratio"):
        delete_stop_words("the cat", rng, ratio=1.1)


def test_swap_words_permutes_words() -> None:
    rng = np.random.default_rng(0)
    out = swap_words(SENTENCE, 0.3, rng)
    assert sorted(out.split()) == sorted(SENTENCE.split()) and out != SENTENCE
    assert swap_words(SENTENCE, 0.0, rng) == SENTENCE
    assert swap_words("one", 1.0, rng) == "one"


def test_insert_words_adds_ratio_n_vocabulary_words() -> None:
    rng = np.random.default_rng(0)
    vocab = ["X", "Y", "Z"]
    out = insert_words(SENTENCE, 0.25, rng, vocab).split()
    assert len(out) == 25
    assert [w for w in out if w not in vocab] == SENTENCE.split()
    with pytest.raises(ValueError, match="vocabulary"):
        insert_words(SENTENCE, 0.25, rng, [])
    assert insert_words("", 0.5, rng, vocab) == ""
