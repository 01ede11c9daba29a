"""The worker: pulls a campaign's trials from the database and trains them.

Its objectives turn a trial into a training run; a tuning trial's recovery checkpoints let
its retry resume; the spec's sampler and pruner kinds map to Optuna objects here.
"""

from __future__ import annotations

from ._checkpoints import ResumeSource
from ._checkpoints import discard_recovery_checkpoint
from ._checkpoints import resume_sources
from ._factories import PRUNER_FACTORIES
from ._factories import SAMPLER_FACTORIES
from ._factories import make_pruner
from ._factories import make_sampler
from ._objectives import RoundSetting
from ._objectives import StopRequested
from ._objectives import make_objective
from ._outcome import TrialOutcome
from ._train import PeriodChoices
from ._train import TrainedModel
from ._train import UnknownPeriodError
from ._train import resolve_period
from ._train import train_recipe

__all__ = [
    "PRUNER_FACTORIES",
    "PeriodChoices",
    "ResumeSource",
    "RoundSetting",
    "SAMPLER_FACTORIES",
    "StopRequested",
    "TrainedModel",
    "TrialOutcome",
    "UnknownPeriodError",
    "discard_recovery_checkpoint",
    "make_objective",
    "make_pruner",
    "make_sampler",
    "resolve_period",
    "resume_sources",
    "train_recipe",
]
