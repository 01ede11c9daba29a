"""Where campaigns live: PostgreSQL behind Optuna's ``RDBStorage``.

URLs and the embedded server, the write-behind storage, trial reads, advisory locks, riding
out outages, stale-trial retry, checkpoints in the artifact store, the rung store and the
dashboard. The only package that touches SQLAlchemy or Optuna's storage internals; it
imports no other autotune package but ``spec`` and ``pruning``'s rung math.
"""

from __future__ import annotations

from autotune.storage._artifacts import CheckpointRef
from autotune.storage._artifacts import CheckpointStore
from autotune.storage._artifacts import ReadOnlyArtifactStore
from autotune.storage._artifacts import open_artifact_store
from autotune.storage._dashboard import check_exposure
from autotune.storage._dashboard import dashboard_app
from autotune.storage._dashboard import is_loopback
from autotune.storage._dashboard import serve
from autotune.storage._dashboard import sigterm_as_interrupt
from autotune.storage._dashboard import writable_tables
from autotune.storage._engine import engine_of
from autotune.storage._engine import ping_idle_connections
from autotune.storage._engine import round_trip_ms
from autotune.storage._handout import claim_trial
from autotune.storage._handout import create_trial_within
from autotune.storage._locks import LockHold
from autotune.storage._locks import advisory_lock
from autotune.storage._locks import advisory_lock_key
from autotune.storage._open import DEFAULT_STATE_DIR
from autotune.storage._open import HeartbeatSettings
from autotune.storage._open import check_connection
from autotune.storage._open import embedded_url
from autotune.storage._open import end_abandoned_transactions
from autotune.storage._open import engine_kwargs
from autotune.storage._open import mask_password
from autotune.storage._open import normalize_url
from autotune.storage._open import open_storage
from autotune.storage._open import redact_password
from autotune.storage._open import resolve_url
from autotune.storage._outage import STORAGE_ERRORS
from autotune.storage._outage import DatabaseUnavailableError
from autotune.storage._outage import backoff_delays
from autotune.storage._outage import first_line
from autotune.storage._outage import is_connection_lost
from autotune.storage._outage import wait_for_database
from autotune.storage._outage import wait_for_server
from autotune.storage._retry import ATTR_ERROR
from autotune.storage._retry import RETRY_HISTORY
from autotune.storage._retry import RetryStaleTrial
from autotune.storage._retry import consumes_budget
from autotune.storage._retry import forget_rung_values
from autotune.storage._retry import has_stale_trials
from autotune.storage._retry import max_retry_of
from autotune.storage._retry import retry_failed_trial
from autotune.storage._retry import retry_policy_of
from autotune.storage._retry import retry_trial
from autotune.storage._retry import retry_unretried_failures
from autotune.storage._retry import unretried_failures
from autotune.storage._rung_store import STATE_TABLE
from autotune.storage._rung_store import VALUES_TABLE
from autotune.storage._rung_store import TrialRungs
from autotune.storage._rung_store import rank_at_rung
from autotune.storage._rung_store import record_rung_value
from autotune.storage._rung_store import recorded_rungs
from autotune.storage._rung_store import remove_failed_trials
from autotune.storage._rung_store import remove_trial
from autotune.storage._rung_store import trial_rungs
from autotune.storage._schema import ensure_schema
from autotune.storage._trial_query import study_id_of
from autotune.storage._trial_query import trial_curve
from autotune.storage._write_behind import DEFAULT_FLUSH_INTERVAL_S
from autotune.storage._write_behind import WriteBehindStorage
from autotune.storage._write_behind import flush
from autotune.storage._write_behind import record_heartbeat
from autotune.storage._write_behind import tell

__all__ = [
    "ATTR_ERROR",
    "DEFAULT_FLUSH_INTERVAL_S",
    "DEFAULT_STATE_DIR",
    "RETRY_HISTORY",
    "STATE_TABLE",
    "STORAGE_ERRORS",
    "VALUES_TABLE",
    "CheckpointRef",
    "CheckpointStore",
    "DatabaseUnavailableError",
    "HeartbeatSettings",
    "LockHold",
    "ReadOnlyArtifactStore",
    "RetryStaleTrial",
    "TrialRungs",
    "WriteBehindStorage",
    "advisory_lock",
    "advisory_lock_key",
    "backoff_delays",
    "check_connection",
    "check_exposure",
    "claim_trial",
    "create_trial_within",
    "consumes_budget",
    "dashboard_app",
    "embedded_url",
    "end_abandoned_transactions",
    "engine_kwargs",
    "engine_of",
    "ensure_schema",
    "first_line",
    "flush",
    "forget_rung_values",
    "has_stale_trials",
    "is_connection_lost",
    "is_loopback",
    "mask_password",
    "max_retry_of",
    "normalize_url",
    "open_artifact_store",
    "open_storage",
    "ping_idle_connections",
    "rank_at_rung",
    "record_heartbeat",
    "record_rung_value",
    "redact_password",
    "recorded_rungs",
    "remove_failed_trials",
    "remove_trial",
    "resolve_url",
    "retry_failed_trial",
    "round_trip_ms",
    "retry_policy_of",
    "retry_trial",
    "retry_unretried_failures",
    "serve",
    "sigterm_as_interrupt",
    "study_id_of",
    "tell",
    "trial_curve",
    "trial_rungs",
    "unretried_failures",
    "wait_for_database",
    "wait_for_server",
    "writable_tables",
]
