"""optuna-dashboard on our storage: its wsgi() app, bound to the loopback unless told.

optuna-dashboard has no authentication and accepts writes, so deployments give it a
read-only PostgreSQL role (deploy/postgres/roles.sql); ``read_only=True`` refuses to serve
through a role that can write.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler
from wsgiref.simple_server import make_server

from optuna.artifacts._protocol import ArtifactStore
from optuna.storages import RDBStorage
import sqlalchemy

from autotune._errors import StorageError
from autotune.storage._engine import engine_of

WRITE_PRIVILEGES = ("INSERT", "UPDATE", "DELETE")


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


def dashboard_app(
    storage: RDBStorage, artifact_store: ArtifactStore | None, read_only: bool
) -> Callable[..., Any]:
    """optuna-dashboard's WSGI app on the storage (our engine: pooling, pre-ping)."""
    if read_only:
        writable = writable_tables(storage)
        if writable:
            raise StorageError(
                f"--read-only, but this database role can write {', '.join(writable[:5])}"
                f"{' …' if len(writable) > 5 else ''}; connect as the read-only role created "
                "by deploy/postgres/roles.sql (autotune_dashboard)"
            )
    import optuna_dashboard  # a third of a second to import: only when serving

    return optuna_dashboard.wsgi(storage, artifact_store=artifact_store)


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (stdlib name)
        return


def serve(app: Callable[..., Any], host: str, port: int) -> None:
    """Serve the app until interrupted (wsgiref: fine for a team's dashboard)."""
    with make_server(host, port, app, handler_class=_QuietHandler) as server:
        server.serve_forever()
