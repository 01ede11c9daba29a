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
from tests.test_browser import wait_until_serving

pytestmark = pytest.mark.e2e


def test_sigterm_stops_the_embedded_server_the_dashboard_started(tmp_path: Path) -> None:
    state = tmp_path / "state"
    port = free_port()
    env = {key: value for key, value in os.environ.items() if key != STORAGE_ENV}
    dashboard = subprocess.Popen(
        autotune_command("dashboard", "--state-dir", str(state), "--port", str(port)),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
        cwd=REPO_ROOT,
    )
    pgdata = state / "pgdata"
    try:
        wait_until_serving(f"http://127.0.0.1:{port}/api/studies", dashboard)
        assert json.loads((pgdata / ".handle_pids.json").read_text()) == [dashboard.pid]
        assert (pgdata / "postmaster.pid").exists()
        dashboard.send_signal(signal.SIGTERM)
        output, _ = dashboard.communicate(timeout=120)
        assert dashboard.returncode == 0, output
        assert "Traceback" not in output, output
        assert json.loads((pgdata / ".handle_pids.json").read_text()) == []
        assert not (pgdata / "postmaster.pid").exists(), "the embedded PostgreSQL still runs"
    finally:
        if dashboard.poll() is None:
            dashboard.kill()
            dashboard.communicate()
        _stop_leaked_server(pgdata)


def _stop_leaked_server(pgdata: Path) -> None:
    """Fast shutdown (SIGINT) of a server the test failed to see stopped."""
    with contextlib.suppress(OSError, ValueError):
        os.kill(int((pgdata / "postmaster.pid").read_text().split()[0]), signal.SIGINT)
