"""Run a recipe end to end: data, encoder, phases in order, evaluation, run directory.

Run directory layout::

    RUN/config.yaml        resolved config (recipe preset + file + overrides)
    RUN/split.json         split record: sources, seeds, fractions, sizes, row ids of every split
    RUN/metrics.json       validation and test scores, per-phase cost and embedding diagnostics
    RUN/curves/<i>-<phase>.json   the Trainer's log history (training loss, validation scores per epoch)
    RUN/model/             the classifier (encoder in safetensors + head), loadable with PhaseFitClassifier.load

Validation drives early stopping and selection; the test split is scored exactly once, after training.
"""

from __future__ import annotations

import json
import logging
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from phasefit.config import RunConfig, save_config
from phasefit.io import atomic_write_json
from phasefit.run_data import load_run_data, run_max_length, run_unlabelled
from phasefit.run_directory import (PEER_FILE, STATE_DIR, RunDirectoryError, check_free_space, discard_replaced,
                                    has_content, prepare_output_dir, restore_replaced)

if TYPE_CHECKING:
    from phasefit.data import DatasetSplits, LabelledSplit
    from phasefit.data.memory import InMemoryData
    from phasefit.models.classifier import PhaseFitClassifier
    from phasefit.training.context import PhaseContext

logger = logging.getLogger(__name__)

@dataclass
class RunResult:
    run_dir: Path
    metrics: dict[str, Any]
    classifier: PhaseFitClassifier


def _resume_state(output_dir: Path, config: RunConfig) -> RunConfig:
    """The saved config of an interrupted run (the command line's config is ignored: a run resumes as it began)."""
    from phasefit.config import read_yaml, validate_config

    if not (output_dir / "config.yaml").is_file():
        raise RunDirectoryError(f"nothing to resume in {output_dir} (no config.yaml); start it without --resume")
    if (output_dir / "metrics.json").is_file():
        raise RunDirectoryError(f"the run in {output_dir} already finished (metrics.json exists); nothing to resume")
    saved = validate_config(read_yaml(output_dir / "config.yaml"))
    from phasefit.fingerprint import read_fingerprint

    started_in = (read_fingerprint(output_dir) or {}).get("started_in")
    if started_in:
        saved = resolve_relative_paths(saved, Path(started_in))
    if saved.to_dict() != config.to_dict():
        logger.warning("resuming %s with its saved config; the config given on the command line is ignored",
                       output_dir)
    return saved


def resolve_relative_paths(config: RunConfig, base: Path) -> RunConfig:
    """Relative data, unlabelled and model paths of a saved config, resolved against the folder the run started
    in (a resume from another working directory must read the same files)."""
    data, model = config.data, config.model

    def resolved(path: str | None) -> str | None:
        if path is None or path.startswith(("builtin:", "hf:")) or Path(path).is_absolute():
            return path
        candidate = base / path
        return str(candidate) if candidate.exists() else path

    data = data.model_copy(update={"path": resolved(data.path), "unlabelled_path": resolved(data.unlabelled_path)})
    model = model.model_copy(update={"name": resolved(model.name)})
    return config.model_copy(update={"data": data, "model": model})


def _save_phase_state(output_dir: Path, index: int, ctx: PhaseContext, record: dict[str, Any], *,
                      saved: Path | None = None) -> Path:
    """After an encoder phase: its record and encoder, atomically (the resume state of every phase but the last,
    whose result is ``model/``; a kill before ``model/`` is written resumes the last phase from its checkpoint).
    ``saved``: a folder holding this encoder already (a phase-cache entry), hard-linked rather than written again.
    Returns the state's encoder folder."""
    from phasefit.io import atomic_directory, commit_directory, link_tree

    final = output_dir / STATE_DIR / f"phase-{index}"
    tmp = atomic_directory(final)
    if saved is not None:
        link_tree(saved, tmp / "encoder")
    else:
        ctx.encoder.save(str(tmp / "encoder"), safe_serialization=True)
    (tmp / "record.json").write_text(json.dumps(record, default=str), encoding="utf-8")
    commit_directory(tmp, final)
    return final / "encoder"


def _completed_phases(output_dir: Path, count: int) -> int:
    """How many phases of an interrupted run finished (their state folders exist, in order)."""
    done = 0
    while done < count and (output_dir / STATE_DIR / f"phase-{done + 1}" / "record.json").is_file():
        done += 1
    return done


def train(config: RunConfig, output_dir: str | Path, *, overwrite: bool = False, resume: bool = False,
          callbacks: list[Any] | None = None, tables: InMemoryData | None = None) -> RunResult:
    """Train ``config``'s recipe and write the run directory. Data and model are checked before anything is
    written, so bad input leaves no half-made run behind.

    With ``resume``, an interrupted run continues: finished phases are loaded from ``state/``, the phase that was
    running continues from its last Trainer checkpoint (step, optimiser, schedule and random state), and the
    result equals an uninterrupted run's (bit for bit on CPU). ``tables``: data passed from Python (see
    :func:`phasefit.train`).
    """
    from transformers import set_seed

    from phasefit.config import ModelConfig
    from phasefit.models.encoder import load_encoder
    from phasefit.phases import get_phase
    from phasefit.training.context import PhaseContext
    from phasefit.training.cost import CostMeter

    from phasefit.distributed import is_main_process, num_processes, wait_for_everyone

    output_dir = Path(output_dir)
    main = is_main_process()  # under accelerate launch: only the main process writes (phasefit.distributed)
    if resume:
        config = _resume_state(output_dir, config)
    elif has_content(output_dir) and not overwrite:
        prepare_output_dir(output_dir, overwrite=False)  # raises with the message
    if num_processes() > 1:
        selecting = [name for name in config.phases if getattr(getattr(config, name), "select_epoch", False)]
        if selecting:
            raise RunDirectoryError(f"{selecting[0]}.select_epoch scores validation on one process between epochs, "
                                    "which is not supported with several processes yet; set it to false")
    set_seed(config.seed)
    splits = load_run_data(config, tables)
    unlabelled, overlap = run_unlabelled(config, splits)
    encoder = load_encoder(config.model)
    max_length = run_max_length(config, splits, encoder)
    check_free_space(output_dir, encoder)
    if {"dae", "joint"} & set(config.phases):
        from phasefit.losses.dae import check_decoder_support

        check_decoder_support(encoder)  # before the run directory exists, not minutes into the run
    if "mlm" in config.phases:
        from phasefit.losses.mlm import check_masked_lm_support

        check_masked_lm_support(encoder)

    done = 0
    if resume:
        from phasefit.io import clean_stale_temporaries

        if main:
            for folder in (output_dir, output_dir / STATE_DIR, output_dir / "curves", output_dir / "embeddings"):
                clean_stale_temporaries(folder)  # half-written files of the killed process
        saved = json.loads((output_dir / "split.json").read_text(encoding="utf-8"))
        if saved.get("ids") != split_manifest(splits)["ids"]:
            raise RunDirectoryError(f"the data of {output_dir} changed since the run began (split.json differs); "
                                    "start a new run")
        from phasefit.fingerprint import data_differences, read_fingerprint, run_fingerprint

        started = read_fingerprint(output_dir)
        if started is not None:
            changed = data_differences(started, run_fingerprint(config, splits, unlabelled))
            if changed:
                raise RunDirectoryError(f"cannot resume {output_dir}: {', '.join(changed)} changed since the run "
                                        "began; restore them, or start a new run (--overwrite or another --output)")
        done = _completed_phases(output_dir, len(config.phases))
        if 0 < done < len(config.phases):
            encoder_dir = output_dir / STATE_DIR / f"phase-{done}" / "encoder"
            encoder = load_encoder(ModelConfig(name=str(encoder_dir), trust_remote_code=config.model.trust_remote_code))
        logger.info("resuming %s after %d of %d phases", output_dir, done, len(config.phases))
    elif main:
        replaced = prepare_output_dir(output_dir, overwrite=overwrite)
        try:
            from phasefit.fingerprint import FINGERPRINT_FILE, run_fingerprint

            save_config(config, output_dir / "config.yaml")
            atomic_write_json(output_dir / "split.json", split_manifest(splits))
            atomic_write_json(output_dir / FINGERPRINT_FILE, run_fingerprint(config, splits, unlabelled))
        except BaseException:
            restore_replaced(output_dir, replaced)
            raise
        discard_replaced(replaced)  # the new run has started writing: the old one goes now
    wait_for_everyone()  # the run directory exists before any process trains into it

    ctx = PhaseContext(config=config, splits=splits, encoder=encoder, max_length=max_length, work_dir=output_dir,
                       unlabelled_texts=unlabelled, callbacks=list(callbacks or []), resume=resume)
    initial_file = output_dir / STATE_DIR / "initial.json"
    initial: dict[str, Any] | None = None
    if resume and initial_file.is_file():
        initial = json.loads(initial_file.read_text(encoding="utf-8"))
    elif main:
        initial = embedding_record(ctx, output_dir / "embeddings" / "0-initial.npy")  # the pre-trained space
        atomic_write_json(initial_file, initial)
    cache = None
    if config.phase_cache is not None:
        from phasefit.phase_cache import PhaseCache

        from phasefit.fingerprint import read_fingerprint

        cache = PhaseCache(config.phase_cache, config, splits, unlabelled, max_length,
                           model_content=(read_fingerprint(output_dir) or {}).get("model"))
    phase_records = []
    for index, name in enumerate(config.phases, start=1):
        last = index == len(config.phases)
        if index <= done:
            phase_records.append(json.loads((output_dir / STATE_DIR / f"phase-{index}" / "record.json").read_text()))
            continue
        hit = cache.lookup(index) if cache is not None and not last and main else None
        if cache is not None and not last and num_processes() > 1:  # one decision: a cache entry another run
            from phasefit.distributed import from_main_process  # stores meanwhile must not split the processes

            hit = from_main_process(hit)
        if hit is not None:
            logger.info("phase %d/%d: %s reused from the phase cache (%s)", index, len(config.phases), name, hit.name)
            ctx.encoder = load_encoder(ModelConfig(name=str(hit / "encoder"),
                                                   trust_remote_code=config.model.trust_remote_code))
            phase_record = {**json.loads((hit / "record.json").read_text(encoding="utf-8")),
                            "reused_from_cache": hit.name}
            if main:
                (output_dir / "embeddings").mkdir(parents=True, exist_ok=True)
                shutil.copy(hit / "embeddings.npy", output_dir / "embeddings" / f"{index}-{name}.npy")
                _save_phase_state(output_dir, index, ctx, phase_record, saved=hit / "encoder")
            phase_records.append(phase_record)
            continue
        logger.info("phase %d/%d: %s", index, len(config.phases), name)
        set_seed(config.seed + index)  # each phase's randomness depends on the seed and its position only
        meter = CostMeter()
        resumed_from = ctx.resume_checkpoint(name)
        record = get_phase(name).run(ctx)
        cost = meter.record(record.pop("examples"), record.pop("trainable_parameters"))
        history = record.pop("log_history", None)
        wait_for_everyone()  # every process is done with the phase's checkpoints before the main one cleans up
        if not main:  # the other processes only train
            phase_records.append({"name": name, **cost, **record})
            continue
        if history is not None:
            atomic_write_json(output_dir / "curves" / f"{index}-{name}.json", history)
        diagnostics = embedding_record(ctx, output_dir / "embeddings" / f"{index}-{name}.npy")
        phase_record = {"name": name, **cost, **record, **diagnostics}
        if resumed_from is not None:
            phase_record["resumed_from"] = Path(resumed_from).name  # its seconds count only the resumed part
        if num_processes() > 1:
            phase_record["processes"] = num_processes()
        phase_records.append(phase_record)
        if not last:  # the last phase's state is model/, written once below
            state = _save_phase_state(output_dir, index, ctx, phase_record)
            shutil.rmtree(output_dir / "checkpoints" / name, ignore_errors=True)  # state/phase-i replaces them
            if cache is not None and resumed_from is None:  # a resumed phase's seconds are partial
                cache.store(index, ctx.encoder, phase_record, output_dir / "embeddings" / f"{index}-{name}.npy",
                            saved=state)

    classifier = ctx.classifier
    assert classifier is not None, "validated config: the last phase is ft"
    if not main:  # the main process scores and writes; the others return the classifier they trained alongside
        wait_for_everyone()
        return RunResult(output_dir, {}, classifier)
    metrics = {
        "recipe": config.recipe,
        "seed": config.seed,
        "model": config.model.name,
        "data": config.data.path,
        "max_length": max_length,
        "label_names": splits.label_names,
        "sizes": {"train": len(splits.train), "validation": len(splits.validation), "test": len(splits.test)},
        "unlabelled": {"texts": len(unlabelled), "evaluation_overlap": overlap,
                       "overlap_policy": config.data.unlabelled_overlap} if config.data.unlabelled_path else None,
        "validation": evaluate_split(classifier, splits, splits.validation),
        # Read once, after training; hyper-parameter search trials never read it (selection uses validation).
        "test": evaluate_split(classifier, splits, splits.test) if config.evaluate_test else None,
        "initial_embeddings": initial,
        **({"imbalance": splits.record["imbalance"]} if "imbalance" in splits.record else {}),
        **({"cross_validation": splits.record["cross_validation"]} if "cross_validation" in splits.record else {}),
        # a refit on train + validation: its validation scores are scores on training rows
        **({"validation_in_training": True} if "pool" in splits.record else {}),
        "phases": phase_records,
        "total_seconds": round(sum(p["seconds"] for p in phase_records), 3),
    }
    from phasefit.models.card import training_summary

    classifier.training_info = training_summary(metrics)  # kept in classifier.json, for the model card
    classifier.save(output_dir / "model")
    if config.plots and config.evaluate_test:
        write_plots(output_dir, splits, metrics)
    atomic_write_json(output_dir / "metrics.json", metrics)  # written last: its presence means "finished"
    shutil.rmtree(output_dir / "checkpoints", ignore_errors=True)
    shutil.rmtree(output_dir / STATE_DIR, ignore_errors=True)
    wait_for_everyone()  # no process exits (and tears down the process group) while the main one still writes
    return RunResult(output_dir, metrics, classifier)


def split_manifest(splits: DatasetSplits) -> dict[str, Any]:
    return {
        **splits.record,
        "label_names": splits.label_names,
        "label_separator": splits.label_separator,
        "ids": {name: getattr(splits, name).ids for name in ("train", "validation", "test")},
    }


def evaluate_split(classifier: PhaseFitClassifier, splits: DatasetSplits, part: LabelledSplit) -> dict[str, Any]:
    from phasefit.evaluation.metrics import classification_metrics

    gold = splits.label_ids(part)
    index = {name: i for i, name in enumerate(classifier.label_names)}
    predicted = [index[label] for label in classifier.predict(part.texts, part.text_pairs)]
    return classification_metrics(gold, predicted, classifier.label_names)


def embedding_record(ctx: PhaseContext, save_to: Path | None = None) -> dict[str, Any]:
    """k-NN accuracy and silhouette of the current encoder's validation embeddings (what the phase did);
    the validation embeddings are saved (float16) for the plots and the report."""
    record, val_vectors = ctx.embedding_scores()
    if save_to is not None:
        save_to.parent.mkdir(parents=True, exist_ok=True)
        np.save(save_to, val_vectors.astype(np.float16))
    return record


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


SELECTION_FILE = "selection.json"  # in a `phasefit select` output: the refit run(s) it chose


def selected_runs(folder: Path) -> list[Path] | None:
    """The refit run folders a `phasefit select` output chose (one, or an ensemble's), None for another folder."""
    if not (folder / SELECTION_FILE).is_file():
        return None
    record = json.loads((folder / SELECTION_FILE).read_text(encoding="utf-8"))
    return [folder / run for run in record["runs"]]


def selected_run(folder: Path) -> Path:
    """``folder``, or the run a `phasefit select` output in ``folder`` chose."""
    runs = selected_runs(folder)
    if runs is None:
        return folder
    if len(runs) > 1:
        raise RunDirectoryError(f"{folder} chose an ensemble of {len(runs)} runs ({', '.join(r.name for r in runs)}); "
                                "phasefit predict serves it, while this command needs one run: name one of "
                                f"{', '.join(str(r) for r in runs)}")
    return runs[0]


def load_run(run_dir: str | Path) -> tuple[RunConfig, PhaseFitClassifier]:
    """The resolved config and trained classifier of a finished run directory (or of the run a `phasefit select`
    output chose)."""
    from phasefit.config import read_yaml, validate_config
    from phasefit.models.classifier import PhaseFitClassifier

    run_dir = selected_run(Path(run_dir))
    if (run_dir / PEER_FILE).is_file():
        raise RunDirectoryError(f"{run_dir} holds a peer's run ({PEER_FILE}: setfit or probe, trained by its own "
                                "library), not a phasefit classifier; predict or export one of the recipes' runs")
    if not (run_dir / "model" / "classifier.json").is_file():
        raise RunDirectoryError(f"{run_dir} holds no finished run (no model/classifier.json); train one first")
    return validate_config(read_yaml(run_dir / "config.yaml")), PhaseFitClassifier.load(run_dir / "model")
