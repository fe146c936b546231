"""`phasefit search` on a real PostgreSQL server (issue 14, item 4): several workers share one study, pruning works,
and a killed worker's trial ends FAILED and is re-run with its parameters by another worker.

A throwaway server is started per module (``initdb -A trust`` in a temporary folder, listening on 127.0.0.1 at a
free port; as an unprivileged user when the tests run as root, since postgres refuses root). The binaries come from
the PATH or Debian's /usr/lib/postgresql/<version>/bin. Without them (or without psycopg) the tests skip on a
developer machine and fail under CI=true, where .ci/run installs Debian's postgresql package.
"""

from __future__ import annotations

import importlib.util
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import tiny_overrides

HEARTBEAT, GRACE = 1, 3  # seconds: a killed worker's trial is stale 3 s after its last heartbeat


def _unavailable(message: str) -> None:
    if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
        pytest.fail(f"CI=true but the PostgreSQL search tests cannot run: {message}")
    pytest.skip(message)


def _postgres_bin() -> Path | None:
    """The folder of initdb / pg_ctl / postgres: the PATH's, else the newest Debian /usr/lib/postgresql/N/bin."""
    found = shutil.which("initdb")
    if found and shutil.which("pg_ctl"):
        return Path(found).parent
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"),
                      key=lambda p: [int(n) for n in re.findall(r"\d+", p.parent.parent.name)])
    return versions[-1].parent if versions else None


def _server_user() -> dict[str, Any]:
    """subprocess arguments that drop root (postgres will not run as root); none when not root."""
    if os.geteuid() != 0:
        return {}
    for name in ("postgres", "nobody"):
        try:
            entry = pwd.getpwnam(name)
        except KeyError:
            continue
        return {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}
    _unavailable("running as root and neither a 'postgres' nor a 'nobody' user exists to run the server")
    raise AssertionError("unreachable")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def postgres_server() -> Iterator[str]:
    """A PostgreSQL server for this module; yields its URL without a database name."""
    binaries = _postgres_bin()
    if binaries is None:
        _unavailable("needs PostgreSQL's initdb and pg_ctl (Debian: apt-get install postgresql)")
    if importlib.util.find_spec("psycopg") is None:
        _unavailable("needs the psycopg driver (pip install -e '.[test]' or 'phasefit[postgres]')")
    as_user = _server_user()
    # Not pytest's tmp_path: its parents are private to root, and the server user must reach the data folder.
    root = Path(tempfile.mkdtemp(prefix="phasefit-pg-"))
    if as_user:
        os.chown(root, as_user["user"], as_user["group"])
    env = {"PATH": f"{binaries}:{os.environ.get('PATH', '')}", "HOME": str(root), "LC_ALL": "C"}
    port = _free_port()

    def pg(*args: str) -> None:
        done = subprocess.run(args, env=env, capture_output=True, text=True, timeout=120, **as_user)
        assert done.returncode == 0, (args, done.stdout, done.stderr, _log(root))

    try:
        pg("initdb", "-A", "trust", "-U", "postgres", "-E", "UTF8", "--no-sync", "-D", str(root / "data"))
        pg("pg_ctl", "-D", str(root / "data"), "-l", str(root / "server.log"), "-w", "-t", "60",
           "-o", f"-k {root} -h 127.0.0.1 -p {port} -F", "start")
        yield f"postgresql://postgres@127.0.0.1:{port}"
    finally:
        if (root / "data" / "postmaster.pid").exists():
            pg("pg_ctl", "-D", str(root / "data"), "-w", "-m", "fast", "stop")
        shutil.rmtree(root, ignore_errors=True)


def _log(root: Path) -> str:
    log = root / "server.log"
    return log.read_text(errors="replace")[-2000:] if log.exists() else ""


@pytest.fixture
def postgres_url(postgres_server: str, request: pytest.FixtureRequest) -> str:
    """A fresh database on the module's server for one test."""
    import psycopg

    name = re.sub(r"\W", "_", request.node.name)[:50].lower()
    # autocommit: CREATE DATABASE cannot run in a transaction
    with psycopg.connect(f"{postgres_server}/postgres", autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    return f"{postgres_server}/{name}"


def _worker(storage: str, model: Path, data: Path, output: Path, trials: int, space: Path,
            extra: tuple[str, ...] = ()) -> subprocess.Popen:
    sets = [arg for item in [*tiny_overrides(model), "ft.epochs=3", "ft.max_steps=12"] for arg in ("--set", item)]
    command = [sys.executable, "-m", "phasefit.cli", "search", "--recipe", "ft", "--data", str(data), *sets,
               "--trials", str(trials), "--output", str(output), "--storage", storage, "--space", str(space),
               "--heartbeat", str(HEARTBEAT), "--grace-period", str(GRACE), *extra]
    # Own session: the kill test can SIGKILL the worker's whole process group.
    return subprocess.Popen(command, env={**os.environ, "OMP_NUM_THREADS": "1"}, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)


def _finish(worker: subprocess.Popen) -> str:
    out, _ = worker.communicate(timeout=300)
    assert worker.returncode == 0, out[-4000:]
    return out


def _space(tmp_path: Path) -> Path:
    space = tmp_path / "space.yaml"
    space.write_text(yaml.safe_dump({"ft.lr": [1e-3, 5e-4, 1e-4], "ft.head_hidden": [16, 32]}))
    return space


def test_two_workers_run_each_trial_number_once(postgres_url: str, tiny_model_dir: Path, toy_data_dir_module: Path,
                                               tmp_path: Path) -> None:
    import optuna
    from optuna.trial import TrialState

    output, space = tmp_path / "search", _space(tmp_path)
    workers = [_worker(postgres_url, tiny_model_dir, toy_data_dir_module, output, 6, space) for _ in range(2)]
    outputs = [_finish(worker) for worker in workers]
    study = optuna.load_study(study_name="phasefit", storage=postgres_url)
    ran = [t for t in study.trials if not t.user_attrs.get("over_budget")]
    assert sorted(t.number for t in ran) == list(range(6)), outputs
    assert all(t.state in (TrialState.COMPLETE, TrialState.PRUNED) for t in ran), [t.state for t in ran]
    over = [t for t in study.trials if t.user_attrs.get("over_budget")]
    assert all(t.state == TrialState.FAIL and t.number >= 6 for t in over) and len(over) <= 2
    assert sorted(p.name for p in output.glob("trial-*")) == sorted(f"trial-{i}" for i in range(6))
    assert (output / "best-config.yaml").is_file()


def test_a_killed_workers_trial_fails_and_is_rerun(postgres_url: str, tiny_model_dir: Path,
                                                   toy_data_dir_module: Path, tmp_path: Path) -> None:
    import optuna
    from optuna.trial import TrialState

    output, space = tmp_path / "search", _space(tmp_path)
    storage = optuna.storages.RDBStorage(postgres_url)  # one connection pool for all the polling below
    doomed = _worker(postgres_url, tiny_model_dir, toy_data_dir_module, output, 4, space)
    # Kill it mid-trial: RUNNING in the study, and its folder exists (train began, so the heartbeat is recorded).
    deadline = time.monotonic() + 240
    while True:
        assert doomed.poll() is None, doomed.communicate()[0][-4000:]
        assert time.monotonic() < deadline, "the worker never started a trial"
        running = _running(storage)
        if running is not None and (output / f"trial-{running}").exists():
            break
        time.sleep(0.2)
    os.killpg(doomed.pid, signal.SIGKILL)
    doomed.wait(timeout=60)
    # A new worker fails the stale trial once the grace period has passed (it checks before each ask) and re-runs
    # it. Its start-up alone outlasts the 3 s grace period; should it still draw its last trial first, one more
    # worker does the re-run. Either way the study ends with its 4 configurations run.
    _finish(_worker(postgres_url, tiny_model_dir, toy_data_dir_module, output, 4, space))
    study = optuna.load_study(study_name="phasefit", storage=postgres_url)
    if study.trials[running].state == TrialState.RUNNING:
        _finish(_worker(postgres_url, tiny_model_dir, toy_data_dir_module, output, 4, space))
        study = optuna.load_study(study_name="phasefit", storage=postgres_url)
    killed = study.trials[running]
    assert killed.state == TrialState.FAIL and not killed.user_attrs.get("over_budget")
    retries = [t for t in study.trials if t.system_attrs.get("failed_trial") == running]
    assert len(retries) == 1, [(t.number, t.state, t.system_attrs) for t in study.trials]
    assert retries[0].state in (TrialState.COMPLETE, TrialState.PRUNED)
    assert retries[0].params == killed.params
    fresh = [t for t in study.trials if "failed_trial" not in t.system_attrs and not t.user_attrs.get("over_budget")]
    assert len(fresh) == 4 and running in [t.number for t in fresh]  # the retry took no budget slot
    assert all(t.state in (TrialState.COMPLETE, TrialState.PRUNED) for t in fresh if t.number != running)
    assert not [t for t in study.trials if t.state in (TrialState.RUNNING, TrialState.WAITING)]
    assert (output / f"trial-{retries[0].number}" / "config.yaml").is_file()


def _running(storage: Any) -> int | None:
    import optuna
    from optuna.trial import TrialState

    try:
        study = optuna.load_study(study_name="phasefit", storage=storage)
    except KeyError:  # the worker has not created the study yet
        return None
    running = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
    return running[0].number if running else None


def test_the_median_pruner_stops_a_bad_trial(postgres_url: str, tiny_model_dir: Path, toy_data_dir_module: Path,
                                             tmp_path: Path) -> None:
    """Three trials that learn, then one whose learning rates are ~0: its epoch-2 validation score is below the
    median of the first three at epoch 2, so the pruner (3 startup trials, 2 warm-up epochs) stops it there."""
    import optuna
    from optuna.trial import TrialState

    from phasefit.experiments.search import _open_study, run_search
    from phasefit.recipes import settings_from_overrides

    good, bad = {"ft.lr": 1e-3, "ft.head_lr": 1e-2}, {"ft.lr": 1e-9, "ft.head_lr": 1e-9}
    space = tmp_path / "space.yaml"
    space.write_text(yaml.safe_dump({key: [good[key], bad[key]] for key in good}))
    study = _open_study(postgres_url, "pruning", None)
    for params in (good, good, good, bad):
        study.enqueue_trial(params)
    seen: list[dict[str, Any]] = []
    run_search(recipe="ft", config_file=None, trials=4, output=tmp_path / "search", storage=postgres_url,
               study_name="pruning", space_file=space, on_trial=seen.append,
               settings=settings_from_overrides([*tiny_overrides(tiny_model_dir), f"data.path={toy_data_dir_module}",
                                                 "ft.epochs=3"]))
    study = optuna.load_study(study_name="pruning", storage=postgres_url)
    assert [t.state for t in study.trials[:4]] == [TrialState.COMPLETE] * 3 + [TrialState.PRUNED], seen
    assert max(study.trials[3].intermediate_values) == 2  # stopped at the first epoch past the warm-up


def test_a_missing_driver_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from phasefit.config import ConfigError
    from phasefit.experiments.search import _open_study

    for driver in ("psycopg", "psycopg2"):  # importing either now raises ImportError
        monkeypatch.setitem(sys.modules, driver, None)
    with pytest.raises(ConfigError, match=r"driver is not installed.*phasefit\[postgres\]") as error:
        _open_study("postgresql://me:secret@127.0.0.1:1/db", "s", None)
    assert "secret" not in str(error.value)
