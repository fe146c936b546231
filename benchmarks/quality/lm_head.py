"""all-MiniLM-L6-v2 with a masked-LM head, for departure 9's measurement (issue 9, docs/method.md).

Departure 9 keeps the checkpoint's LM head in DAE's decoder where the encoder has one (RoBERTa, BERT pre-training
checkpoints). No such checkpoint can be downloaded on these machines and all-MiniLM-L6-v2 has none, so this script
gives MiniLM one: the masked-LM head of ``BertForMaskedLM`` (transform Dense + LayerNorm + output bias; its output
matrix is the encoder's own word embeddings, tied) is trained on top of the *frozen* encoder, on texts of other data
sets than SNIPS (MASSIVE's training utterances and SST-2's training phrases). The encoder's weights stay exactly
the packaged ones (checked after saving), so a 3phase run on this folder differs from one on the packaged model only
in the decoder's head: loaded (``lm_head: pretrained`` in the phase record) instead of random.

    python benchmarks/quality/lm_head.py --output runs/models/minilm-mlm-head

Idempotent: a finished folder (its ``lm_head.json`` written last) is kept as it is; the folder is built beside
and renamed into place, so a stopped build leaves nothing half-written at ``--output``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import sys
import time
from pathlib import Path

import pandas as pd
import torch

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT.parent / "shared" / "data"
SOURCES = {"massive_en": None, "sst2": 8000}  # data set -> training texts taken (None: all)


def head_texts(seed: int) -> tuple[list[str], list[str]]:
    """Training texts for the head, and 1,000 held-out ones (MASSIVE's and SST-2's validation) to score it."""
    rng = random.Random(seed)
    train: list[str] = []
    held_out: list[str] = []
    for name, take in SOURCES.items():
        texts = pd.read_csv(DATA / name / "train.csv")["text"].astype(str).tolist()
        rng.shuffle(texts)
        train += texts if take is None else texts[:take]
        held_out += pd.read_csv(DATA / name / "validation.csv")["text"].astype(str).tolist()[:500]
    rng.shuffle(train)
    return train, held_out


def masked_batch(tokenizer, texts: list[str], generator: torch.Generator, max_length: int,
                 probability: float = 0.15) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """BERT's masking (15 % of the non-special tokens: 80 % [MASK], 10 % random, 10 % kept); labels -100 elsewhere."""
    batch = tokenizer(texts, padding=True, truncation=True, max_length=max_length, return_tensors="pt")
    ids = batch["input_ids"]
    special = torch.tensor([tokenizer.get_special_tokens_mask(row, already_has_special_tokens=True)
                            for row in ids.tolist()], dtype=torch.bool) | (batch["attention_mask"] == 0)
    chosen = (torch.rand(ids.shape, generator=generator) < probability) & ~special
    labels = torch.where(chosen, ids, torch.full_like(ids, -100))
    draw = torch.rand(ids.shape, generator=generator)
    masked = ids.clone()
    masked[chosen & (draw < 0.8)] = tokenizer.mask_token_id
    swap = chosen & (draw >= 0.8) & (draw < 0.9)
    masked[swap] = torch.randint(len(tokenizer), ids.shape, generator=generator)[swap]
    batch["input_ids"] = masked
    return batch, labels


def head_loss(model, batch: dict[str, torch.Tensor], labels: torch.Tensor) -> tuple[torch.Tensor, int, int]:
    """Cross-entropy at the masked positions; the frozen encoder runs without gradients."""
    with torch.no_grad():
        hidden = model.bert(**batch).last_hidden_state
    keep = labels != -100
    logits = model.cls(hidden[keep])
    target = labels[keep]
    correct = int((logits.argmax(-1) == target).sum())
    return torch.nn.functional.cross_entropy(logits, target), correct, int(target.numel())


def score(model, tokenizer, texts: list[str], max_length: int, seed: int) -> dict[str, float]:
    """Masked-token accuracy and loss on held-out texts (the same masks for every call)."""
    generator = torch.Generator().manual_seed(seed)
    model.eval()
    total_loss, correct, count = 0.0, 0, 0
    with torch.no_grad():
        for start in range(0, len(texts), 64):
            batch, labels = masked_batch(tokenizer, texts[start:start + 64], generator, max_length)
            loss, right, n = head_loss(model, batch, labels)
            total_loss += float(loss) * n
            correct += right
            count += n
    return {"masked_token_accuracy": correct / count, "loss": total_loss / count, "masked_tokens": count}


def build(output: Path, *, epochs: int, batch_size: int, lr: float, max_length: int, seed: int) -> dict:
    from sentence_transformers import SentenceTransformer
    from transformers import AutoTokenizer, BertForMaskedLM

    from phasefit.config import ModelConfig
    from phasefit.models.encoder import resolve_model_path

    source = resolve_model_path(ModelConfig().name)
    torch.manual_seed(seed)
    tokenizer = AutoTokenizer.from_pretrained(str(source))
    model = BertForMaskedLM.from_pretrained(str(source))  # head new (random), encoder the packaged one
    for param in model.bert.parameters():
        param.requires_grad_(False)  # also the word embeddings, which are the head's tied output matrix
    trainable = [param for param in model.cls.parameters() if param.requires_grad]
    train, held_out = head_texts(seed)
    before = after = score(model, tokenizer, held_out, max_length, seed + 1)
    optimizer = torch.optim.AdamW(trainable, lr=lr)
    steps = epochs * -(-len(train) // batch_size)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: max(0.0, 1 - step / steps))
    generator = torch.Generator().manual_seed(seed)
    started = time.perf_counter()
    for epoch in range(epochs):
        model.train()
        model.bert.eval()  # no dropout in the frozen encoder: the head learns its deterministic outputs
        for start in range(0, len(train), batch_size):
            batch, labels = masked_batch(tokenizer, train[start:start + batch_size], generator, max_length)
            loss, _, _ = head_loss(model, batch, labels)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            schedule.step()
        after = score(model, tokenizer, held_out, max_length, seed + 1)  # the last epoch's is the saved head's
        print(f"epoch {epoch + 1}/{epochs}: held-out {after}", flush=True)

    staging = output.with_name(output.name + ".partial")
    if staging.exists():
        shutil.rmtree(staging)  # our own leftover from a stopped build
    shutil.copytree(source, staging)
    (staging / "model.safetensors").unlink()
    model.save_pretrained(str(staging), safe_serialization=True)  # bert.* and cls.* (decoder tied, not stored)
    # the encoder must come back bit for bit: the comparison is about the head alone
    texts = held_out[:32]
    packaged = SentenceTransformer(str(source), device="cpu").encode(texts, convert_to_tensor=True)
    rebuilt = SentenceTransformer(str(staging), device="cpu").encode(texts, convert_to_tensor=True)
    if not torch.equal(packaged, rebuilt):
        raise SystemExit(f"the saved encoder differs from the packaged one (max |diff| "
                         f"{float((packaged - rebuilt).abs().max()):.3g}); {staging} left for inspection")
    record = {
        "source": str(source), "train_texts": len(train), "sources": SOURCES, "held_out_texts": len(held_out),
        "epochs": epochs, "batch_size": batch_size, "lr": lr, "max_length": max_length, "seed": seed,
        "trained_parameters": sum(param.numel() for param in trainable),
        "held_out_before": before, "held_out_after": after, "seconds": round(time.perf_counter() - started, 1),
        "torch_threads": torch.get_num_threads(), "encoder_unchanged": True,
    }
    (staging / "lm_head.json").write_text(json.dumps(record, indent=2) + "\n")
    staging.rename(output)
    return record


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, default=ROOT / "runs" / "models" / "minilm-mlm-head")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--max-length", type=int, default=48)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    settings = {"epochs": args.epochs, "batch_size": args.batch_size, "lr": args.lr, "max_length": args.max_length,
                "seed": args.seed}
    if (args.output / "lm_head.json").is_file():
        built = json.loads((args.output / "lm_head.json").read_text())
        differ = {key: (built.get(key), value) for key, value in {**settings, "sources": SOURCES}.items()
                  if built.get(key) != value}
        if differ:  # a head made otherwise is another model: never reuse it for these settings
            said = ", ".join(f"{key}: built {was}, asked {now}" for key, (was, now) in differ.items())
            raise SystemExit(f"{args.output} was built with other settings ({said}): pick another --output, or "
                             "remove the folder yourself to rebuild it")
        print(f"{args.output} is built: {json.dumps(built, indent=2)}")
        return 0
    if args.output.exists():
        raise SystemExit(f"{args.output} exists but holds no lm_head.json (not built by this script?): "
                         "pick another --output or remove it yourself")
    args.output.parent.mkdir(parents=True, exist_ok=True)
    record = build(args.output, **settings)
    print(json.dumps(record, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
