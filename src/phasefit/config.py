"""Typed run configuration: one model per phase, composed into :class:`RunConfig`.

A run config is YAML (or a dict) with top-level sections ``data``, ``model``, one section per phase type
(``dae``, ``cl``, ``joint``, ``ft``, ...) and ``phases``, the ordered list of phases to run. A *recipe* is a named
preset of these same keys (see :mod:`phasefit.recipes`); the user's file and ``--set a.b=c`` overrides are applied
on top of it. Every key is validated up front: an unknown key, a wrong type or an impossible value fails before any
work starts, with the dotted key in the message.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from phasefit.errors import ConfigError

DEFAULT_MODEL = "sentence-transformers/all-MiniLM-L6-v2"
# The phases a run may list, each with its section below; phasefit.phases.PHASES maps them to their classes (a
# test checks both name the same phases). Named here so that validating a config imports no phase code.
PHASE_NAMES = ("dae", "mlm", "cl", "joint", "supcon", "simclr", "ft")


class _Section(BaseModel):
    # extra="forbid": a misspelt key is an error, not silently ignored.
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class DataConfig(_Section):
    path: str = Field("builtin:snips", description="Folder of split files, a single file, 'hf:NAME' or 'builtin:snips'.")
    text_column: str = Field("text", description="Column holding the text.")
    label_column: str = Field("label", description="Column holding the label.")
    text_pair_column: str | None = Field(None, description="Optional second text column.")
    label_separator: str | None = Field(None, description="Separator of hierarchical labels, e.g. '.'.")
    label_depth: int | None = Field(None, ge=1, description="Truncate/pad hierarchical labels to this many levels.")
    validation_fraction: float = Field(0.2, gt=0, lt=1, description="Stratified share of train used when no validation file.")
    test_fraction: float = Field(0.1, gt=0, lt=1, description="Stratified share of train used when no test file.")
    max_train_examples: int | None = Field(None, ge=2, description="Stratified subset of train (big sets on CPU).")
    max_eval_examples: int | None = Field(None, ge=2, description="Stratified subset of validation and of test.")
    max_validation_examples: int | None = Field(None, ge=2, description="Cap on validation alone (overrides max_eval_examples).")
    max_test_examples: int | None = Field(None, ge=2, description="Cap on test alone (overrides max_eval_examples).")
    few_shot_n: int | None = Field(None, ge=1, description="Draw N training examples with the label distribution.")
    few_shot_k: int | None = Field(None, ge=1, description="Draw K training examples per class.")
    few_shot_seed: int | None = Field(None, ge=0, description="Seed of the few-shot draw (default: the run seed).")
    split_seed: int | None = Field(
        None, ge=0, description="Seed of the validation/test split and the subsets (default: the run seed); fix it to "
        "keep the same evaluation sets across seeds (the size study)."
    )
    cv_folds: int | None = Field(
        None, ge=2, description="Cross-validation: the labelled pool (train + validation) cut into this many "
        "stratified folds, seeded by the split seed; cv_fold names the fold that validates (phasefit select --cv)."
    )
    cv_fold: int | None = Field(None, ge=0, description="With cv_folds: the fold held out as validation; train is the rest.")
    train_on: Literal["train", "pool"] = Field(
        "train", description="pool: train on train + validation (a refit after model selection; validation scores "
        "are then scores on training rows and metrics.json says so). Test is untouched."
    )
    imbalance_ratio: float | None = Field(
        None, ge=1, description="Down-sample train so class sizes fall geometrically to largest:smallest = this "
        "(imbalance study); validation and test untouched."
    )
    imbalance_largest: int | None = Field(
        None, ge=1, description="Size of the largest class under imbalance_ratio (default: the smallest class count)."
    )
    imbalance_seed: int | None = Field(None, ge=0, description="Seed of which classes become rare (default: the run seed).")
    augment_noise_level: float = Field(0.0, ge=0, lt=1, description="Add noisy copies of train texts at this word-noise level (robustness protocol).")
    augment_copies: int = Field(1, ge=1, description="Noisy copies per training text when augment_noise_level > 0.")
    unlabelled_path: str | None = Field(None, description="Text file (one text per line) of extra DAE texts.")
    unlabelled_overlap: Literal["drop", "keep"] = Field(
        "drop", description="Unlabelled texts that also occur in validation/test: drop (default, warns) or keep (a leak)."
    )
    max_length: Literal["model", "data", "sample"] | int = Field(
        "data", description="Token limit: 'model', 'data' (longest train text x1.2), 'sample' (10% sample x1.2) or a number."
    )

    @field_validator("max_length")
    @classmethod
    def _positive_length(cls, value: Any) -> Any:
        if isinstance(value, int) and value < 8:
            raise ValueError("max_length must be 'model', 'data', 'sample' or an integer >= 8")
        return value

    @model_validator(mode="after")
    def _one_few_shot_mode(self) -> DataConfig:
        if self.few_shot_n is not None and self.few_shot_k is not None:
            raise ValueError("set only one of few_shot_n and few_shot_k")
        if (self.cv_folds is None) != (self.cv_fold is None):
            raise ValueError("set cv_folds and cv_fold together (fold cv_fold of cv_folds validates), or neither")
        if self.cv_folds is not None and self.cv_fold >= self.cv_folds:
            raise ValueError(f"cv_fold={self.cv_fold} must be below cv_folds={self.cv_folds} (folds count from 0)")
        if self.cv_folds is not None and self.train_on == "pool":
            raise ValueError("train_on=pool trains on every labelled row, so no fold is left to validate; unset "
                             "cv_folds/cv_fold or set train_on=train")
        return self


class ModelConfig(_Section):
    name: str = Field(DEFAULT_MODEL, description="Hub name or local path of the encoder.")
    pooling: Literal["model", "mean", "cls"] = Field("model", description="Pooling: the model's own, mean or CLS.")
    trust_remote_code: bool = Field(False, description="Run model code shipped with the checkpoint (off: untrusted).")
    allow_pickle: bool = Field(False, description="Accept pickle (.bin) weights, which can run code when loaded.")


class OptimConfig(_Section):
    """Settings every training phase shares: epochs, batch, optimiser and schedule (paper 003 §3)."""

    epochs: int = Field(1, ge=1, description="Epochs (maximum epochs for phases with early stopping).")
    batch_size: int = Field(16, ge=1)
    lr: float = Field(5e-5, gt=0, description="Learning rate (of the pooler/top; each layer below x layer_decay).")
    weight_decay: float = Field(0.0, ge=0)
    adam_epsilon: float = Field(1e-6, gt=0, description="AdamW epsilon.")
    optimizer: Literal["adamw", "sgd"] = "adamw"
    momentum: float = Field(0.9, ge=0, lt=1, description="SGD momentum.")
    schedule: Literal["constant", "linear", "cosine"] = Field("linear", description="LR schedule after warm-up.")
    warmup_ratio: float = Field(0.1, ge=0, lt=1, description="Share of steps with linear warm-up.")
    min_lr_ratio: float = Field(0.0, ge=0, lt=1, description="Cosine floor eta_min as a share of the peak lr.")
    layer_decay: float = Field(1.0, gt=0, le=1, description="Layer-wise lr decay factor (1 = off).")
    max_grad_norm: float = Field(1.0, gt=0)
    max_steps: int | None = Field(None, ge=1, description="Stop after this many optimiser steps (smoke runs, tests).")


class EncoderPhaseConfig(OptimConfig):
    """Settings of a phase that shapes the encoder without a classifier (DAE, CL, Joint, SupCon, SimCLR)."""

    select_epoch: bool = Field(
        False, description="Score validation k-NN accuracy after every epoch and keep the best epoch's encoder."
    )


class DAEConfig(EncoderPhaseConfig):
    """Phase 1: TSDAE denoising auto-encoder on training (+ unlabelled) texts (paper 000 §3.1)."""

    epochs: int = Field(4, ge=1, description="Epochs; the noise is drawn afresh every epoch.")
    noise_ratio: float = Field(0.6, ge=0, lt=1, description="Fraction of words deleted (search space 0.3-0.7).")
    tie_decoder: bool = Field(True, description="Share the decoder's weights with the encoder.")
    bottleneck: Literal["before_normalize", "after_normalize"] = Field(
        "before_normalize",
        description="Where the Dense bottleneck goes when the encoder ends in Normalize: before it (TSDAE: the "
        "decoder reads the raw pooled vector) or after it (phasefit <= 0.1: a unit vector).",
    )
    max_texts: int | None = Field(None, ge=1, description="Cap on phase-1 texts (seeded sample), for big sets on CPU.")


class MLMConfig(EncoderPhaseConfig):
    """An alternative phase 1: masked-language-model adaptation on training (+ unlabelled) texts, with the model's
    own MLM head where its checkpoint has one (random otherwise)."""

    epochs: int = Field(4, ge=1, description="Epochs (DAE's budget); the masks are drawn afresh every epoch.")
    mask_probability: float = Field(0.15, gt=0, lt=1, description="Share of non-special tokens to predict (BERT: 0.15).")
    max_texts: int | None = Field(None, ge=1, description="Cap on phase-1 texts (seeded sample), for big sets on CPU.")


class CLConfig(EncoderPhaseConfig):
    """Phase 2: siamese cosine-similarity learning on class pairs, with imbalance correction (paper 000 §3.2)."""

    epochs: int = Field(3, ge=1)
    imbalance: bool = Field(True, description="Apply the imbalance correction (eq. 4-6) before pairing.")
    min_ratio: float = Field(1.5, ge=0, description="Lower bound of the oversampling ratio.")
    max_ratio: float = Field(4.0, gt=0, description="Ratio given to a class of one example (f(1)).")
    noise_min_words: int = Field(6, ge=1, description="Oversampled copies with at least this many words get stop-word deletion.")
    stop_word_ratio: float = Field(0.5, ge=0, le=1, description="Share of stop words deleted in an oversampled copy.")
    sampling: Literal["paper", "setfit", "auto"] = Field(
        "auto", description="Pairs: shuffled zips (paper), SetFit pos/neg draws, or auto: the paper's unless they "
                            "give fewer than auto_min_positives positive pairs per class, then SetFit's (measured: "
                            "docs/method.md, departure 10).")
    auto_min_positives: float = Field(10.0, gt=0, description="sampling=auto's threshold, positive pairs per class.")
    augmentation_factor: int = Field(4, ge=1, description="Shuffled copies = factor x floor(log2 K).")
    balance_targets: bool = Field(True, description="Down-sample pairs so every target value has the same count.")
    setfit_iterations: int = Field(5, ge=1, description="Positive+negative draws per example (sampling=setfit).")
    max_pairs: int | None = Field(None, ge=1, description="Cap on pairs (seeded sample), for big sets on CPU.")

    @model_validator(mode="after")
    def _ratio_order(self) -> CLConfig:
        if self.min_ratio > self.max_ratio:
            raise ValueError(f"min_ratio ({self.min_ratio}) must not exceed max_ratio ({self.max_ratio})")
        return self


class JointConfig(EncoderPhaseConfig):
    """DAE and CL trained together, L = L_DAE + L_CL (paper 000 §3.3.1); pairs come from the ``cl`` settings.

    Joint has one Dense layer (3phase has two: DAE's bottleneck and CL's). With ``epochs`` unset it trains as
    long as DAE + CL together: every stream sees at least its staged budget (``dae.epochs`` passes over the texts,
    ``cl.epochs`` over the pairs); paper 000 Table 5 gives no Joint budget.
    """

    epochs: int | None = Field(
        None, ge=1, description="Epochs over the longer stream; unset = the budget of dae.epochs + cl.epochs."
    )

    noise_ratio: float = Field(0.6, ge=0, lt=1, description="Fraction of words deleted for the DAE stream.")
    tie_decoder: bool = True
    dae_weight: float = Field(1.0, ge=0, description="Weight of L_DAE.")
    cl_weight: float = Field(1.0, ge=0, description="Weight of L_CL.")


class FTConfig(OptimConfig):
    """Phase 3: encoder + 2-layer MLP head trained with cross-entropy (paper 000 eq. 7-9)."""

    epochs: int = Field(15, ge=1, description="Maximum epochs (early stopping may end sooner).")
    lr: float = Field(1e-4, gt=0, description="Encoder learning rate (pooler/top; each layer below x layer_decay).")
    head_lr: float = Field(2e-3, gt=0, description="Learning rate of the classification head.")
    weight_decay: float = Field(0.01, ge=0)
    adam_epsilon: float = Field(1e-8, gt=0, description="AdamW epsilon (paper 000 uses 2e-5).")
    freeze_encoder: bool = Field(False, description="Train only the head (embeddings cached once).")
    head_hidden: int = Field(256, ge=1, description="Hidden width of the MLP head.")
    head_dropout: float = Field(0.1, ge=0, lt=1)
    activation: Literal["gelu", "relu", "tanh"] = "gelu"
    patience: int = Field(3, ge=1, description="Early-stopping patience in epochs.")
    early_stopping: bool = Field(
        True, description="Score validation every epoch, stop after `patience` epochs without gain and keep the best "
        "epoch; false: train exactly `epochs` (a refit whose epoch count cross-validation chose)."
    )
    metric: Literal["accuracy", "macro_f1"] = Field("macro_f1", description="Validation metric for selection.")
    class_weight: Literal["none", "balanced"] = Field(
        "none", description="Cross-entropy class weights: none, or balanced (n / (C x n_c), scikit-learn's rule: "
        "rare classes weigh more), the usual first answer to class imbalance."
    )
    scl_weight: float = Field(0.0, ge=0, le=1, description="lambda of L = (1-lambda) CE + lambda SCL (paper 002); 0 = CE only.")
    scl_temperature: float = Field(0.3, gt=0, description="tau of the SCL term.")
    scl_reduction: Literal["mean", "sum"] = Field(
        "mean", description="SCL over the batch: mean over anchors (phasefit) or sum (Gunel eq. 2; CE stays a mean)."
    )
    sampler: Literal["random", "label-aware"] = Field(
        "random", description="Batch order; label-aware puts same-class pairs in every batch (for SCL)."
    )
    group_by_length: bool = Field(
        True, description="With sampler=random: batches of similar token lengths (the Trainer's length-grouped "
        "sampler), so dynamic padding pads less; false: plain random batches."
    )

    @model_validator(mode="after")
    def _scl_needs_encoder(self) -> FTConfig:
        if self.scl_weight > 0 and self.freeze_encoder:
            raise ValueError(
                "scl_weight > 0 with freeze_encoder=true: the SCL term shapes the encoder's embeddings, which a frozen "
                "encoder cannot change (only the head would train, and SCL would be silently dropped); set "
                "ft.freeze_encoder=false or ft.scl_weight=0"
            )
        return self


class ContrastiveConfig(EncoderPhaseConfig):
    """Contrastive pre-training of the encoder: SupCon (labels) or SimCLR (dropout views), paper 003 §3.3.

    Paper 003's set-up: sentence vector -> dropout -> linear projection head, the loss on the projections; the
    projection head is dropped afterwards (the classifier reads the encoder's vector). Its best run used layer-wise
    lr decay (0.9) with a 20% linear warm-up, the defaults here.
    """

    epochs: int = Field(3, ge=1)
    batch_size: int = Field(32, ge=2, description="Larger batches hold more negatives (paper 003: 64 / 256).")
    lr: float = Field(1e-4, gt=0)
    warmup_ratio: float = Field(0.2, ge=0, lt=1)
    layer_decay: float = Field(0.9, gt=0, le=1, description="Layer-wise lr decay (paper 003's best: 0.9).")
    projection_dim: int | None = Field(
        None, ge=1, description="Projection head output width; unset = the embedding width."
    )
    projection: bool = Field(True, description="Train the loss on dropout -> linear projections (paper 003).")
    projection_dropout: float = Field(0.1, ge=0, lt=1, description="Dropout before the projection (paper 003 SimCLR: 0.9).")
    temperature: float = Field(0.1, gt=0, description="tau of the contrastive loss.")
    views: int = Field(2, ge=2, description="Views per text (dropout noise makes them differ).")
    view_noise_ratio: float = Field(0.0, ge=0, lt=1, description="Extra word deletion per view (0 = dropout only).")
    sampler: Literal["random", "label-aware"] = Field("label-aware", description="Batch order (SupCon).")


class TrainerConfig(_Section):
    """``transformers.Trainer`` options every phase passes through: logging integrations, mixed precision, gradient
    accumulation and data-loading workers."""

    report_to: list[str] = Field(
        default_factory=list, description="Logging integrations, e.g. [tensorboard] (logs in RUN/logs/<phase>), "
        "[wandb], [mlflow]; each needs its package."
    )
    mixed_precision: Literal["no", "auto", "bf16", "fp16"] = Field(
        "no", description="Mixed precision: 'auto' = bf16 on a GPU that supports it, fp16 on other GPUs, off on CPU "
        "(bf16 is slower than fp32 on CPUs without AMX)."
    )
    gradient_accumulation_steps: int = Field(1, ge=1, description="Batches per optimiser step (effective batch = "
                                             "batch_size x this).")
    dataloader_num_workers: int = Field(0, ge=0, description="Data-loading worker processes (0: in the main process).")
    fused_optimizer: bool = Field(True, description="torch's fused AdamW (5x faster optimiser steps on CPU; float "
                                  "rounding differs). false: the default implementation, which runs made before "
                                  "this option existed used.")

    @field_validator("report_to", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [] if value in ("none", "") else [value]
        return value


class RunConfig(_Section):
    recipe: str = Field("ft", description="Recipe name (a preset of phases and settings).")
    seed: int = Field(0, ge=0)
    phases: list[str] = Field(default_factory=lambda: ["ft"], description="Phases in order, e.g. [dae, cl, ft].")
    data: DataConfig = Field(default_factory=DataConfig)
    model: ModelConfig = Field(default_factory=ModelConfig)
    dae: DAEConfig = Field(default_factory=DAEConfig)
    mlm: MLMConfig = Field(default_factory=MLMConfig)
    cl: CLConfig = Field(default_factory=CLConfig)
    joint: JointConfig = Field(default_factory=JointConfig)
    supcon: ContrastiveConfig = Field(default_factory=ContrastiveConfig)
    simclr: ContrastiveConfig = Field(
        default_factory=lambda: ContrastiveConfig(sampler="random", projection_dropout=0.9)
    )
    ft: FTConfig = Field(default_factory=FTConfig)
    trainer: TrainerConfig = Field(default_factory=TrainerConfig)
    progress: bool = Field(True, description="Show progress bars.")
    evaluate_test: bool = Field(True, description="Score the test split after training (off in search trials).")
    plots: bool = Field(True, description="Write embeddings.png (t-SNE per phase) and confusion_matrix.png.")
    phase_cache: str | None = Field(
        None, description="Folder of finished encoder phases shared by runs; a phase whose model, data, seed and "
        "settings match a cached one is loaded instead of trained (grids, select)."
    )

    @model_validator(mode="after")
    def _phases_known(self) -> RunConfig:
        if len(set(self.phases)) != len(self.phases):
            raise ValueError(f"each phase may appear once, got phases={self.phases}")
        unknown = [name for name in self.phases if name not in PHASE_NAMES]
        if unknown:
            raise ValueError(f"unknown phase(s) {unknown}; available: {sorted(PHASE_NAMES)}")
        if not self.phases or self.phases[-1] not in {"ft"}:
            raise ValueError(f"the last phase must train the classifier ('ft'), got phases={self.phases}")
        return self

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


# ----------------------------------------------------------------------------------------------------------------
# Reading, checking and writing configs (building one from a recipe is phasefit.recipes.build_config)


def read_yaml(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {path} not found; pass an existing YAML file to --config")
    try:
        loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as err:
        raise ConfigError(f"config file {path} is not valid YAML: {err}") from err
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise ConfigError(f"config file {path}: top level must be a mapping of keys, got {type(loaded).__name__}")
    return loaded


def validate_config(raw: dict[str, Any]) -> RunConfig:
    try:
        return RunConfig.model_validate(raw)
    except ValidationError as err:
        lines = []
        for problem in err.errors():
            key = ".".join(str(part) for part in problem["loc"])
            message = problem["msg"].removeprefix("Value error, ")
            if not key:
                lines.append(f"  {message}")
            elif problem["type"] == "extra_forbidden":
                lines.append(f"  {key}: unknown key; check the spelling (`phasefit config` lists every key)")
            else:
                lines.append(f"  {key}: {message} (got {problem.get('input')!r})")
        raise ConfigError("invalid config:\n" + "\n".join(lines)) from None


def save_config(config: RunConfig, path: Path) -> None:
    from phasefit.io import atomic_write_text

    atomic_write_text(path, yaml.safe_dump(config.to_dict(), sort_keys=False))


def describe_config() -> str:
    """One line per config key with its default and help text (for ``--help-config``)."""
    lines = []
    sections: dict[str, type[BaseModel]] = {"": RunConfig}
    for key, field in RunConfig.model_fields.items():
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            sections[key] = annotation
    for prefix, model in sections.items():
        for key, field in model.model_fields.items():
            annotation = field.annotation
            if prefix == "" and isinstance(annotation, type) and issubclass(annotation, BaseModel):
                continue
            default = field.get_default(call_default_factory=True)
            name = f"{prefix}.{key}" if prefix else key
            lines.append(f"{name} = {default!r}  {field.description or ''}".rstrip())
    return "\n".join(lines)
