"""The phase cache: an encoder phase is reused only when everything it reads matches, and reuse changes nothing."""

from __future__ import annotations

from pathlib import Path

import pytest

from phasefit.recipes import build_config
from phasefit.pipeline import train
from tests.conftest import tiny_overrides

SHORT = ["dae.max_steps=2", "cl.max_steps=2", "ft.max_steps=3", "dae.batch_size=4", "cl.batch_size=4",
         "ft.epochs=1"]
PAPER_PAIRS = "cl.sampling=paper"  # the pairs of the paper-* recipes


def _config(recipe: str, model: Path, data: Path, *extra: str):
    return build_config(recipe, None, [*tiny_overrides(model), f"data.path={data}", *SHORT, *extra])


def _reused(metrics: dict) -> list[bool]:
    return [bool(p.get("reused_from_cache")) for p in metrics["phases"]]


def _scores(metrics: dict) -> dict:
    phases = [{k: p[k] for k in ("name", "final_loss", "validation_knn_accuracy", "seconds")} for p in metrics["phases"]]
    return {"validation": metrics["validation"], "test": metrics["test"], "phases": phases}


def test_a_cached_phase_gives_the_run_it_would_have_trained(tiny_model_dir: Path, toy_data_dir_module: Path,
                                                            tmp_path: Path) -> None:
    cache = f"phase_cache={tmp_path / 'cache'}"
    # 3phase on the paper's pairs, as paper-3phase builds them (3phase's default, auto, is another CL config)
    first = train(_config("3phase", tiny_model_dir, toy_data_dir_module, cache, PAPER_PAIRS),
                  tmp_path / "3phase").metrics
    assert _reused(first) == [False, False, False]
    assert len(list((tmp_path / "cache").iterdir())) == 2  # DAE and CL; FT is never cached

    # paper-3phase differs only in FT: both encoder phases come from the cache ...
    cached = train(_config("paper-3phase", tiny_model_dir, toy_data_dir_module, cache), tmp_path / "paper").metrics
    assert _reused(cached) == [True, True, False]
    # ... and the run equals one trained from scratch (the phase records keep their original cost).
    fresh = train(_config("paper-3phase", tiny_model_dir, toy_data_dir_module), tmp_path / "fresh").metrics
    got, want = _scores(cached), _scores(fresh)
    for phase_got, phase_want in zip(got.pop("phases")[:2], want.pop("phases")[:2]):
        assert phase_got["final_loss"] == phase_want["final_loss"]
        assert phase_got["validation_knn_accuracy"] == phase_want["validation_knn_accuracy"]
    assert got == {"validation": fresh["validation"], "test": fresh["test"]}
    assert cached["phases"][0]["seconds"] == first["phases"][0]["seconds"]


@pytest.mark.parametrize(("recipe", "extra", "expected"), [
    ("3phase-setfit", [], [True, False, False]),  # same DAE, other pairs in CL
    ("3phase", ["dae.noise_ratio=0.3"], [False, False, False]),  # DAE reads its noise ratio
    ("3phase", ["seed=1"], [False, False, False]),  # another seed: another split and initialisation
    ("3phase", ["cl.min_ratio=1.0"], [True, False, False]),  # CL's settings do not enter DAE's key
    ("3phase", ["data.max_length=24"], [False, False, False]),  # the token limit changes what DAE sees
    ("3phase", ["trainer.fused_optimizer=false"], [False, False, False]),  # another optimiser kernel
])
def test_reuse_only_when_every_input_of_the_phase_matches(recipe: str, extra: list[str], expected: list[bool],
                                                          tiny_model_dir: Path, toy_data_dir_module: Path,
                                                          tmp_path: Path) -> None:
    cache = f"phase_cache={tmp_path / 'cache'}"
    train(_config("3phase", tiny_model_dir, toy_data_dir_module, cache), tmp_path / "first")
    metrics = train(_config(recipe, tiny_model_dir, toy_data_dir_module, cache, *extra), tmp_path / "second").metrics
    assert _reused(metrics) == expected


def test_changed_data_misses(tiny_model_dir: Path, toy_data_dir: Path, tmp_path: Path) -> None:
    import pandas as pd

    cache = f"phase_cache={tmp_path / 'cache'}"
    train(_config("dae-ft", tiny_model_dir, toy_data_dir, cache), tmp_path / "first")
    frame = pd.read_csv(toy_data_dir / "train.csv")
    frame.loc[0, "text"] = frame.loc[0, "text"] + " tomorrow"  # one training text changed, same row ids
    frame.to_csv(toy_data_dir / "train.csv", index=False)
    metrics = train(_config("dae-ft", tiny_model_dir, toy_data_dir, cache), tmp_path / "second").metrics
    assert _reused(metrics) == [False, False]


def test_cache_keys_of_runs_made_before_the_trainer_options_existed_stay_valid(tiny_model_dir: Path,
                                                                              toy_data_dir_module: Path) -> None:
    """At the values earlier runs used (unfused AdamW, fp32, no accumulation) no trainer key enters the cache key,
    so entries written before those options existed are still found; at any other value the key changes."""
    from phasefit.phase_cache import PhaseCache
    from phasefit.run_data import load_run_data

    def key(*extra: str) -> tuple[str, dict]:
        config = _config("3phase", tiny_model_dir, toy_data_dir_module, *extra)
        return PhaseCache("unused", config, load_run_data(config), [], 32, model_content="m").key(1)

    legacy, inputs = key("trainer.fused_optimizer=false")
    assert "trainer" not in inputs
    assert key()[0] != legacy and key()[1]["trainer"] == {"trainer.fused_optimizer": True}


def test_the_cache_links_the_saved_encoder_instead_of_saving_it_again(tiny_model_dir: Path, toy_data_dir_module: Path,
                                                                      tmp_path: Path, monkeypatch) -> None:
    from sentence_transformers import SentenceTransformer

    saves: list[str] = []
    save = SentenceTransformer.save

    def counted(self, path, *args, **kwargs):
        saves.append(str(path))
        return save(self, path, *args, **kwargs)

    monkeypatch.setattr(SentenceTransformer, "save", counted)
    train(_config("3phase", tiny_model_dir, toy_data_dir_module, PAPER_PAIRS), tmp_path / "plain")
    plain = len(saves)
    assert plain >= 2  # the resume state of DAE and of CL at least

    saves.clear()
    cache = f"phase_cache={tmp_path / 'cache'}"
    train(_config("3phase", tiny_model_dir, toy_data_dir_module, cache, PAPER_PAIRS), tmp_path / "stored")
    assert len(saves) == plain  # storing DAE and CL in the cache wrote no encoder a second time
    saves.clear()
    metrics = train(_config("paper-3phase", tiny_model_dir, toy_data_dir_module, cache), tmp_path / "hit").metrics
    assert _reused(metrics) == [True, True, False]
    assert len(saves) == plain - 2  # the reused encoders' resume state is linked from the cache, not saved


def test_link_tree_shares_the_files_it_can(tmp_path: Path) -> None:
    import os

    from phasefit.io import link_tree

    (tmp_path / "src" / "sub").mkdir(parents=True)
    (tmp_path / "src" / "a.bin").write_bytes(b"weights")
    (tmp_path / "src" / "sub" / "b.json").write_text("{}")
    link_tree(tmp_path / "src", tmp_path / "dst")
    assert (tmp_path / "dst" / "a.bin").read_bytes() == b"weights"
    assert os.path.samefile(tmp_path / "src" / "sub" / "b.json", tmp_path / "dst" / "sub" / "b.json")
