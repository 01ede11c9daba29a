"""Analysis of finished trials: pure functions over plain data or FrozenTrials, no database."""

from __future__ import annotations

from autotune.analysis._baseline import BaselineVerdict
from autotune.analysis._baseline import compare_to_trivial
from autotune.analysis._best_step import DEFAULT_MIN_TRIALS
from autotune.analysis._best_step import EARLY_FRACTION
from autotune.analysis._best_step import FEWER_HEADROOM
from autotune.analysis._best_step import FEWER_PERCENTILE
from autotune.analysis._best_step import FEWER_SHARE
from autotune.analysis._best_step import LATE_FRACTION
from autotune.analysis._best_step import MORE_FACTOR
from autotune.analysis._best_step import MORE_SHARE
from autotune.analysis._best_step import BestStepAnalysis
from autotune.analysis._best_step import StepRecommendation
from autotune.analysis._best_step import analyze_best_steps
from autotune.analysis._best_step import best_step_records
from autotune.analysis._sweep import BoundarySide
from autotune.analysis._sweep import SweepDecision
from autotune.analysis._sweep import SweepPoint
from autotune.analysis._sweep import choose_max_train_steps
from autotune.analysis._sweep import steps_to_fit
from autotune.analysis._sweep import sweep_learning_rates
from autotune.analysis._topk import top_k

__all__ = [
    "BaselineVerdict",
    "BestStepAnalysis",
    "BoundarySide",
    "DEFAULT_MIN_TRIALS",
    "EARLY_FRACTION",
    "FEWER_HEADROOM",
    "FEWER_PERCENTILE",
    "FEWER_SHARE",
    "LATE_FRACTION",
    "MORE_FACTOR",
    "MORE_SHARE",
    "StepRecommendation",
    "SweepDecision",
    "SweepPoint",
    "analyze_best_steps",
    "best_step_records",
    "choose_max_train_steps",
    "compare_to_trivial",
    "steps_to_fit",
    "sweep_learning_rates",
    "top_k",
]
