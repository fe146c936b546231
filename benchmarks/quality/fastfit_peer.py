"""Train FastFit on one benchmark split and write its predictions (run in the FastFit venv, not phasefit's).

    .venv-fastfit/bin/python benchmarks/quality/fastfit_peer.py REQUEST.json

FastFit (Yehudai and Bandel, 2024; ``fast-fit`` 1.2.1 on PyPI) trains an encoder with batch contrastive learning
(SupCon) between each text and the name of its label, scored by token-level similarity (every text token's best match
among the label name's tokens, summed), plus a small classification loss; it predicts the label whose name is most
similar. phasefit's peer (:mod:`phasefit.experiments.peers`, ``fastfit``) writes REQUEST.json and runs this script as a
subprocess in the venv that ``benchmarks/quality/setup_fastfit.sh`` makes: fast-fit's code needs transformers 4 and
datasets 2 (``load_metric``), phasefit needs transformers 5.

REQUEST.json holds ``model`` (a local model folder: all-MiniLM-L6-v2 in the benchmark), ``train`` (``texts`` and
``labels``: the rows FastFit trains on), ``predict`` (``{name: texts}``: the rows to predict, which it never trains
on or sees the labels of), ``max_length`` (the split's token limit), ``seed``, ``settings`` (FastFit's training
arguments, in its own names) and ``output`` (the predictions file to write): ``{"predictions": {name: [label, ...]},
"steps": ..., "epochs": ..., "train_seconds": ..., "versions": {...}}``.

Offline, one change to fast-fit: its ``FastFitTrainer`` loads the "accuracy" metric with datasets' ``load_metric``,
which fetches a metric script from the Hugging Face hub even when no evaluation runs. Here it is replaced by a local
accuracy with the same ``compute(predictions=, references=)`` call; nothing else of fast-fit is touched.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any


class _Accuracy:
    """datasets' "accuracy" metric, without the hub: fast-fit only calls ``compute``."""

    def compute(self, predictions: Any, references: Any) -> dict[str, float]:
        pairs = list(zip(predictions, references))
        return {"accuracy": sum(int(p) == int(r) for p, r in pairs) / max(len(pairs), 1)}


def train_and_predict(request: dict[str, Any]) -> dict[str, Any]:
    import importlib.metadata as md

    import torch
    from datasets import Dataset, DatasetDict
    from transformers import AutoTokenizer

    import fastfit.train

    fastfit.train.load_metric = lambda *args, **kwargs: _Accuracy()  # see the module docstring
    torch.manual_seed(request["seed"])
    settings = dict(request["settings"])
    max_steps = settings.pop("max_steps", None)
    train = Dataset.from_dict({"text": list(request["train"]["texts"]), "label": list(request["train"]["labels"])})
    with tempfile.TemporaryDirectory() as scratch:
        trainer = fastfit.train.FastFitTrainer(
            model_name_or_path=request["model"],
            label_column_name="label",
            text_column_name="text",
            max_text_length=request["max_length"],
            dataloader_drop_last=False,
            per_device_eval_batch_size=64,
            max_steps=-1 if max_steps is None else int(max_steps),
            seed=request["seed"],
            output_dir=scratch,
            overwrite_output_dir=True,
            save_strategy="no",
            report_to="none",
            disable_tqdm=True,
            log_level="error",
            use_cpu=not torch.cuda.is_available(),
            # FastFitTrainer insists on a labelled "test" split to tokenise (it predicts it only in .test(), never
            # called here): the training rows stand in, so no held-out label ever reaches fast-fit
            dataset=DatasetDict({"train": train, "test": train}),
            **settings,
        )
        started = time.perf_counter()
        model = trainer.train()
        train_seconds = time.perf_counter() - started
        state = trainer.trainer.state
    model.eval()
    # a fresh tokenizer, as fast-fit's README predicts (FastFitTrainer renamed its model inputs for training)
    tokenizer = AutoTokenizer.from_pretrained(request["model"], clean_up_tokenization_spaces=True)
    labels = list(trainer.labels)  # sorted: the order of the model's scores
    max_length = min(request["max_length"], tokenizer.model_max_length)

    def predict(texts: list[str]) -> list[str]:
        out: list[str] = []
        for start in range(0, len(texts), 64):
            batch = tokenizer(texts[start:start + 64], padding=True, truncation=True, max_length=max_length,
                              return_tensors="pt")
            with torch.no_grad():  # FastFit's own inference: similarity of each text to every label name
                scores = model.inference_forward(batch["input_ids"], batch["attention_mask"])  # (B, n_labels)
            out += [labels[i] for i in scores.argmax(dim=-1).tolist()]
        return out

    return {
        "predictions": {name: predict(list(texts)) for name, texts in request["predict"].items()},
        "steps": int(state.global_step),
        "epochs": float(state.epoch or 0.0),
        "train_seconds": round(train_seconds, 3),
        "versions": {name: md.version(name) for name in ("fast-fit", "torch", "transformers", "datasets")},
    }


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print(__doc__.split("\n\n")[1], file=sys.stderr)
        return 2
    for key in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE"):
        os.environ.setdefault(key, "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    request = json.loads(Path(args[0]).read_text(encoding="utf-8"))
    result = train_and_predict(request)
    output = Path(request["output"])
    output.write_text(json.dumps(result), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
