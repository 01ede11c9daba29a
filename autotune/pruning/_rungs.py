"""Asynchronous successive halving (ASHA) as pure functions over rung values.

A rung is a step count at which a trial is judged: ``min_steps * reduction_factor**r``, for
every ``r`` whose step is below ``max_train_steps``. A trial reaching rung ``r`` is compared
with every value recorded at that rung so far (running, finished or pruned trials alike) and
continues only if it is in the top ``1 / reduction_factor`` of them, itself included, or
among the ``min_keep`` best: a round that hands its top-k to a longer round must finish at
least k trials, whatever order they arrive in.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass
import enum
import math

from autotune.spec import Direction


class RungDecision(enum.Enum):
    CONTINUE = "continue"
    PRUNE = "prune"


@dataclass(frozen=True)
class RungReport:
    """The report that carried a trial across rung ``rung``: the first at or past its step."""

    rung: int
    step: int
    value: float


def rung_steps(min_steps: int, reduction_factor: int, max_train_steps: int) -> tuple[int, ...]:
    """The rung steps ``min_steps * reduction_factor**r`` below ``max_train_steps``."""
    if min_steps < 1:
        raise ValueError(f"min_steps must be >= 1, got {min_steps}")
    if reduction_factor < 2:
        raise ValueError(f"reduction_factor must be >= 2, got {reduction_factor}")
    if max_train_steps < 1:
        raise ValueError(f"max_train_steps must be >= 1, got {max_train_steps}")
    steps: list[int] = []
    step = min_steps
    while step < max_train_steps:
        steps.append(step)
        step *= reduction_factor
    return tuple(steps)


def rung_for_step(step: int, rungs: Sequence[int]) -> int | None:
    """Index of the highest rung at or below ``step``; None before the first rung."""
    index = bisect_right(rungs, step) - 1
    return index if index >= 0 else None


def rung_reports(
    intermediate_values: Mapping[int, float], rungs: Sequence[int]
) -> tuple[RungReport, ...]:
    """For every rung the trial has reached, the first report at or past the rung's step.

    One report may carry a trial across several rungs; it then stands for each of them.
    """
    steps = sorted(intermediate_values)
    reports: list[RungReport] = []
    for rung, rung_step in enumerate(rungs):
        index = bisect_right(steps, rung_step - 1)  # first reported step >= rung_step
        if index == len(steps):
            break
        step = steps[index]
        reports.append(RungReport(rung, step, float(intermediate_values[step])))
    return tuple(reports)


def badness(value: float, direction: Direction) -> float:
    """A key where lower is better: the value, negated when maximizing; NaN stays NaN.

    NaN is the worst value of all, worse than an infinite one, and ties only with NaN; this
    is also how PostgreSQL orders ``double precision``.
    """
    return value if direction == Direction.MINIMIZE else -value


def is_better(a: float, b: float) -> bool:
    """Whether badness ``a`` is strictly better (lower) than badness ``b``; NaN is worst."""
    if math.isnan(a):
        return False
    return math.isnan(b) or a < b


def keep_count(n: int, reduction_factor: int, min_keep: int = 1) -> int:
    """How many of ``n`` trials at a rung continue:
    ``min(n, max(min_keep, floor(n / reduction_factor)))``, at least one.

    It grows by at most one per trial added, which the rung store's cursor relies on.
    """
    return max(1, min(n, max(min_keep, n // reduction_factor)))


def decide(
    value: float,
    competitors: Sequence[float],
    reduction_factor: int,
    direction: Direction,
    min_keep: int = 1,
) -> RungDecision:
    """ASHA at one rung: continue when the trial is in the top ``1 / reduction_factor``.

    ``competitors`` are the values other trials recorded at this rung. With ``n`` the number
    of competitors plus one (the trial itself), the trial continues when its rank is at most
    ``keep_count(n, reduction_factor, min_keep)``; its rank is one plus the number of strictly
    better competitors, so ties count in its favour. NaN is the worst value. The first
    ``min_keep`` trials at a rung always continue.
    """
    if reduction_factor < 2:
        raise ValueError(f"reduction_factor must be >= 2, got {reduction_factor}")
    if min_keep < 1:
        raise ValueError(f"min_keep must be >= 1, got {min_keep}")
    own = badness(value, direction)
    better = sum(is_better(badness(c, direction), own) for c in competitors)
    if better < keep_count(len(competitors) + 1, reduction_factor, min_keep):
        return RungDecision.CONTINUE
    return RungDecision.PRUNE
