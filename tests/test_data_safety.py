"""Nothing lost (issue 10, items 1-3): export and train never delete what they did not create, commits are durable,
and a kill between the two renames of a folder commit never loses the old folder."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from phasefit.cli import main
from phasefit.recipes import build_config
from phasefit.pipeline import RunDirectoryError, train
from tests.conftest import tiny_overrides


@pytest.fixture(scope="module")
def finished_run(tiny_model_dir: Path, toy_data_dir_module: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    runs = tmp_path_factory.mktemp("runs")
    config = build_config("ft", None, [*tiny_overrides(tiny_model_dir), f"data.path={toy_data_dir_module}",
                                       "ft.max_steps=2", "plots=false"])
    train(config, runs / "run")
    return runs / "run"


def _export(run: Path, out: Path, *extra: str) -> int:
    return main(["export", str(run), "--output", str(out), "--no-onnx", *extra])


# 1. export --------------------------------------------------------------------------------------------------------


def test_export_refuses_a_non_empty_folder(finished_run: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep").write_text("mine")
    assert _export(finished_run, out) == 2
    assert (out / "keep").read_text() == "mine"
    assert "--overwrite" in capsys.readouterr().err


def test_export_overwrite_refuses_a_folder_that_is_not_an_export(finished_run: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep").write_text("mine")
    assert _export(finished_run, out, "--overwrite") == 2
    assert (out / "keep").read_text() == "mine"
    assert "not a phasefit export" in capsys.readouterr().err


def test_export_never_replaces_the_folder_holding_the_run(finished_run: Path, capsys) -> None:
    runs = finished_run.parent
    assert _export(finished_run, runs, "--overwrite") == 2
    assert (finished_run / "metrics.json").is_file()
    assert "holds the run" in capsys.readouterr().err


def test_export_overwrite_replaces_an_earlier_export(finished_run: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert _export(finished_run, out) == 0
    (out / "README.md").write_text("stale")
    assert _export(finished_run, out, "--overwrite") == 0
    assert (out / "README.md").read_text() != "stale"
    assert not any(p.name.startswith(".out.") for p in tmp_path.iterdir())


def test_a_kill_between_the_two_renames_loses_nothing(finished_run: Path, tmp_path: Path) -> None:
    """The first rename moved OUT aside to .OUT.old, the kill came before the new folder took its place: the next
    call puts the old folder back before anything else (and, without --overwrite, then refuses)."""
    out = tmp_path / "out"
    assert _export(finished_run, out) == 0
    os.replace(out, tmp_path / ".out.old")  # what the kill left behind
    assert _export(finished_run, out) == 2  # out is back, non-empty, and not replaced without --overwrite
    assert (out / "classifier.json").is_file() and not (tmp_path / ".out.old").exists()


# 2. train --overwrite ----------------------------------------------------------------------------------------------


def test_train_overwrite_refuses_a_folder_that_is_not_a_run(tiny_model_dir: Path, toy_data_dir_module: Path,
                                                            tmp_path: Path) -> None:
    folder = tmp_path / "notes"
    folder.mkdir()
    (folder / "thesis.tex").write_text("years of work")
    config = build_config("ft", None, [*tiny_overrides(tiny_model_dir), f"data.path={toy_data_dir_module}",
                                       "ft.max_steps=1"])
    with pytest.raises(RunDirectoryError, match="not a phasefit run"):
        train(config, folder, overwrite=True)
    assert (folder / "thesis.tex").read_text() == "years of work"


def test_the_old_run_survives_a_new_run_that_fails_before_writing(finished_run: Path, tiny_model_dir: Path,
                                                                  toy_data_dir_module: Path, tmp_path: Path,
                                                                  monkeypatch) -> None:
    import shutil

    from phasefit import pipeline

    run = tmp_path / "run"
    shutil.copytree(finished_run, run)
    before = (run / "metrics.json").read_text()

    def disk_full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(pipeline, "save_config", disk_full)
    config = build_config("ft", None, [*tiny_overrides(tiny_model_dir), f"data.path={toy_data_dir_module}",
                                       "ft.max_steps=1"])
    with pytest.raises(OSError):
        train(config, run, overwrite=True)
    assert (run / "metrics.json").read_text() == before  # the old run is back in place
    assert [p.name for p in tmp_path.iterdir()] == ["run"]  # and nothing beside it


# 3. durable commits and stale temporaries ---------------------------------------------------------------------------


def test_commits_fsync_the_file_and_then_its_directory(tmp_path: Path, monkeypatch) -> None:
    from phasefit import io

    synced: list[str] = []
    real = os.fsync

    def record(fd: int) -> None:
        synced.append(os.readlink(f"/proc/self/fd/{fd}"))
        real(fd)

    monkeypatch.setattr(io.os, "fsync", record)
    io.atomic_write_text(tmp_path / "a.json", "{}")
    assert synced[-1] == str(tmp_path)  # the directory entry of the rename is durable too
    synced.clear()
    tmp = io.atomic_directory(tmp_path / "model")
    (tmp / "weights.bin").write_bytes(b"123")
    io.commit_directory(tmp, tmp_path / "model")
    assert str(tmp_path / "model" / "weights.bin") in synced or any(s.endswith("weights.bin") for s in synced)
    assert synced[-1] == str(tmp_path)


def test_stale_temporaries_of_a_killed_run_are_cleaned_at_start(finished_run: Path, tiny_model_dir: Path,
                                                               toy_data_dir_module: Path, tmp_path: Path) -> None:
    import shutil

    run = tmp_path / "run"
    shutil.copytree(finished_run, run)
    (run / "metrics.json").unlink()  # a run killed while writing its final model/
    stale = run / ".model.abc123.tmp"
    stale.mkdir()
    (stale / "head.safetensors").write_bytes(b"half")
    (run / "notes.txt").write_text("the user's")  # not ours: never touched
    config = build_config("ft", None, [*tiny_overrides(tiny_model_dir), f"data.path={toy_data_dir_module}",
                                       "ft.max_steps=2", "plots=false"])
    train(config, run, resume=True)
    assert not stale.exists()
    assert (run / "metrics.json").is_file() and (run / "notes.txt").read_text() == "the user's"


# 8. data files read with bounded memory ---------------------------------------------------------------------------------


def test_a_file_larger_than_free_memory_is_refused_before_reading(tmp_path: Path, monkeypatch) -> None:
    from phasefit.data import DataError, load_splits
    from phasefit.data import readers

    (tmp_path / "train.csv").write_text("text,label\n" + "".join(f"text {i},{'ab'[i % 2]}\n" for i in range(200)))
    monkeypatch.setattr(readers, "_available_memory", lambda: 1000)  # 1 kB free
    with pytest.raises(DataError, match=r"train\.csv is 0 MB; loading it needs about 0 MB of memory, and 0 MB are free"):
        load_splits(str(tmp_path))


@pytest.mark.parametrize("block", [7, 1 << 20])
def test_utf8_errors_are_located_when_the_file_is_read_in_blocks(block: int, tmp_path: Path, monkeypatch) -> None:
    from phasefit.data import DataError
    from phasefit.data import readers

    monkeypatch.setattr(readers, "_BLOCK", block)
    file = tmp_path / "train.csv"
    file.write_bytes("text,label\nété,a\n".encode() + b"wor\xe2\x82ld,b\n")
    with pytest.raises(DataError, match=r"train\.csv byte 22 \(line 3 of the file\): not valid UTF-8 \(byte 0xe2\)"):
        readers._read_file(file)
