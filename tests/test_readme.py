"""The README's examples run (issue 11 item 8): every fenced ``bash`` or ``python`` block that follows a
``<!-- runnable -->`` line runs here, in a fresh folder, on the tiny model — the commands as written, with only the
encoder and the epochs made small (``--set`` items appended to ``phasefit train``; the same keywords merged into
``phasefit.train``). A README edit that breaks a marked example fails this test."""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
MARK = "<!-- runnable -->"


def runnable_blocks() -> list[tuple[str, str]]:
    """(language, code) of each marked block, in README order."""
    text = README.read_text(encoding="utf-8")
    pattern = re.compile(re.escape(MARK) + r"\s*\n```(bash|python)\n(.*?)\n```", re.S)
    return [(m.group(1), m.group(2)) for m in pattern.finditer(text)]


def test_the_readme_marks_its_usage_examples_runnable() -> None:
    languages = [language for language, _ in runnable_blocks()]
    assert languages.count("bash") >= 1 and languages.count("python") >= 1


def _bash_commands(code: str) -> list[list[str]]:
    commands = []
    for line in code.splitlines():
        line = line.split("  #")[0].strip()
        if line and not line.startswith("#"):
            words = shlex.split(line)
            assert words[0] == "phasefit", f"a runnable bash block may hold only phasefit commands: {line}"
            commands.append(words[1:])
    return commands


@pytest.mark.parametrize("index", range(len(runnable_blocks())))
def test_readme_block_runs(index: int, tiny_model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                           capsys: pytest.CaptureFixture[str]) -> None:
    import phasefit
    from phasefit.cli import main

    language, code = runnable_blocks()[index]
    monkeypatch.chdir(tmp_path)
    (tmp_path / "texts.txt").write_text("book a table for two\nplay some jazz\n", encoding="utf-8")
    small = {"model": str(tiny_model_dir), "ft": {"epochs": 1}, "progress": False, "plots": False}
    if language == "bash":
        for argv in _bash_commands(code):
            extra = []
            if argv[0] == "train":
                extra = ["--set", f"model.name={tiny_model_dir}", "--set", "ft.epochs=1", "--set", "progress=false",
                         "--set", "plots=false"]
            assert main(argv + extra) == 0, f"phasefit {shlex.join(argv)} failed: {capsys.readouterr().err}"
    else:
        real_train = phasefit.train

        def small_train(*args: Any, **kwargs: Any) -> Any:
            for key, value in small.items():
                kwargs[key] = {**kwargs.get(key, {}), **value} if isinstance(value, dict) else value
            return real_train(*args, **kwargs)

        monkeypatch.setattr(phasefit, "train", small_train)
        exec(compile(code, f"README.md block {index}", "exec"), {"__name__": "readme"})
