"""Analysis of finished trials: pure functions over plain data or FrozenTrials, no database."""

from __future__ import annotations

from autotune.analysis._baseline import BaselineVerdict
from autotune.analysis._baseline import TrivialComparison
from autotune.analysis._baseline import TrivialOutcome
from autotune.analysis._baseline import compare_to_trivial
from autotune.analysis._baseline import compare_with_trivial
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
from autotune.analysis._best_step import shared_best_step
from autotune.analysis._boundary import HIT_SHARE
from autotune.analysis._boundary import LEAN_FACTOR
from autotune.analysis._boundary import CategoricalEdge
from autotune.analysis._boundary import ParamBoundary
from autotune.analysis._boundary import can_widen
from autotune.analysis._boundary import carried_over
from autotune.analysis._boundary import check_boundaries
from autotune.analysis._boundary import widen
from autotune.analysis._significance import DEFAULT_PERIODS
from autotune.analysis._significance import DEFAULT_SEEDS
from autotune.analysis._significance import MIN_RANK_RHO
from autotune.analysis._significance import TEST_LABELS
from autotune.analysis._significance import MeanInterval
from autotune.analysis._significance import PairedComparison
from autotune.analysis._significance import PairedTest
from autotune.analysis._significance import RankAgreement
from autotune.analysis._significance import SignificanceReport
from autotune.analysis._significance import compare_finalists
from autotune.analysis._significance import holm_adjust
from autotune.analysis._significance import mean_interval
from autotune.analysis._significance import min_pairs_to_reach
from autotune.analysis._significance import rank_agreement
from autotune.analysis._significance import ranked_runs
from autotune.analysis._significance import ranking_means
from autotune.analysis._significance import simulate_false_positive_rate
from autotune.analysis._significance import simulate_power
from autotune.analysis._sweep import PLATEAU_TOLERANCE
from autotune.analysis._sweep import PLATEAU_WINDOW
from autotune.analysis._sweep import STABLE_MARGIN
from autotune.analysis._sweep import BoundarySide
from autotune.analysis._sweep import SweepDecision
from autotune.analysis._sweep import SweepPoint
from autotune.analysis._sweep import choose_max_train_steps
from autotune.analysis._sweep import outpaced_by
from autotune.analysis._sweep import plateau_step
from autotune.analysis._sweep import stable_points
from autotune.analysis._sweep import steps_to_fit
from autotune.analysis._sweep import sweep_learning_rates
from autotune.analysis._topk import top_k
from autotune.analysis._trends import ValueTrend
from autotune.analysis._trends import grid_trends

__all__ = [
    "BaselineVerdict",
    "BestStepAnalysis",
    "BoundarySide",
    "CategoricalEdge",
    "DEFAULT_MIN_TRIALS",
    "DEFAULT_PERIODS",
    "DEFAULT_SEEDS",
    "EARLY_FRACTION",
    "FEWER_HEADROOM",
    "FEWER_PERCENTILE",
    "FEWER_SHARE",
    "HIT_SHARE",
    "LATE_FRACTION",
    "LEAN_FACTOR",
    "MIN_RANK_RHO",
    "MORE_FACTOR",
    "MORE_SHARE",
    "MeanInterval",
    "PLATEAU_TOLERANCE",
    "PLATEAU_WINDOW",
    "PairedComparison",
    "PairedTest",
    "ParamBoundary",
    "RankAgreement",
    "STABLE_MARGIN",
    "SignificanceReport",
    "StepRecommendation",
    "SweepDecision",
    "SweepPoint",
    "TEST_LABELS",
    "TrivialComparison",
    "TrivialOutcome",
    "ValueTrend",
    "analyze_best_steps",
    "best_step_records",
    "can_widen",
    "carried_over",
    "check_boundaries",
    "choose_max_train_steps",
    "compare_finalists",
    "compare_to_trivial",
    "compare_with_trivial",
    "grid_trends",
    "holm_adjust",
    "mean_interval",
    "min_pairs_to_reach",
    "outpaced_by",
    "plateau_step",
    "rank_agreement",
    "ranked_runs",
    "ranking_means",
    "shared_best_step",
    "simulate_false_positive_rate",
    "simulate_power",
    "stable_points",
    "steps_to_fit",
    "sweep_learning_rates",
    "top_k",
    "widen",
]
