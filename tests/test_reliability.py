"""The bad-input matrix of docs/reliability.md, interruption and resume, numerical and resource guards.

Every bad-input row goes through the real command line (``main(["train", ...])``) and must end in exit code 2 with
one message that names the file/row/key and the fix, leaving nothing in the output directory but ``error.log``.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections import namedtuple
from pathlib import Path

import pandas as pd
import pytest

from phasefit.cli import EXIT_USER_ERROR, main
from phasefit.training.trainer import checkpoints
from tests.conftest import tiny_overrides

Row = namedtuple("Row", "name files argv fragments")

GOOD = [("book a table for two", "booking"), ("reserve a room downtown", "booking"), ("play some jazz", "music"),
        ("put on rock music", "music"), ("will it rain tomorrow", "weather"), ("is it sunny in paris", "weather")] * 4


def _csv(rows: list[tuple[object, object]]) -> str:
    return pd.DataFrame(rows, columns=["text", "label"]).to_csv(index=False)


def _files(train: str | bytes, **others: str | bytes) -> dict[str, str | bytes]:
    return {"train.csv": train, **{f"{name}.csv": text for name, text in others.items()}}


BAD_INPUTS = [
    Row("missing file", {}, ["--data", "{tmp}/nowhere"], ["not found", "nowhere"]),
    Row("unknown format", {"data.xlsx": "x"}, ["--data", "{tmp}/data/data.xlsx"], [".xlsx", ".csv"]),
    Row("missing text column", _files("sentence,label\nhello,a\n"), [], ["'text'", "data.text_column", "sentence"]),
    Row("missing label column", _files("text,intent\nhello,a\n"), [], ["'label'", "data.label_column", "intent"]),
    Row("empty text", _files(_csv(GOOD + [("", "music")])), [], ["train.csv", "row 25", "text"]),
    Row("whitespace-only text", _files(_csv(GOOD + [("   ", "music")])), [], ["train.csv", "row 25"]),
    Row("NaN label", _files(_csv(GOOD + [("play jazz", None)])), [], ["train.csv", "row 25", "label"]),
    Row("single class", _files(_csv([(t, "music") for t, _ in GOOD])), [], ["one class", "music"]),
    Row("class with one example", _files(_csv(GOOD + [("call mom", "phone")])), [],
        ["class 'phone' has 1 example(s)", "needs at least 2", "Add examples of 'phone'", "provide a test file",
         "drop the class"]),
    Row("unseen test label", _files(_csv(GOOD), test=_csv([("call mom", "phone")]), validation=_csv(GOOD[:6])), [],
        ["test.csv", "row 1", "phone"]),
    Row("uneven label hierarchy", _files(_csv([(t, "a.b" if i % 2 else "c.d.e") for i, (t, _) in enumerate(GOOD)])),
        ["--set", "data.label_separator=."],
        ["train.csv row 2", "has 2 levels", "train.csv row 1", "has 3", "data.label_depth=N"]),
    Row("undecodable bytes", _files(b"text,label\n" + "caf\u00e9 ok,a\n".encode("latin-1") * 12 + b"x,b\n" * 12), [],
        ["train.csv byte 14 (line 2 of the file): not valid UTF-8 (byte 0xe9)", "Re-save the file as UTF-8"]),
    Row("unknown config key", _files(_csv(GOOD)), ["--set", "ft.epoch=3"], ["ft.epoch", "unknown key"]),
    Row("wrong type", _files(_csv(GOOD)), ["--set", "ft.epochs=many"], ["ft.epochs", "integer"]),
    Row("negative learning rate", _files(_csv(GOOD)), ["--set", "ft.lr=-0.1"], ["ft.lr", "greater than 0"]),
    Row("noise ratio outside [0, 1)", _files(_csv(GOOD)), ["--recipe", "3phase", "--set", "dae.noise_ratio=1.0"],
        ["dae.noise_ratio", "less than 1"]),
    Row("min_ratio > max_ratio", _files(_csv(GOOD)), ["--recipe", "3phase", "--set", "cl.min_ratio=5"],
        ["min_ratio (5.0) must not exceed max_ratio (4.0)"]),
    Row("unknown recipe", _files(_csv(GOOD)), ["--recipe", "4phase"], ["unknown recipe '4phase'", "3phase"]),
    Row("unknown phase", _files(_csv(GOOD)), ["--set", "phases=[elmo, ft]"], ["unknown phase", "elmo"]),
    Row("model path without weights", {**_files(_csv(GOOD)), "model/config.json": "{}"},
        ["--set", "model.name={tmp}/data/model"], ["no weights", "save_pretrained"]),
    Row("uncached hub model", _files(_csv(GOOD)), ["--set", "model.name=someone/not-a-model"],
        ["never downloads", "--model DIR"]),
]


def _materialise(row: Row, tmp_path: Path) -> Path:
    data = tmp_path / "data"
    data.mkdir()
    for name, content in row.files.items():
        target = data / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
    return data


@pytest.mark.parametrize("row", BAD_INPUTS, ids=[row.name for row in BAD_INPUTS])
def test_bad_input_matrix(row: Row, tiny_model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    data = _materialise(row, tmp_path)
    out = tmp_path / "run"
    argv = ["train", "--data", str(data), "--recipe", "ft", "--output", str(out)]
    for item in tiny_overrides(tiny_model_dir):
        argv += ["--set", item]
    argv += [arg.replace("{tmp}", str(tmp_path)) for arg in row.argv]  # later flags win
    assert main(argv) == EXIT_USER_ERROR
    err = capsys.readouterr().err
    assert err.startswith("phasefit: error:") and err.count("phasefit: error:") == 1
    for fragment in row.fragments:
        assert fragment in err, (fragment, err)
    assert sorted(p.name for p in out.iterdir()) == ["error.log"]
    assert err.removeprefix("phasefit: error: ").strip() in (out / "error.log").read_text()


def test_pickle_only_model_is_refused(tiny_hf_dir: Path, toy_data_dir: Path, tmp_path: Path,
                                      capsys: pytest.CaptureFixture) -> None:
    import torch
    from safetensors.torch import load_file

    model = tmp_path / "pickled"
    shutil.copytree(tiny_hf_dir, model)
    torch.save(load_file(model / "model.safetensors"), model / "pytorch_model.bin")
    (model / "model.safetensors").unlink()
    assert main(["train", "--data", str(toy_data_dir), "--model", str(model), "--output", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert "only pickle weights" in err and "convert it to safetensors" in err and "model.allow_pickle=true" in err
    assert sorted(p.name for p in (tmp_path / "r").iterdir()) == ["error.log"]  # refused before anything ran


def test_dae_on_an_encoder_without_decoder_fails_before_the_run(tiny_hf_dir: Path, toy_data_dir: Path,
                                                                 tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from transformers import MPNetConfig, MPNetModel

    folder = tmp_path / "mpnet"
    MPNetModel(MPNetConfig(vocab_size=200, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                           intermediate_size=64, max_position_embeddings=70)).save_pretrained(folder)
    for name in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(tiny_hf_dir / name, folder / name)
    out = tmp_path / "run"
    assert main(["train", "--data", str(toy_data_dir), "--recipe", "3phase", "--model", str(folder),
                 "--output", str(out)]) == 2
    assert "MPNet is the known case" in capsys.readouterr().err
    assert sorted(p.name for p in out.iterdir()) == ["error.log"]


def test_a_ten_megabyte_text_is_truncated_not_a_crash(tiny_model_dir: Path, tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    huge = " ".join(["jazz"] * 2_000_000)  # 10 MB in one field
    (data / "train.csv").write_text(_csv(GOOD + [(huge, "music")]))
    argv = ["train", "--data", str(data), "--output", str(tmp_path / "run"), "--set", "data.max_length=model"]
    for item in tiny_overrides(tiny_model_dir):
        if not item.startswith("data.max_length"):
            argv += ["--set", item]
    assert main([*argv, "--set", "ft.max_steps=2"]) == 0
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["max_length"] == 64  # the model's limit
    assert sum(metrics["sizes"].values()) == len(GOOD) + 1  # the huge row was kept, not dropped
    from phasefit.models.classifier import PhaseFitClassifier

    classifier = PhaseFitClassifier.load(tmp_path / "run" / "model")
    assert classifier.tokenize([huge])["input_ids"].shape[1] == 64  # truncated to the policy
    assert classifier.predict([huge])[0] in {"booking", "music", "weather"}


def test_unwritable_output_and_full_disk(tiny_model_dir: Path, toy_data_dir: Path, tmp_path: Path,
                                         monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    sets = [arg for item in tiny_overrides(tiny_model_dir) for arg in ("--set", item)]
    assert main(["train", "--data", str(toy_data_dir), "--output", str(blocker / "run"), *sets]) == 2
    assert "cannot write to output directory" in capsys.readouterr().err

    usage = shutil.disk_usage(tmp_path)
    monkeypatch.setattr(shutil, "disk_usage", lambda _: usage._replace(free=10 * 2**20))
    out = tmp_path / "run"
    assert main(["train", "--data", str(toy_data_dir), "--output", str(out), *sets]) == 2
    err = capsys.readouterr().err
    assert "not enough free disk space" in err and "MB free" in err
    assert sorted(p.name for p in out.iterdir()) == ["error.log"]


def test_non_finite_loss_stops_the_phase_with_its_cause(tiny_model_dir: Path, toy_data_dir: Path, tmp_path: Path,
                                                        capsys: pytest.CaptureFixture) -> None:
    sets = [arg for item in tiny_overrides(tiny_model_dir) for arg in ("--set", item)]
    code = main(["train", "--data", str(toy_data_dir), "--output", str(tmp_path / "run"), *sets,
                 "--set", "ft.lr=1e30", "--set", "ft.head_lr=1e30", "--set", "ft.max_grad_norm=1e30",
                 "--set", "ft.warmup_ratio=0"])
    assert code == 2
    err = capsys.readouterr().err
    assert "phase ft: the training loss became" in err and "learning rate too high" in err and "at step" in err
    assert not (tmp_path / "run" / "metrics.json").exists()


def test_grid_names_cannot_escape_the_output(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    grid = tmp_path / "grid.yaml"
    grid.write_text("recipes: [ft]\ndatasets:\n  ../../escape: {path: builtin:snips}\n")
    assert main(["experiment", "--config", str(grid), "--output", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "../../escape" in err and "must be plain folder names" in err and "no '..'" in err
    assert not (tmp_path.parent / "escape").exists() and not (tmp_path / "out").exists()


# --- interruption -------------------------------------------------------------------------------------------------


def _train_command(model_dir: Path, data_dir: Path, out: Path, *extra: str) -> list[str]:
    sets = [arg for item in [*tiny_overrides(model_dir), "dae.epochs=2", "cl.epochs=2", "ft.epochs=3",
                             "dae.batch_size=8", "cl.batch_size=8", "plots=false"] for arg in ("--set", item)]
    return [sys.executable, "-m", "phasefit.cli", "train", "--data", str(data_dir), "--recipe", "3phase",
            "--output", str(out), *sets, *extra]


def _comparable(metrics: dict) -> dict:
    """Everything but wall-clock measurements."""
    drop = {"seconds", "examples_per_second", "peak_memory_mb", "resumed_from", "total_seconds", "examples"}
    out = {k: v for k, v in metrics.items() if k not in drop}
    out["phases"] = [{k: v for k, v in p.items() if k not in drop} for p in metrics["phases"]]
    return out


@pytest.mark.parametrize("kill_in", ["dae", "cl", "ft"])
def test_sigkill_mid_phase_then_resume_equals_uninterrupted(kill_in: str, tiny_model_dir: Path,
                                                            toy_data_dir_module: Path, tmp_path: Path) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL, "env": env}
    reference = tmp_path / "reference"
    subprocess.run(_train_command(tiny_model_dir, toy_data_dir_module, reference), check=True, timeout=600, **quiet)

    out = tmp_path / "killed"
    process = subprocess.Popen(_train_command(tiny_model_dir, toy_data_dir_module, out), **quiet)
    checkpoint = out / "checkpoints" / kill_in
    deadline = time.monotonic() + 300
    # Kill once the phase has a complete first-epoch checkpoint, i.e. in the middle of the phase.
    while not checkpoints(checkpoint, complete=True):
        assert process.poll() is None, "the run ended before it could be killed"
        assert time.monotonic() < deadline
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=60)
    assert not (out / "metrics.json").exists()
    done = subprocess.run(_train_command(tiny_model_dir, toy_data_dir_module, out, "--resume"), env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]

    resumed = json.loads((out / "metrics.json").read_text())
    uninterrupted = json.loads((reference / "metrics.json").read_text())
    a, b = _comparable(resumed), _comparable(uninterrupted)
    differing = {f"{pa['name']}.{k}": (pa.get(k), pb.get(k)) for pa, pb in zip(a["phases"], b["phases"])
                 for k in set(pa) | set(pb) if pa.get(k) != pb.get(k)}
    differing.update({k: (a.get(k), b.get(k)) for k in set(a) | set(b) if k != "phases" and a.get(k) != b.get(k)})
    assert not differing, differing  # bit-identical scores, losses and diagnostics
    assert any("resumed_from" in p for p in resumed["phases"])


def test_a_checkpoint_with_a_half_written_state_is_not_complete(tmp_path: Path) -> None:
    """The Trainer writes trainer_state.json last and not atomically: a kill can leave it empty or cut short."""
    for step, text in [(1, '{"global_step": 1}'), (2, ""), (3, '{"global_st')]:
        (tmp_path / f"checkpoint-{step}").mkdir()
        (tmp_path / f"checkpoint-{step}" / "trainer_state.json").write_text(text)
    (tmp_path / "checkpoint-4").mkdir()  # killed before the state file
    assert [p.name for p in checkpoints(tmp_path, complete=True)] == ["checkpoint-1"]
    assert [p.name for p in checkpoints(tmp_path)] == [f"checkpoint-{i}" for i in (4, 3, 2, 1)]


def test_resume_needs_a_started_run(tiny_model_dir: Path, toy_data_dir: Path, tmp_path: Path,
                                    capsys: pytest.CaptureFixture) -> None:
    assert main(["train", "--data", str(toy_data_dir), "--output", str(tmp_path / "new"), "--resume"]) == 2
    assert "nothing to resume" in capsys.readouterr().err


def test_disk_full_during_a_run_says_how_to_continue(tiny_model_dir: Path, toy_data_dir: Path, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch,
                                                     capsys: pytest.CaptureFixture) -> None:
    import errno

    from phasefit import pipeline

    def full(path, payload):  # noqa: ANN001 - the metrics write hits a full disk
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(pipeline, "atomic_write_json", lambda path, payload: full(path, payload)
                        if Path(path).name == "metrics.json" else _real_write(path, payload))
    sets = [arg for item in [*tiny_overrides(tiny_model_dir), "ft.max_steps=2"] for arg in ("--set", item)]
    out = tmp_path / "run"
    assert main(["train", "--data", str(toy_data_dir), "--output", str(out), *sets]) == 2
    err = capsys.readouterr().err
    assert "disk full while writing" in err and "metrics.json" in err and "--resume" in err
    assert not (out / "metrics.json").exists() and (out / "config.yaml").is_file()  # the run is there to resume


def _real_write(path, payload):  # noqa: ANN001, ANN202
    from phasefit.io import atomic_write_json

    return atomic_write_json(path, payload)


def test_checkpoints_written_before_a_nan_are_kept(tiny_model_dir: Path, toy_data_dir: Path, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch,
                                                   capsys: pytest.CaptureFixture) -> None:
    """A loss that turns NaN in epoch 2 stops the phase; epoch 1's checkpoint stays, and the message names it."""
    import torch
    from transformers import Trainer

    original = Trainer.compute_loss

    def nan_in_epoch_two(self, model, inputs, return_outputs=False, **kwargs):  # noqa: ANN001, ANN202
        result = original(self, model, inputs, return_outputs=return_outputs, **kwargs)
        if model.training and (self.state.epoch or 0) >= 1:
            return (result[0] * torch.nan, result[1]) if return_outputs else result * torch.nan
        return result

    monkeypatch.setattr(Trainer, "compute_loss", nan_in_epoch_two)
    sets = [arg for item in [*tiny_overrides(tiny_model_dir), "ft.epochs=3"] for arg in ("--set", item)]
    out = tmp_path / "run"
    assert main(["train", "--data", str(toy_data_dir), "--output", str(out), *sets]) == 2
    err = capsys.readouterr().err
    checkpoints = sorted((out / "checkpoints" / "ft").glob("checkpoint-*"))
    assert len(checkpoints) == 1 and (checkpoints[0] / "trainer_state.json").is_file()
    assert "became nan" in err and f"Last good checkpoint: {checkpoints[0]}" in err
