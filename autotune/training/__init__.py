"""Training library of autotune: tasks, the loop, optimizers, schedules, EMA, checkpoints.

torch and numpy only: nothing here imports optuna or the rest of autotune. The public names
are imported on first use (PEP 562), so the pure submodules (``_schedules``: the schedule
math the campaign needs for promotion) load without torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING
from typing import Any

if TYPE_CHECKING:
    from ._budget import Budget
    from ._cancer import CancerMLPTask
    from ._cancer import load_breast_cancer
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
    from ._dated import date_rows
    from ._dated import rolling_periods
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
    from ._folds import repeated_kfold_periods
    from ._layers import Activation
    from ._loop import TRAIN_LOSS
    from ._loop import evaluate_model
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

_SUBMODULE: dict[str, str] = {
    "Budget": "_budget",
    "CancerMLPTask": "_cancer",
    "load_breast_cancer": "_cancer",
    "CheckpointSettings": "_checkpoint",
    "average_checkpoints": "_checkpoint",
    "average_state_dicts": "_checkpoint",
    "latest_checkpoint": "_checkpoint",
    "list_checkpoints": "_checkpoint",
    "load_checkpoint": "_checkpoint",
    "Co2LSTMTask": "_co2",
    "WeeklySeries": "_co2",
    "load_co2": "_co2",
    "OPTIMIZER_HYPERPARAMETERS": "_config",
    "TRAINING_HYPERPARAMETERS": "_config",
    "WEIGHTS_HYPERPARAMETERS": "_config",
    "OptimizerKind": "_config",
    "TrainingHyperparameters": "_config",
    "build_optimizer": "_config",
    "DigitsCNNTask": "_digits",
    "DigitsMLPTask": "_digits",
    "load_digits": "_digits",
    "ExponentialMovingAverage": "_ema",
    "ema_rate": "_ema",
    "CheckpointMismatchError": "_errors",
    "NonFiniteLossError": "_errors",
    "UnknownTaskError": "_errors",
    "date_rows": "_dated",
    "rolling_periods": "_dated",
    "fold_assignment": "_folds",
    "fold_rows": "_folds",
    "kfold_periods": "_folds",
    "repeated_kfold_periods": "_folds",
    "Activation": "_layers",
    "TRAIN_LOSS": "_loop",
    "train": "_loop",
    "evaluate_model": "_loop",
    "Period": "_period",
    "PeriodKind": "_period",
    "BatchChoice": "_probe",
    "BatchProbeResult": "_probe",
    "NoBatchSizeFitsError": "_probe",
    "ProbeRow": "_probe",
    "ProbeStatus": "_probe",
    "choose_batch_size": "_probe",
    "format_probe_table": "_probe",
    "probe_batch_size": "_probe",
    "RecurrentCell": "_recurrent",
    "RecurrentForecaster": "_recurrent",
    "available_tasks": "_registry",
    "check_task": "_registry",
    "get_task": "_registry",
    "is_user_task_reference": "_registry",
    "EvalResult": "_results",
    "EvaluatedModel": "_results",
    "MetricDirection": "_results",
    "TrainResult": "_results",
    "SCHEDULE_HYPERPARAMETERS": "_schedules",
    "Schedule": "_schedules",
    "ScheduleConfig": "_schedules",
    "identical_between": "_schedules",
    "identical_until": "_schedules",
    "learning_rate_at": "_schedules",
    "resolved_decay_steps": "_schedules",
    "resolved_warmup_steps": "_schedules",
    "resumable_step": "_schedules",
    "HasFitThreshold": "_task",
    "HasTrivialMetrics": "_task",
    "Task": "_task",
    "TaskData": "_task",
    "TaskInfo": "_task",
}
"""Public name -> the private submodule that defines it, imported when first asked for."""


def __getattr__(name: str) -> Any:
    if name not in _SUBMODULE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f".{_SUBMODULE[name]}", __name__), name)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


__all__ = [
    "Activation",
    "BatchChoice",
    "BatchProbeResult",
    "Budget",
    "CancerMLPTask",
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
    "date_rows",
    "ema_rate",
    "evaluate_model",
    "fold_assignment",
    "fold_rows",
    "format_probe_table",
    "get_task",
    "identical_between",
    "identical_until",
    "is_user_task_reference",
    "kfold_periods",
    "repeated_kfold_periods",
    "latest_checkpoint",
    "learning_rate_at",
    "list_checkpoints",
    "load_breast_cancer",
    "load_checkpoint",
    "load_co2",
    "load_digits",
    "probe_batch_size",
    "resolved_decay_steps",
    "resolved_warmup_steps",
    "resumable_step",
    "rolling_periods",
    "train",
]
