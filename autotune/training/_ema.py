"""Exponential moving average of model weights (docs/method.md §14, OpenNMT-tf MovingAverage)."""

from __future__ import annotations

from collections.abc import Iterator
from collections.abc import Mapping
import contextlib

import torch


def ema_rate(step: int, decay: float, dynamic: bool = True) -> float:
    """The weight the current weights get after the `step`-th update (1-based).

    Dynamic (OpenNMT-tf): ``1 - min(decay, (1 + step) / (10 + step))``, so early steps move
    the average fast; fixed: ``1 - decay``.
    """
    if not dynamic:
        return 1.0 - decay
    return 1.0 - min(decay, (1.0 + step) / (10.0 + step))


def _floating_parameters(model: torch.nn.Module) -> dict[str, torch.nn.Parameter]:
    return {name: p for name, p in model.named_parameters() if p.is_floating_point()}


class ExponentialMovingAverage:
    """Shadow copies of a model's floating parameters, pulled towards them every step.

    ``shadow = shadow - (shadow - current) * ema_rate(step, ...)``, starting from the
    weights at construction. Buffers (e.g. batch-norm statistics) are not averaged: the
    model's current buffers are used with the shadow parameters.
    """

    def __init__(self, model: torch.nn.Module, decay: float, dynamic: bool = True) -> None:
        if not 0.0 < decay < 1.0:
            raise ValueError(f"ema decay={decay!r} is invalid; allowed: a float in (0, 1)")
        self.decay, self.dynamic = decay, dynamic
        parameters = _floating_parameters(model)
        self._names = tuple(parameters)
        self._current = [p for p in parameters.values()]
        with torch.no_grad():
            self._shadow = [p.detach().clone() for p in self._current]

    @torch.no_grad()
    def update(self, step: int) -> None:
        """Move the shadow towards the model's weights after the `step`-th update."""
        torch._foreach_lerp_(self._shadow, self._current, ema_rate(step, self.decay, self.dynamic))

    def state_dict(self) -> dict[str, torch.Tensor]:
        """The shadow weights by parameter name (references; clone before mutating)."""
        return dict(zip(self._names, self._shadow, strict=True))

    @torch.no_grad()
    def load_state_dict(self, state: Mapping[str, torch.Tensor]) -> None:
        """Restore shadow weights saved by state_dict()."""
        if set(state) != set(self._names):
            raise ValueError(
                f"EMA state has parameters {sorted(state)}; allowed: exactly {sorted(self._names)}"
            )
        for name, shadow in zip(self._names, self._shadow, strict=True):
            shadow.copy_(state[name])

    @contextlib.contextmanager
    def applied(self) -> Iterator[None]:
        """Within the block the model's parameters hold the shadow weights."""
        with torch.no_grad():
            backup = [p.detach().clone() for p in self._current]
            torch._foreach_copy_(self._current, self._shadow)
        try:
            yield
        finally:
            with torch.no_grad():
                torch._foreach_copy_(self._current, backup)
