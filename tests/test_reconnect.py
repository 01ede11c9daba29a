"""Recognising a lost database connection and waiting for it, on real PostgreSQL errors."""

from __future__ import annotations

from collections.abc import Iterator
import contextlib
import itertools
import time

import optuna
import pytest
import sqlalchemy

from autotune.storage import DatabaseUnavailableError
from autotune.storage import backoff_delays
from autotune.storage import is_connection_lost
from autotune.storage import open_storage
from autotune.storage import wait_for_database
from tests.conftest import free_port


def unreachable_engine() -> sqlalchemy.Engine:
    return sqlalchemy.create_engine(
        f"postgresql+psycopg2://postgres@127.0.0.1:{free_port()}/x",
        connect_args={"connect_timeout": 2},
    )


def raised_by(call) -> BaseException:  # noqa: ANN001
    with pytest.raises(Exception) as caught:
        call()
    return caught.value


def test_a_refused_connection_is_lost_and_a_bad_statement_is_not(storage_url: str) -> None:
    refused = raised_by(lambda: unreachable_engine().connect())
    assert is_connection_lost(refused)

    engine = sqlalchemy.create_engine(storage_url)
    with engine.connect() as connection:
        bad_sql = raised_by(lambda: connection.execute(sqlalchemy.text("SELECT * FROM nowhere")))
    assert not is_connection_lost(bad_sql)
    assert not is_connection_lost(ValueError("not a database error"))
    engine.dispose()


def test_a_terminated_session_is_lost_even_wrapped_by_optuna(storage_url: str) -> None:
    engine = sqlalchemy.create_engine(storage_url)
    admin = sqlalchemy.create_engine(storage_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as victim:
        pid = victim.execute(sqlalchemy.text("SELECT pg_backend_pid()")).scalar_one()
        with admin.connect() as connection:
            connection.execute(sqlalchemy.text("SELECT pg_terminate_backend(:p)"), {"p": pid})
        terminated = raised_by(lambda: victim.execute(sqlalchemy.text("SELECT 1")))
    try:
        raise optuna.exceptions.StorageInternalError("commit failed") from terminated
    except optuna.exceptions.StorageInternalError as wrapped:
        assert is_connection_lost(wrapped)
    engine.dispose()
    admin.dispose()


def test_backoff_doubles_up_to_its_cap() -> None:
    assert list(itertools.islice(backoff_delays(0.5, 4.0), 6)) == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]


def test_waiting_for_a_live_database_returns_at_once(storage_url: str) -> None:
    slept: list[float] = []
    assert wait_for_database(open_storage(storage_url), 5, slept.append) < 5
    assert slept == []


@contextlib.contextmanager
def connections_refused(server_url: str, storage_url: str) -> Iterator[None]:
    """The storage's database refuses new connections and loses its open ones, meanwhile."""
    database = sqlalchemy.engine.make_url(storage_url).database
    admin = sqlalchemy.create_engine(server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(sqlalchemy.text(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS false'))
        connection.execute(
            sqlalchemy.text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :name"
            ),
            {"name": database},
        )
        try:
            yield
        finally:
            connection.execute(
                sqlalchemy.text(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS true')
            )
    admin.dispose()


def test_waiting_gives_up_after_the_limit_with_a_clear_error(
    server_url: str, storage_url: str
) -> None:
    storage = open_storage(storage_url)
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        time.sleep(seconds)

    with connections_refused(server_url, storage_url):
        with pytest.raises(
            DatabaseUnavailableError, match=r"unreachable .*limit --outage-limit 1 s"
        ):
            wait_for_database(storage, 1, sleep)
    assert slept[0] == 0.5 and sum(slept) <= 1.0
    assert wait_for_database(storage, 5) < 5  # back: the same storage reconnects
