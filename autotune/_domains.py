"""The values each built-in hyperparameter may take, as data shared by training and spec.

training parses hyperparameters against this table; spec checks a study's fixed values and
search ranges against it when the study is loaded, so a value training would reject is a
spec error at ``create`` instead of a failed trial later. No torch, no pydantic: both the
pure spec package and the training code import it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
import enum
import math
import numbers
from types import MappingProxyType


class DomainKind(enum.Enum):
    FLOAT = "float"
    INT = "int"
    CHOICE = "choice"
    BOOL = "bool"


@dataclass(frozen=True)
class Domain:
    """An interval of numbers (each end open or closed, or unbounded), a set of strings or a
    bool; ``nullable``: null means "off" or "not set" too. Intervals are convex, so a search
    range lies in the domain when both its ends do."""

    kind: DomainKind
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    choices: tuple[str, ...] = ()
    nullable: bool = False

    @property
    def allowed(self) -> str:
        """What is allowed, as error messages say it ("a float in [0, 1)", "an int >= 1")."""
        text = self._kind_text()
        return f"{text} or null" if self.nullable else text

    def _kind_text(self) -> str:
        if self.kind is DomainKind.BOOL:
            return "true or false"
        if self.kind is DomainKind.CHOICE:
            return ", ".join(repr(choice) for choice in self.choices)
        noun = "a float" if self.kind is DomainKind.FLOAT else "an int"
        low, high = _number_text(self.low), _number_text(self.high)
        if self.low is not None and self.high is not None:
            left, right = "(" if self.low_open else "[", ")" if self.high_open else "]"
            return f"{noun} in {left}{low}, {high}{right}"
        if self.low is not None:
            return f"{noun} {'>' if self.low_open else '>='} {low}"
        if self.high is not None:
            return f"{noun} {'<' if self.high_open else '<='} {high}"
        return noun

    def contains(self, value: object) -> bool:
        """Whether ``value`` is allowed: the right type (no bool for a number, no string for
        a number) and inside the interval or among the choices."""
        if value is None:
            return self.nullable
        if self.kind is DomainKind.BOOL:
            return isinstance(value, bool)
        if self.kind is DomainKind.CHOICE:
            return isinstance(value, str) and value in self.choices
        return self.contains_number(value)

    def contains_number(self, value: object) -> bool:
        """Whether ``value`` is a number of this domain's kind inside its interval."""
        wanted = numbers.Real if self.kind is DomainKind.FLOAT else numbers.Integral
        if isinstance(value, bool) or not isinstance(value, wanted):
            return False
        number = float(value)
        if not math.isfinite(number):
            return False
        if self.low is not None and (number <= self.low if self.low_open else number < self.low):
            return False
        return self.high is None or (number < self.high if self.high_open else number <= self.high)


def _number_text(value: float | None) -> str:
    if value is None:
        return ""
    return str(int(value)) if float(value).is_integer() else str(value)


def _float(
    low: float | None = None,
    high: float | None = None,
    *,
    low_open: bool = False,
    high_open: bool = False,
    nullable: bool = False,
) -> Domain:
    return Domain(DomainKind.FLOAT, low, high, low_open, high_open, nullable=nullable)


def _int(low: int, high: int | None = None, *, nullable: bool = False) -> Domain:
    return Domain(DomainKind.INT, low, high, nullable=nullable)


def _choice(*choices: str) -> Domain:
    return Domain(DomainKind.CHOICE, choices=choices)


_BOOL = Domain(DomainKind.BOOL)
_FRACTION = _float(0.0, 1.0, high_open=True)  # [0, 1)

TRAINING_DOMAINS: Mapping[str, Domain] = MappingProxyType(
    {
        # the optimizer
        "learning_rate": _float(0.0, low_open=True),
        "optimizer": _choice("sgd", "sgd_nesterov", "adam", "nadam", "adamw"),
        "weight_decay": _float(0.0),
        "momentum": _FRACTION,
        "nesterov": _BOOL,
        "beta1": _FRACTION,
        "beta2": _FRACTION,
        "eps": _float(0.0, low_open=True),
        # the learning-rate schedule
        "schedule": _choice("constant", "linear", "cosine", "wsd", "noam"),
        "warmup_steps": _int(0, nullable=True),
        "warmup_fraction": _FRACTION,
        "decay_steps": _int(1, nullable=True),
        "decay_fraction": _float(0.0, 1.0, low_open=True, nullable=True),
        "final_lr_fraction": _float(0.0, 1.0),
        "noam_model_dim": _int(1, nullable=True),
        "noam_start_decay_steps": _int(0, nullable=True),
        "noam_decay_step_duration": _int(1, nullable=True),
        "minimum_learning_rate": _float(0.0),
        # the evaluated weights
        "ema_decay": _float(0.0, 1.0, low_open=True, high_open=True, nullable=True),
        "ema_dynamic": _BOOL,
        "average_last_checkpoints": _int(0),
        "evaluated_model": _choice("raw", "ema", "averaged"),
        # when a run ends
        "early_stopping_patience": _int(0),
    }
)
"""The training loop's hyperparameters, the same for every task."""

MAX_LAYERS = 64  # deeper is a typo, not a model these tasks can train

MODEL_DOMAINS: Mapping[str, Domain] = MappingProxyType(
    {
        "hidden_units": _int(1),
        "num_layers": _int(1, MAX_LAYERS),
        "dropout": _FRACTION,
        "activation": _choice("relu", "tanh", "gelu"),
        "channels": _int(1),
        "num_conv_layers": _int(1, MAX_LAYERS),
        "cell": _choice("lstm", "gru"),
        "context_weeks": _int(2),  # at most the task's max_context_weeks, checked by the task
    }
)
"""The built-in tasks' model hyperparameters; a user task's own are its business."""
