"""The pipeline of a campaign: typed records, a pure transition function, and its writer.

``read_snapshot`` reads a campaign once; ``next_transition(snapshot)`` decides the next step
with no I/O; ``advance`` applies it under the campaign's advisory lock. ``Campaign`` reads a
campaign back as typed records over its ordinary Optuna studies.
"""

from __future__ import annotations

from autotune.campaign._apply import advance
from autotune.campaign._apply import apply
from autotune.campaign._apply import create_stage_study
from autotune.campaign._apply import optuna_direction
from autotune.campaign._campaign import BestResult
from autotune.campaign._campaign import Campaign
from autotune.campaign._campaign import CampaignStudy
from autotune.campaign._campaign import TrialRecord
from autotune.campaign._campaign import create_campaign
from autotune.campaign._campaign import delete_campaign
from autotune.campaign._campaign import list_campaigns
from autotune.campaign._campaign import load_campaign
from autotune.campaign._hparams import baseline_hparams
from autotune.campaign._hparams import promotion_overrides
from autotune.campaign._hparams import stage_base_hparams
from autotune.campaign._hparams import trial_hparams
from autotune.campaign._plan import NewStudy
from autotune.campaign._plan import QueuedTrial
from autotune.campaign._plan import first_study
from autotune.campaign._plan import grid_combinations
from autotune.campaign._plan import space_distributions
from autotune.campaign._progress import Progress
from autotune.campaign._progress import progress_of
from autotune.campaign._recipe import recipe_of
from autotune.campaign._recipe import trial_label
from autotune.campaign._records import TUNING_PERIOD
from autotune.campaign._records import BaselineOutcome
from autotune.campaign._records import BoundaryAction
from autotune.campaign._records import BoundaryCheck
from autotune.campaign._records import BoundaryFinding
from autotune.campaign._records import Finalist
from autotune.campaign._records import HorizonCheck
from autotune.campaign._records import Recipe
from autotune.campaign._records import Recommendation
from autotune.campaign._records import ReevaluationDesign
from autotune.campaign._records import ReevaluationSkipped
from autotune.campaign._records import Significance
from autotune.campaign._records import Stage
from autotune.campaign._records import StepAdvice
from autotune.campaign._records import Stopped
from autotune.campaign._records import StudyFacts
from autotune.campaign._records import StudyKey
from autotune.campaign._records import StudyPlan
from autotune.campaign._records import SweepResult
from autotune.campaign._records import TaskDefaults
from autotune.campaign._reevaluation import on_tuning_period
from autotune.campaign._reevaluation import period_names
from autotune.campaign._reevaluation import reevaluation_results
from autotune.campaign._reevaluation import rotating_period_seed
from autotune.campaign._reevaluation import trivial_values
from autotune.campaign._reevaluation import tuning_runs_of
from autotune.campaign._reevaluation import tuning_trivial
from autotune.campaign._snapshot import CampaignSnapshot
from autotune.campaign._snapshot import StudySnapshot
from autotune.campaign._snapshot import read_snapshot
from autotune.campaign._sweep import sweep_points
from autotune.campaign._transitions import Transition
from autotune.campaign._transitions import TransitionKind
from autotune.campaign._transitions import next_transition
from autotune.campaign._transitions import stage_is_finished

__all__ = [
    "BaselineOutcome",
    "BestResult",
    "BoundaryAction",
    "BoundaryCheck",
    "BoundaryFinding",
    "Campaign",
    "CampaignSnapshot",
    "CampaignStudy",
    "Finalist",
    "HorizonCheck",
    "NewStudy",
    "Progress",
    "QueuedTrial",
    "Recipe",
    "Recommendation",
    "ReevaluationDesign",
    "ReevaluationSkipped",
    "Significance",
    "Stage",
    "StepAdvice",
    "Stopped",
    "StudyFacts",
    "StudyKey",
    "StudyPlan",
    "StudySnapshot",
    "SweepResult",
    "TaskDefaults",
    "TrialRecord",
    "Transition",
    "TransitionKind",
    "TUNING_PERIOD",
    "advance",
    "apply",
    "baseline_hparams",
    "create_campaign",
    "create_stage_study",
    "delete_campaign",
    "first_study",
    "grid_combinations",
    "list_campaigns",
    "load_campaign",
    "next_transition",
    "optuna_direction",
    "progress_of",
    "promotion_overrides",
    "read_snapshot",
    "recipe_of",
    "reevaluation_results",
    "rotating_period_seed",
    "space_distributions",
    "stage_base_hparams",
    "stage_is_finished",
    "sweep_points",
    "trial_hparams",
    "trial_label",
    "on_tuning_period",
    "period_names",
    "trivial_values",
    "tuning_trivial",
    "tuning_runs_of",
]
