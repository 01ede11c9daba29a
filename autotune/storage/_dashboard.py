"""optuna-dashboard on our storage: its wsgi() app, bound to the loopback unless told.

optuna-dashboard has no authentication and accepts writes, so deployments give it a
read-only PostgreSQL role (deploy/postgres/roles.sql); ``read_only=True`` refuses to serve
through a role that can write, answers every write request with 403 and reads the artifact
store through a wrapper that cannot write (optuna-dashboard touches the artifact store
before the database, so the role alone does not protect it).
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Iterable
from collections.abc import Iterator
import contextlib
import ipaddress
import json
import signal
import socket
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler
from wsgiref.simple_server import make_server

from optuna.artifacts._protocol import ArtifactStore
from optuna.storages import RDBStorage
import sqlalchemy

from autotune._errors import AutotuneError
from autotune._errors import StorageError
from autotune.storage._artifacts import ReadOnlyArtifactStore
from autotune.storage._engine import engine_of

WRITE_PRIVILEGES = ("INSERT", "UPDATE", "DELETE")
READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def writable_tables(storage: RDBStorage) -> list[str]:
    """The tables of the storage the connected role may write (empty: read-only)."""
    qualified = "quote_ident(schemaname) || '.' || quote_ident(tablename)"
    checks = " OR ".join(f"has_table_privilege({qualified}, '{p}')" for p in WRITE_PRIVILEGES)
    query = sqlalchemy.text(
        f"SELECT tablename FROM pg_tables WHERE schemaname = current_schema() AND ({checks}) "
        "ORDER BY tablename"
    )
    with engine_of(storage).connect() as connection:
        return [row[0] for row in connection.execute(query)]


def is_loopback(host: str) -> bool:
    """Whether a bind address reaches this machine only: every address it names is loopback."""
    try:
        addresses = {info[4][0] for info in socket.getaddrinfo(host, None)}
    except (OSError, UnicodeError):
        return False
    return bool(addresses) and all(
        ipaddress.ip_address(str(address).split("%")[0]).is_loopback for address in addresses
    )


def check_exposure(
    storage: RDBStorage, host: str, read_only: bool, allow_writes_from_network: bool
) -> None:
    """Refuse to serve a role that can write beyond the loopback, unless told to.

    optuna-dashboard has no authentication: on another address anyone who reaches it could
    delete studies and checkpoints.
    """
    if read_only or allow_writes_from_network or is_loopback(host):
        return
    writable = writable_tables(storage)
    if writable:
        raise AutotuneError(
            f"--host {host} serves optuna-dashboard, which has no authentication, beyond this "
            f"machine, and this database role can write ({', '.join(writable[:3])}"
            f"{' …' if len(writable) > 3 else ''}): anyone who reaches it could delete "
            "studies. Serve the read-only role (deploy/postgres/roles.sql) with --read-only, "
            "bind --host 127.0.0.1 (and tunnel: ssh -L 8080:127.0.0.1:8080 HOST), or pass "
            "--allow-writes-from-network if you accept that"
        )


def dashboard_app(
    storage: RDBStorage, artifact_store: ArtifactStore | None, read_only: bool
) -> WsgiApp:
    """optuna-dashboard's WSGI app on the storage (our engine: pooling, pre-ping)."""
    import optuna_dashboard  # a third of a second to import: only when serving

    if not read_only:
        return optuna_dashboard.wsgi(storage, artifact_store=artifact_store)
    writable = writable_tables(storage)
    if writable:
        raise StorageError(
            f"--read-only, but this database role can write {', '.join(writable[:5])}"
            f"{' …' if len(writable) > 5 else ''}; connect as the read-only role created "
            "by deploy/postgres/roles.sql (autotune_dashboard)"
        )
    store = None if artifact_store is None else ReadOnlyArtifactStore(artifact_store)
    return refuse_writes(optuna_dashboard.wsgi(storage, artifact_store=store))


def refuse_writes(app: WsgiApp) -> WsgiApp:
    """The app, answering every request that could write (not GET, HEAD or OPTIONS) with 403.

    optuna-dashboard has no read-only mode: it shows Create, Delete and note editing, and
    its handlers write before they could fail, so writes are stopped before they reach it.
    The JSON ``reason`` is what its pages show in their error message.
    """

    def read_only_app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        method = str(environ.get("REQUEST_METHOD", "GET")).upper()
        if method in READ_METHODS:
            return app(environ, start_response)
        reason = (
            f"this dashboard is read-only (autotune dashboard --read-only): "
            f"{method} {environ.get('PATH_INFO', '/')} refused"
        )
        body = json.dumps({"reason": reason}).encode()
        start_response(
            "403 Forbidden",
            [("Content-Type", "application/json"), ("Content-Length", str(len(body)))],
        )
        return [body]

    return read_only_app


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (stdlib name)
        return


def serve(app: Callable[..., Any], host: str, port: int) -> None:
    """Serve the app until interrupted (wsgiref: fine for a team's dashboard)."""
    with make_server(host, port, app, handler_class=_QuietHandler) as server:
        server.serve_forever()


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """Inside, SIGTERM raises KeyboardInterrupt as Ctrl-C does.

    The process then exits through its atexit handlers, which stop the embedded PostgreSQL
    it started; SIGTERM's default action skipped them and left the server running, with the
    dead process's pid in ``pgdata/.handle_pids.json``.
    """

    def interrupt(_signum: int, _frame: Any) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
