"""Dated data's periods: rows of a date range with its own validation range; seeded periods."""

from __future__ import annotations

import datetime
import re

import numpy as np
import pytest

from autotune.training import Period
from autotune.training import date_rows
from autotune.training import rolling_periods

MONTHS = np.arange("2000-01", "2005-01", dtype="datetime64[M]").astype("datetime64[D]")  # 60


def day(text: str) -> datetime.date:
    return datetime.date.fromisoformat(text)


def test_one_series_validates_on_ranges_of_any_length() -> None:
    six = Period.date_range(
        day("2000-01-01"), day("2002-12-31"), day("2003-01-01"), day("2003-06-30")
    )
    three = Period.date_range(
        day("2000-01-01"), day("2003-06-30"), day("2003-07-01"), day("2003-09-30")
    )
    train, validation = date_rows(six, MONTHS)
    assert (train.tolist(), validation.tolist()) == (list(range(36)), list(range(36, 42)))
    train, validation = date_rows(three, MONTHS)
    assert (len(train), validation.tolist()) == (42, [42, 43, 44])


def test_a_period_without_its_range_validates_on_the_rows_after_it_when_allowed() -> None:
    period = Period.date_range(day("2000-01-01"), day("2000-12-31"))
    assert date_rows(period, MONTHS, following=3)[1].tolist() == [12, 13, 14]
    with pytest.raises(
        ValueError, match=r"it has no validation range; allowed: Period.date_range"
    ):
        date_rows(period, MONTHS)


@pytest.mark.parametrize(
    ("period", "message"),
    [
        (
            Period.kfold(0, 5, 0),
            r"allowed: a date range \(Period.date_range\), this task's data is dated "
            r"\(the data spans 2000-01-01..2004-12-01\)",
        ),
        (
            Period.date_range(
                day("1990-01-01"), day("1990-12-31"), day("2000-01-01"), day("2000-03-01")
            ),
            r"its training range holds no rows; allowed: ranges inside the data \(the data spans",
        ),
        (
            Period.date_range(
                day("2000-01-01"), day("2004-12-31"), day("2005-01-01"), day("2005-03-01")
            ),
            r"its validation range holds no rows",
        ),
    ],
)
def test_a_period_the_data_cannot_serve_is_named(period: Period, message: str) -> None:
    with pytest.raises(
        ValueError, match=rf"period '{re.escape(period.name)}' is invalid for 'toy'.*{message}"
    ):
        date_rows(period, MONTHS, task_name="toy")


def test_rolling_periods_are_seeded_disjoint_and_train_on_as_many_rows() -> None:
    periods = rolling_periods(MONTHS, 4, seed=7, train_rows=24, validation_rows=6)
    assert periods == rolling_periods(MONTHS, 4, seed=7, train_rows=24, validation_rows=6)
    assert periods != rolling_periods(MONTHS, 4, seed=8, train_rows=24, validation_rows=6)
    rows = [date_rows(period, MONTHS) for period in periods]
    assert all(len(train) == 24 and len(validation) == 6 for train, validation in rows)
    assert all(train[-1] + 1 == validation[0] for train, validation in rows)
    starts = [validation[0] for _, validation in rows]
    assert all(later - earlier >= 6 for earlier, later in zip(starts, starts[1:], strict=False))


def test_rolling_periods_refuse_what_does_not_fit() -> None:
    assert len(rolling_periods(MONTHS, 6, 0, 24, 6)) == 6  # (60 - 6 - 24) // 6 + 1
    with pytest.raises(
        ValueError, match=r"periods count=7 is invalid; allowed: an int in \[1, 6\]"
    ):
        rolling_periods(MONTHS, 7, 0, 24, 6)
    with pytest.raises(ValueError, match=r"train_rows=0 is invalid; allowed: an int >= 1"):
        rolling_periods(MONTHS, 1, 0, 0, 6)
