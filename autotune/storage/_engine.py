"""The SQLAlchemy engine behind an Optuna storage."""

from __future__ import annotations

import statistics
import time

from optuna.storages import BaseStorage
from optuna.storages import RDBStorage
from sqlalchemy import Engine
from sqlalchemy import text


def engine_of(storage: BaseStorage) -> Engine:
    """The SQLAlchemy engine of a PostgreSQL ``RDBStorage`` (also behind Optuna's cache)."""
    backend = getattr(storage, "_backend", storage)  # optuna.load_study wraps in _CachedStorage
    if not isinstance(backend, RDBStorage):
        raise TypeError(f"needs an RDBStorage on PostgreSQL, got {type(storage).__name__}")
    if backend.engine.dialect.name != "postgresql":
        raise ValueError(f"needs PostgreSQL, got the {backend.engine.dialect.name!r} dialect")
    return backend.engine


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
