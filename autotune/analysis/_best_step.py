"""Retrospective best-step analysis: is max_train_steps too high or too low?

The rule is docs/method.md §10.
"""

from __future__ import annotations

from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass
import enum
import math

import numpy as np
from optuna.trial import FrozenTrial
from optuna.trial import TrialState

from autotune.spec import Direction

DEFAULT_MIN_TRIALS = 5
"""Fewer COMPLETE trials than this give INSUFFICIENT_DATA."""
EARLY_FRACTION = 0.10
"""A best step at or below this fraction of the budget is in the first 10% (inclusive)."""
LATE_FRACTION = 0.75
"""A best step at or above this fraction of the budget is in the last 25% (inclusive)."""
FEWER_SHARE = 0.80
"""At least this share of best steps in the first 10% recommends FEWER steps."""
MORE_SHARE = 0.50
"""At least this share of best steps in the last 25% recommends MORE steps."""
FEWER_PERCENTILE = 90.0
"""FEWER suggests FEWER_HEADROOM x this percentile of the best steps ..."""
FEWER_HEADROOM = 2.0
"""... rounded up to a multiple of the eval interval."""
MORE_FACTOR = 2
"""MORE suggests this multiple of the current budget."""

BEST_STEP_ATTR = "best_step"
BUDGET_ATTR = "max_train_steps"
STEPS_DONE_ATTR = "steps_done"  # the budget of records without max_train_steps


class StepRecommendation(enum.Enum):
    """What to do with max_train_steps."""

    FEWER = "fewer"
    MORE = "more"
    KEEP = "keep"
    INSUFFICIENT_DATA = "insufficient_data"


@dataclass(frozen=True)
class BestStepAnalysis:
    """Where in their budgets the trials' best evals fell, and what that recommends.

    `fractions` are best_step / budget per trial, in input order. The summary values are
    None without records. `suggested_max_train_steps` is None for KEEP and
    INSUFFICIENT_DATA.
    """

    fractions: tuple[float, ...]
    median_fraction: float | None
    share_in_first_10pct: float | None
    share_in_last_25pct: float | None
    recommendation: StepRecommendation
    suggested_max_train_steps: int | None
    reason: str


def best_step_records(trials: Sequence[FrozenTrial]) -> list[tuple[int, int]]:
    """(best_step, budget) of each COMPLETE trial: user attrs best_step and max_train_steps.

    The budget is the planned steps, so an early-stopped run counts against its full budget
    (older records without max_train_steps fall back to steps_done).
    """
    records = []
    for trial in trials:
        attrs = trial.user_attrs
        best, budget = (
            attrs.get(BEST_STEP_ATTR),
            attrs.get(BUDGET_ATTR, attrs.get(STEPS_DONE_ATTR)),
        )
        if trial.state is TrialState.COMPLETE and _is_int(best) and _is_int(budget):
            records.append((best, budget))
    return records


def analyze_best_steps(
    records: Sequence[tuple[int, int]],
    eval_interval: int,
    min_trials: int = DEFAULT_MIN_TRIALS,
) -> BestStepAnalysis:
    """Recommend a max_train_steps from (best_step, budget) records of COMPLETE trials.

    FEWER when >= 80% of best steps are in the first 10% of the budget (a best at the first
    evaluation counts there too: where that evaluation lies beyond 10%, an earlier best is
    out of the grid's sight, and all bests there read "the budget fits"), suggesting about
    2x their 90th percentile (rounded up to `eval_interval`; KEEP instead if that is not
    below the current budget, the largest one in `records`); else MORE when >= 50% are in
    the last 25%, suggesting 2x the budget; else KEEP.
    """
    _check_positive_int("eval_interval", eval_interval)
    _check_positive_int("min_trials", min_trials)
    fractions = tuple(_fraction(best, budget) for best, budget in records)
    if not fractions:
        reason = f"no COMPLETE trials with a best step; need at least {min_trials}"
        insufficient = StepRecommendation.INSUFFICIENT_DATA
        return BestStepAnalysis((), None, None, None, insufficient, None, reason)
    early = sum(
        f <= EARLY_FRACTION or best <= eval_interval
        for f, (best, _) in zip(fractions, records, strict=True)
    ) / len(fractions)
    late = sum(f >= LATE_FRACTION for f in fractions) / len(fractions)
    summary = (fractions, float(np.median(fractions)), early, late)
    recommendation, steps, reason = _recommend(records, early, late, eval_interval, min_trials)
    return BestStepAnalysis(*summary, recommendation, steps, reason)


def _recommend(
    records: Sequence[tuple[int, int]],
    early: float,
    late: float,
    eval_interval: int,
    min_trials: int,
) -> tuple[StepRecommendation, int | None, str]:
    budget = max(b for _, b in records)
    coarse = eval_interval > EARLY_FRACTION * budget  # the grid's first point is past 10%
    first = " (or at the first evaluation, the earliest the grid sees)" if coarse else ""
    shares = f"{early:.0%} of best steps in the first 10%{first}, {late:.0%} in the last 25%"
    if len(records) < min_trials:
        return (
            StepRecommendation.INSUFFICIENT_DATA,
            None,
            f"too few trials to judge: only {len(records)} COMPLETE trials; need at least "
            f"{min_trials} ({shares})",
        )
    if early >= FEWER_SHARE:
        percentile = float(np.percentile([b for b, _ in records], FEWER_PERCENTILE))
        suggested = _round_up(max(FEWER_HEADROOM * percentile, 1.0), eval_interval)
        if suggested < budget:
            return (
                StepRecommendation.FEWER,
                suggested,
                f"{shares}: a {budget}-step budget is too high; about "
                f"{FEWER_HEADROOM:g}x the {FEWER_PERCENTILE:g}th-percentile best step "
                f"({percentile:g}) is {suggested}",
            )
        return (
            StepRecommendation.KEEP,
            None,
            f"{shares}, but {FEWER_HEADROOM:g}x the {FEWER_PERCENTILE:g}th-percentile best "
            f"step ({percentile:g}) does not fit in fewer than {budget} steps: the late best "
            f"steps need the {budget}-step budget, which fits",
        )
    if late >= MORE_SHARE:
        suggested = _round_up(MORE_FACTOR * budget, eval_interval)
        return (
            StepRecommendation.MORE,
            suggested,
            f"{shares}: training longer than {budget} steps may help; try {suggested} and "
            "re-tune the learning-rate decay schedule (it does not transfer to longer runs)",
        )
    return StepRecommendation.KEEP, None, f"{shares}: the {budget}-step budget fits"


def _fraction(best_step: int, budget: int) -> float:
    if not (_is_int(best_step) and _is_int(budget) and 0 <= best_step <= budget and budget >= 1):
        raise ValueError(
            f"best-step record ({best_step!r}, {budget!r}) is invalid; allowed: ints "
            "(best_step, budget) with 0 <= best_step <= budget and budget >= 1"
        )
    return best_step / budget


def _round_up(value: float, multiple: int) -> int:
    """The smallest multiple of `multiple` >= value (float noise from percentiles ignored)."""
    return math.ceil(round(value / multiple, 9)) * multiple


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_positive_int(name: str, value: object) -> None:
    if not _is_int(value) or value < 1:  # type: ignore[operator]
        raise ValueError(f"{name}={value!r} is invalid; allowed: an int >= 1")


def shared_best_step(curves: Sequence[Mapping[int, float]], direction: Direction) -> int | None:
    """The step whose mean over several runs' curves is best: one stop for a recipe.

    A stop chosen on a single run's curve is picked together with the configuration, on
    the same noise (the winner's curse twice); the mean over runs on different periods and
    seeds is what the recipe delivers on data it has not seen (docs/method.md §11). Only
    steps every curve evaluated count; a non-finite value makes its step the worst. Ties go
    to the earlier step (fewer steps, the same result). None without a shared step.
    """
    if not curves:
        return None
    shared = set.intersection(*(set(curve) for curve in curves))
    if not shared:
        return None
    sign = 1.0 if direction is Direction.MINIMIZE else -1.0

    def mean_at(step: int) -> float:
        values = [float(curve[step]) for curve in curves]
        if not all(math.isfinite(v) for v in values):
            return math.inf
        return sign * float(np.mean(values))

    return min(sorted(shared), key=mean_at)
