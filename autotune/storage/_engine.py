"""The SQLAlchemy engine behind an Optuna storage."""

from __future__ import annotations

from collections.abc import Iterator
import contextlib
import statistics
import time
from typing import Any

from optuna.storages import BaseStorage
from optuna.storages import RDBStorage
from sqlalchemy import Connection
from sqlalchemy import Engine
from sqlalchemy import event
from sqlalchemy import text
from sqlalchemy.exc import DisconnectionError

PING_AFTER_IDLE_S = 1.0
_CHECKED_IN_AT = "autotune_checked_in_at"


def engine_of(storage: BaseStorage) -> Engine:
    """The SQLAlchemy engine of a PostgreSQL ``RDBStorage`` (also behind Optuna's cache)."""
    backend = getattr(storage, "_backend", storage)  # optuna.load_study wraps in _CachedStorage
    if not isinstance(backend, RDBStorage):
        raise TypeError(f"needs an RDBStorage on PostgreSQL, got {type(storage).__name__}")
    if backend.engine.dialect.name != "postgresql":
        raise ValueError(f"needs PostgreSQL, got the {backend.engine.dialect.name!r} dialect")
    return backend.engine


@contextlib.contextmanager
def autocommitting(engine: Engine) -> Iterator[Connection]:
    """A pooled connection on which every statement is a transaction of its own.

    A transaction of one statement costs a BEGIN and a COMMIT (or ROLLBACK) round trip
    besides it; in autocommit mode psycopg2 sends the statement alone, with the same result
    under PostgreSQL's default isolation (READ COMMITTED). The connection goes back to the
    pool in transaction mode.

    psycopg2's own switch, not SQLAlchemy's ``isolation_level="AUTOCOMMIT"``: SQLAlchemy
    puts the connection back by setting its isolation level, which psycopg2 sends as a
    ``SET default_transaction_isolation`` round trip at every check-in; the switch alone is
    client-side (the isolation level is never changed here).
    """
    with engine.connect() as connection:
        dbapi_connection = connection.connection.dbapi_connection
        dbapi_connection.autocommit = True
        try:
            yield connection
        finally:
            if not dbapi_connection.closed:  # a dropped connection: the pool replaces it
                dbapi_connection.autocommit = False


def round_trip_ms(storage: BaseStorage, samples: int = 5) -> float:
    """The median time of ``SELECT 1`` on one connection: the storage's latency as a worker
    sees it (network and server load; every statement of a trial pays it)."""
    with engine_of(storage).connect() as connection:
        connection.execute(text("SELECT 1"))  # the connection is warm before timing
        times = []
        for _ in range(samples):
            started = time.perf_counter()
            connection.execute(text("SELECT 1"))
            times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def ping_idle_connections(engine: Engine, idle_s: float = PING_AFTER_IDLE_S) -> None:
    """Check a pooled connection at checkout only when it sat in the pool ``idle_s`` or more.

    SQLAlchemy's ``pool_pre_ping`` pings at every checkout: five of a 1-second trial's
    twenty round trips, all within milliseconds of the connection's last use. A connection
    that dropped while it sat idle (a server restart, a proxy's idle timeout) is replaced
    here without an error; one that dropped in the moment since its last use fails its
    next statement, as it would had the server gone down at that moment, which every
    caller already rides out (and the pool then replaces every older connection).
    """
    dbapi_error = engine.dialect.loaded_dbapi.Error

    def checked_in(_dbapi_connection: Any, record: Any) -> None:
        record.info[_CHECKED_IN_AT] = time.monotonic()

    def checked_out(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        last_use = record.info.get(_CHECKED_IN_AT)  # none yet: connected just now
        if last_use is None or time.monotonic() - last_use < idle_s:
            return
        try:
            engine.dialect.do_ping(dbapi_connection)
        except dbapi_error as error:  # the pool replaces the connection and checks out again
            raise DisconnectionError(str(error)) from error

    event.listen(engine, "checkin", checked_in)
    event.listen(engine, "checkout", checked_out)
