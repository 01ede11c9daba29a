"""Training hyperparameters understood by the loop, and the optimizers they build."""

from __future__ import annotations

from collections.abc import Iterable
from collections.abc import Mapping
from dataclasses import dataclass
from dataclasses import field
import enum
from typing import Any

import torch

from ._hparams import parse_bool
from ._hparams import parse_choice
from ._hparams import parse_float_in
from ._hparams import parse_int_in
from ._results import EvaluatedModel
from ._schedules import SCHEDULE_HYPERPARAMETERS
from ._schedules import STOPPING_HYPERPARAMETERS
from ._schedules import ScheduleConfig

OPTIMIZER_HYPERPARAMETERS: frozenset[str] = frozenset(
    {"learning_rate", "optimizer", "weight_decay", "momentum", "nesterov", "beta1", "beta2", "eps"}
)
WEIGHTS_HYPERPARAMETERS: frozenset[str] = frozenset(
    {"ema_decay", "ema_dynamic", "average_last_checkpoints", "evaluated_model"}
)
TRAINING_HYPERPARAMETERS: frozenset[str] = (
    OPTIMIZER_HYPERPARAMETERS
    | SCHEDULE_HYPERPARAMETERS
    | WEIGHTS_HYPERPARAMETERS
    | STOPPING_HYPERPARAMETERS
)


class OptimizerKind(enum.Enum):
    """Supported optimizers ("sgd_nesterov" is SGD with nesterov=True)."""

    SGD = "sgd"
    SGD_NESTEROV = "sgd_nesterov"
    ADAM = "adam"
    NADAM = "nadam"
    ADAMW = "adamw"


def _invalid(name: str, value: object, allowed: str) -> ValueError:
    return ValueError(f"invalid hyperparameter {name}={value!r}; allowed: {allowed}")


@dataclass(frozen=True)
class TrainingHyperparameters:
    """Parsed training hyperparameters.

    Optimizer arguments that the chosen optimizer does not use are validated, then ignored:
    `momentum` and `nesterov` apply to SGD, `beta1`, `beta2` and `eps` to Adam, NAdam and
    AdamW; `weight_decay` is an L2 penalty except for AdamW (decoupled). `ema_decay` None
    turns the weight EMA off; `average_last_checkpoints` 0 or 1 turns averaging off.
    `early_stopping_patience` N >= 1 ends a run after N evals without a new best of the
    selection metric; 0 (the default) never stops early.
    """

    learning_rate: float
    optimizer: OptimizerKind = OptimizerKind.ADAMW
    weight_decay: float = 0.0
    momentum: float = 0.9
    nesterov: bool = False
    beta1: float = 0.9
    beta2: float = 0.999
    eps: float = 1e-8
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    ema_decay: float | None = None
    ema_dynamic: bool = True
    average_last_checkpoints: int = 0
    evaluated_model: EvaluatedModel = EvaluatedModel.RAW
    early_stopping_patience: int = 0

    def __post_init__(self) -> None:
        if self.uses_nesterov and self.momentum <= 0.0:
            raise _invalid("momentum", self.momentum, "a float in (0, 1) with Nesterov SGD")
        if self.evaluated_model is EvaluatedModel.EMA and self.ema_decay is None:
            raise _invalid("evaluated_model", "ema", "'ema' only with ema_decay set")
        if self.evaluated_model is EvaluatedModel.AVERAGED and not self.averaging:
            raise _invalid(
                "evaluated_model", "averaged", "'averaged' only with average_last_checkpoints >= 2"
            )

    @property
    def uses_nesterov(self) -> bool:
        """Whether the optimizer is SGD with Nesterov momentum."""
        sgd = self.optimizer is OptimizerKind.SGD and self.nesterov
        return sgd or self.optimizer is OptimizerKind.SGD_NESTEROV

    @property
    def averaging(self) -> bool:
        """Whether the last average_last_checkpoints (>= 2) eval snapshots are kept."""
        return self.average_last_checkpoints >= 2

    @classmethod
    def from_hparams(
        cls, hparams: Mapping[str, Any], model_dim: int | None = None
    ) -> TrainingHyperparameters:
        """Parse the training keys of `hparams` (other keys are ignored here).

        `model_dim` is the Noam model dimension used when `noam_model_dim` is absent.
        """
        d = cls(learning_rate=1.0)  # carries the defaults
        h = hparams
        return cls(
            learning_rate=parse_float_in(h, "learning_rate", None),
            optimizer=parse_choice(h, "optimizer", d.optimizer, OptimizerKind),
            weight_decay=parse_float_in(h, "weight_decay", d.weight_decay),
            momentum=parse_float_in(h, "momentum", d.momentum),
            nesterov=parse_bool(h, "nesterov", d.nesterov),
            beta1=parse_float_in(h, "beta1", d.beta1),
            beta2=parse_float_in(h, "beta2", d.beta2),
            eps=parse_float_in(h, "eps", d.eps),
            schedule=ScheduleConfig.from_hparams(h, model_dim=model_dim),
            ema_decay=(
                None if h.get("ema_decay") is None else parse_float_in(h, "ema_decay", None)
            ),
            ema_dynamic=parse_bool(h, "ema_dynamic", d.ema_dynamic),
            average_last_checkpoints=parse_int_in(h, "average_last_checkpoints", 0),
            evaluated_model=parse_choice(h, "evaluated_model", d.evaluated_model, EvaluatedModel),
            early_stopping_patience=parse_int_in(h, "early_stopping_patience", 0),
        )


def build_optimizer(
    params: Iterable[torch.nn.Parameter], config: TrainingHyperparameters
) -> torch.optim.Optimizer:
    """Create the configured optimizer at the base learning rate."""
    kind = config.optimizer
    if kind in (OptimizerKind.SGD, OptimizerKind.SGD_NESTEROV):
        return torch.optim.SGD(
            params,
            lr=config.learning_rate,
            momentum=config.momentum,
            nesterov=config.uses_nesterov,
            weight_decay=config.weight_decay,
        )
    adam_family = {
        OptimizerKind.ADAM: torch.optim.Adam,
        OptimizerKind.NADAM: torch.optim.NAdam,
        OptimizerKind.ADAMW: torch.optim.AdamW,
    }
    return adam_family[kind](
        params,
        lr=config.learning_rate,
        betas=(config.beta1, config.beta2),
        eps=config.eps,
        weight_decay=config.weight_decay,
    )
