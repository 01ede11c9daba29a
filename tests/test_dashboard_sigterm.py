"""A dashboard stopped with SIGTERM stops the embedded PostgreSQL it started (issue 15).

SIGTERM's default action skipped the process's atexit handlers: the server stayed up, and
the dead dashboard's pid in ``pgdata/.handle_pids.json`` kept every later command from
stopping it.
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
import signal
import subprocess

import pytest

from autotune.worker._launcher import STORAGE_ENV
from tests.conftest import REPO_ROOT
from tests.conftest import autotune_command
from tests.conftest import free_port
from tests.conftest import run_autotune
from tests.test_browser import wait_until_serving

pytestmark = pytest.mark.e2e


def _start_dashboard(state: Path) -> tuple[subprocess.Popen[str], Path]:
    """``autotune dashboard`` on the embedded server under ``state``, serving; its pgdata."""
    port = free_port()
    dashboard = subprocess.Popen(
        autotune_command("dashboard", "--state-dir", str(state), "--port", str(port)),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=_embedded_env(),
        cwd=REPO_ROOT,
    )
    try:
        wait_until_serving(f"http://127.0.0.1:{port}/api/studies", dashboard)
    except BaseException:
        dashboard.kill()
        dashboard.communicate()
        raise
    return dashboard, state / "pgdata"


def _embedded_env() -> dict[str, str]:
    return {**os.environ, STORAGE_ENV: ""}  # empty: the embedded server


def _users(pgdata: Path) -> list[int]:
    return json.loads((pgdata / ".handle_pids.json").read_text())


def test_sigterm_stops_the_embedded_server_the_dashboard_started(tmp_path: Path) -> None:
    dashboard, pgdata = _start_dashboard(tmp_path / "state")
    try:
        assert _users(pgdata) == [dashboard.pid]
        assert (pgdata / "postmaster.pid").exists()
        dashboard.send_signal(signal.SIGTERM)
        output, _ = dashboard.communicate(timeout=120)
        assert dashboard.returncode == 0, output
        assert "Traceback" not in output, output
        assert _users(pgdata) == []
        assert not (pgdata / "postmaster.pid").exists(), "the embedded PostgreSQL still runs"
    finally:
        if dashboard.poll() is None:
            dashboard.kill()
            dashboard.communicate()
        _stop_leaked_server(pgdata)


def test_a_later_command_stops_the_server_a_killed_process_left_running(tmp_path: Path) -> None:
    """SIGKILL runs no handler: the dead pid stayed listed and no later command stopped it."""
    dashboard, pgdata = _start_dashboard(tmp_path / "state")
    try:
        dashboard.kill()
        dashboard.communicate(timeout=60)
        assert _users(pgdata) == [dashboard.pid] and (pgdata / "postmaster.pid").exists()
        state = str(tmp_path / "state")
        status = run_autotune("status", "--state-dir", state, env=_embedded_env())
        assert status.returncode == 0, status.stdout + status.stderr
        assert _users(pgdata) == []
        assert not (pgdata / "postmaster.pid").exists(), "the embedded PostgreSQL still runs"
    finally:
        _stop_leaked_server(pgdata)


def _stop_leaked_server(pgdata: Path) -> None:
    """Fast shutdown (SIGINT) of a server the test failed to see stopped."""
    with contextlib.suppress(OSError, ValueError):
        os.kill(int((pgdata / "postmaster.pid").read_text().split()[0]), signal.SIGINT)
