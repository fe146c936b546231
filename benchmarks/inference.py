"""Inference speed and accuracy: PhaseFitClassifier.predict against sentence-transformers' encode + head, and the
exported ONNX graph (fp32 and int8-quantised) run by ONNX Runtime.

    python benchmarks/inference.py --run snips=runs/inference/snips-ft --run sst2=runs/inference/sst2-ft \
        --output benchmarks/results/inference

For each run: accuracy of every path on the run's own test split (the rows its metrics.json scored), and texts/s of
every path on --texts texts (the test texts repeated), one path after another in this process, best of --repeats.
The reference path is what a sentence-transformers user writes: ``SentenceTransformer.encode`` (it sorts by
length and batches) and the head on the embeddings. The ONNX graphs are written by ``phasefit export
[--quantize]`` into a temporary folder.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import numpy as np  # noqa: E402
import torch  # noqa: E402


def timed(fn: Callable[[], np.ndarray], repeats: int) -> tuple[float, np.ndarray]:
    best, out = float("inf"), None
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - start)
    return best, out


def measure(name: str, run_dir: Path, count: int, repeats: int, batch: int) -> list[dict[str, Any]]:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    from phasefit.export import QUANTIZED_ONNX, export_run, onnx_predict
    from phasefit.pipeline import load_run
    from phasefit.run_data import load_run_data

    config, classifier = load_run(run_dir)
    splits = load_run_data(config)
    test = splits.test
    gold = np.asarray(splits.label_ids(test))
    texts = [test.texts[i % len(test)] for i in range(count)]
    classifier.eval()
    encoder = classifier.encoder
    encoder.max_seq_length = classifier.max_length

    @torch.inference_mode()
    def reference(batch_texts: list[str]) -> np.ndarray:
        vectors = encoder.encode(batch_texts, batch_size=batch, convert_to_tensor=True, show_progress_bar=False)
        return classifier.head(vectors).numpy()

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        exported = export_run(run_dir, Path(tmp) / "export", quantize=True)
        per_tensor = Path(tmp) / "model_quantized_per_tensor.onnx"  # the alternative to export's per-channel scales
        quantize_dynamic(str(exported / "model.onnx"), str(per_tensor), weight_type=QuantType.QInt8)
        paths: dict[str, Callable[[list[str]], np.ndarray]] = {
            "SentenceTransformer.encode + head": reference,
            "PhaseFitClassifier.predict_logits": lambda t: classifier.predict_logits(t, batch_size=batch),
            "ONNX Runtime, fp32": lambda t: onnx_predict(exported / "model.onnx", classifier, t, batch_size=batch),
            "ONNX Runtime, int8 (export --quantize)": lambda t: onnx_predict(exported / QUANTIZED_ONNX, classifier, t,
                                                                             batch_size=batch),
            "ONNX Runtime, int8 per tensor": lambda t: onnx_predict(per_tensor, classifier, t, batch_size=batch),
        }
        base_seconds = None
        for path, predict in paths.items():
            accuracy = float((predict(list(test.texts)).argmax(1) == gold).mean())
            seconds, _ = timed(lambda: predict(texts), repeats)
            base_seconds = base_seconds or seconds
            rows.append({"run": name, "path": path, "test_examples": len(test), "accuracy": accuracy,
                         "texts": count, "seconds": seconds, "texts_per_second": count / seconds,
                         "speed_vs_reference": base_seconds / seconds})
            print(f"{name:>6} | {path:<40} | accuracy {accuracy:.4f} | {count / seconds:7.1f} texts/s | "
                  f"x{base_seconds / seconds:.2f}", flush=True)
    return rows


def render(rows: list[dict[str, Any]], args: argparse.Namespace) -> str:
    import onnxruntime
    import sentence_transformers
    import transformers

    runs = " ".join(f"--run {r}" for r in args.run)
    lines = [
        "# Inference: PyTorch, sentence-transformers and ONNX Runtime (fp32, int8)", "",
        f"`python benchmarks/inference.py {runs} --texts {args.texts}` — torch {torch.__version__}, transformers "
        f"{transformers.__version__}, sentence-transformers {sentence_transformers.__version__}, onnxruntime "
        f"{onnxruntime.__version__}, Python {platform.python_version()}, {os.cpu_count()} cores "
        f"({torch.get_num_threads()} torch threads), batch {args.batch}, best of {args.repeats}.", "",
        "| run | path | test accuracy | Δ accuracy (points) | texts/s | speed vs encode + head |",
        "|---|---|---|---|---|---|",
    ]
    reference = {r["run"]: r["accuracy"] for r in rows if r["path"].startswith("SentenceTransformer")}
    for r in rows:
        delta = 100 * (r["accuracy"] - reference[r["run"]])
        lines.append(f"| {r['run']} ({r['test_examples']} test texts) | {r['path']} | {r['accuracy']:.4f} | "
                     f"{delta:+.2f} | {r['texts_per_second']:.1f} | {r['speed_vs_reference']:.2f}x |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--run", action="append", required=True, help="NAME=RUN_DIR (a finished phasefit run)")
    parser.add_argument("--texts", type=int, default=10000)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--output", type=Path)
    args = parser.parse_args()
    rows = []
    for item in args.run:
        name, _, folder = item.partition("=")
        rows += measure(name, Path(folder), args.texts, args.repeats, args.batch)
    report = render(rows, args)
    print(report)
    if args.output:
        args.output.mkdir(parents=True, exist_ok=True)
        (args.output / "inference.md").write_text(report)
        (args.output / "inference.json").write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
