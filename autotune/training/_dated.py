"""Dated data's periods: the rows a date range trains and validates on, and seeded periods.

The counterpart of `_folds` for time series: a task keeps one sorted date per row and lets
these turn any `Period.date_range` into row indices, whatever its validation length.
"""

from __future__ import annotations

import datetime

import numpy as np

from ._period import Period
from ._period import PeriodKind


def as_days(dates: np.ndarray) -> np.ndarray:
    """``dates`` as numpy datetime64[D] (from datetime.date objects or datetime64)."""
    return np.asarray(dates, dtype="datetime64[D]")


def date_rows(
    period: Period,
    dates: np.ndarray,
    following: int | None = None,
    task_name: str = "task",
) -> tuple[np.ndarray, np.ndarray]:
    """Training rows (dated start..end) and validation rows of a date-range period.

    Validation rows are those dated validation_start..validation_end; for a period without
    that range, the `following` rows right after training (None: such a period is refused).
    `dates` holds one sorted date per row. ValueError names the period and what is allowed
    if it is a fold, or if either range holds no row.
    """
    days = as_days(dates)
    span = f"the data spans {days[0]}..{days[-1]}" if len(days) else "the data has no rows"
    if period.kind is not PeriodKind.DATE_RANGE:
        raise ValueError(
            f"period {period.name!r} is invalid for {task_name!r}; allowed: a date range "
            f"(Period.date_range), this task's data is dated ({span})"
        )
    train = _rows_between(days, period.start, period.end)
    if period.validation_start is not None:
        validation = _rows_between(days, period.validation_start, period.validation_end)
    elif following is not None and len(train):
        validation = np.arange(train[-1] + 1, min(train[-1] + 1 + following, len(days)))
    else:
        raise ValueError(
            f"period {period.name!r} is invalid for {task_name!r}: it has no validation range; "
            "allowed: Period.date_range(start, end, validation_start, validation_end)"
        )
    for rows, what in ((train, "training"), (validation, "validation")):
        if len(rows) == 0:
            raise ValueError(
                f"period {period.name!r} is invalid for {task_name!r}: its {what} range holds "
                f"no rows; allowed: ranges inside the data ({span})"
            )
    return train, validation


def _rows_between(days: np.ndarray, first: datetime.date, last: datetime.date) -> np.ndarray:
    """Indices of the rows dated first..last (inclusive) in sorted `days`."""
    low = int(np.searchsorted(days, np.datetime64(first, "D"), side="left"))
    high = int(np.searchsorted(days, np.datetime64(last, "D"), side="right"))
    return np.arange(low, high)


def rolling_periods(
    dates: np.ndarray, count: int, seed: int, train_rows: int, validation_rows: int
) -> list[Period]:
    """`count` seeded periods of a time series, in date order, each training on `train_rows`
    rows and validating on the `validation_rows` rows right after them; their validation
    ranges are disjoint. ValueError if `count` of them do not fit the data."""
    days = as_days(dates)
    for name, value in (("train_rows", train_rows), ("validation_rows", validation_rows)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name}={value!r} is invalid; allowed: an int >= 1")
    first, last = train_rows, len(days) - validation_rows  # where validation may start
    most = max(0, (last - first) // validation_rows + 1)
    if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= most:
        raise ValueError(
            f"periods count={count!r} is invalid; allowed: an int in [1, {most}] (disjoint "
            f"{validation_rows}-row validation ranges after {train_rows} training rows in "
            f"{len(days)} rows)"
        )
    slack = (last - first) - (count - 1) * validation_rows
    offsets = np.sort(np.random.default_rng(seed).integers(0, slack + 1, size=count))
    starts = [first + int(offset) + k * validation_rows for k, offset in enumerate(offsets)]
    return [
        Period.date_range(
            days[start - train_rows].item(),
            days[start - 1].item(),
            days[start].item(),
            days[start + validation_rows - 1].item(),
        )
        for start in starts
    ]
