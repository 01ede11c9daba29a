"""Rung-based asynchronous successive halving: pure decisions, a PostgreSQL store, a pruner."""

from __future__ import annotations

from autotune.pruning._pruner import RungPruner
from autotune.pruning._rungs import RungDecision
from autotune.pruning._rungs import RungReport
from autotune.pruning._rungs import decide
from autotune.pruning._rungs import keep_count
from autotune.pruning._rungs import rung_for_step
from autotune.pruning._rungs import rung_reports
from autotune.pruning._rungs import rung_steps
from autotune.pruning._store import engine_of
from autotune.pruning._store import ensure_schema
from autotune.pruning._store import rank_at_rung
from autotune.pruning._store import record_rung_value
from autotune.pruning._store import recorded_rungs
from autotune.pruning._store import remove_failed_trials
from autotune.pruning._store import remove_trial

__all__ = [
    "RungDecision",
    "RungPruner",
    "RungReport",
    "decide",
    "engine_of",
    "ensure_schema",
    "keep_count",
    "rank_at_rung",
    "record_rung_value",
    "recorded_rungs",
    "remove_failed_trials",
    "remove_trial",
    "rung_for_step",
    "rung_reports",
    "rung_steps",
]
