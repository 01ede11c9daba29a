"""The step budget of one training run."""

from __future__ import annotations

from dataclasses import dataclass


def _require_int(name: str, value: object, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"Budget.{name}={value!r} is invalid; allowed: an int >= {minimum}")


@dataclass(frozen=True)
class Budget:
    """How long to train, how often to evaluate, the batch size and the seed.

    Each step averages the gradients of `gradient_accumulation_steps` micro-batches of
    `batch_size` rows (effective batch: their product; docs/method.md §2: support it, don't
    default to it).
    """

    max_train_steps: int
    eval_interval: int
    batch_size: int
    seed: int
    gradient_accumulation_steps: int = 1
    train_fraction: float = 1.0  # fast mode: train on the most recent share of the rows
    stop_at_step: int | None = None  # a recipe's fixed stop; the schedule still spans max

    def __post_init__(self) -> None:
        _require_int("max_train_steps", self.max_train_steps, 1)
        _require_int("eval_interval", self.eval_interval, 1)
        _require_int("batch_size", self.batch_size, 1)
        _require_int("seed", self.seed, 0)
        _require_int("gradient_accumulation_steps", self.gradient_accumulation_steps, 1)
        fraction = self.train_fraction
        if isinstance(fraction, bool) or not isinstance(fraction, int | float):
            raise ValueError(f"Budget.train_fraction={fraction!r} is invalid; allowed: (0, 1]")
        if not 0.0 < fraction <= 1.0:
            raise ValueError(f"Budget.train_fraction={fraction!r} is invalid; allowed: (0, 1]")
        if self.stop_at_step is not None:
            _require_int("stop_at_step", self.stop_at_step, 1)
            if self.stop_at_step > self.max_train_steps:
                raise ValueError(
                    f"Budget.stop_at_step={self.stop_at_step} is invalid; allowed: an int "
                    f"<= max_train_steps ({self.max_train_steps})"
                )
        if self.eval_interval > self.max_train_steps:
            raise ValueError(
                f"Budget.eval_interval={self.eval_interval} is invalid; allowed: an int "
                f"<= max_train_steps ({self.max_train_steps})"
            )

    @property
    def examples_per_step(self) -> int:
        """Training rows one step consumes: batch_size * gradient_accumulation_steps."""
        return self.batch_size * self.gradient_accumulation_steps

    @property
    def last_step(self) -> int:
        """Where the run ends: ``stop_at_step`` if set, else ``max_train_steps``."""
        return self.max_train_steps if self.stop_at_step is None else self.stop_at_step

    def eval_steps(self) -> tuple[int, ...]:
        """Steps after which the loop evaluates: every eval_interval, and the last step
        (a run stopped early by ``stop_at_step`` evaluates there and ends)."""
        last = self.last_step
        steps = list(range(self.eval_interval, last + 1, self.eval_interval))
        if not steps or steps[-1] != last:
            steps.append(last)
        return tuple(steps)
