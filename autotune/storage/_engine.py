"""The SQLAlchemy engine behind an Optuna storage."""

from __future__ import annotations

from optuna.storages import BaseStorage
from optuna.storages import RDBStorage
from sqlalchemy import Engine


def engine_of(storage: BaseStorage) -> Engine:
    """The SQLAlchemy engine of a PostgreSQL ``RDBStorage`` (also behind Optuna's cache)."""
    backend = getattr(storage, "_backend", storage)  # optuna.load_study wraps in _CachedStorage
    if not isinstance(backend, RDBStorage):
        raise TypeError(f"needs an RDBStorage on PostgreSQL, got {type(storage).__name__}")
    if backend.engine.dialect.name != "postgresql":
        raise ValueError(f"needs PostgreSQL, got the {backend.engine.dialect.name!r} dialect")
    return backend.engine
