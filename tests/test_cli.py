"""The command line through ``phasefit.cli.main(argv)``: train, predict, evaluate, listings and error exits.

One run is trained through the CLI for the module (``cli_run``). Error paths must exit 2 with a message on stderr
that names the problem, and must leave nothing in the output directory but ``error.log``.
"""

from __future__ import annotations

import contextlib
import io
import json
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest
import yaml
from conftest import TOY_LABELS, tiny_overrides

from phasefit.cli import EXIT_USER_ERROR, main


def set_args(model_dir: Path) -> list[str]:
    return [arg for item in tiny_overrides(model_dir) for arg in ("--set", item)]


@dataclass
class CliRun:
    run_dir: Path
    exit_code: int
    stdout: str


@pytest.fixture(scope="module")
def cli_run(tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path, toy_data_dir_module: Path) -> CliRun:
    """`phasefit train` once on the toy data with the tiny model."""
    run_dir = tmp_path_factory.mktemp("cli") / "run"
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(["train", "--data", str(toy_data_dir_module), "--recipe", "ft", "--output", str(run_dir),
                     "--seed", "0", "--quiet", *set_args(tiny_model_dir)])
    return CliRun(run_dir, code, out.getvalue())


def train_args(data: Path | str, output: Path, model_dir: Path, *extra: str) -> list[str]:
    return ["train", "--data", str(data), "--output", str(output), *set_args(model_dir), *extra]


# --- train / predict / evaluate ------------------------------------------------------------------------------------


def test_train_writes_a_run_and_prints_scores(cli_run: CliRun) -> None:
    assert cli_run.exit_code == 0
    assert (cli_run.run_dir / "metrics.json").is_file() and (cli_run.run_dir / "model" / "classifier.json").is_file()
    assert "test       accuracy" in cli_run.stdout
    assert f"run directory: {cli_run.run_dir}" in cli_run.stdout
    config = yaml.safe_load((cli_run.run_dir / "config.yaml").read_text())
    assert config["progress"] is False and config["seed"] == 0  # --quiet and --seed reached the config


def test_predict_prints_one_label_per_text(cli_run: CliRun, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["predict", str(cli_run.run_dir), "will it rain tomorrow", "play some jazz songs"])
    assert code == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2 and set(lines) <= set(TOY_LABELS)


def test_predict_file_to_csv(cli_run: CliRun, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    texts = ["will it rain tomorrow", "play some jazz songs", "book a table for two people"]
    source = tmp_path / "texts.txt"
    source.write_text("\n".join(texts[:2]) + "\n\n" + texts[2] + "\n", encoding="utf-8")  # blank line skipped
    target = tmp_path / "preds.csv"
    assert main(["predict", str(cli_run.run_dir), "--input", str(source), "--output", str(target)]) == 0
    assert "wrote 3 predictions" in capsys.readouterr().out
    table = pd.read_csv(target)
    assert list(table.columns) == ["text", "label", "probability"]
    assert table["text"].tolist() == texts
    assert set(table["label"]) <= set(TOY_LABELS)
    assert table["probability"].between(1 / len(TOY_LABELS), 1.0).all()  # the top class of 3


def test_predict_csv_input_with_text_column(
    cli_run: CliRun, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "in.csv"
    pd.DataFrame({"utterance": ["is it sunny", "shuffle piano album"]}).to_csv(source, index=False)
    assert main(["predict", str(cli_run.run_dir), "--input", str(source), "--text-column", "utterance"]) == 0
    printed = capsys.readouterr().out.split()
    assert len(printed) == 2 and set(printed) <= set(TOY_LABELS)  # one label per input row, in order
    from phasefit.models.classifier import PhaseFitClassifier

    assert printed == PhaseFitClassifier.load(cli_run.run_dir / "model").predict(["is it sunny", "shuffle piano album"])


def test_evaluate_prints_the_run_test_scores(cli_run: CliRun, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["evaluate", str(cli_run.run_dir), "--split", "test"]) == 0
    scores = json.loads(capsys.readouterr().out)
    recorded = json.loads((cli_run.run_dir / "metrics.json").read_text())["test"]
    assert scores["accuracy"] == pytest.approx(recorded["accuracy"])
    assert scores["macro_f1"] == pytest.approx(recorded["macro_f1"])
    assert "confusion_matrix" not in scores


def test_evaluate_on_other_data(cli_run: CliRun, toy_data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Scores on another data set equal the classifier's own predictions on that set's split."""
    import pandas as pd

    from phasefit.models.classifier import PhaseFitClassifier

    frame = pd.read_csv(toy_data_dir / "validation.csv").iloc[:9]
    frame.loc[:2, "label"] = "music"  # some now wrong on purpose, so the score is not trivially 1
    other = toy_data_dir.parent / "other"
    other.mkdir()
    for name in ("train", "test"):
        (other / f"{name}.csv").write_text((toy_data_dir / f"{name}.csv").read_text())
    frame.to_csv(other / "validation.csv", index=False)
    assert main(["evaluate", str(cli_run.run_dir), "--data", str(other), "--split", "validation"]) == 0
    scores = json.loads(capsys.readouterr().out)
    predicted = PhaseFitClassifier.load(cli_run.run_dir / "model").predict(list(frame.text))
    expected = sum(p == g for p, g in zip(predicted, frame.label)) / len(frame)
    assert scores["accuracy"] == pytest.approx(expected) and scores["examples"] == 9


def test_evaluate_refuses_data_with_other_labels(
    cli_run: CliRun, toy_hier_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["evaluate", str(cli_run.run_dir), "--data", str(toy_hier_dir)]) == EXIT_USER_ERROR
    assert "not among the run's labels" in capsys.readouterr().err


# --- listings and help ---------------------------------------------------------------------------------------------


def test_help_exits_zero(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    for command in ("train", "predict", "evaluate", "recipes"):
        assert command in out


def test_recipes_lists_ft(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["recipes"]) == 0
    names = [line.split()[0] for line in capsys.readouterr().out.splitlines() if line.strip()]
    assert "ft" in names


def test_config_lists_every_key(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["config"]) == 0
    out = capsys.readouterr().out
    assert "ft.layer_decay = 1.0" in out and "model.name = " in out


def test_config_of_a_recipe_is_yaml(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["config", "--recipe", "ft"]) == 0
    assert yaml.safe_load(capsys.readouterr().out)["phases"] == ["ft"]


def test_missing_command_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main([])
    assert exit_info.value.code == 2


# --- error exits ---------------------------------------------------------------------------------------------------


def _only_error_log(out: Path) -> bool:
    """A failed `train` may leave OUTPUT/error.log (with the message), nothing else."""
    return not out.exists() or sorted(p.name for p in out.iterdir()) == ["error.log"]


def expect_user_error(argv: list[str], capsys: pytest.CaptureFixture[str], *fragments: str) -> str:
    assert main(argv) == EXIT_USER_ERROR
    err = capsys.readouterr().err
    assert err.startswith("phasefit: error:"), err
    for fragment in fragments:
        assert fragment in err, (fragment, err)
    return err


def test_missing_data_path(tiny_model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "no-such-data"
    out = tmp_path / "out"
    expect_user_error(train_args(missing, out, tiny_model_dir), capsys, "data path not found", str(missing))
    assert _only_error_log(out)


def test_unknown_recipe(tiny_model_dir: Path, toy_data_dir: Path, tmp_path: Path,
                       capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    expect_user_error(train_args(toy_data_dir, out, tiny_model_dir, "--recipe", "nope"), capsys,
                      "unknown recipe 'nope'", "ft")
    assert _only_error_log(out)


def test_model_folder_without_weights(toy_data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    model = tmp_path / "config-only"
    model.mkdir()
    (model / "config.json").write_text('{"model_type": "bert"}')
    out = tmp_path / "out"
    argv = ["train", "--data", str(toy_data_dir), "--output", str(out), "--model", str(model), "--quiet"]
    expect_user_error(argv, capsys, "has no weights", str(model), "save_pretrained")
    assert _only_error_log(out)


def test_missing_model_path(toy_data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    model = tmp_path / "no-such-model"
    argv = ["train", "--data", str(toy_data_dir), "--output", str(tmp_path / "out"), "--model", str(model)]
    expect_user_error(argv, capsys, f"model path {model} not found")


def test_uncached_hub_name_says_how_to_pass_a_local_path(
    toy_data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    argv = ["train", "--data", str(toy_data_dir), "--output", str(out), "--model", "someone/not-a-model", "--quiet"]
    expect_user_error(argv, capsys, "'someone/not-a-model'", "never downloads", "--model DIR")
    assert _only_error_log(out)


def test_existing_output_needs_overwrite(cli_run: CliRun, tiny_model_dir: Path, toy_data_dir: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    before = (cli_run.run_dir / "metrics.json").read_text()
    expect_user_error(train_args(toy_data_dir, cli_run.run_dir, tiny_model_dir), capsys, "already holds a run",
                      "--overwrite", "--resume", "another --output")
    assert (cli_run.run_dir / "metrics.json").read_text() == before


def test_unknown_config_key(tiny_model_dir: Path, toy_data_dir: Path, tmp_path: Path,
                            capsys: pytest.CaptureFixture[str]) -> None:
    argv = train_args(toy_data_dir, tmp_path / "out", tiny_model_dir, "--set", "ft.epoks=2")
    expect_user_error(argv, capsys, "ft.epoks: unknown key")


def test_predict_without_texts(cli_run: CliRun, capsys: pytest.CaptureFixture[str]) -> None:
    expect_user_error(["predict", str(cli_run.run_dir)], capsys, "--input")


def test_predict_missing_input_file(cli_run: CliRun, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "nope.txt"
    expect_user_error(["predict", str(cli_run.run_dir), "--input", str(missing)], capsys, str(missing))


def test_predict_csv_without_the_text_column(cli_run: CliRun, tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    source = tmp_path / "in.csv"
    pd.DataFrame({"utterance": ["hi"]}).to_csv(source, index=False)
    expect_user_error(["predict", str(cli_run.run_dir), "--input", str(source)], capsys,
                      "no column 'text'", "--text-column")


@pytest.mark.parametrize("command", ["predict", "evaluate"])
def test_folder_without_a_run(command: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = [command, str(tmp_path), *(["some text"] if command == "predict" else [])]
    expect_user_error(argv, capsys, "holds no finished run", "train one first")
