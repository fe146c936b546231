"""Issue 31, item 1 and finding 6: the keys only the command line (or the Python call) may set —
``model.trust_remote_code``, ``model.allow_pickle``, ``phase_cache`` — are refused in a ``--config`` file, with the
file, the key and the flag to use instead. (The search space and best-config: ``tests/test_search_safety.py``; grid
files' model keys: ``tests/test_trust_and_scores.py``.)"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from phasefit.cli import main
from phasefit.config import ConfigError
from phasefit.recipes import build_config


@pytest.mark.parametrize("settings", [{"phase_cache": "/shared/cache"}, {"phase_cache": "relative/cache"}])
def test_a_config_file_cannot_name_the_phase_cache(settings: dict, tmp_path: Path) -> None:
    """phase_cache names a folder runs write to and load encoder weights from: a shared file must not choose it."""
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({"ft": {"epochs": 1}, **settings}))
    with pytest.raises(ConfigError, match="only the command line may set it") as err:
        build_config("ft", config)
    assert f"config file {config} sets phase_cache" in str(err.value) and "--set phase_cache=DIR" in str(err.value)


def test_the_command_line_and_the_python_call_may_name_the_phase_cache(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({"ft": {"epochs": 1}, "phase_cache": None}))  # unset in a file is fine
    assert build_config("ft", config, overrides=["phase_cache=/x"]).phase_cache == "/x"
    assert build_config("ft", config, settings={"phase_cache": "/y"}).phase_cache == "/y"


def test_train_refuses_a_config_file_with_a_phase_cache_before_writing(tmp_path: Path,
                                                                       capsys: pytest.CaptureFixture) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({"phase_cache": str(tmp_path / "cache")}))
    assert main(["train", "--config", str(config), "--data", str(tmp_path), "--output", str(tmp_path / "run")]) == 2
    assert "sets phase_cache" in capsys.readouterr().err
    assert not (tmp_path / "cache").exists()
    assert [p.name for p in (tmp_path / "run").iterdir()] == ["error.log"]  # what a failed train leaves, no run


@pytest.mark.parametrize("key", ["model.trust_remote_code", "model.allow_pickle", "phase_cache"])
@pytest.mark.parametrize("form", ["nested", "dotted"])
def test_every_command_line_only_key_is_found_nested_or_dotted(key: str, form: str) -> None:
    from phasefit.recipes import COMMAND_LINE_ONLY, check_file_settings

    assert set(COMMAND_LINE_ONLY) == {"model.trust_remote_code", "model.allow_pickle", "phase_cache"}
    section, _, name = key.rpartition(".")
    value = "/somewhere" if key == "phase_cache" else True
    settings = {key: value} if form == "dotted" or not section else {section: {name: value}}
    with pytest.raises(ConfigError, match=f"shared.yaml sets {key}, which .*only the command line may set it"):
        check_file_settings(settings, "shared.yaml")
    check_file_settings({key: None}, "shared.yaml")  # unset or off passes
    check_file_settings({key: False}, "shared.yaml")


def test_a_grid_file_cannot_name_the_phase_cache(tmp_path: Path) -> None:
    from phasefit.experiments.experiment import load_grid

    grid = tmp_path / "grid.yaml"
    grid.write_text(yaml.safe_dump({"recipes": ["ft"], "datasets": {"toy": {"path": "a"}},
                                    "set": {"phase_cache": "/shared/cache"}}))
    with pytest.raises(ConfigError, match="sets phase_cache"):
        load_grid(grid)
