"""Training seam of autotune: tasks, the training loop and schedules (torch + numpy only)."""

from __future__ import annotations

from ._budget import Budget
from ._config import TRAINING_HYPERPARAMETERS
from ._config import OptimizerKind
from ._config import TrainingHyperparameters
from ._config import build_optimizer
from ._digits import Activation
from ._digits import DigitsMLPTask
from ._digits import load_digits
from ._errors import NonFiniteLossError
from ._errors import UnknownTaskError
from ._loop import TRAIN_LOSS
from ._loop import train
from ._registry import available_tasks
from ._registry import get_task
from ._results import EvalResult
from ._results import EvaluatedModel
from ._results import MetricDirection
from ._results import TrainResult
from ._schedules import Schedule
from ._schedules import learning_rate_at
from ._schedules import warmup_steps
from ._task import Task
from ._task import TaskData

__all__ = [
    "TRAINING_HYPERPARAMETERS",
    "TRAIN_LOSS",
    "Activation",
    "Budget",
    "DigitsMLPTask",
    "EvalResult",
    "EvaluatedModel",
    "MetricDirection",
    "NonFiniteLossError",
    "OptimizerKind",
    "Schedule",
    "Task",
    "TaskData",
    "TrainResult",
    "TrainingHyperparameters",
    "UnknownTaskError",
    "available_tasks",
    "build_optimizer",
    "get_task",
    "learning_rate_at",
    "load_digits",
    "train",
    "warmup_steps",
]
