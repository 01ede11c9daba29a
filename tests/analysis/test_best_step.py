from __future__ import annotations

import numpy as np
from optuna.trial import TrialState
from optuna.trial import create_trial
import pytest

from autotune.analysis import BestStepAnalysis
from autotune.analysis import StepRecommendation
from autotune.analysis import analyze_best_steps
from autotune.analysis import best_step_records
from autotune.analysis import shared_best_step
from autotune.spec import Direction

BUDGET = 1000
INTERVAL = 10


def best_step(rng: np.random.Generator, loss_at: object) -> tuple[int, int]:
    """(best eval step, budget) of a noisy synthetic validation curve; earliest tie wins."""
    steps = np.arange(INTERVAL, BUDGET + 1, INTERVAL)
    values = loss_at(steps / BUDGET) + rng.normal(0.0, 0.002, len(steps))  # type: ignore[operator]
    return int(steps[np.argmin(values)]), BUDGET


def overfitting(optimum: float) -> object:
    """A U-shaped validation loss with its minimum at fraction `optimum` of the budget."""
    return lambda x: 0.3 + (x - optimum) ** 2


def converging(rate: float) -> object:
    """A validation loss still falling at the end of the budget."""
    return lambda x: np.exp(-rate * x)


def early_records(seed: int, count: int = 12) -> list[tuple[int, int]]:
    rng = np.random.default_rng(seed)
    return [best_step(rng, overfitting(rng.uniform(0.0, 0.06))) for _ in range(count)]


def test_early_peaking_curves_recommend_fewer_steps() -> None:
    records = early_records(seed=0)
    analysis = analyze_best_steps(records, eval_interval=INTERVAL)
    assert analysis.recommendation is StepRecommendation.FEWER
    assert analysis.share_in_first_10pct is not None and analysis.share_in_first_10pct >= 0.8
    assert analysis.share_in_last_25pct == 0.0
    p90 = np.percentile([b for b, _ in records], 90)
    suggested = analysis.suggested_max_train_steps
    assert suggested is not None and suggested % INTERVAL == 0
    assert 2 * p90 <= suggested < 2 * p90 + INTERVAL and suggested < BUDGET // 5
    assert "too high" in analysis.reason and str(suggested) in analysis.reason


def test_late_peaking_curves_recommend_more_steps() -> None:
    rng = np.random.default_rng(1)
    records = [best_step(rng, converging(rng.uniform(2.0, 5.0))) for _ in range(10)]
    analysis = analyze_best_steps(records, eval_interval=INTERVAL)
    assert analysis.recommendation is StepRecommendation.MORE
    assert analysis.share_in_last_25pct is not None and analysis.share_in_last_25pct >= 0.5
    assert analysis.suggested_max_train_steps == 2 * BUDGET
    assert "decay schedule" in analysis.reason and "re-tune" in analysis.reason
    assert f"longer than {BUDGET} steps may help" in analysis.reason
    assert "max_train_steps" not in analysis.reason  # the trials' budget, maybe a round's


def test_mixed_curves_keep_the_budget() -> None:
    rng = np.random.default_rng(2)
    records = [best_step(rng, overfitting(rng.uniform(0.0, 1.0))) for _ in range(20)]
    analysis = analyze_best_steps(records, eval_interval=INTERVAL)
    assert analysis.share_in_first_10pct is not None and analysis.share_in_first_10pct < 0.8
    assert analysis.share_in_last_25pct is not None and analysis.share_in_last_25pct < 0.5
    assert analysis.recommendation is StepRecommendation.KEEP
    assert analysis.suggested_max_train_steps is None
    assert analysis.fractions == tuple(b / BUDGET for b, _ in records)
    assert analysis.median_fraction == pytest.approx(np.median(analysis.fractions))
    # the trials' budget, which may be a shortened round's, not the spec's max_train_steps
    assert analysis.reason.endswith(f"the {BUDGET}-step budget fits"), analysis.reason


def test_too_few_trials() -> None:
    records = early_records(seed=3, count=4)
    analysis = analyze_best_steps(records, eval_interval=INTERVAL)
    assert analysis.recommendation is StepRecommendation.INSUFFICIENT_DATA
    assert analysis.suggested_max_train_steps is None
    assert len(analysis.fractions) == 4 and analysis.share_in_first_10pct == 1.0
    assert "only 4 COMPLETE trials; need at least 5" in analysis.reason
    fewer = analyze_best_steps(records, eval_interval=INTERVAL, min_trials=4)
    assert fewer.recommendation is StepRecommendation.FEWER


def test_no_trials() -> None:
    assert analyze_best_steps([], eval_interval=INTERVAL) == BestStepAnalysis(
        (),
        None,
        None,
        None,
        StepRecommendation.INSUFFICIENT_DATA,
        None,
        "no COMPLETE trials with a best step; need at least 5",
    )


def test_exactly_10_percent_is_in_the_first_10_percent() -> None:
    analysis = analyze_best_steps([(30, 300)] * 5, eval_interval=30)
    assert analysis.share_in_first_10pct == 1.0
    assert analysis.recommendation is StepRecommendation.FEWER
    assert analysis.suggested_max_train_steps == 60
    just_after = analyze_best_steps([(31, 300)] * 5, eval_interval=30)
    assert just_after.share_in_first_10pct == 0.0
    assert just_after.recommendation is StepRecommendation.KEEP


def test_a_best_at_a_coarse_grids_first_evaluation_counts_as_early() -> None:
    """Every run of a 200-step round peaked at step 40, its first evaluation: "0% in the
    first 10%: the 200-step budget fits" was the grid's blindness, not a fit."""
    analysis = analyze_best_steps([(40, 200)] * 13, eval_interval=40)
    assert analysis.share_in_first_10pct == 1.0
    assert analysis.recommendation is StepRecommendation.FEWER
    assert analysis.suggested_max_train_steps == 80
    assert "or at the first evaluation, the earliest the grid sees" in analysis.reason
    fine = analyze_best_steps([(40, 200)] * 13, eval_interval=10)  # the grid saw 10-30
    assert fine.recommendation is StepRecommendation.KEEP
    assert "first evaluation" not in fine.reason


def test_exactly_75_percent_is_in_the_last_25_percent() -> None:
    analysis = analyze_best_steps([(225, 300)] * 5, eval_interval=25)
    assert analysis.share_in_last_25pct == 1.0
    assert analysis.recommendation is StepRecommendation.MORE
    assert analysis.suggested_max_train_steps == 600
    just_before = analyze_best_steps([(224, 300)] * 5, eval_interval=25)
    assert just_before.share_in_last_25pct == 0.0
    assert just_before.recommendation is StepRecommendation.KEEP


def test_share_thresholds_are_inclusive() -> None:
    four_of_five_early = [(10, 1000)] * 4 + [(500, 1000)]
    assert analyze_best_steps(four_of_five_early, 10).recommendation is StepRecommendation.FEWER
    three_of_five_early = [(10, 1000)] * 3 + [(500, 1000)] * 2
    assert analyze_best_steps(three_of_five_early, 10).recommendation is StepRecommendation.KEEP
    half_late = [(900, 1000)] * 3 + [(500, 1000)] * 3
    assert analyze_best_steps(half_late, 10).recommendation is StepRecommendation.MORE


def test_fewer_suggestion_uses_the_90th_percentile() -> None:
    # sorted best steps: nine at 10, one at 50 -> 90th percentile 14 -> 2x = 28 -> 30
    analysis = analyze_best_steps([(10, 1000)] * 9 + [(50, 1000)], eval_interval=10)
    assert analysis.suggested_max_train_steps == 30


def test_fewer_whose_suggestion_does_not_shrink_the_budget_keeps_it() -> None:
    analysis = analyze_best_steps([(10, 100)] * 8 + [(100, 100)] * 2, eval_interval=10)
    assert analysis.share_in_first_10pct == 0.8
    assert analysis.recommendation is StepRecommendation.KEEP
    assert analysis.suggested_max_train_steps is None
    assert "does not fit in fewer than 100 steps" in analysis.reason
    assert analysis.reason.endswith("the 100-step budget, which fits")  # it said no conclusion


def test_more_rounds_up_to_the_eval_interval() -> None:
    analysis = analyze_best_steps([(290, 290)] * 5, eval_interval=100)
    assert analysis.suggested_max_train_steps == 600


@pytest.mark.parametrize("record", [(11, 10), (-1, 10), (0, 0), (1.5, 10), (True, 10)])
def test_invalid_records(record: tuple[int, int]) -> None:
    with pytest.raises(ValueError, match=r"best-step record .* is invalid"):
        analyze_best_steps([record], eval_interval=10)


@pytest.mark.parametrize(("name", "value"), [("eval_interval", 0), ("min_trials", 0)])
def test_invalid_settings(name: str, value: int) -> None:
    kwargs = {"eval_interval": 10, name: value}
    with pytest.raises(ValueError, match=rf"{name}=0 is invalid; allowed: an int >= 1"):
        analyze_best_steps([(10, 100)], **kwargs)


def test_best_step_records_reads_complete_trials() -> None:
    trials = [
        create_trial(value=0.1, user_attrs={"best_step": 30, "steps_done": 300}),
        create_trial(state=TrialState.PRUNED, user_attrs={"best_step": 30, "steps_done": 90}),
        create_trial(value=0.2, user_attrs={"best_step": 270}),
        create_trial(value=0.3, user_attrs={"best_step": True, "steps_done": 300}),
        create_trial(value=0.4, user_attrs={"best_step": 300, "steps_done": 300}),
        create_trial(state=TrialState.FAIL),
    ]
    records = best_step_records(trials)
    assert records == [(30, 300), (300, 300)]
    analysis = analyze_best_steps(records, eval_interval=30, min_trials=2)
    assert analysis.fractions == (0.1, 1.0)


def test_shared_best_step_is_where_the_mean_over_runs_is_best() -> None:
    # each run alone peaks elsewhere (60, 90); the mean is best at 90
    early = {30: 0.50, 60: 0.30, 90: 0.32, 120: 0.40}
    late = {30: 0.60, 60: 0.45, 90: 0.35, 120: 0.38}
    assert shared_best_step([early, late], Direction.MINIMIZE) == 90
    assert shared_best_step([early], Direction.MINIMIZE) == 60


def test_shared_best_step_maximizes_counts_only_shared_steps_and_ties_go_early() -> None:
    accuracy = {10: 0.8, 20: 0.9, 30: 0.9}
    shorter = {10: 0.7, 20: 0.9}  # stopped at 20: step 30 is not shared
    assert shared_best_step([accuracy, shorter], Direction.MAXIMIZE) == 20
    assert shared_best_step([{10: 1.0, 20: 1.0}], Direction.MINIMIZE) == 10


def test_shared_best_step_never_picks_a_diverged_step_and_needs_a_shared_step() -> None:
    diverged = {10: 0.5, 20: float("nan")}
    assert shared_best_step([{10: 0.9, 20: 0.1}, diverged], Direction.MINIMIZE) == 10
    assert shared_best_step([{10: 0.1}, {20: 0.1}], Direction.MINIMIZE) is None
    assert shared_best_step([], Direction.MINIMIZE) is None
