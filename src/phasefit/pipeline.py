"""Run a recipe end to end: data, encoder, phases in order, evaluation, run directory.

Run directory layout::

    RUN/config.yaml        resolved config (recipe preset + file + overrides)
    RUN/split.json         split record: sources, seeds, fractions, sizes, row ids of every split
    RUN/metrics.json       validation and test scores, per-phase cost and embedding diagnostics
    RUN/curves/<i>-<phase>.json   the Trainer's log history (training loss, validation scores per epoch)
    RUN/model/             the classifier (encoder in safetensors + head), loadable with TextClassifier.load

Validation drives early stopping and selection; the test split is scored exactly once, after training.
"""

from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from phasefit.config import RunConfig, save_config
from phasefit.io import atomic_write_json

if TYPE_CHECKING:
    from phasefit.data import DatasetSplits, LabelledSplit
    from phasefit.models.classifier import TextClassifier
    from phasefit.phases.base import PhaseContext

logger = logging.getLogger(__name__)

DIAGNOSTIC_TRAIN_LIMIT = 2000  # k-NN reference set size cap, so diagnostics stay cheap on big data


class RunDirectoryError(ValueError):
    """The output directory cannot be used (exists, not writable)."""


@dataclass
class RunResult:
    run_dir: Path
    metrics: dict[str, Any]
    classifier: TextClassifier


def load_run_data(config: RunConfig) -> DatasetSplits:
    """Load and split the data of a run config (deterministic for the config's seed)."""
    from phasefit.data import few_shot, load_splits

    data = config.data
    splits = load_splits(
        data.path,
        text_column=data.text_column,
        label_column=data.label_column,
        text_pair_column=data.text_pair_column,
        label_separator=data.label_separator,
        label_depth=data.label_depth,
        validation_fraction=data.validation_fraction,
        test_fraction=data.test_fraction,
        seed=config.seed,
        max_train_examples=data.max_train_examples,
        max_eval_examples=data.max_eval_examples,
        max_validation_examples=data.max_validation_examples,
        max_test_examples=data.max_test_examples,
    )
    if data.few_shot_n is not None or data.few_shot_k is not None:
        draw_seed = config.seed if data.few_shot_seed is None else data.few_shot_seed
        splits = few_shot(splits, n=data.few_shot_n, k_per_class=data.few_shot_k, seed=draw_seed)
    if data.augment_noise_level > 0:
        splits = augment_with_noise(splits, data.augment_noise_level, data.augment_copies, seed=config.seed)
    return splits


def augment_with_noise(splits: DatasetSplits, level: float, copies: int, *, seed: int) -> DatasetSplits:
    """Training set plus ``copies`` noisy copies of each text (same label): paper 002 §4.2's augmentation, with
    word-level noise in place of back-translation (see :func:`phasefit.data.noise.word_noise`)."""
    import dataclasses

    from phasefit.data import LabelledSplit
    from phasefit.data.noise import word_noise

    rng = np.random.default_rng(seed)
    train = splits.train
    vocabulary = sorted({word for text in train.texts for word in text.split()})
    texts, labels, ids = list(train.texts), list(train.labels), list(train.ids)
    for copy in range(1, copies + 1):
        for text, label, row_id in zip(train.texts, train.labels, train.ids):
            texts.append(word_noise(text, level, rng, vocabulary))
            labels.append(label)
            ids.append(f"{row_id}#noise{copy}")
    pairs = None if train.text_pairs is None else list(train.text_pairs) * (copies + 1)  # second text kept clean
    augmented = LabelledSplit(texts=texts, labels=labels, ids=ids, text_pairs=pairs)
    record = {**splits.record, "augmentation": {"noise_level": level, "copies": copies, "added": len(texts) - len(train)}}
    return dataclasses.replace(splits, train=augmented, record=record)


def read_unlabelled(path: str | None) -> list[str]:
    """Extra phase-1 texts, one per line (blank lines skipped)."""
    if path is None:
        return []
    from phasefit.data import DataError

    file = Path(path)
    if not file.is_file():
        raise DataError(f"unlabelled text file {file} not found; fix data.unlabelled_path")
    try:
        lines = file.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as err:
        raise DataError(f"{file}: byte {err.start} is not UTF-8; re-save the file as UTF-8") from None
    return [line for line in lines if line.strip()]


def prepare_output_dir(output_dir: Path, *, overwrite: bool) -> None:
    if output_dir.exists() and any(output_dir.iterdir()):
        if not overwrite:
            raise RunDirectoryError(
                f"output directory {output_dir} already holds a run; pass --overwrite to replace it or choose "
                "another --output"
            )
        shutil.rmtree(output_dir)
    try:
        output_dir.mkdir(parents=True, exist_ok=True)
        probe = output_dir / ".write-test"
        probe.write_text("ok")
        probe.unlink()
    except OSError as err:
        raise RunDirectoryError(f"cannot write to output directory {output_dir}: {err.strerror}") from None


def train(config: RunConfig, output_dir: str | Path, *, overwrite: bool = False) -> RunResult:
    """Train ``config``'s recipe and write the run directory. Data and model are checked before anything is
    written, so bad input leaves no half-made run behind."""
    from transformers import set_seed

    from phasefit.data import resolve_max_length
    from phasefit.models.encoder import load_encoder
    from phasefit.phases import get_phase
    from phasefit.phases.base import PhaseContext
    from phasefit.training.cost import CostMeter

    output_dir = Path(output_dir)
    if output_dir.exists() and any(output_dir.iterdir()) and not overwrite:
        prepare_output_dir(output_dir, overwrite=False)  # raises with the message
    set_seed(config.seed)
    splits = load_run_data(config)
    unlabelled = read_unlabelled(config.data.unlabelled_path)
    encoder = load_encoder(config.model)
    model_limit = int(getattr(encoder, "max_seq_length", None) or encoder.tokenizer.model_max_length)
    max_length = resolve_max_length(
        config.data.max_length,
        splits.train.texts,
        lambda texts: [len(ids) for ids in encoder.tokenizer(list(texts))["input_ids"]],
        model_limit,
        seed=config.seed,
    )

    prepare_output_dir(output_dir, overwrite=overwrite)
    save_config(config, output_dir / "config.yaml")
    atomic_write_json(output_dir / "split.json", split_manifest(splits))

    ctx = PhaseContext(config=config, splits=splits, encoder=encoder, max_length=max_length,
                       work_dir=output_dir, unlabelled_texts=unlabelled)
    initial = embedding_record(ctx, output_dir / "embeddings" / "0-initial.npy")  # the pre-trained space
    phase_records = []
    for index, name in enumerate(config.phases, start=1):
        logger.info("phase %d/%d: %s", index, len(config.phases), name)
        set_seed(config.seed + index)  # each phase's randomness depends on the seed and its position only
        meter = CostMeter()
        record = get_phase(name).run(ctx)
        cost = meter.record(record.pop("examples"), record.pop("trainable_parameters"))
        history = record.pop("log_history", None)
        if history is not None:
            atomic_write_json(output_dir / "curves" / f"{index}-{name}.json", history)
        diagnostics = embedding_record(ctx, output_dir / "embeddings" / f"{index}-{name}.npy")
        phase_records.append({"name": name, **cost, **record, **diagnostics})

    classifier = ctx.classifier
    assert classifier is not None, "validated config: the last phase is ft"
    metrics = {
        "recipe": config.recipe,
        "seed": config.seed,
        "model": config.model.name,
        "data": config.data.path,
        "max_length": max_length,
        "label_names": splits.label_names,
        "sizes": {"train": len(splits.train), "validation": len(splits.validation), "test": len(splits.test)},
        "validation": evaluate_split(classifier, splits, splits.validation),
        "test": evaluate_split(classifier, splits, splits.test),  # read once, after training
        "initial_embeddings": initial,
        "phases": phase_records,
        "total_seconds": round(sum(p["seconds"] for p in phase_records), 3),
    }
    classifier.save(output_dir / "model")
    if config.plots:
        write_plots(output_dir, splits, metrics)
    atomic_write_json(output_dir / "metrics.json", metrics)
    shutil.rmtree(output_dir / "checkpoints", ignore_errors=True)
    return RunResult(output_dir, metrics, classifier)


def split_manifest(splits: DatasetSplits) -> dict[str, Any]:
    return {
        **splits.record,
        "label_names": splits.label_names,
        "label_separator": splits.label_separator,
        "ids": {name: getattr(splits, name).ids for name in ("train", "validation", "test")},
    }


def evaluate_split(classifier: TextClassifier, splits: DatasetSplits, part: LabelledSplit) -> dict[str, Any]:
    from phasefit.evaluation.metrics import classification_metrics

    gold = splits.label_ids(part)
    index = {name: i for i, name in enumerate(classifier.label_names)}
    predicted = [index[label] for label in classifier.predict(part.texts)]
    return classification_metrics(gold, predicted, classifier.label_names)


def embedding_record(ctx: PhaseContext, save_to: Path | None = None) -> dict[str, Any]:
    """k-NN accuracy and silhouette of the current encoder's validation embeddings (what the phase did);
    the validation embeddings are saved (float16) for the plots and the report."""
    from phasefit.evaluation.embeddings import embedding_diagnostics

    splits = ctx.splits
    train = splits.train
    rng = np.random.default_rng(ctx.seed)
    keep = np.arange(len(train))
    if len(train) > DIAGNOSTIC_TRAIN_LIMIT:
        keep = np.sort(rng.choice(len(train), DIAGNOSTIC_TRAIN_LIMIT, replace=False))
    train_labels = np.asarray(splits.label_ids(train))[keep]
    train_vectors = ctx.embed([train.texts[i] for i in keep])
    val_vectors = ctx.embed(splits.validation.texts)
    if save_to is not None:
        save_to.parent.mkdir(parents=True, exist_ok=True)
        np.save(save_to, val_vectors.astype(np.float16))
    scores = embedding_diagnostics(train_vectors, train_labels, val_vectors, splits.label_ids(splits.validation))
    return {"validation_knn_accuracy": scores["knn_accuracy"], "validation_silhouette": scores["silhouette"]}


def write_plots(run_dir: Path, splits: DatasetSplits, metrics: dict[str, Any]) -> None:
    """``embeddings.png`` (t-SNE of validation embeddings: pre-trained, then after each phase) and
    ``confusion_matrix.png`` (test)."""
    from phasefit.reporting.plots import plot_confusion_matrix, plot_embeddings

    stages = [("pre-trained", np.load(run_dir / "embeddings" / "0-initial.npy"))]
    for index, phase in enumerate(metrics["phases"], start=1):
        stages.append((f"after {phase['name']}", np.load(run_dir / "embeddings" / f"{index}-{phase['name']}.npy")))
    plot_embeddings(stages, splits.label_ids(splits.validation), splits.label_names, run_dir / "embeddings.png",
                    seed=metrics["seed"])
    plot_confusion_matrix(metrics["test"]["confusion_matrix"], splits.label_names, run_dir / "confusion_matrix.png")


def load_run(run_dir: str | Path) -> tuple[RunConfig, TextClassifier]:
    """The resolved config and trained classifier of a finished run directory."""
    from phasefit.config import read_yaml, validate_config
    from phasefit.models.classifier import TextClassifier

    run_dir = Path(run_dir)
    if not (run_dir / "model" / "classifier.json").is_file():
        raise RunDirectoryError(f"{run_dir} holds no finished run (no model/classifier.json); train one first")
    return validate_config(read_yaml(run_dir / "config.yaml")), TextClassifier.load(run_dir / "model")
