"""PostgreSQL advisory locks: mutual exclusion between workers that share only the database.

A lock is a lease: held by a transaction of its own that the holder renews every few
seconds, which the server ends once renewals stop for the heartbeat grace period. A frozen
holder (SIGSTOP, a paused VM) thus stalls the others for about one grace period, a killed
one not at all, and a live one keeps the lock however long its work takes.
"""

from __future__ import annotations

from collections.abc import Iterator
import contextlib
from dataclasses import dataclass
import hashlib
import logging
import random
import threading
import time
from typing import Any

from optuna.storages import BaseStorage
import sqlalchemy

from autotune.storage._engine import engine_of
from autotune.storage._outage import first_line
from autotune.storage._outage import is_connection_lost

_logger = logging.getLogger(__name__)

DEFAULT_LEASE_S = 60.0  # a storage without a grace period: Optuna's heartbeat-less RDBStorage
RENEWALS_PER_LEASE = 4


def advisory_lock_key(name: str) -> int:
    """A stable signed 64-bit key for a PostgreSQL advisory lock."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)


def lock_lease_s(storage: BaseStorage) -> float:
    """How long a silent holder keeps a lock: the storage's heartbeat grace period."""
    backend = getattr(storage, "_backend", storage)  # optuna.load_study's _CachedStorage
    grace = getattr(backend, "grace_period", None)
    if grace is None and getattr(backend, "heartbeat_interval", None):
        grace = 2 * backend.heartbeat_interval  # Optuna's own default grace
    return float(grace or DEFAULT_LEASE_S)


@dataclass(frozen=True)
class LockHold:
    """A held lock: how long acquiring it took (connection, lease and wait)."""

    waited_s: float


@contextlib.contextmanager
def advisory_lock(storage: BaseStorage, name: str) -> Iterator[LockHold]:
    """Hold a transaction-scoped advisory lock for the block, as a lease of one grace period.

    The lock's transaction runs on a connection of its own (the block's writes go through
    the storage as usual); the server ends it when it sits idle for the lease, so the block
    renews it from a thread that stops with the process.
    """
    lease_s = lock_lease_s(storage)
    asked = time.perf_counter()
    with engine_of(storage).connect() as connection:
        _acquire(connection, advisory_lock_key(name), lease_s)
        renewal = _Renewal(connection.connection.dbapi_connection, lease_s / RENEWALS_PER_LEASE)
        try:
            yield LockHold(time.perf_counter() - asked)
            renewal.stop()
            _release(connection, name)
        finally:
            renewal.stop()
            renewal.join()  # after the release: the thread's wake-up is not the others' wait


_TRY_LOCK = sqlalchemy.text(  # one round trip: the lease, then the lock (in select order)
    "SELECT set_config('idle_in_transaction_session_timeout', :ms, true), "
    "pg_try_advisory_xact_lock(:key)"
)


def _acquire(connection: sqlalchemy.Connection, key: int, lease_s: float) -> None:
    """Try the lock until it is free, ending the transaction between tries.

    Waiting in ``pg_advisory_xact_lock`` would keep a server connection: behind PgBouncer
    in transaction mode, waiters could then fill its pool while the holder's own statements
    (on other connections) queue behind them, until PgBouncer's query_wait_timeout. A
    waiter that holds no transaction holds no server connection. Retries back off with
    jitter, from about a millisecond (a hand-out holds the lock for a few) to a tenth of
    a second, so that a thousand waiters stay a light load.
    """
    backoff = _Backoff()
    parameters = {"ms": str(max(1, int(lease_s * 1000))), "key": key}
    while not connection.execute(_TRY_LOCK, parameters).one()[1]:
        connection.rollback()
        time.sleep(backoff.next_delay_s())


class _Backoff:
    """Full-jitter exponential back-off (uniform in [0, cap], the cap doubling)."""

    FIRST_CAP_S = 0.002
    LAST_CAP_S = 0.1

    def __init__(self) -> None:
        self._cap_s = self.FIRST_CAP_S
        self._random = random.Random()

    def next_delay_s(self) -> float:
        delay = self._random.uniform(0, self._cap_s)
        self._cap_s = min(2 * self._cap_s, self.LAST_CAP_S)
        return delay


def _release(connection: sqlalchemy.Connection, name: str) -> None:
    """Commit the lock's transaction; a lease the server ended (the holder was frozen past
    it) is only logged: the block's work is done and nothing is left to release."""
    try:
        connection.commit()
    except sqlalchemy.exc.SQLAlchemyError as error:
        if not is_connection_lost(error):
            raise
        _logger.warning(
            "lock %s expired while this process was not renewing it (frozen?): %s",
            name,
            first_line(error),
        )


class _Renewal:
    """Run ``SELECT 1`` in the lock's transaction every ``interval_s`` from when it is made
    until :meth:`stop`, so the server's idle-in-transaction timeout ends the transaction only
    when this process stops."""

    def __init__(self, dbapi_connection: Any, interval_s: float) -> None:
        self._connection, self._interval_s = dbapi_connection, interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="lock-renewal", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.wait(self._interval_s):
            try:
                with self._connection.cursor() as cursor:
                    cursor.execute("SELECT 1")
            except Exception as error:  # the lease is gone; the release will say so
                _logger.debug("lock renewal failed: %s", first_line(error))
                return

    def stop(self) -> None:
        """No renewal after this (one under way finishes first: the connection serialises)."""
        self._stop.set()

    def join(self) -> None:
        self._thread.join()
