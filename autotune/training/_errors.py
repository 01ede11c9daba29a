"""Error types raised by the training seam."""

from __future__ import annotations

from collections.abc import Sequence
import enum


class LossCause(enum.Enum):
    """Why a loss is not finite, as far as the loop can tell: the hint its error gives."""

    UPDATES = "learning rate too high?"  # finite with the initial weights; updates broke it
    MODEL_OUTPUT = (
        "before any update: the model's output is already non-finite with its initial "
        "weights, so the learning rate is not the cause; check the model and its "
        "initialisation"
    )
    LOSS = (
        "before any update, on finite model outputs: the learning rate is not the cause; "
        "check the task's loss and the data"
    )


class NonFiniteLossError(RuntimeError):
    """The training loss became nan or inf; training stopped at that step."""

    def __init__(self, step: int, value: float, cause: LossCause = LossCause.UPDATES) -> None:
        super().__init__(f"training loss became {value} at step {step} ({cause.value})")
        self.step = step
        self.value = value
        self.cause = cause

    def __reduce__(self) -> tuple[type[NonFiniteLossError], tuple[int, float, LossCause]]:
        return (type(self), (self.step, self.value, self.cause))


USER_TASK_FORM = "package.module:factory"


class UnknownTaskError(ValueError):
    """No task can be made from the requested name (built-in or `package.module:factory`).

    `reason` says why a user-task reference failed (None: the name is simply unknown).
    """

    def __init__(self, name: str, available: Sequence[str], reason: str | None = None) -> None:
        allowed = (
            f"available tasks: {', '.join(sorted(available))}, or a user task given as "
            f"'{USER_TASK_FORM}' (a module importable from the working directory or "
            "installed, and a function of no arguments returning a Task)"
        )
        problem = f"unknown task {name!r}" if reason is None else f"task {name!r}: {reason}"
        super().__init__(f"{problem}; {allowed}")
        self.name = name
        self.available = tuple(sorted(available))
        self.reason = reason

    def __reduce__(
        self,
    ) -> tuple[type[UnknownTaskError], tuple[str, tuple[str, ...], str | None]]:
        return (type(self), (self.name, self.available, self.reason))


class CheckpointMismatchError(ValueError):
    """A checkpoint cannot continue into this run: the message names every difference."""
