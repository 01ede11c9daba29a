"""Frozen results of evaluations and training runs."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
import enum
import math


class MetricDirection(enum.Enum):
    """Whether smaller or larger values of a metric are better."""

    MINIMIZE = "minimize"
    MAXIMIZE = "maximize"

    def is_better(self, new: float, old: float) -> bool:
        """True when `new` is strictly better than `old`; nan is worse than anything."""
        if math.isnan(new):
            return False
        if math.isnan(old):
            return True
        return new < old if self is MetricDirection.MINIMIZE else new > old


class EvaluatedModel(enum.Enum):
    """Which weights were evaluated: the raw trained ones (EMA/averaged come later)."""

    RAW = "raw"


@dataclass(frozen=True)
class EvalResult:
    """Metrics measured after `step` training steps."""

    step: int
    metrics: Mapping[str, float]

    def __post_init__(self) -> None:
        if self.step < 0:
            raise ValueError(f"EvalResult.step={self.step} is invalid; allowed: an int >= 0")
        object.__setattr__(self, "metrics", {k: float(v) for k, v in self.metrics.items()})


@dataclass(frozen=True)
class TrainResult:
    """Outcome of one training run."""

    final: EvalResult
    best: EvalResult
    selection_metric: str
    steps_done: int
    wall_time_s: float
    examples_per_s: float
    evaluated_model: EvaluatedModel = EvaluatedModel.RAW
