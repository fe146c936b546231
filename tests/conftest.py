"""Shared fixtures: a tiny random BERT saved as a local sentence-transformers folder, toy intent data, offline env.

Nothing here touches the network: the model is built from a config and a word-level vocabulary of the toy data,
so the end-to-end and CLI tests run in seconds on a CPU (STYLE.md rule 8).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

# --- toy data ------------------------------------------------------------------------------------------------------

# Each intent has its own words, so even a 2-layer random encoder separates the classes after a few steps.
_INTENT_TEMPLATES: dict[str, tuple[list[str], list[str]]] = {
    "weather": (
        ["what is the weather", "will it rain", "is it sunny", "how cold is it", "forecast for"],
        ["in paris", "tomorrow", "this weekend", "in london", "tonight", "on monday"],
    ),
    "music": (
        ["play some", "put on", "start the playlist of", "shuffle", "queue"],
        ["jazz songs", "rock music", "beatles tracks", "piano album", "guitar tunes", "by queen"],
    ),
    "booking": (
        ["book a table", "reserve a room", "make a reservation", "get me a booking", "find a hotel"],
        ["for two people", "at the restaurant", "for friday night", "near the station", "for four guests",
         "downtown"],
    ),
}
# Two hierarchy levels, separator ".": a.x and a.y share the top level.
_HIER_TEMPLATES: dict[str, tuple[list[str], list[str]]] = {
    "a.x": _INTENT_TEMPLATES["weather"],
    "a.y": _INTENT_TEMPLATES["music"],
    "b.z": _INTENT_TEMPLATES["booking"],
}
TOY_LABELS = sorted(_INTENT_TEMPLATES)
SPLIT_SIZES = {"train": 16, "validation": 5, "test": 5}  # examples per class


def _sentences(heads: list[str], tails: list[str]) -> list[str]:
    # All 30 head x tail combinations, in a fixed diagonal order so every split sees every head.
    pairs = sorted(itertools.product(range(len(heads)), range(len(tails))),
                   key=lambda p: ((p[1] - p[0]) % len(tails), p[0]))
    return [f"{heads[h]} {tails[t]}" for h, t in pairs]


def _write_splits(folder: Path, templates: dict[str, tuple[list[str], list[str]]]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    per_label = {label: _sentences(*parts) for label, parts in templates.items()}
    start = 0
    for split, n in SPLIT_SIZES.items():
        rows = [{"text": per_label[label][start + i], "label": label} for i in range(n) for label in per_label]
        pd.DataFrame(rows).to_csv(folder / f"{split}.csv", index=False)
        start += n
    return folder


def toy_vocabulary() -> list[str]:
    """Lower-cased words of every toy sentence (both data sets share them), sorted."""
    words = {
        word.lower()
        for heads, tails in _INTENT_TEMPLATES.values()
        for text in heads + tails
        for word in text.split()
    }
    return sorted(words)


@pytest.fixture
def toy_data_dir(tmp_path: Path) -> Path:
    """train/validation/test CSVs (columns text, label) of 3 intents: 16 / 5 / 5 examples per class."""
    return _write_splits(tmp_path / "toy", _INTENT_TEMPLATES)


@pytest.fixture
def toy_hier_dir(tmp_path: Path) -> Path:
    """The same texts with hierarchical labels a.x, a.y, b.z (2 levels, separator '.')."""
    return _write_splits(tmp_path / "toy_hier", _HIER_TEMPLATES)


@pytest.fixture(scope="module")
def toy_data_dir_module(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The toy data once per test module, for module-scoped trained runs."""
    return _write_splits(tmp_path_factory.mktemp("toy"), _INTENT_TEMPLATES)


# --- environment ---------------------------------------------------------------------------------------------------

_OFFLINE_ENV = {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}


def pytest_configure(config: pytest.Config) -> None:
    # Also set here, not only in `offline_env`: session- and module-scoped fixtures (the tiny model, shared runs)
    # are set up before any function-scoped fixture.
    import os

    os.environ.update(_OFFLINE_ENV)


@pytest.fixture(autouse=True)
def offline_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test may reach the Hugging Face hub."""
    for key, value in _OFFLINE_ENV.items():
        monkeypatch.setenv(key, value)


@pytest.fixture(scope="session", autouse=True)
def single_torch_thread() -> None:
    """One intra-op thread: the tiny model gains nothing from more, and on a shared CPU (another training process
    running) oversubscribed threads slowed a 1 s run to 80 s. The slow tier raises it again (``all_cpu_threads``)."""
    import torch

    torch.set_num_threads(1)


@pytest.fixture
def all_cpu_threads() -> Iterator[None]:
    """Every CPU core for torch during one test (the real model in the slow tier)."""
    import os

    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(os.cpu_count() or 1)
    yield
    torch.set_num_threads(before)


# --- tiny model ----------------------------------------------------------------------------------------------------

SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
TINY_MAX_LENGTH = 64


def build_tiny_bert(hf_dir: Path) -> Path:
    """A randomly initialised 2-layer BERT (hidden 32) with a word-level tokenizer, saved with save_pretrained."""
    import torch
    from tokenizers import Tokenizer, normalizers
    from tokenizers.models import WordLevel
    from tokenizers.pre_tokenizers import Whitespace
    from tokenizers.processors import TemplateProcessing
    from transformers import BertConfig, BertModel, PreTrainedTokenizerFast

    vocab = {token: i for i, token in enumerate(SPECIAL_TOKENS + toy_vocabulary())}
    backend = Tokenizer(WordLevel(vocab, unk_token="[UNK]"))
    backend.normalizer = normalizers.Lowercase()
    backend.pre_tokenizer = Whitespace()
    backend.post_processor = TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", vocab["[CLS]"]), ("[SEP]", vocab["[SEP]"])],
    )
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend,
        pad_token="[PAD]",
        unk_token="[UNK]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        mask_token="[MASK]",
        model_max_length=TINY_MAX_LENGTH,
    )
    config = BertConfig(
        vocab_size=len(vocab),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=TINY_MAX_LENGTH,
    )
    torch.manual_seed(0)
    model = BertModel(config)
    hf_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(hf_dir), safe_serialization=True)
    tokenizer.save_pretrained(str(hf_dir))
    return hf_dir


@pytest.fixture(scope="session")
def tiny_hf_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny BERT as a plain Hugging Face folder (no modules.json; phasefit adds mean pooling)."""
    return build_tiny_bert(tmp_path_factory.mktemp("tiny-bert-hf"))


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory, tiny_hf_dir: Path) -> Path:
    """The tiny BERT wrapped as a sentence-transformers folder (Transformer + mean Pooling), built once."""
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Pooling, Transformer

    transformer = Transformer(str(tiny_hf_dir), max_seq_length=TINY_MAX_LENGTH)
    pooling = Pooling(transformer.get_embedding_dimension(), pooling_mode="mean")
    model = SentenceTransformer(modules=[transformer, pooling], device="cpu")
    folder = tmp_path_factory.mktemp("tiny-bert-st")
    model.save(str(folder), safe_serialization=True)
    return folder


def tiny_overrides(model_dir: Path | str) -> list[str]:
    """``--set`` items that keep a run on the tiny model to a few seconds."""
    return [
        f"model.name={model_dir}",
        "ft.epochs=2",
        "ft.batch_size=8",
        "progress=false",
        "data.max_length=32",
    ]
