from __future__ import annotations

import datetime
import json
import pickle

import numpy as np
import pytest

from autotune.training._co2 import Co2LSTMTask
from autotune.training._digits import DigitsMLPTask
from autotune.training._digits import load_digits
from autotune.training._folds import fold_assignment
from autotune.training._folds import fold_rows
from autotune.training._folds import kfold_periods
from autotune.training._folds import repeated_kfold_periods
from autotune.training._period import Period
from autotune.training._period import PeriodKind

D = datetime.date
WEEK = datetime.timedelta(weeks=1)


@pytest.fixture(scope="module")
def co2() -> Co2LSTMTask:
    return Co2LSTMTask()


def test_date_range_period() -> None:
    period = Period.date_range(D(1990, 1, 6), D(1999, 12, 25))
    assert period.name == "1990-01-06..1999-12-25"
    assert period.kind is PeriodKind.DATE_RANGE
    assert (period.fold, period.folds, period.seed) == (None, None, None)


def test_fold_period() -> None:
    period = Period.kfold(2, 5, 7)
    assert period.name == "fold 2/5 (seed 7)"
    assert period.kind is PeriodKind.FOLD
    assert (period.start, period.end) == (None, None)


def test_periods_are_values() -> None:
    assert Period.kfold(1, 3, 0) == Period.kfold(1, 3, 0)
    assert len({Period.kfold(1, 3, 0), Period.kfold(1, 3, 0), Period.kfold(2, 3, 0)}) == 2
    period = Period.date_range(D(2000, 1, 1), D(2000, 1, 1))
    assert pickle.loads(pickle.dumps(period)) == period


@pytest.mark.parametrize(
    "period", [Period.date_range(D(1990, 1, 6), D(1999, 12, 25)), Period.kfold(2, 5, 7)]
)
def test_json_round_trip(period: Period) -> None:
    data = json.loads(json.dumps(period.to_json_dict()))
    assert Period.from_json_dict(data) == period


def test_json_dates_are_iso() -> None:
    data = Period.date_range(D(1990, 1, 6), D(1999, 12, 25)).to_json_dict()
    assert data == {"name": "1990-01-06..1999-12-25", "start": "1990-01-06", "end": "1999-12-25"}


@pytest.mark.parametrize(
    ("data", "pattern"),
    [
        ({"name": "x", "fold": 0, "folds": 2, "seed": 0, "k": 1}, r"unknown Period key.*'k'"),
        ({"name": "x", "start": "1990-13-01", "end": "1991-01-01"}, r"start='1990-13-01'"),
        ({"name": "x", "start": 5, "end": "1991-01-01"}, r"start=5.*ISO date"),
        ([1, 2], r"mapping"),
    ],
)
def test_bad_json_is_rejected(data: object, pattern: str) -> None:
    with pytest.raises(ValueError, match=pattern):
        Period.from_json_dict(data)


@pytest.mark.parametrize(
    ("fields", "pattern"),
    [
        ({"name": ""}, r"Period.name=''"),
        ({"name": "p"}, r"either start and end .* or fold, folds and seed"),
        ({"name": "p", "start": D(2000, 1, 1)}, r"either start and end"),
        ({"name": "p", "start": D(2000, 1, 1), "end": D(2001, 1, 1), "fold": 0}, r"either"),
        ({"name": "p", "start": D(2001, 1, 1), "end": D(2000, 1, 1)}, r"end=.*on or after"),
        ({"name": "p", "start": "2000-01-01", "end": D(2001, 1, 1)}, r"start=.*datetime.date"),
        ({"name": "p", "fold": 0, "folds": 1, "seed": 0}, r"folds=1.*int >= 2"),
        ({"name": "p", "fold": 5, "folds": 5, "seed": 0}, r"fold=5.*\[0, 4\]"),
        ({"name": "p", "fold": -1, "folds": 5, "seed": 0}, r"fold=-1"),
        ({"name": "p", "fold": 0, "folds": 5, "seed": -1}, r"seed=-1.*int >= 0"),
        ({"name": "p", "fold": True, "folds": 5, "seed": 0}, r"fold=True"),
    ],
)
def test_invalid_periods(fields: dict, pattern: str) -> None:
    with pytest.raises(ValueError, match=pattern):
        Period(**fields)


# --- iid folds ---------------------------------------------------------------------------


def test_kfold_periods() -> None:
    periods = kfold_periods(4, 9)
    assert periods == [Period.kfold(i, 4, 9) for i in range(4)]
    for count in (1, 0, 2.0, True):
        with pytest.raises(ValueError, match=r"count=.*int >= 2"):
            kfold_periods(count, 0)


def test_repeated_kfold_periods_train_on_the_default_share_whatever_the_count() -> None:
    periods = repeated_kfold_periods(7, 3, folds=5)
    assert periods[:5] == [Period.kfold(i, 5, 3) for i in range(5)]
    assert periods[5:] == [Period.kfold(0, 5, 4), Period.kfold(1, 5, 4)]
    assert repeated_kfold_periods(2, 3, folds=5) == periods[:2]
    _, labels = load_digits()
    trains = [len(fold_rows(p, len(labels), strata=labels)[0]) for p in periods]
    assert min(trains) >= len(labels) * 4 // 5 - 1  # never the 67% of a 3-fold split
    for count, folds in ((0, 5), (True, 5), (2, 1)):
        with pytest.raises(ValueError, match="invalid"):
            repeated_kfold_periods(count, 0, folds)


def test_folds_are_disjoint_and_cover_all_rows() -> None:
    _, labels = load_digits()
    validation = []
    for period in kfold_periods(5, 3):
        train, val = fold_rows(period, len(labels), strata=labels)
        assert np.intersect1d(train, val).size == 0
        assert len(train) + len(val) == len(labels)
        validation.append(val)
    assert np.array_equal(np.sort(np.concatenate(validation)), np.arange(len(labels)))


def test_folds_are_balanced_and_stratified() -> None:
    _, labels = load_digits()
    assignment = fold_assignment(labels, 5, 0)
    sizes = np.bincount(assignment)
    assert sizes.max() - sizes.min() <= 1
    for label in range(10):
        per_fold = np.bincount(assignment[labels == label], minlength=5)
        assert per_fold.max() - per_fold.min() <= 1


def test_folds_are_seeded() -> None:
    _, labels = load_digits()
    assert np.array_equal(fold_assignment(labels, 5, 1), fold_assignment(labels, 5, 1))
    assert not np.array_equal(fold_assignment(labels, 5, 1), fold_assignment(labels, 5, 2))


def test_unstratified_folds() -> None:
    train, val = fold_rows(Period.kfold(0, 3, 0), 10)
    assert len(val) in (3, 4) and len(train) + len(val) == 10


def test_fold_rows_rejects_bad_inputs() -> None:
    with pytest.raises(ValueError, match=r"period '2000-01-01..2001-01-01'.*fold period"):
        fold_rows(Period.date_range(D(2000, 1, 1), D(2001, 1, 1)), 10)
    with pytest.raises(ValueError, match=r"folds=5 exceeds the 3 rows"):
        fold_rows(Period.kfold(0, 5, 0), 3)
    with pytest.raises(ValueError, match=r"strata has shape \(4,\)"):
        fold_rows(Period.kfold(0, 2, 0), 3, strata=np.zeros(4))


def test_digits_task_periods() -> None:
    task = DigitsMLPTask()
    periods = task.periods(5, 4)
    assert periods == kfold_periods(5, 4) and task.periods(3, 4) == periods[:3]
    sizes = [len(task.data(p).val_y) for p in periods]
    assert sum(sizes) == 1797 and max(sizes) - min(sizes) <= 1
    assert task.default_period() == Period.kfold(0, 5, 0)
    with pytest.raises(ValueError, match=r"fold period"):
        task.data(Period.date_range(D(2000, 1, 1), D(2001, 1, 1)))


# --- time-series periods -----------------------------------------------------------------


def _validation_span(task: Co2LSTMTask, period: Period) -> tuple[datetime.date, datetime.date]:
    dates = [d.item() for d in task.series.dates]
    after = [d for d in dates if d > period.end]
    return after[0], after[task.validation_weeks - 1]


def test_co2_periods_lie_inside_the_span(co2: Co2LSTMTask) -> None:
    first, last = co2.describe().span
    for period in co2.periods(8, 0):
        assert period.kind is PeriodKind.DATE_RANGE
        assert first <= period.start <= period.end
        assert period.end - period.start == (co2.train_weeks - 1) * WEEK
        val_start, val_end = _validation_span(co2, period)
        assert val_start == period.end + WEEK
        assert val_end <= last


def test_co2_validation_spans_do_not_overlap(co2: Co2LSTMTask) -> None:
    for seed in range(5):
        spans = sorted(_validation_span(co2, p) for p in co2.periods(16, seed))
        assert all(a[1] < b[0] for a, b in zip(spans, spans[1:], strict=False))
        assert len(set(co2.periods(16, seed))) == 16


def test_co2_periods_are_seeded(co2: Co2LSTMTask) -> None:
    assert co2.periods(4, 3) == co2.periods(4, 3)
    assert co2.periods(4, 3) != co2.periods(4, 4)
    assert co2.periods(3, 0) == sorted(co2.periods(3, 0), key=lambda p: p.start)


@pytest.mark.parametrize("count", [0, 17, 2.5])
def test_co2_periods_count_is_checked(co2: Co2LSTMTask, count: object) -> None:
    with pytest.raises(ValueError, match=rf"count={count}.*\[1, 16\].*1958-03-29..2001-12-29"):
        co2.periods(count, 0)


def test_co2_default_period_ends_before_the_last_validation_weeks(co2: Co2LSTMTask) -> None:
    period = co2.default_period()
    assert period == Period.date_range(D(1990, 1, 20), D(2000, 1, 1))
    assert _validation_span(co2, period) == (D(2000, 1, 8), D(2001, 12, 29))


def test_co2_period_from_dates(co2: Co2LSTMTask) -> None:
    period = co2.period("1960-01-01", D(1970, 1, 1))
    assert period == Period.date_range(D(1960, 1, 1), D(1970, 1, 1))
    latest = co2.period(D(1990, 1, 1), D(2000, 1, 7))
    assert latest.end == D(2000, 1, 7)


@pytest.mark.parametrize(
    ("start", "end", "pattern"),
    [
        ("1950-01-01", "1960-01-01", r"1950-01-01..1960-01-01 .* starts before the data"),
        ("1990-01-01", "2000-01-08", r"2000-01-08 .* leaves 103 of 104 validation weeks"),
        ("1990-01-01", "2003-01-01", r"leaves 0 of 104"),
        ("1990-01-01", "1990-06-01", r"holds only 21 weeks"),
        ("1991-01-01", "1990-01-01", r"end=.*on or after start"),
        ("1990-02-30", "1991-01-01", r"start='1990-02-30'"),
    ],
)
def test_co2_bad_date_ranges(co2: Co2LSTMTask, start: str, end: str, pattern: str) -> None:
    with pytest.raises(ValueError, match=pattern) as error:
        co2.period(start, end)
    if "on or after" not in pattern and "1990-02-30" not in start:
        message = str(error.value)
        assert "1958-03-29..2001-12-29" in message and "end <= 2000-01-07" in message


def test_co2_rejects_fold_periods(co2: Co2LSTMTask) -> None:
    with pytest.raises(ValueError, match=r"'fold 0/5 \(seed 0\)'.*allowed: a date range"):
        co2.data(Period.kfold(0, 5, 0))


# --- a period says what it validates on -----------------------------------------------------


def test_a_date_range_may_name_its_validation_range(co2: Co2LSTMTask) -> None:
    default = co2.default_period()
    start = default.end + datetime.timedelta(days=1)
    six_months = Period.date_range(
        default.start, default.end, start, start + datetime.timedelta(weeks=26) - WEEK / 7
    )
    assert six_months.name.endswith(f"validate {start}..{six_months.validation_end}")
    assert Period.from_json_dict(json.loads(json.dumps(six_months.to_json_dict()))) == six_months
    data, usual = co2.data(six_months), co2.data(default)
    assert torch_equal(data.train_x, usual.train_x)  # the same training range
    assert len(data.val_y) == 26 - co2.horizon_weeks + 1  # every 4-week stretch of 26 weeks
    assert len(usual.val_y) == co2.validation_weeks - co2.horizon_weeks + 1


@pytest.mark.parametrize(
    ("validation", "message"),
    [
        ((datetime.date(1995, 1, 1), None), "both or neither"),
        ((datetime.date(1994, 1, 1), datetime.date(1995, 6, 1)), "a date after end"),
        ((datetime.date(1996, 1, 1), datetime.date(1995, 12, 1)), "on or after validation_start"),
    ],
)
def test_a_validation_range_must_follow_training(validation: tuple, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Period.date_range(datetime.date(1990, 1, 1), datetime.date(1994, 12, 31), *validation)


def test_a_fold_validates_on_its_fold_only() -> None:
    with pytest.raises(ValueError, match="a fold validates on its fold"):
        Period("f", fold=0, folds=5, seed=0, validation_start=datetime.date(2000, 1, 1))


def test_a_validation_range_too_short_to_forecast_is_refused(co2: Co2LSTMTask) -> None:
    default = co2.default_period()
    late = default.end + datetime.timedelta(days=1)
    with pytest.raises(
        ValueError, match="its validation range holds 0 weeks; allowed: at least horizon_weeks=4"
    ):
        co2.data(Period.date_range(default.start, default.end, late, late))


def torch_equal(a, b) -> bool:  # noqa: ANN001
    return bool((a == b).all())
