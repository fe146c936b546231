"""A cache of finished encoder phases shared between runs (``phase_cache: DIR``), keyed by everything they read.

``3phase``, ``paper-3phase`` and ``3phase-setfit`` on the same data and seed train the same DAE encoder, and the
first two the same CL encoder too; the cache trains it once. An entry is reused only when its key matches: a
SHA-256 over the model (its resolved folder and the content of its weight files), the data (the texts, labels and
row ids of every split, the label set, the unlabelled texts), the seed, the token limit, and, for phase *i*, the
names of phases 1..i with the settings each of them reads. Anything else — the FT settings, the recipe's name, the
later phases — does not enter the key, because a phase cannot see it. The reused phase's record keeps its original
cost (so minutes per run stay what the recipe costs) and says ``reused_from_cache``.

The pipeline's resume path shows why loading is exact: each phase re-seeds itself (seed + position) and reads only
the encoder weights it is handed, so a phase loaded from disk and one kept in memory give the same run, bit for bit
on CPU (``tests/test_phase_cache.py``).
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

from phasefit.fingerprint import LATER_KEY_DEFAULTS, data_fingerprint, effective_config, model_fingerprint, sha256
from phasefit.io import atomic_directory, atomic_write_json, commit_directory, link_tree

if TYPE_CHECKING:
    from phasefit.config import RunConfig
    from phasefit.data import DatasetSplits

logger = logging.getLogger(__name__)

# The config sections each encoder phase reads (Joint takes its pairs from ``cl`` and its texts and budget from
# ``dae``); a phase's key covers these sections of it and of every phase before it.
PHASE_SECTIONS: dict[str, tuple[str, ...]] = {
    "dae": ("dae",),
    "mlm": ("mlm",),
    "cl": ("cl",),
    "joint": ("joint", "cl", "dae"),
    "supcon": ("supcon",),
    "simclr": ("simclr",),
}


class PhaseCache:
    """Entries ``DIR/<index>-<phase>-<key>/`` holding ``encoder/``, ``record.json``, ``embeddings.npy``, ``key.json``."""

    def __init__(self, root: str | Path, config: RunConfig, splits: DatasetSplits, unlabelled: list[str],
                 max_length: int, model_content: str | None = None):
        from phasefit.models.encoder import resolve_model_path

        self.root = Path(root)
        content = model_content or model_fingerprint(resolve_model_path(config.model.name))
        self.base = {
            "model": {**config.model.model_dump(mode="json"), "content": content},
            "data": data_fingerprint(splits, unlabelled),
            "data_settings": {k: v for k, v in config.data.model_dump(mode="json").items()
                              if not (f"data.{k}" in LATER_KEY_DEFAULTS and v == LATER_KEY_DEFAULTS[f"data.{k}"])},
            "seed": config.seed,
            "max_length": max_length,
        }
        self.config = config

    def key(self, index: int) -> tuple[str, dict[str, Any]]:
        phases = self.config.phases[:index]
        sections = {section: getattr(self.config, section).model_dump(mode="json")
                    for name in phases for section in PHASE_SECTIONS[name]}
        inputs = {**self.base, "phases": phases, "settings": sections}
        # Trainer options that change the numbers (fused optimiser, precision, accumulation) and the process count:
        # only those away from what runs made before they existed did, so those runs' entries keep their keys.
        trainer = {k: v for k, v in effective_config(self.config).items()
                   if k.startswith("trainer.") or k == "processes"}
        if trainer:
            inputs["trainer"] = trainer
        return sha256(inputs), inputs

    def _folder(self, index: int) -> tuple[Path, dict[str, Any]]:
        key, inputs = self.key(index)
        return self.root / f"{index}-{self.config.phases[index - 1]}-{key[:24]}", inputs

    def lookup(self, index: int) -> Path | None:
        """The cached phase ``index`` (1-based) for this run's inputs, or None."""
        if self.config.phases[index - 1] not in PHASE_SECTIONS:
            return None
        folder, inputs = self._folder(index)
        key_file = folder / "key.json"
        if not key_file.is_file():
            return None
        if json.loads(key_file.read_text(encoding="utf-8")) != json.loads(json.dumps(inputs, default=str)):
            return None  # a prefix collision of the folder name; never reuse on a mismatch
        return folder

    def store(self, index: int, encoder: Any, record: dict[str, Any], embeddings: Path, *,
              saved: Path | None = None) -> None:
        """Keep phase ``index``'s encoder; ``saved``: a folder where the run already saved it (its files are
        hard-linked, not written a second time)."""
        if self.config.phases[index - 1] not in PHASE_SECTIONS:
            return
        folder, inputs = self._folder(index)
        tmp = atomic_directory(folder)
        try:
            if saved is not None:
                link_tree(saved, tmp / "encoder")
            else:
                encoder.save(str(tmp / "encoder"), safe_serialization=True)
            shutil.copy(embeddings, tmp / "embeddings.npy")
            (tmp / "record.json").write_text(json.dumps(record, default=str), encoding="utf-8")
            atomic_write_json(tmp / "key.json", inputs)
            commit_directory(tmp, folder)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
