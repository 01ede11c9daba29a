"""Rung-based asynchronous successive halving: the pure decisions.

The rung store (PostgreSQL) is in :mod:`autotune.storage`; the Optuna pruner that uses
both is in :mod:`autotune.worker`.
"""

from __future__ import annotations

from autotune.pruning._rungs import RungDecision
from autotune.pruning._rungs import RungReport
from autotune.pruning._rungs import decide
from autotune.pruning._rungs import keep_count
from autotune.pruning._rungs import rung_for_step
from autotune.pruning._rungs import rung_reports
from autotune.pruning._rungs import rung_steps

__all__ = [
    "RungDecision",
    "RungReport",
    "decide",
    "keep_count",
    "rung_for_step",
    "rung_reports",
    "rung_steps",
]
