"""Losses of the encoder phases: the TSDAE decoder tying, the MPNet refusal, cosine-MSE against a naive loop."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from phasefit.config import ModelConfig
from phasefit.phases.staged import cosine_pair_loss
from phasefit.losses.dae import DecoderUnavailableError, DenoisingAutoEncoderLoss, transformer_of
from phasefit.models.encoder import load_encoder


@pytest.fixture
def encoder(tiny_model_dir: Path):
    return load_encoder(ModelConfig(name=str(tiny_model_dir)))


def _batch(encoder, texts):
    return encoder.tokenizer(texts, padding=True, return_tensors="pt")


def test_tied_decoder_shares_the_in_memory_encoder_weights(encoder) -> None:
    transformer = transformer_of(encoder)
    with torch.no_grad():  # simulate an earlier phase's training: the decoder must see these weights, not the file's
        transformer.embeddings.word_embeddings.weight.add_(1.0)
    loss = DenoisingAutoEncoderLoss(encoder, pad_token_id=0)
    decoder_base = loss.decoder.bert
    assert decoder_base.embeddings.word_embeddings.weight is transformer.embeddings.word_embeddings.weight
    assert decoder_base.encoder.layer[1].attention.self.query.weight is transformer.encoder.layer[1].attention.self.query.weight
    # The LM head's output projection is the (shared) word embedding matrix.
    assert loss.decoder.get_output_embeddings().weight is transformer.embeddings.word_embeddings.weight
    # Cross-attention exists only in the decoder.
    assert hasattr(decoder_base.encoder.layer[0], "crossattention")


def test_untied_decoder_copies_instead_of_sharing(encoder) -> None:
    transformer = transformer_of(encoder)
    loss = DenoisingAutoEncoderLoss(encoder, pad_token_id=0, tie=False)
    shared = loss.decoder.bert.embeddings.word_embeddings.weight
    assert shared is not transformer.embeddings.word_embeddings.weight
    assert torch.equal(shared, transformer.embeddings.word_embeddings.weight)


def test_dae_loss_trains_down_on_a_fixed_batch(encoder) -> None:
    torch.manual_seed(0)
    loss = DenoisingAutoEncoderLoss(encoder, pad_token_id=encoder.tokenizer.pad_token_id)
    clean = ["play some jazz songs tonight", "what is the weather in paris", "book a table for two people"]
    noisy = ["play jazz", "weather paris", "table two"]
    optimizer = torch.optim.AdamW(loss.parameters(), lr=1e-2)
    values = []
    for _ in range(15):
        value = loss([_batch(encoder, noisy), _batch(encoder, clean)])
        optimizer.zero_grad()
        value.backward()
        optimizer.step()
        values.append(value.item())
    assert values[-1] < 0.5 * values[0]


def test_mpnet_has_no_decoder_and_says_so(tmp_path: Path, tiny_hf_dir: Path) -> None:
    import shutil

    from transformers import MPNetConfig, MPNetModel

    config = MPNetConfig(vocab_size=200, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                         intermediate_size=64, max_position_embeddings=70)
    folder = tmp_path / "mpnet"
    MPNetModel(config).save_pretrained(folder)
    for name in ("tokenizer.json", "tokenizer_config.json"):  # reuse the tiny word-level tokenizer
        shutil.copy(tiny_hf_dir / name, folder / name)
    mpnet = load_encoder(ModelConfig(name=str(folder)))
    with pytest.raises(DecoderUnavailableError, match="mpnet.*MPNet is the known case"):
        DenoisingAutoEncoderLoss(mpnet, pad_token_id=0)


def test_cosine_pair_loss_matches_a_naive_loop(encoder) -> None:
    loss = cosine_pair_loss(encoder)  # sentence-transformers' CosineSimilarityLoss is paper 000's eq. 3
    a = ["play some jazz songs", "will it rain tomorrow", "book a table"]
    b = ["put on rock music", "reserve a room", "is it sunny"]
    targets = torch.tensor([1.0, 0.0, 0.5])
    value = loss([_batch(encoder, a), _batch(encoder, b)], targets)
    u = encoder.encode(a, convert_to_tensor=True)
    v = encoder.encode(b, convert_to_tensor=True)
    naive = 0.0
    for i in range(3):
        cos = float(u[i] @ v[i] / (u[i].norm() * v[i].norm()))
        naive += (targets[i].item() - cos) ** 2
    assert value.item() == pytest.approx(naive / 3, abs=1e-5)
