"""Frozen results of evaluations and training runs."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
import enum
import math
from pathlib import Path


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
    """Which weights the evals measure.

    RAW: the trained weights. EMA: the exponential moving average of the weights at every
    eval. AVERAGED: raw weights at intermediate evals, and at the last eval the average of
    the weights at the last `average_last_checkpoints` eval steps.
    """

    RAW = "raw"
    EMA = "ema"
    AVERAGED = "averaged"


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
    """Outcome of one training run.

    `checkpoints` are the checkpoint files that exist at the end (oldest first; empty
    without checkpointing); `resumed_from_step` is the step of the checkpoint the run
    resumed from (0 when it started fresh). `steps_done` counts all steps, resumed ones
    included; `examples_per_s` measures only the steps this call trained (0.0 if none).
    """

    final: EvalResult
    best: EvalResult
    selection_metric: str
    steps_done: int
    wall_time_s: float
    examples_per_s: float
    evaluated_model: EvaluatedModel = EvaluatedModel.RAW
    checkpoints: tuple[Path, ...] = ()
    resumed_from_step: int = 0
