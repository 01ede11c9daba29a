"""benchmarks/stop_rules.py's rules and scoring on synthetic curves (milliseconds): the
current rule scores 1 against itself, each rule picks the stop it says it picks."""

from __future__ import annotations

import sys

from tests.conftest import REPO_ROOT

sys.path.insert(0, str(REPO_ROOT / "benchmarks"))
import stop_rules  # noqa: E402


def _record(reevaluation, heldout):  # noqa: ANN001, ANN202
    return {"task": "t", "reevaluation": reevaluation, "heldout": heldout}


# Two periods: both best at step 20 (a dip), 30 within noise of it, 10 clearly worse.
REEVALUATION = [{10: 1.0, 20: 0.50, 30: 0.53}, {10: 1.1, 20: 0.60, 30: 0.59}]
HELDOUT = [{10: 1.0, 20: 0.70, 30: 0.56}, {10: 1.0, 20: 0.70, 30: 0.56}]


def test_each_rule_picks_the_stop_it_names() -> None:
    runs = REEVALUATION
    assert stop_rules.argmin_mean(runs, 30) == 20
    assert stop_rules.end(runs, 30) == 30
    assert stop_rules.RULES["latest_within_1se"](runs, 30) == 30
    assert stop_rules.RULES["earliest_within_1se"](runs, 30) == 20
    assert stop_rules.median_of_argmins(runs, 30) in (20, 30)


def test_scores_are_held_out_losses_relative_to_the_current_rule() -> None:
    figures = stop_rules.evaluate([_record(REEVALUATION, HELDOUT)], periods=2)
    assert figures["argmin_mean"]["mean_ratio"] == 1.0
    assert abs(figures["end"]["mean_ratio"] - 0.56 / 0.70) < 1e-9
    assert figures["end"]["better"] == 1
    assert abs(figures["oracle_gap_median"] - 0.70 / 0.56) < 1e-9


def test_choosing_among_finalists_scores_each_rule_against_the_current_one() -> None:
    better_late = [{10: 0.9, 20: 0.40, 30: 0.45}, {10: 0.9, 20: 0.42, 30: 0.44}]
    worse = [{10: 1.0, 20: 0.80, 30: 0.90}, {10: 1.1, 20: 0.85, 30: 0.90}]
    records = [
        _record(REEVALUATION, HELDOUT),
        _record(better_late, HELDOUT),
        _record(worse, [{10: 2.0, 20: 2.0, 30: 2.0}] * 2),
    ]
    figures = stop_rules.selection(records, periods=2)
    assert figures["mean_at_stop"] == 1.0
    assert figures["oracle"] <= 1.0 <= figures["random_member"]
    assert set(figures) >= {"leave_one_period_out", "median_at_stop", "mean_of_last_third"}


def test_a_design_picks_the_best_mean_at_its_stop_and_scores_against_the_current_one() -> None:
    steady = [{10: 0.5, 20: 0.4, 30: 0.45}, {10: 0.5, 20: 0.42, 30: 0.44}]
    lucky = [{10: 0.9, 20: 0.3, 30: 0.9}, {10: 0.9, 20: 0.6, 30: 0.9}]  # one good period
    assert stop_rules._pick([steady, lucky], [0, 1]) == (0, 20)
    assert stop_rules._pick([steady, lucky[:1]], [0, 1]) == (1, 20)

    def four(curve):  # noqa: ANN001, ANN202
        return [curve] * (stop_rules.DESIGN_PERIODS + 1)

    records = [
        _record(four({10: 1.0 + i / 10, 20: 0.5 + i / 20}), four({10: 1.0, 20: 0.5 + i / 20}))
        for i in range(6)
    ]
    figures = stop_rules.designs(records)
    assert figures["current"] == 1.0 and set(figures) == set(stop_rules.DESIGNS)
    # Every curve agrees with the held-out one: every design finds the best configuration.
    assert all(abs(ratio - 1.0) < 1e-9 for ratio in figures.values())


def test_early_stopping_ends_a_curve_after_patience_evaluations_without_a_new_best() -> None:
    curve = {10: 1.0, 20: 0.8, 30: 0.9, 40: 0.85, 50: 0.7}
    assert stop_rules.early_stopped(curve, 0) == curve  # off
    assert list(stop_rules.early_stopped(curve, 2)) == [10, 20, 30, 40]
    assert stop_rules.early_stopped(curve, 3) == curve  # 50 is a new best in time
    # at a step only some runs reached, the mean is over those that did
    assert stop_rules._mean_stop([{10: 1.0}, {10: 2.0, 20: 0.1}], [10, 20]) == (0.1, 20)
