"""Advisory locks are leases: a frozen holder costs about one grace period, a live one keeps
the lock for as long as its work takes. Real processes on the test PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
import os
import signal
import subprocess
import sys
import time

import pytest
import sqlalchemy

from autotune.storage import HeartbeatSettings
from autotune.storage import advisory_lock
from autotune.storage import advisory_lock_key
from autotune.storage import open_storage
from tests.conftest import REPO_ROOT

GRACE_S = 2
HOLD = """
import sys, time
from autotune.storage import HeartbeatSettings, advisory_lock, open_storage
storage = open_storage(sys.argv[1], HeartbeatSettings(1, int(sys.argv[2])))
with advisory_lock(storage, sys.argv[3]):
    print("locked", flush=True)
    time.sleep(3600)
"""


@pytest.fixture
def holder(storage_url: str) -> Iterator[subprocess.Popen[str]]:
    """A process that takes the lock ``test-lock`` and holds it, alive, until killed."""
    process = subprocess.Popen(
        [sys.executable, "-c", HOLD, storage_url, str(GRACE_S), "test-lock"],
        stdout=subprocess.PIPE,
        text=True,
        cwd=REPO_ROOT,
    )
    assert process.stdout is not None and process.stdout.readline() == "locked\n"
    try:
        yield process
    finally:
        if process.poll() is None:
            os.kill(process.pid, signal.SIGCONT)
            process.kill()
            process.wait()


def lock_is_free(storage_url: str) -> bool:
    engine = sqlalchemy.create_engine(storage_url)
    try:
        with engine.connect() as connection:
            key = advisory_lock_key("test-lock")
            return bool(
                connection.execute(
                    sqlalchemy.text("SELECT pg_try_advisory_xact_lock(:key)"), {"key": key}
                ).scalar()
            )
    finally:
        engine.dispose()


def seconds_to_take_lock(storage_url: str) -> float:
    storage = open_storage(storage_url, HeartbeatSettings(1, GRACE_S))
    started = time.monotonic()
    with advisory_lock(storage, "test-lock"):
        return time.monotonic() - started


def test_a_live_holder_keeps_the_lock_past_its_lease(
    storage_url: str, holder: subprocess.Popen[str]
) -> None:
    time.sleep(3 * GRACE_S)  # no work renews it but the holder's own renewal
    assert not lock_is_free(storage_url)


def test_a_frozen_holder_stalls_others_about_one_grace_period(
    storage_url: str, holder: subprocess.Popen[str]
) -> None:
    os.kill(holder.pid, signal.SIGSTOP)
    waited = seconds_to_take_lock(storage_url)
    assert waited <= GRACE_S + 2, waited


def test_a_killed_holder_stalls_no_one(storage_url: str, holder: subprocess.Popen[str]) -> None:
    holder.kill()
    holder.wait()
    assert seconds_to_take_lock(storage_url) < 1.5


def test_a_holder_resumed_after_its_lease_ended_releases_without_error(
    storage_url: str,
) -> None:
    storage = open_storage(storage_url, HeartbeatSettings(1, GRACE_S))
    with advisory_lock(storage, "test-lock"):
        engine = sqlalchemy.create_engine(storage_url)
        with engine.connect() as admin:  # what the server does to a frozen holder
            admin.execute(
                sqlalchemy.text(
                    "SELECT pg_terminate_backend(pid) FROM pg_locks "
                    "WHERE locktype = 'advisory' AND pid <> pg_backend_pid() AND database = "
                    "(SELECT oid FROM pg_database WHERE datname = current_database())"
                )
            )
        engine.dispose()
        assert lock_is_free(storage_url)
    assert lock_is_free(storage_url)
