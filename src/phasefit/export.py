"""Export a trained run: a sentence-transformers folder plus head, an ONNX graph, and a model card.

``OUT/`` loads with ``SentenceTransformer(OUT)`` (the fine-tuned encoder) and holds ``head.safetensors`` +
``classifier.json`` (so ``PhaseFitClassifier.load(OUT)`` works too; they are the same files as the run's ``model/``,
laid out flat). ``OUT/model.onnx`` is encoder + head in one graph: inputs ``input_ids``, ``attention_mask``
(and ``token_type_ids`` when the tokenizer makes them), output ``logits``; the tokenizer files are in ``OUT/``.
``OUT/README.md`` is a model card with the data, recipe, metrics and how to load it. With ``quantize``,
``OUT/model_quantized.onnx`` is the same graph with int8 weights (ONNX Runtime's dynamic quantisation of the
MatMul/Gemm weights; activations are quantised on the fly): smaller and faster on CPU, at some accuracy cost that
``benchmarks/inference.py`` measures.
"""

from __future__ import annotations

import functools
import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from phasefit.errors import PhasefitError
from phasefit.io import atomic_directory, clean_stale_temporaries, commit_directory, recover_directory
from phasefit.models.card import model_card, training_summary
from phasefit.models.classifier import CLASSIFIER_FILE, HEAD_FILE, PhaseFitClassifier

EXPORT_MARKER = "phasefit-export.json"


class ExportError(PhasefitError, ValueError):
    """The export folder cannot be written without losing something; the message says what to do."""


def is_export(folder: Path) -> bool:
    """A folder phasefit exported (its marker, or the classifier files of an export made before the marker)."""
    return (folder / EXPORT_MARKER).is_file() or all((folder / n).is_file() for n in ("classifier.json",
                                                                                         "head.safetensors"))


def check_export_target(run_dir: Path, output: Path, *, overwrite: bool) -> None:
    """Refuse any output whose replacement could lose something phasefit did not create."""
    run, out = run_dir.resolve(), output.resolve()
    if run == out or out in run.parents:
        raise ExportError(f"--output {output} holds the run being exported ({run_dir}); exporting there would "
                          "replace the run itself. Choose a new folder, e.g. --output exports/NAME")
    if out.exists() and not out.is_dir():
        raise ExportError(f"--output {output} is a file; choose a folder")
    if out.is_dir() and any(out.iterdir()):
        if not overwrite:
            raise ExportError(f"--output {output} is not empty; pass --overwrite to replace an earlier phasefit "
                              "export there, or choose an empty or new folder")
        if not is_export(out):
            raise ExportError(f"--output {output} is not a phasefit export (no {EXPORT_MARKER}); phasefit replaces "
                              "only its own exports, even with --overwrite. Choose an empty or new folder")


class _LogitsGraph(nn.Module):
    def __init__(self, classifier: PhaseFitClassifier, names: list[str]):
        super().__init__()
        self.classifier = classifier
        self.names = names

    def forward(self, *tensors: torch.Tensor) -> torch.Tensor:
        return self.classifier(**dict(zip(self.names, tensors)))["logits"]


def export_run(run_dir: str | Path, output: str | Path, *, onnx: bool = True, opset: int = 17,
               overwrite: bool = False, quantize: bool = False) -> Path:
    """Export a finished run to ``output``: a new or empty folder, or (with ``overwrite``) an earlier phasefit
    export; never a folder of anything else, and never the folder that holds the run. ``quantize`` adds
    ``model_quantized.onnx`` (int8 weights)."""
    run_dir, output = Path(run_dir), Path(output)
    if quantize and not onnx:
        raise ExportError("--quantize quantises the ONNX graph; drop --no-onnx")
    recover_directory(output)  # a kill between the renames of an earlier export: put the old export back first
    clean_stale_temporaries(output.parent, output.name)
    check_export_target(run_dir, output, overwrite=overwrite)
    metrics = json.loads((run_dir / "metrics.json").read_text(encoding="utf-8"))
    classifier = PhaseFitClassifier.load(run_dir / "model", device="cpu")
    tmp = atomic_directory(output)
    shutil.copytree(run_dir / "model" / "encoder", tmp, dirs_exist_ok=True)
    for name in (HEAD_FILE, CLASSIFIER_FILE):
        shutil.copy2(run_dir / "model" / name, tmp / name)
    if onnx:
        export_onnx(classifier, tmp / "model.onnx", opset=opset)
    if quantize:
        quantize_onnx(tmp / "model.onnx", tmp / QUANTIZED_ONNX)
    meta = json.loads((tmp / CLASSIFIER_FILE).read_text(encoding="utf-8"))
    if not meta.get("training"):  # a run made before classifiers kept their training record
        meta["training"] = training_summary(metrics)
    card = model_card(meta, onnx=onnx, source=str(run_dir), quantized=quantize)
    (tmp / "README.md").write_text(card, encoding="utf-8")
    (tmp / EXPORT_MARKER).write_text(json.dumps({"run": str(run_dir.resolve()), "recipe": metrics["recipe"],
                                                 "onnx": onnx, "quantized": quantize}), encoding="utf-8")
    commit_directory(tmp, output)
    return output


def onnx_input_names(classifier: PhaseFitClassifier) -> list[str]:
    sample = classifier.tokenize(["a"])
    return [name for name in ("input_ids", "attention_mask", "token_type_ids") if name in sample]


def export_onnx(classifier: PhaseFitClassifier, path: Path, *, opset: int = 17) -> Path:
    classifier = classifier.eval().to("cpu")
    names = onnx_input_names(classifier)
    sample = classifier.tokenize(["a short example", "a somewhat longer example sentence for shapes"])
    args = tuple(sample[name] for name in names)
    dynamic = {name: {0: "batch", 1: "sequence"} for name in names}
    dynamic["logits"] = {0: "batch"}
    with torch.no_grad():
        torch.onnx.export(_LogitsGraph(classifier, names), args, str(path), input_names=names,
                          output_names=["logits"], dynamic_axes=dynamic, opset_version=opset, dynamo=False)
    return path


QUANTIZED_ONNX = "model_quantized.onnx"


def quantize_onnx(source: Path, target: Path) -> Path:
    """int8 weights for the graph's MatMul/Gemm (ONNX Runtime's ``quantize_dynamic``, signed), one scale per output
    channel: on SST-2 dev it kept the fp32 graph's accuracy where one scale per tensor lost 0.1 point, at the same
    speed (docs/scaling.md)."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize_dynamic(str(source), str(target), weight_type=QuantType.QInt8, per_channel=True)
    return target


def onnx_predict(path: str | Path, classifier: PhaseFitClassifier, texts: list[str],
                 text_pairs: list[str] | None = None, *, batch_size: int = 64) -> np.ndarray:
    """Logits of the ONNX graph for ``texts`` (and their ``text_pairs``, tokenised together as in training, for a
    classifier trained on pairs), tokenised with the classifier's tokenizer; shape (N, C)."""
    session = _session(str(Path(path).resolve()), Path(path).stat().st_mtime_ns)
    wanted = [i.name for i in session.get_inputs()]

    def logits(features: dict[str, Any]) -> np.ndarray:
        return session.run(["logits"], {name: features[name].numpy() for name in wanted})[0]

    return classifier.logits_in_length_order(logits, texts, text_pairs, batch_size=batch_size)


@functools.lru_cache(maxsize=4)
def _session(path: str, mtime_ns: int) -> Any:
    """One ONNX Runtime session per graph file (and version of it), reused across calls."""
    import onnxruntime

    return onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
