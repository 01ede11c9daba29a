"""PostgreSQL advisory locks: mutual exclusion between workers that share only the database."""

from __future__ import annotations

from collections.abc import Iterator
import contextlib
import hashlib

from optuna.storages import RDBStorage
import sqlalchemy


def advisory_lock_key(name: str) -> int:
    """A stable signed 64-bit key for a PostgreSQL advisory lock."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)


@contextlib.contextmanager
def advisory_lock(storage: RDBStorage, name: str) -> Iterator[None]:
    """Hold a PostgreSQL session advisory lock (released on exit or if the process dies)."""
    key = advisory_lock_key(name)
    with storage.engine.connect() as connection:
        connection.execute(sqlalchemy.text("SELECT pg_advisory_lock(:key)"), {"key": key})
        try:
            yield
        finally:
            connection.execute(sqlalchemy.text("SELECT pg_advisory_unlock(:key)"), {"key": key})
            connection.commit()
