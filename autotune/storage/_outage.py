"""Riding out a database outage: recognise a lost connection, wait for the server to return."""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Iterator
import itertools
import logging
import time

import optuna
from optuna.storages import BaseStorage
import sqlalchemy

from autotune._errors import StorageError
from autotune.storage._engine import engine_of

_logger = logging.getLogger(__name__)

FIRST_DELAY_S = 0.5
MAX_DELAY_S = 10.0


class DatabaseUnavailableError(StorageError):
    """The database did not come back within the worker's outage limit."""


def is_connection_lost(error: BaseException) -> bool:
    """Whether an error (or one it was raised from) says the database connection is gone.

    Optuna wraps SQLAlchemy's errors in ``StorageInternalError``; the cause chain is walked.
    Errors of the statement itself (constraint violations, bad SQL) are not outages.
    """
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, sqlalchemy.exc.OperationalError | sqlalchemy.exc.InterfaceError):
            return True
        if isinstance(current, sqlalchemy.exc.DBAPIError) and current.connection_invalidated:
            return True
        current = current.__cause__ or current.__context__
    return False


def backoff_delays(first_s: float = FIRST_DELAY_S, max_s: float = MAX_DELAY_S) -> Iterator[float]:
    """Seconds to wait between reconnection attempts: doubling from ``first_s`` to ``max_s``."""
    for attempt in itertools.count():
        yield min(first_s * 2**attempt, max_s)


def wait_for_database(
    storage: BaseStorage,
    limit_s: float,
    sleep: Callable[[float], None] = time.sleep,
) -> float:
    """Block until ``SELECT 1`` on the storage's database succeeds; the seconds waited.

    Raises DatabaseUnavailableError after ``limit_s`` seconds of failed attempts.
    """
    return _wait_for_engine(engine_of(storage), limit_s, sleep)


def _wait_for_engine(
    engine: sqlalchemy.Engine,
    limit_s: float,
    sleep: Callable[[float], None],
    only_absent: bool = False,
) -> float:
    started = time.monotonic()
    for delay in backoff_delays():
        try:
            with engine.connect() as connection:
                connection.execute(sqlalchemy.text("SELECT 1"))
            return time.monotonic() - started
        except sqlalchemy.exc.SQLAlchemyError as error:
            if only_absent and not is_server_absent(error):
                return time.monotonic() - started  # it answered: the caller's check says how
            waited = time.monotonic() - started
            if waited >= limit_s:
                raise DatabaseUnavailableError(
                    f"the database has been unreachable for {waited:.0f} s "
                    f"(limit --outage-limit {limit_s:.0f} s): {first_line(error)}"
                ) from None
            _logger.warning(
                "database unreachable (%s), retrying in %.1f s", first_line(error), delay
            )
            sleep(min(delay, max(limit_s - waited, 0.0)))
    raise AssertionError("unreachable: backoff_delays never ends")


def wait_for_server(
    url: str, limit_s: float, sleep: Callable[[float], None] = time.sleep
) -> float:
    """Block until the server at ``url`` accepts a connection; the seconds waited.

    For a worker started during an outage: it waits like a running one. Only an absent
    server is waited for (refused, timed out, starting up or shutting down); one that
    answers with a refusal (password, missing database) is for the caller to report.
    Raises DatabaseUnavailableError after ``limit_s`` seconds.
    """
    engine = sqlalchemy.create_engine(url, connect_args={"connect_timeout": 10})
    try:
        return _wait_for_engine(engine, limit_s, sleep, only_absent=True)
    finally:
        engine.dispose()


# A server that answers a connection with FATAL is there; these FATALs pass (class 57P, and
# a full server), the rest (a missing database or role, a wrong password) will not.
PASSING_FATALS = (
    "starting up",
    "shutting down",
    "in recovery",
    "not yet accepting connections",
    "too many clients",
    "remaining connection slots",
)
NO_SUCH_HOST = "could not translate host name"  # a typo, which waiting does not mend


def is_server_absent(error: BaseException) -> bool:
    """Whether a failed connection found no server to talk to (refused, timed out, class
    57P: starting up, shutting down), rather than a server that refused it or a host name
    that names none. psycopg2 gives a connection's FATAL no SQLSTATE: its text tells."""
    if not isinstance(error, sqlalchemy.exc.OperationalError):
        return False
    original = getattr(error, "orig", None)
    code = getattr(original, "pgcode", None)
    if code is not None:
        return code.startswith("57P")
    message = str(original or error)
    if NO_SUCH_HOST in message:
        return False
    fatal = message.partition("FATAL:")[2]
    return not fatal or any(phrase in fatal for phrase in PASSING_FATALS)


def first_line(error: BaseException) -> str:
    """The first line of an error's message (SQLAlchemy's run to a dozen), for logs."""
    message = str(getattr(error, "orig", None) or error).strip()
    return message.splitlines()[0] if message else type(error).__name__


STORAGE_ERRORS = (optuna.exceptions.StorageInternalError, sqlalchemy.exc.SQLAlchemyError)
"""What a storage call raises when the database is gone; check with is_connection_lost."""
