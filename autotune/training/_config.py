"""Training hyperparameters understood by the loop, and the optimizers they build."""

from __future__ import annotations

from collections.abc import Iterable
from collections.abc import Mapping
from dataclasses import dataclass
import enum
from typing import Any

import torch

from ._hparams import parse_choice
from ._hparams import parse_float
from ._schedules import Schedule

TRAINING_HYPERPARAMETERS: frozenset[str] = frozenset(
    {
        "learning_rate",
        "optimizer",
        "weight_decay",
        "momentum",
        "beta1",
        "beta2",
        "schedule",
        "warmup_fraction",
    }
)


class OptimizerKind(enum.Enum):
    """Supported optimizers."""

    ADAMW = "adamw"
    SGD_NESTEROV = "sgd_nesterov"


def _positive(value: float) -> bool:
    return value > 0.0


def _nonneg(value: float) -> bool:
    return value >= 0.0


def _unit(value: float) -> bool:
    return 0.0 <= value < 1.0


def _open_unit(value: float) -> bool:
    return 0.0 < value < 1.0


@dataclass(frozen=True)
class TrainingHyperparameters:
    """Parsed training hyperparameters; `momentum` is used by SGD, `beta1/2` by AdamW."""

    learning_rate: float
    optimizer: OptimizerKind = OptimizerKind.ADAMW
    weight_decay: float = 0.0
    momentum: float = 0.9
    beta1: float = 0.9
    beta2: float = 0.999
    schedule: Schedule = Schedule.CONSTANT
    warmup_fraction: float = 0.0

    @classmethod
    def from_hparams(cls, hparams: Mapping[str, Any]) -> TrainingHyperparameters:
        """Parse the training keys of `hparams` (other keys are ignored here)."""
        base = cls(learning_rate=1.0)  # carries the defaults
        h = hparams
        return cls(
            learning_rate=parse_float(h, "learning_rate", None, "a float > 0", _positive),
            optimizer=parse_choice(h, "optimizer", base.optimizer, OptimizerKind),
            weight_decay=parse_float(
                h, "weight_decay", base.weight_decay, "a float >= 0", _nonneg
            ),
            momentum=parse_float(h, "momentum", base.momentum, "a float in (0, 1)", _open_unit),
            beta1=parse_float(h, "beta1", base.beta1, "a float in [0, 1)", _unit),
            beta2=parse_float(h, "beta2", base.beta2, "a float in [0, 1)", _unit),
            schedule=parse_choice(h, "schedule", base.schedule, Schedule),
            warmup_fraction=parse_float(
                h, "warmup_fraction", base.warmup_fraction, "a float in [0, 1)", _unit
            ),
        )


def build_optimizer(
    params: Iterable[torch.nn.Parameter], config: TrainingHyperparameters
) -> torch.optim.Optimizer:
    """Create the configured optimizer at the base learning rate."""
    if config.optimizer is OptimizerKind.SGD_NESTEROV:
        return torch.optim.SGD(
            params,
            lr=config.learning_rate,
            momentum=config.momentum,
            nesterov=True,
            weight_decay=config.weight_decay,
        )
    return torch.optim.AdamW(
        params,
        lr=config.learning_rate,
        betas=(config.beta1, config.beta2),
        weight_decay=config.weight_decay,
    )
