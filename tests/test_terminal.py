"""What a user sees from the commands (issue 15, Terminal): readers that create nothing and
name the storage, a worker's one line per trial, status --watch, a finished campaign run
again, and create's worker hint."""

from __future__ import annotations

import os
from pathlib import Path
import re
import signal
import subprocess

import pytest

from tests.conftest import FAST_HEARTBEAT
from tests.conftest import autotune_command
from tests.conftest import run_autotune
from tests.conftest import write_study

pytestmark = pytest.mark.e2e  # every test here runs the `autotune` command in a subprocess

NO_ENV = {"AUTOTUNE_STORAGE": ""}
TRIAL_LINE = re.compile(  # short trials in tenths: "in 0.4 s"
    r"^t/joint/1 #\d+ ((COMPLETE|PRUNED)( val_loss=\S+)?|FAIL) in \d+(\.\d)? s$"
)


# not the dashboard: it may start first and watch campaigns run later, so it starts one
READERS = [
    ["status"], ["status", "t"], ["best", "t"], ["report", "t"], ["export", "t"], ["logs", "t"],
    ["train", "t"], ["delete", "t", "--yes"],
]  # fmt: skip


@pytest.mark.parametrize("argv", READERS)
def test_readers_in_a_directory_without_a_campaign_create_nothing(
    tmp_path: Path, argv: list[str]
) -> None:
    """status from another directory created ./.autotune and said "No campaigns"."""
    result = run_autotune(*argv, cwd=tmp_path, env=NO_ENV)
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    assert f"no embedded PostgreSQL in {tmp_path.resolve()}/.autotune/" in result.stderr
    assert "--storage URL or AUTOTUNE_STORAGE=URL" in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_an_empty_storage_is_named(storage_url: str) -> None:
    result = run_autotune("status", "--storage", storage_url)
    assert result.returncode == 0 and result.stdout == "no campaigns\n"
    assert "looked in postgresql" in result.stderr and "AUTOTUNE_STORAGE=URL" in result.stderr


def test_create_suggests_a_worker_command_that_works(storage_url: str, tmp_path: Path) -> None:
    spec = write_study(tmp_path, "t", trials=2)
    given = run_autotune("create", str(spec), "--storage", storage_url, env=NO_ENV)
    assert given.returncode == 0, given.stderr
    assert given.stdout.splitlines()[-1].endswith(f"worker t --storage '{storage_url}'")
    from_env = run_autotune("create", str(spec), env={"AUTOTUNE_STORAGE": storage_url})
    hint = from_env.stdout.splitlines()[-1]
    assert "worker t " in hint and "--storage" not in hint and "AUTOTUNE_STORAGE set" in hint


def test_a_worker_logs_each_trial_and_no_optuna_lines(storage_url: str, tmp_path: Path) -> None:
    """A worker said nothing until it exited; with -v Optuna's own lines came in its
    format ("[I 2026-...]") among autotune's."""
    spec = write_study(tmp_path, "t", trials=3, max_train_steps=40)
    created = run_autotune("create", str(spec), "--storage", storage_url, "-v")
    optuna_lines = [line for line in created.stderr.splitlines() if " optuna." in line]
    assert any("A new study created" in line for line in optuna_lines), created.stderr
    assert all(re.match(r"^\d{4}-\d\d-\d\d [\d:,]+ [A-Z]+ optuna\.", x) for x in optuna_lines)
    result = run_autotune("worker", "t", "--storage", storage_url, "-v", *FAST_HEARTBEAT)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    trials = [line for line in lines if TRIAL_LINE.match(line)]
    assert len(trials) == 3, result.stdout
    assert lines[-1].startswith("worker ") and "ran 3 trials (" in lines[-1], lines[-1]
    for stderr in (created.stderr, result.stderr):  # Optuna's own format: "[I 2026-..."
        assert not re.search(r"^\[[IWE] \d{4}-", stderr, re.M), stderr


def test_status_watch_follows_to_the_end_and_a_finished_run_is_not_resumed(
    storage_url: str, tmp_path: Path
) -> None:
    spec = write_study(tmp_path, "t", trials=2, max_train_steps=40)
    assert run_autotune("create", str(spec), "--storage", storage_url).returncode == 0
    watch = start_watch(storage_url)
    worker = run_autotune("worker", "t", "--storage", storage_url, *FAST_HEARTBEAT)
    assert worker.returncode == 0, worker.stderr
    out, err = watch.communicate(timeout=60)
    assert watch.returncode == 0 and "Traceback" not in err, err
    assert "round 1 · " in out and "\x1b" not in out, out  # plain lines off a terminal
    assert "answer: t/joint/1 #" in out, out  # the final status
    again = run_autotune("run", str(spec), "--storage", storage_url)
    assert again.returncode == 0, again.stderr
    assert again.stdout.startswith("campaign 't' already finished, in postgresql")
    assert "resuming" not in again.stdout and "campaign t:" in again.stdout
    spec.write_text(spec.read_text().replace("trials: 2\n", "trials: 3\n"))
    extended = run_autotune("run", str(spec), "--workers", "1", "--storage", storage_url)
    assert extended.returncode == 0, extended.stderr
    assert "extended campaign 't'" in extended.stdout and "finished" not in extended.stdout
    ran_on = r"round 1, 40 steps: \d complete, \d pruned, 0 failed of 3;"
    assert re.search(ran_on, extended.stdout), extended.stdout


def test_ctrl_c_stops_a_watch_quietly(storage_url: str, tmp_path: Path) -> None:
    spec = write_study(tmp_path, "t", trials=2)
    assert run_autotune("create", str(spec), "--storage", storage_url).returncode == 0
    watch = start_watch(storage_url)
    assert watch.stdout is not None
    first = watch.stdout.readline()  # watching (no worker: the campaign waits in round 1)
    out, err = ctrl_c(watch)
    out = first + out
    assert watch.returncode == 0, err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err, err
    assert "round 1 · 0/2 trials" in out, out


def ctrl_c(process: subprocess.Popen, presses: int = 10) -> tuple[str, str]:
    """Ctrl-C until the process ends, as a person presses it again (a first SIGINT that
    lands while the watch is still starting can be lost); its output."""
    for _ in range(presses - 1):
        process.send_signal(signal.SIGINT)
        try:
            return process.communicate(timeout=3)
        except subprocess.TimeoutExpired:
            continue
    process.send_signal(signal.SIGINT)
    try:
        return process.communicate(timeout=30)
    except subprocess.TimeoutExpired:  # stuck: its threads' stacks say where (faulthandler)
        process.send_signal(signal.SIGABRT)
        out, err = process.communicate(timeout=30)
        raise AssertionError(f"Ctrl-C did not stop it; where it was:\n{err}\n{out}") from None


def start_watch(storage_url: str) -> subprocess.Popen:
    """``status t --watch`` in the background, its output unbuffered (lines as printed)."""
    return subprocess.Popen(
        autotune_command("status", "t", "--watch", "--interval", "0.5", "--storage", storage_url),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONFAULTHANDLER": "1"},
        preexec_fn=_ctrl_c_as_at_a_terminal,
    )


def _ctrl_c_as_at_a_terminal() -> None:
    """Ctrl-C's default action in the child, as a shell gives a job it runs in the
    foreground. A test run started in the background (CI's ``... &``) ignores SIGINT, and a
    Python started with SIGINT ignored keeps ignoring it: the watch then never stopped."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
