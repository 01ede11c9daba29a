"""The spec's dated periods as the task's: which period tunes, which re-evaluate."""

from __future__ import annotations

from autotune import training
from autotune.campaign._budget import largest_where
from autotune.campaign._reevaluation import MAX_PERIOD_FACTOR
from autotune.spec import PeriodSpec
from autotune.spec import StudySpec


def spec_period(period: PeriodSpec) -> training.Period:
    """A spec's period as the `Period.date_range` a task's `data` takes."""
    (start, end), (validation_start, validation_end) = period.train, period.validation
    return training.Period.date_range(start, end, validation_start, validation_end)


def tuning_period(spec: StudySpec) -> training.Period | None:
    """``periods.tuning`` (tuning, sweep and baseline runs); None: the task's default period."""
    tuning = None if spec.periods is None else spec.periods.tuning
    return None if tuning is None else spec_period(tuning)


def heldout_periods(spec: StudySpec) -> list[training.Period] | None:
    """``periods.heldout`` (the re-evaluation's, in order); None: the task's seeded periods."""
    heldout = None if spec.periods is None else spec.periods.heldout
    return None if heldout is None else [spec_period(period) for period in heldout]


def seeded_periods(
    spec: StudySpec | None, task: training.Task, count: int, seed: int
) -> list[training.Period]:
    """The task's ``periods(count, seed)`` without the tuning period or one validating on
    any of its validation dates, the next periods taking their place: a seeded split can
    hold it (fold 0 of seed 0 is many tasks' default period), and the finalists were chosen
    there, where their own runs already count once; rolling windows validated on the
    tuning quarter again (3 of the volatility example's 9), where the finalists had won."""
    tuning = (None if spec is None else tuning_period(spec)) or task.default_period()
    asked = count
    while True:
        periods = task.periods(asked, seed)
        kept = [p for p in periods if p != tuning and not validates_on_dates_of(p, tuning)]
        if len(kept) >= count or len(periods) < asked:
            return kept[:count]
        asked += count - len(kept)


def validates_on_dates_of(period: training.Period, tuning: training.Period) -> bool:
    """Whether ``period`` validates on a date ``tuning`` validates on (both with explicit
    validation ranges; a fold or an implicit span is not compared)."""
    ranges = (period.validation_start, period.validation_end)
    tuned = (tuning.validation_start, tuning.validation_end)
    if None in ranges or None in tuned:
        return False
    return not (ranges[1] < tuned[0] or ranges[0] > tuned[1])


def reevaluation_period(
    spec: StudySpec, task: training.Task, index: int, count: int, seed: int
) -> training.Period:
    """Period ``index`` of a re-evaluation: the spec's held-out one, else the task's seeded
    ones (`seeded_periods`); ValueError if the spec holds fewer than ``index + 1``."""
    heldout = heldout_periods(spec)
    if heldout is None:
        return seeded_periods(spec, task, count, seed)[index]
    if not 0 <= index < len(heldout):
        raise ValueError(
            f"re-evaluation period index {index} is invalid: the spec holds "
            f"{len(heldout)} periods.heldout; allowed: 0 to {len(heldout) - 1}"
        )
    return heldout[index]


def most_reevaluation_periods(spec: StudySpec, task: training.Task) -> int | None:
    """The most re-evaluation periods the task's ``periods`` gives this spec, when fewer
    than a budget may ask for (3x the spec's); None: all of them, or the spec lists its own
    periods, or no re-evaluation. A dated task's history runs out (the volatility example
    gives 9 disjoint quarters), and a count it refuses failed every re-evaluation run."""
    design = spec.reevaluation
    if not design.enabled or heldout_periods(spec) is not None:
        return None
    seed = design.period_seed or 0  # the count a task gives does not depend on it

    def gives(count: int) -> bool:
        try:
            seeded_periods(spec, task, count, seed)
        except Exception:  # a user task's own refusal, whatever it raises
            return False
        return True

    asked = MAX_PERIOD_FACTOR * design.periods
    if gives(asked):
        return None
    return largest_where(0, asked - 1, gives)
