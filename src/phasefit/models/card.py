"""The model card of a saved or exported classifier: YAML metadata the Hub reads (library, base model, data set,
metrics, recipe, pipeline tag), then what was trained, how well it scored and how to load it. Built from the
``training`` record in ``classifier.json`` (:func:`training_summary` of the run's ``metrics.json``)."""

from __future__ import annotations

from typing import Any

SCORES = ("accuracy", "macro_f1", "macro_precision", "macro_recall")


def training_summary(metrics: dict[str, Any]) -> dict[str, Any]:
    """What a classifier keeps about its run (for its card): recipe, phases with their cost, base model, data, seed,
    split sizes and the validation and test scores (test is None when the run did not read it)."""
    def scores(split: dict[str, Any] | None) -> dict[str, float] | None:
        return None if split is None else {key: split[key] for key in SCORES if key in split}

    return {
        "recipe": metrics["recipe"],
        "phases": [{"name": p["name"], "minutes": round(p["seconds"] / 60, 2), "final_loss": p.get("final_loss")}
                   for p in metrics["phases"]],
        "base_model": metrics["model"],
        "data": metrics["data"],
        "seed": metrics["seed"],
        "sizes": metrics["sizes"],
        "validation": scores(metrics.get("validation")),
        "test": scores(metrics.get("test")),
    }


def _hub_id(name: str | None) -> str | None:
    """A Hub repository id (``org/name``), not a local path or a ``builtin:``/``memory:`` spec."""
    if not name or ":" in name or name.startswith((".", "/", "~")) or name.count("/") != 1:
        return None
    return name


def card_metadata(meta: dict[str, Any]) -> str:
    """The YAML block of the card (without the ``---`` fences)."""
    from huggingface_hub import EvalResult, ModelCardData

    info = meta.get("training") or {}
    recipe = info.get("recipe")
    data = info.get("data") or ""
    dataset = _hub_id(data[3:].split(":")[0]) if data.startswith("hf:") else None
    test = info.get("test") or {}
    name = f"phasefit {recipe} classifier" if recipe else "phasefit classifier"
    results = []
    for metric, key in (("accuracy", "accuracy"), ("f1", "macro_f1")):
        if key in test:
            results.append(EvalResult(task_type="text-classification", dataset_type=dataset or data or "local",
                                      dataset_name=dataset or data or "local", dataset_split="test",
                                      metric_type=metric, metric_name=f"test {key}", metric_value=test[key]))
    card = ModelCardData(
        library_name="phasefit",
        pipeline_tag="text-classification",
        base_model=_hub_id(info.get("base_model")),
        datasets=[dataset] if dataset else None,
        metrics=["accuracy", "f1"] if test else None,
        tags=["phasefit", "text-classification", "sentence-transformers"] + ([f"recipe:{recipe}"] if recipe else []),
        model_name=name if results else None,
        eval_results=results or None,
    )
    return card.to_yaml()


def model_card(meta: dict[str, Any], *, onnx: bool = False, source: str | None = None,
               quantized: bool = False) -> str:
    """The card's text: YAML metadata, then what the classifier is and how to use it. ``meta`` is the content of
    ``classifier.json``."""
    info = meta.get("training") or {}
    labels = meta["label_names"]
    shown = ", ".join(labels[:30]) + (" …" if len(labels) > 30 else "")
    if info:
        phases = " → ".join(p["name"] for p in info["phases"])
        sizes = info["sizes"]
        trained = (f"Trained with phasefit's recipe `{info['recipe']}` ({phases}) from encoder `{info['base_model']}` "
                   f"on data `{info['data']}` (seed {info['seed']}; train / validation / test sizes "
                   f"{sizes['train']} / {sizes['validation']} / {sizes['test']}).")
        rows = "\n".join(f"| {split} | " + " | ".join(f"{info[split][k]:.4f}" for k in SCORES) + " |"
                         for split in ("validation", "test") if info.get(split))
        scores = ("## Scores\n\nValidation chose the epochs; the test split was read once, after training.\n\n"
                  "| split | accuracy | macro-F1 | macro precision | macro recall |\n|---|---|---|---|---|\n"
                  f"{rows}\n\n| phase | minutes | final loss |\n|---|---|---|\n"
                  + "\n".join(f"| {p['name']} | {p['minutes']:.1f} | {p['final_loss']} |" for p in info["phases"])
                  + "\n")
    else:
        trained, scores = "A phasefit text classifier (how it was trained was not recorded).", ""
    onnx_text = ("\nONNX (encoder + head, one graph):\n\n```python\nimport onnxruntime\n"
                 "from transformers import AutoTokenizer\ntok = AutoTokenizer.from_pretrained('.')\n"
                 "session = onnxruntime.InferenceSession('model.onnx')\n"
                 "features = tok(['book a table for two'], return_tensors='np', padding=True)\n"
                 "logits = session.run(['logits'], {i.name: features[i.name] for i in session.get_inputs()})[0]\n```\n"
                 if onnx else "")
    if quantized:
        onnx_text += ("\n`model_quantized.onnx` is the same graph with int8 weights (same inputs and output): faster "
                      "on CPU, with the accuracy change measured in phasefit's `docs/scaling.md`.\n")
    origin = f"\nSource run: `{source}`.\n" if source else ""
    return f"""---
{card_metadata(meta)}
---

# {('phasefit text classifier (' + info['recipe'] + ')') if info else 'phasefit text classifier'}

{trained}

Labels ({len(labels)}): {shown}

{scores}
## Load it

```python
import phasefit
classifier = phasefit.PhaseFitClassifier.from_pretrained(".")   # this folder, or its Hub repository id
classifier.predict("book a table for two")                      # one label; a list of texts gives a list

from sentence_transformers import SentenceTransformer
encoder = SentenceTransformer(".")                              # the fine-tuned encoder alone
```
{onnx_text}{origin}
Limits: the scores hold for data like the training data; check the run's `metrics.json` for per-class results
before relying on rare classes.
"""
