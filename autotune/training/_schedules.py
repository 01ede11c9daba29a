"""Step-based learning-rate schedules as pure functions of the step.

Steps are 1-based: ``learning_rate_at(k, ...)`` is the rate of the k-th update. Every schedule
but Noam warms up linearly over W steps (step k <= W gets ``base * k / W``), then:

- CONSTANT: the base rate.
- LINEAR / WSD: the base rate (stable phase), then a linear decay to ``base * final_lr_fraction``
  over the last D steps. LINEAR decays over everything after warmup unless D is given; WSD
  defaults to D = 20% of the budget. A fixed D means a longer budget only extends the stable
  phase (docs/method.md §8, the round-2 rule).
- COSINE: half a cosine from the base rate after warmup to ``base * final_lr_fraction`` at the
  last step; a longer budget stretches it.
- NOAM: OpenNMT-tf's ScheduleWrapper around NoamDecay (docs/method.md §14)::

      n = max(step - start_decay_steps, 0) // decay_step_duration + 1
      lr = max(scale * model_dim**-0.5 * min(n**-0.5, n * warmup_steps**-1.5), minimum_lr)

  with ``scale`` the base learning rate. At step 1, n = 2, as in seed 001's worked example.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
import enum
import math
import numbers
from typing import Any

from ._budget import Budget
from ._hparams import parse_choice
from ._hparams import parse_float
from ._hparams import parse_float_in
from ._hparams import parse_int_in

WSD_DEFAULT_DECAY_FRACTION = 0.2

SCHEDULE_HYPERPARAMETERS: frozenset[str] = frozenset(
    {
        "schedule",
        "warmup_steps",
        "warmup_fraction",
        "decay_steps",
        "decay_fraction",
        "final_lr_fraction",
        "noam_model_dim",
        "noam_start_decay_steps",
        "noam_decay_step_duration",
        "minimum_learning_rate",
    }
)
STOPPING_HYPERPARAMETERS: frozenset[str] = frozenset({"early_stopping_patience"})
"""When a run ends, not how it trains: a run resumed from a checkpoint may change them."""


class Schedule(enum.Enum):
    """Shape of the learning rate over a run."""

    CONSTANT = "constant"
    LINEAR = "linear"
    COSINE = "cosine"
    WSD = "wsd"
    NOAM = "noam"


@dataclass(frozen=True)
class ScheduleConfig:
    """A schedule and its parameters; see the module docstring for the formulas."""

    kind: Schedule = Schedule.CONSTANT
    warmup_steps: int | None = None
    warmup_fraction: float = 0.0
    decay_steps: int | None = None
    decay_fraction: float | None = None
    final_lr_fraction: float = 0.0
    noam_model_dim: int | None = None
    noam_start_decay_steps: int = 0
    noam_decay_step_duration: int = 1
    minimum_learning_rate: float = 0.0

    def __post_init__(self) -> None:
        if self.warmup_steps is not None and self.warmup_fraction:
            raise ValueError(
                f"warmup_steps={self.warmup_steps} and warmup_fraction={self.warmup_fraction} "
                "are exclusive; allowed: one of them"
            )
        if self.decay_steps is not None and self.decay_fraction is not None:
            raise ValueError(
                f"decay_steps={self.decay_steps} and decay_fraction={self.decay_fraction} "
                "are exclusive; allowed: one of them"
            )
        if self.kind is Schedule.NOAM and self.noam_model_dim is None:
            raise ValueError(
                "schedule 'noam' needs noam_model_dim (or a model with hidden_units); "
                "allowed: an int >= 1"
            )

    @classmethod
    def from_hparams(
        cls, hparams: Mapping[str, Any], model_dim: int | None = None
    ) -> ScheduleConfig:
        """Parse the schedule keys of ``hparams`` (other keys are ignored)."""
        h = hparams
        return cls(
            kind=parse_choice(h, "schedule", Schedule.CONSTANT, Schedule),
            warmup_steps=parse_int_in(h, "warmup_steps", None),
            warmup_fraction=parse_float_in(h, "warmup_fraction", 0.0),
            decay_steps=parse_int_in(h, "decay_steps", None),
            decay_fraction=(
                parse_float_in(h, "decay_fraction", None)
                if h.get("decay_fraction") is not None
                else None
            ),
            final_lr_fraction=parse_float_in(h, "final_lr_fraction", 0.0),
            noam_model_dim=parse_int_in(h, "noam_model_dim", None) or model_dim,
            noam_start_decay_steps=parse_int_in(h, "noam_start_decay_steps", None) or 0,
            noam_decay_step_duration=parse_int_in(h, "noam_decay_step_duration", None) or 1,
            minimum_learning_rate=parse_float_in(h, "minimum_learning_rate", 0.0),
        )


def resolved_warmup_steps(config: ScheduleConfig, max_train_steps: int) -> int:
    """Warmup length W in steps for this budget."""
    if config.warmup_steps is not None:
        warmup = config.warmup_steps
    else:
        warmup = int(config.warmup_fraction * max_train_steps)
    if config.kind is not Schedule.NOAM and warmup >= max_train_steps:
        raise ValueError(
            f"warmup of {warmup} steps leaves no training in a budget of {max_train_steps} "
            "steps; allowed: fewer warmup steps than max_train_steps"
        )
    if config.kind is Schedule.NOAM and warmup < 1:
        raise ValueError("schedule 'noam' needs warmup_steps >= 1 (or warmup_fraction > 0)")
    return warmup


def resolved_decay_steps(config: ScheduleConfig, max_train_steps: int) -> int:
    """Decay length D of LINEAR/WSD for this budget."""
    after_warmup = max_train_steps - resolved_warmup_steps(config, max_train_steps)
    if config.decay_steps is not None:
        decay = config.decay_steps
    elif config.decay_fraction is not None:
        decay = max(1, round(config.decay_fraction * max_train_steps))
    elif config.kind is Schedule.WSD:
        decay = max(1, round(WSD_DEFAULT_DECAY_FRACTION * max_train_steps))
    else:
        decay = after_warmup
    if decay > after_warmup:
        raise ValueError(
            f"decay of {decay} steps does not fit after {max_train_steps - after_warmup} warmup "
            f"steps in a budget of {max_train_steps}; allowed: decay_steps <= {after_warmup}"
        )
    return decay


def learning_rate_at(
    step: int,
    base_learning_rate: float,
    max_train_steps: int,
    config: ScheduleConfig,
) -> float:
    """Learning rate of the ``step``-th update (1 <= step <= max_train_steps)."""
    if not 1 <= step <= max_train_steps:
        raise ValueError(f"step={step} is invalid; allowed: 1 <= step <= {max_train_steps}")
    if config.kind is Schedule.NOAM:
        return noam_learning_rate(step, base_learning_rate, config, max_train_steps)
    warmup = resolved_warmup_steps(config, max_train_steps)
    if step <= warmup:
        return base_learning_rate * step / warmup
    final = base_learning_rate * config.final_lr_fraction
    if config.kind is Schedule.CONSTANT:
        return base_learning_rate
    if config.kind is Schedule.COSINE:
        progress = (step - warmup) / (max_train_steps - warmup)
        return final + (base_learning_rate - final) * 0.5 * (1.0 + math.cos(math.pi * progress))
    decay = resolved_decay_steps(config, max_train_steps)
    decay_start = max_train_steps - decay
    if step <= decay_start:
        return base_learning_rate
    return base_learning_rate - (base_learning_rate - final) * (step - decay_start) / decay


def noam_learning_rate(
    step: int, scale: float, config: ScheduleConfig, max_train_steps: int
) -> float:
    """Noam's rate with OpenNMT-tf's start_decay_steps, decay_step_duration and minimum."""
    warmup = resolved_warmup_steps(config, max_train_steps)
    assert config.noam_model_dim is not None  # checked in ScheduleConfig.__post_init__
    n = max(step - config.noam_start_decay_steps, 0) // config.noam_decay_step_duration + 1
    rate = scale * config.noam_model_dim**-0.5 * min(n**-0.5, n * warmup**-1.5)
    return max(rate, config.minimum_learning_rate)


def identical_between(
    config_a: ScheduleConfig,
    budget_a: int,
    config_b: ScheduleConfig,
    budget_b: int,
    base_learning_rate: float,
) -> int:
    """The last step up to which runs (config_a, budget_a) and (config_b, budget_b) use
    exactly the same rates; 0 if they differ at step 1.

    A run can resume from a checkpoint of the other taken at or before this step and still
    follow its own schedule exactly.
    """
    shorter = min(budget_a, budget_b)
    for step in range(1, shorter + 1):
        rate_a = learning_rate_at(step, base_learning_rate, budget_a, config_a)
        if rate_a != learning_rate_at(step, base_learning_rate, budget_b, config_b):
            return step - 1
    return shorter


def identical_until(
    config: ScheduleConfig, base_learning_rate: float, budget_a: int, budget_b: int
) -> int:
    """The last step up to which runs of one schedule with budgets a and b use the same rates."""
    return identical_between(config, budget_a, config, budget_b, base_learning_rate)


def default_model_dim(hparams: Mapping[str, Any]) -> int | None:
    """Noam's default model dimension: the model's `hidden_units`, if an int."""
    value = hparams.get("hidden_units")
    integral = isinstance(value, numbers.Integral) and not isinstance(value, bool)
    return int(value) if integral else None


def trajectory_hparams(hparams: Mapping[str, Any]) -> dict[str, Any]:
    """What, besides the schedule, decides a run's weights step by step: `hparams`
    without the SCHEDULE_ and STOPPING_HYPERPARAMETERS (learning_rate stays)."""
    left_out = SCHEDULE_HYPERPARAMETERS | STOPPING_HYPERPARAMETERS
    return {k: v for k, v in hparams.items() if k not in left_out}


def schedule_of(hparams: Mapping[str, Any], model_dim: int | None = None) -> ScheduleConfig:
    """The ScheduleConfig of `hparams`; Noam's model_dim defaults to `hidden_units`."""
    dim = default_model_dim(hparams) if model_dim is None else model_dim
    return ScheduleConfig.from_hparams(hparams, model_dim=dim)


def resumable_step(
    parent_hparams: Mapping[str, Any],
    parent_max_train_steps: int,
    child_hparams: Mapping[str, Any],
    child_max_train_steps: int,
    eval_interval: int,
    model_dim: int | None = None,
) -> int:
    """The last eval step of the parent from whose checkpoint the child can resume exactly.

    That is the last of the parent's eval steps (every eval_interval, and its last step) up
    to which both runs use the same learning rates; 0 if none, or if a hyperparameter other
    than the schedule and stopping ones differs (`learning_rate` included). `model_dim` is
    Noam's model dimension when `noam_model_dim` is absent (default: `hidden_units`).
    """
    if trajectory_hparams(parent_hparams) != trajectory_hparams(child_hparams):
        return 0
    rate = parse_float(parent_hparams, "learning_rate", None, "a float > 0", lambda v: v > 0)
    same = identical_between(
        schedule_of(parent_hparams, model_dim),
        parent_max_train_steps,
        schedule_of(child_hparams, model_dim),
        child_max_train_steps,
        rate,
    )
    eval_steps = Budget(parent_max_train_steps, eval_interval, batch_size=1, seed=0).eval_steps()
    return max((step for step in eval_steps if step <= same), default=0)
