"""Error types raised by the training seam."""

from __future__ import annotations

from collections.abc import Sequence


class NonFiniteLossError(RuntimeError):
    """The training loss became nan or inf; training stopped at that step."""

    def __init__(self, step: int, value: float) -> None:
        super().__init__(f"training loss became {value} at step {step} (learning rate too high?)")
        self.step = step
        self.value = value

    def __reduce__(self) -> tuple[type[NonFiniteLossError], tuple[int, float]]:
        return (type(self), (self.step, self.value))


class UnknownTaskError(ValueError):
    """No task is registered under the requested name."""

    def __init__(self, name: str, available: Sequence[str]) -> None:
        super().__init__(f"unknown task {name!r}; available tasks: {', '.join(sorted(available))}")
        self.name = name
        self.available = tuple(sorted(available))

    def __reduce__(self) -> tuple[type[UnknownTaskError], tuple[str, tuple[str, ...]]]:
        return (type(self), (self.name, self.available))
