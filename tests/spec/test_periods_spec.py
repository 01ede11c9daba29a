"""The spec's ``periods``: which dated period tunes, which re-evaluate; checked at load."""

from __future__ import annotations

import datetime
from typing import Any

import pytest

from autotune.spec import Direction
from autotune.spec import SpecError
from autotune.spec import StudySpec
from autotune.spec import TaskFacts
from autotune.spec import study_spec_from_dict
from autotune.spec import task_problems

SPACE = {
    "name": "toy",
    "groups": [
        {
            "name": "learning_rate",
            "params": {"learning_rate": {"type": "float", "low": 0.001, "high": 0.1, "log": True}},
        }
    ],
}
TUNING = {"train": ["1960-01-01", "2002-12-31"], "validation": ["2003-01-01", "2004-06-30"]}


def heldout(year: int) -> dict[str, Any]:
    end = f"{year - 1}-12-31"
    return {"train": ["1960-01-01", end], "validation": [f"{year}-01-01", f"{year}-03-31"]}


def spec(periods: Any, **keys: Any) -> StudySpec:
    data = {
        "name": "toy",
        "task": "toy",
        "search_space": SPACE,
        "metric": {"name": "val_mse", "direction": "minimize"},
        "max_train_steps": 100,
        "eval_interval": 10,
        "batch_size": 16,
        "trials": 4,
        "periods": periods,
        **keys,
    }
    return study_spec_from_dict(data, "toy.yaml")


def problems(periods: Any, **keys: Any) -> list[str]:
    with pytest.raises(SpecError) as error:
        spec(periods, **keys)
    return list(error.value.problems)


def facts(span: tuple[datetime.date, datetime.date] | None) -> TaskFacts:
    metrics = {"val_mse": Direction.MINIMIZE}
    return TaskFacts("toy", metrics, "val_mse", frozenset({"learning_rate"}), False, span=span)


def test_a_tuning_period_and_heldout_periods_of_other_lengths() -> None:
    loaded = spec({"tuning": TUNING, "heldout": [heldout(2006), heldout(2008)]})
    assert loaded.periods is not None and loaded.periods.tuning is not None
    assert loaded.periods.tuning.validation == (
        datetime.date(2003, 1, 1),
        datetime.date(2004, 6, 30),
    )
    assert [p.name for p in loaded.periods.heldout or ()] == [
        "1960-01-01..2005-12-31 validate 2006-01-01..2006-03-31",
        "1960-01-01..2007-12-31 validate 2008-01-01..2008-03-31",
    ]
    assert loaded.reevaluation.periods == 2  # one run per held-out period and finalist


def test_periods_survive_the_stored_json_form_and_leave_old_hashes_alone() -> None:
    loaded = spec({"tuning": TUNING, "heldout": [heldout(2006)]})
    stored = StudySpec.model_validate(loaded.to_json_dict())
    assert stored == loaded and stored.spec_hash == loaded.spec_hash
    without = spec(None)
    assert "periods" not in without.to_json_dict()  # campaigns stored before keep their hash


@pytest.mark.parametrize(
    ("period", "message"),
    [
        (
            {"train": ["2000-01-01", "1999-01-01"], "validation": ["2001-01-01", "2001-02-01"]},
            "periods.tuning: train ends (1999-01-01) before it starts (2000-01-01)",
        ),
        (
            {"train": ["2000-01-01", "2001-01-01"], "validation": ["2001-01-01", "2001-02-01"]},
            "periods.tuning: validation starts 2001-01-01, on or before train's end (2001-01-01); "
            "allowed: a validation range after the training range",
        ),
        (
            {"train": ["2000-01-01", "2001-01-01"], "validation": ["2001-03-01", "2001-02-01"]},
            "periods.tuning: validation ends (2001-02-01) before it starts (2001-03-01)",
        ),
        (
            {"train": [1, 2], "validation": ["2001-03-01", "2001-04-01"]},
            "periods.tuning.train: allowed: [start, end], two dates YYYY-MM-DD, got [1, 2]",
        ),
        (
            {"train": ["2000-01-01"], "validation": ["2001-03-01", "2001-04-01"]},
            "periods.tuning.train: allowed: [start, end], two dates YYYY-MM-DD, got "
            "['2000-01-01']",
        ),
        (
            {"train": ["2000-01-01", "2000-02-30"], "validation": ["2001-03-01", "2001-04-01"]},
            "periods.tuning.train: allowed: [start, end], two dates YYYY-MM-DD, got "
            "['2000-01-01', '2000-02-30']",
        ),
        ({"train": ["2000-01-01", "2001-01-01"]}, "periods.tuning.validation: required key"),
        (
            {"train": ["2000-01-01", "2001-01-01"], "validate": ["2001-03-01", "2001-04-01"]},
            "periods.tuning: unknown key(s) validate; allowed keys: train, validation",
        ),
    ],
)
def test_a_bad_period_is_named_with_what_is_allowed(period: Any, message: str) -> None:
    assert any(p.startswith(message) for p in problems({"tuning": period})), problems(
        {"tuning": period}
    )


def test_heldout_problems_are_reported_together() -> None:
    overlapping = {
        "train": ["1960-01-01", "2003-12-31"],
        "validation": ["2004-01-01", "2004-03-31"],
    }
    found = problems(
        {"tuning": TUNING, "heldout": [heldout(2006), heldout(2006), overlapping]},
        reevaluation={"periods": 12, "period_seed": 3},
    )
    assert found == [
        "reevaluation.periods (12) must equal the 3 periods.heldout (or be left out): the "
        "re-evaluation trains on those",
        "reevaluation.period_seed picks the task's periods; with periods.heldout the "
        "re-evaluation trains on those: leave period_seed out",
        "periods.heldout[1]: the same period as [0]",
        "periods.heldout[2].validation 2004-01-01..2004-03-31 overlaps periods.tuning.validation "
        "2003-01-01..2004-06-30; allowed: held-out validation ranges outside the tuning one",
    ]


def test_heldout_periods_need_the_reevaluation() -> None:
    assert problems({"heldout": [heldout(2006)]}, reevaluation={"enabled": False}) == [
        "periods.heldout: the re-evaluation trains on them; set reevaluation.enabled"
    ]
    assert problems({"heldout": []}) == [
        "periods.heldout: Tuple should have at least 1 item after validation, not 0"
    ]


def test_periods_are_checked_against_the_task_span() -> None:
    span = (datetime.date(1950, 1, 1), datetime.date(2010, 12, 31))
    late = {"train": ["1960-01-01", "2009-12-31"], "validation": ["2010-07-01", "2011-06-30"]}
    loaded = spec({"tuning": TUNING, "heldout": [heldout(2006), late]})
    assert list(task_problems(loaded, facts(span))) == [
        "periods.heldout[1].validation: 2010-07-01..2011-06-30 reaches outside the data of task "
        "'toy'; allowed: dates in 1950-01-01..2010-12-31"
    ]
    assert list(task_problems(spec({"tuning": TUNING}), facts(None))) == [
        "periods: task 'toy' has no dated data (its periods are folds of iid rows, chosen by "
        "the task); allowed: leave periods out"
    ]
    assert list(task_problems(spec(None), facts(None))) == []
