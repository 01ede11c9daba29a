"""The recommendation's stop comes from the re-evaluation's runs, not one tuning run."""

from __future__ import annotations

from optuna.trial import FrozenTrial
from optuna.trial import TrialState
from optuna.trial import create_trial
import pytest

from autotune.campaign import reevaluation_results
from autotune.campaign._reevaluation import reevaluation_stops
from autotune.campaign._trial_attrs import ATTR_FINALIST
from autotune.campaign._trial_attrs import ATTR_PERIOD_INDEX
from autotune.campaign._trial_attrs import ATTR_REPLICATE
from autotune.spec import Direction


def run(finalist: str, period: int, curve: dict[int, float], final: float) -> FrozenTrial:
    return create_trial(
        state=TrialState.COMPLETE,
        value=final,
        intermediate_values=curve,
        user_attrs={ATTR_FINALIST: finalist, ATTR_PERIOD_INDEX: period, ATTR_REPLICATE: 0},
    )


def test_each_finalist_stops_where_its_mean_over_periods_is_best() -> None:
    trials = [
        # "a" overfits: best at 60 on average though period 1 alone peaks at 30
        run("a", 0, {30: 0.40, 60: 0.20, 90: 0.50}, 0.50),
        run("a", 1, {30: 0.25, 60: 0.30, 90: 0.60}, 0.60),
        # "b" improves to the end
        run("b", 0, {30: 0.50, 60: 0.40, 90: 0.30}, 0.30),
        run("b", 1, {30: 0.55, 60: 0.45, 90: 0.35}, 0.35),
    ]
    assert reevaluation_stops(trials, Direction.MINIMIZE) == {"a": 60, "b": 90}
    results = reevaluation_results(trials, Direction.MINIMIZE)
    # the values are the models at the stop, not where the runs ended
    assert results["a"] == {("0", 0): 0.20, ("1", 0): 0.30}
    assert results["b"] == {("0", 0): 0.30, ("1", 0): 0.35}


def test_unfinished_runs_do_not_count_and_a_run_without_a_curve_counts_at_its_value() -> None:
    failed = create_trial(state=TrialState.FAIL, user_attrs={ATTR_FINALIST: "a"})
    flat = create_trial(
        state=TrialState.COMPLETE,
        value=0.7,
        user_attrs={ATTR_FINALIST: "a", ATTR_PERIOD_INDEX: 0, ATTR_REPLICATE: 0, "steps_done": 90},
    )
    assert reevaluation_stops([failed, flat], Direction.MINIMIZE) == {"a": 90}
    assert reevaluation_results([failed, flat], Direction.MINIMIZE) == {
        "a": {("0", 0): pytest.approx(0.7)}
    }
