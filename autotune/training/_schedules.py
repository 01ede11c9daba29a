"""Step-based learning-rate schedules as pure functions."""

from __future__ import annotations

import enum
import math


class Schedule(enum.Enum):
    """Shape of the learning rate after warmup."""

    CONSTANT = "constant"
    COSINE = "cosine"


def warmup_steps(max_train_steps: int, warmup_fraction: float) -> int:
    """Number of linear-warmup steps: floor(warmup_fraction * max_train_steps)."""
    return int(warmup_fraction * max_train_steps)


def learning_rate_at(
    step: int,
    base_learning_rate: float,
    max_train_steps: int,
    schedule: Schedule,
    warmup_fraction: float = 0.0,
) -> float:
    """Learning rate for the update with 0-based index `step` (0 <= step <= max_train_steps).

    Warmup is linear over W = warmup_steps(...) updates: step s < W gets base * (s + 1) / W,
    so the first update is not wasted and step W - 1 reaches the base rate. After warmup,
    CONSTANT keeps the base rate; COSINE decays from the base rate at step W to 0 at
    max_train_steps.
    """
    if not 0 <= step <= max_train_steps:
        raise ValueError(f"step={step} is invalid; allowed: 0 <= step <= {max_train_steps}")
    if not 0.0 <= warmup_fraction < 1.0:
        raise ValueError(f"warmup_fraction={warmup_fraction} is invalid; allowed: [0, 1)")
    warmup = warmup_steps(max_train_steps, warmup_fraction)
    if step < warmup:
        return base_learning_rate * (step + 1) / warmup
    if schedule is Schedule.CONSTANT:
        return base_learning_rate
    progress = (step - warmup) / (max_train_steps - warmup)
    return base_learning_rate * 0.5 * (1.0 + math.cos(math.pi * progress))
