"""Storage URLs: normalisation, password masking, clear and quick failures."""

from __future__ import annotations

from pathlib import Path
import time

import pytest
import sqlalchemy

from autotune._errors import StorageError
from autotune.storage import HeartbeatSettings
from autotune.storage import check_connection
from autotune.storage import end_abandoned_transactions
from autotune.storage import engine_kwargs
from autotune.storage import mask_password
from autotune.storage import normalize_url
from autotune.storage import open_storage
from autotune.storage import ping_idle_connections
from autotune.storage._engine import autocommitting
from autotune.storage._open import _start_embedded
from tests.conftest import run_autotune


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("postgresql://u:p@h:5432/db", "postgresql+psycopg2://u:p@h:5432/db"),
        ("postgres://u@h/db", "postgresql+psycopg2://u@h/db"),
        ("postgresql+psycopg2://u:p@h/db", "postgresql+psycopg2://u:p@h/db"),
        ("postgresql:///db?host=/run/pg", "postgresql+psycopg2:///db?host=%2Frun%2Fpg"),
    ],
)
def test_urls_are_normalised_to_psycopg2(given: str, expected: str) -> None:
    assert normalize_url(given) == expected


@pytest.mark.parametrize("url", ["sqlite:///x.db", "mysql://u@h/db", "not a url"])
def test_non_postgresql_urls_are_rejected_with_the_reason(url: str) -> None:
    with pytest.raises(StorageError, match="PostgreSQL|postgresql://"):
        normalize_url(url)


def test_password_is_masked() -> None:
    masked = mask_password("postgresql+psycopg2://alice:s3cret@db.example:5432/studies")
    assert "s3cret" not in masked
    assert masked == "postgresql+psycopg2://alice:***@db.example:5432/studies"


def test_engine_options_recycle_old_connections() -> None:
    assert engine_kwargs()["pool_recycle"] > 0


def _terminate_backend_of(engine: sqlalchemy.Engine, server_url: str) -> None:
    """End the server session of the engine's one pooled connection (a server restart's
    effect on it, without restarting the shared server)."""
    with engine.connect() as connection:
        pid = connection.execute(sqlalchemy.text("SELECT pg_backend_pid()")).scalar_one()
    admin = sqlalchemy.create_engine(server_url, poolclass=sqlalchemy.pool.NullPool)
    with admin.connect() as connection:
        connection.execute(sqlalchemy.text("SELECT pg_terminate_backend(:p)"), {"p": pid})
    admin.dispose()


def test_a_connection_dropped_while_idle_is_replaced_without_an_error(
    storage_url: str,
) -> None:
    engine = sqlalchemy.create_engine(storage_url, pool_size=1)
    ping_idle_connections(engine, idle_s=0.05)
    _terminate_backend_of(engine, storage_url)
    time.sleep(0.1)  # idle past the threshold: checked at checkout
    with engine.connect() as connection:
        assert connection.execute(sqlalchemy.text("SELECT 1")).scalar_one() == 1
    engine.dispose()


def test_a_connection_used_a_moment_ago_is_not_pinged(storage_url: str) -> None:
    """The price of pinging only idle connections: one dropped since its last use a moment
    ago fails its next statement as a disconnect (which callers ride out), and the pool
    replaces it for the next checkout."""
    engine = sqlalchemy.create_engine(storage_url, pool_size=1)
    ping_idle_connections(engine, idle_s=3600)
    _terminate_backend_of(engine, storage_url)
    with pytest.raises(sqlalchemy.exc.OperationalError) as raised, engine.connect() as connection:
        connection.execute(sqlalchemy.text("SELECT 1"))
    assert raised.value.connection_invalidated
    with engine.connect() as connection:
        assert connection.execute(sqlalchemy.text("SELECT 1")).scalar_one() == 1
    engine.dispose()


def test_autocommitting_commits_each_statement_and_leaves_the_isolation_level_alone(
    storage_url: str,
) -> None:
    """Each statement commits on its own; the connection goes back in transaction mode
    with its isolation level never set (psycopg2 would send a SET at every check-in)."""
    engine = sqlalchemy.create_engine(storage_url, pool_size=1)
    other = sqlalchemy.create_engine(storage_url, poolclass=sqlalchemy.pool.NullPool)
    table = "autotune_test_autocommitting"
    with engine.begin() as connection:
        connection.execute(sqlalchemy.text(f"CREATE TABLE IF NOT EXISTS {table} (x int)"))
    try:
        for _ in range(2):
            with autocommitting(engine) as connection:
                connection.execute(sqlalchemy.text(f"INSERT INTO {table} VALUES (1)"))
                with other.connect() as reader:  # committed before the block ends
                    seen = reader.execute(sqlalchemy.text(f"SELECT count(*) FROM {table}"))
                    assert seen.scalar_one() >= 1
        with engine.connect() as connection:
            dbapi_connection = connection.connection.dbapi_connection
            assert dbapi_connection.autocommit is False
            assert dbapi_connection.isolation_level is None  # never set: nothing to send
    finally:
        with engine.begin() as connection:
            connection.execute(sqlalchemy.text(f"DROP TABLE {table}"))
        engine.dispose()
        other.dispose()


def test_a_connection_dropped_while_autocommitting_raises_the_disconnect(
    storage_url: str,
) -> None:
    engine = sqlalchemy.create_engine(storage_url, pool_size=1)
    _terminate_backend_of(engine, storage_url)
    with pytest.raises(sqlalchemy.exc.OperationalError) as raised:
        with autocommitting(engine) as connection:
            connection.execute(sqlalchemy.text("SELECT 1"))
    assert raised.value.connection_invalidated
    with autocommitting(engine) as connection:  # the pool replaced it
        assert connection.execute(sqlalchemy.text("SELECT 1")).scalar_one() == 1
    engine.dispose()


def test_heartbeat_settings_are_validated() -> None:
    with pytest.raises(ValueError, match="grace period"):
        HeartbeatSettings(interval_s=10, grace_period_s=5)


def test_unreachable_server_fails_fast_with_masked_url() -> None:
    url = "postgresql+psycopg2://alice:s3cret@127.0.0.1:1/studies"
    started = time.monotonic()
    with pytest.raises(StorageError) as raised:
        check_connection(url)
    assert time.monotonic() - started < 15
    assert "cannot connect" in str(raised.value) and "s3cret" not in str(raised.value)


def test_wrong_database_on_a_real_server_is_a_clear_error(storage_url: str) -> None:
    wrong = sqlalchemy.engine.make_url(storage_url).set(database="no_such_database_x")
    with pytest.raises(StorageError, match="no_such_database_x"):
        open_storage(wrong.render_as_string(hide_password=False))


def test_real_server_opens_with_heartbeat(storage_url: str) -> None:
    storage = open_storage(storage_url, HeartbeatSettings(interval_s=2, grace_period_s=5))
    assert storage.get_heartbeat_interval() == 2
    assert storage.get_heartbeat_stale_trial_callback() is not None


def test_cli_unreachable_storage_exits_nonzero_quickly_without_traceback() -> None:
    started = time.monotonic()
    result = run_autotune("status", "x", "--storage", "postgresql://bob:hunter2@127.0.0.1:1/db")
    assert time.monotonic() - started < 15
    assert result.returncode == 2
    assert "cannot connect" in result.stderr
    assert "hunter2" not in result.stderr + result.stdout
    assert "Traceback" not in result.stderr


def test_cli_storage_from_environment_variable() -> None:
    result = run_autotune("status", "x", env={"AUTOTUNE_STORAGE": "sqlite:///x.db"})
    assert result.returncode == 2
    assert "unsupported storage URL scheme" in result.stderr


def test_an_embedded_server_that_cannot_start_is_retried_then_a_clear_error(
    tmp_path: Path,
) -> None:
    pgdata = tmp_path / "pgdata"
    pgdata.mkdir()
    (pgdata / "PG_VERSION").write_text("12\n")  # a data directory of another PostgreSQL
    started = time.monotonic()
    with pytest.raises(StorageError, match=r"pgdata \(2 attempts\): Version mismatch"):
        _start_embedded(pgdata, attempts=2, pause_s=0.5)
    assert time.monotonic() - started >= 0.5  # it waited before the second attempt


def test_a_session_left_in_a_transaction_is_ended_by_the_server(storage_url: str) -> None:
    """A frozen worker cannot hold its locks for ever (end_abandoned_transactions)."""
    engine = sqlalchemy.create_engine(storage_url)
    end_abandoned_transactions(engine, timeout_s=0.5)
    with engine.connect() as frozen:
        frozen.execute(sqlalchemy.text("SELECT pg_advisory_lock(42)"))  # in a transaction
        time.sleep(1.5)
        with engine.connect() as other:  # the lock went with the ended session
            assert other.execute(sqlalchemy.text("SELECT pg_try_advisory_lock(42)")).scalar()
            other.execute(sqlalchemy.text("SELECT pg_advisory_unlock(42)"))
        with pytest.raises(sqlalchemy.exc.OperationalError):
            frozen.execute(sqlalchemy.text("SELECT 1"))
    engine.dispose()


@pytest.mark.parametrize(
    ("url", "named"),
    [
        ("postgresql://postgres@127.0.0.1:5432/no_such_database", 'database "no_such_database"'),
        ("postgresql://postgres@no-such-host.invalid:5432/test", "no-such-host.invalid"),
    ],
    ids=["missing-database", "unknown-host"],
)
def test_a_worker_given_a_url_that_waiting_cannot_mend_exits_2_naming_why(
    url: str, named: str
) -> None:
    """A mistyped database or host waited out the whole outage limit as if the server were
    restarting, then exited 1; only an absent server is worth waiting for."""
    result = run_autotune("worker", "x", "--storage", url, "--outage-limit", "30")
    assert result.returncode == 2, result.stdout + result.stderr
    assert "cannot connect" in result.stderr and named in result.stderr
    assert "database unreachable" not in result.stderr + result.stdout
    assert "Traceback" not in result.stderr
