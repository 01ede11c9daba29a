"""Training library of autotune: tasks, the loop, optimizers, schedules, EMA, checkpoints.

torch and numpy only: nothing here imports optuna or the rest of autotune.
"""

from __future__ import annotations

from ._budget import Budget
from ._checkpoint import CheckpointSettings
from ._checkpoint import average_checkpoints
from ._checkpoint import average_state_dicts
from ._checkpoint import latest_checkpoint
from ._checkpoint import list_checkpoints
from ._checkpoint import load_checkpoint
from ._co2 import Co2LSTMTask
from ._co2 import WeeklySeries
from ._co2 import load_co2
from ._config import OPTIMIZER_HYPERPARAMETERS
from ._config import TRAINING_HYPERPARAMETERS
from ._config import WEIGHTS_HYPERPARAMETERS
from ._config import OptimizerKind
from ._config import TrainingHyperparameters
from ._config import build_optimizer
from ._digits import DigitsCNNTask
from ._digits import DigitsMLPTask
from ._digits import load_digits
from ._ema import ExponentialMovingAverage
from ._ema import ema_rate
from ._errors import CheckpointMismatchError
from ._errors import NonFiniteLossError
from ._errors import UnknownTaskError
from ._folds import fold_assignment
from ._folds import fold_rows
from ._folds import kfold_periods
from ._layers import Activation
from ._loop import TRAIN_LOSS
from ._loop import train
from ._period import Period
from ._period import PeriodKind
from ._probe import BatchChoice
from ._probe import BatchProbeResult
from ._probe import NoBatchSizeFitsError
from ._probe import ProbeRow
from ._probe import ProbeStatus
from ._probe import choose_batch_size
from ._probe import format_probe_table
from ._probe import probe_batch_size
from ._recurrent import RecurrentCell
from ._recurrent import RecurrentForecaster
from ._registry import available_tasks
from ._registry import check_task
from ._registry import get_task
from ._registry import is_user_task_reference
from ._results import EvalResult
from ._results import EvaluatedModel
from ._results import MetricDirection
from ._results import TrainResult
from ._schedules import SCHEDULE_HYPERPARAMETERS
from ._schedules import Schedule
from ._schedules import ScheduleConfig
from ._schedules import identical_between
from ._schedules import identical_until
from ._schedules import learning_rate_at
from ._schedules import resolved_decay_steps
from ._schedules import resolved_warmup_steps
from ._schedules import resumable_step
from ._task import HasFitThreshold
from ._task import HasTrivialMetrics
from ._task import Task
from ._task import TaskData
from ._task import TaskInfo

__all__ = [
    "Activation",
    "BatchChoice",
    "BatchProbeResult",
    "Budget",
    "CheckpointMismatchError",
    "CheckpointSettings",
    "Co2LSTMTask",
    "DigitsCNNTask",
    "DigitsMLPTask",
    "EvalResult",
    "EvaluatedModel",
    "ExponentialMovingAverage",
    "HasFitThreshold",
    "HasTrivialMetrics",
    "MetricDirection",
    "NoBatchSizeFitsError",
    "NonFiniteLossError",
    "OPTIMIZER_HYPERPARAMETERS",
    "OptimizerKind",
    "Period",
    "PeriodKind",
    "ProbeRow",
    "ProbeStatus",
    "RecurrentCell",
    "RecurrentForecaster",
    "SCHEDULE_HYPERPARAMETERS",
    "Schedule",
    "ScheduleConfig",
    "TRAINING_HYPERPARAMETERS",
    "TRAIN_LOSS",
    "Task",
    "TaskData",
    "TaskInfo",
    "TrainResult",
    "TrainingHyperparameters",
    "UnknownTaskError",
    "WEIGHTS_HYPERPARAMETERS",
    "WeeklySeries",
    "available_tasks",
    "average_checkpoints",
    "average_state_dicts",
    "build_optimizer",
    "check_task",
    "choose_batch_size",
    "ema_rate",
    "fold_assignment",
    "fold_rows",
    "format_probe_table",
    "get_task",
    "identical_between",
    "identical_until",
    "is_user_task_reference",
    "kfold_periods",
    "latest_checkpoint",
    "learning_rate_at",
    "list_checkpoints",
    "load_checkpoint",
    "load_co2",
    "load_digits",
    "probe_batch_size",
    "resolved_decay_steps",
    "resolved_warmup_steps",
    "resumable_step",
    "train",
]
