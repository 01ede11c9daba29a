"""The recommendation's stop comes from the re-evaluation's runs, not one tuning run."""

from __future__ import annotations

import dataclasses
import datetime

from optuna.trial import FrozenTrial
from optuna.trial import TrialState
from optuna.trial import create_trial
import pytest

from autotune.campaign import TUNING_PERIOD
from autotune.campaign import CampaignSnapshot
from autotune.campaign import Stage
from autotune.campaign import StudyFacts
from autotune.campaign import StudyPlan
from autotune.campaign import StudySnapshot
from autotune.campaign import TaskDefaults
from autotune.campaign import reevaluation_results
from autotune.campaign._reevaluation import period_names
from autotune.campaign._reevaluation import reevaluation_stops
from autotune.campaign._reevaluation import reevaluation_study
from autotune.campaign._reevaluation import tuning_runs
from autotune.campaign._reevaluation import unfinished_runs_caution
from autotune.campaign._trial_attrs import ATTR_ERROR_TRACEBACK
from autotune.campaign._trial_attrs import ATTR_FINALIST
from autotune.campaign._trial_attrs import ATTR_PARENT_STUDY
from autotune.campaign._trial_attrs import ATTR_PARENT_TRIAL
from autotune.campaign._trial_attrs import ATTR_PERIOD_INDEX
from autotune.campaign._trial_attrs import ATTR_PERIOD_NAME
from autotune.campaign._trial_attrs import ATTR_PRUNED_REASON
from autotune.campaign._trial_attrs import ATTR_REPLICATE
from autotune.campaign._trial_attrs import ATTR_RESUMED_FROM
from autotune.campaign._trial_attrs import ATTR_SEED
from autotune.campaign._trial_attrs import ATTR_TRAIN_FRACTION
from autotune.spec import Direction
from tests.campaign.replay import spec_of


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


def test_a_finalists_tuning_run_counts_as_one_more_period_for_its_stop_and_mean() -> None:
    trials = [
        run("a", 0, {30: 0.40, 60: 0.20, 90: 0.50}, 0.50),
        run("a", 1, {30: 0.25, 60: 0.30, 90: 0.60}, 0.60),
    ]
    tuning = {"a": {30: 0.10, 60: 0.50, 90: 0.50}}  # its own run peaked early
    assert reevaluation_stops(trials, Direction.MINIMIZE, tuning) == {"a": 30}
    results = reevaluation_results(trials, Direction.MINIMIZE, tuning)
    assert results["a"] == {("0", 0): 0.40, ("1", 0): 0.25, (TUNING_PERIOD, 0): 0.10}


def _tuned(number: int, curve: dict[int, float], **attrs: object) -> FrozenTrial:
    trial = create_trial(
        state=TrialState.COMPLETE, value=min(curve.values()), intermediate_values=curve,
        user_attrs=dict(attrs),
    )  # fmt: skip
    trial.number = number
    return trial


def _snapshot_of(round_one: list[FrozenTrial], round_two: list[FrozenTrial]) -> CampaignSnapshot:
    spec = spec_of(boundary={"widen": False})
    plan = StudyPlan(Stage.JOINT, 1, 4, 40, 40)
    studies = (
        StudySnapshot("c/joint/1", StudyFacts(plan), tuple(round_one)),
        StudySnapshot("c/joint/2", StudyFacts(plan), tuple(round_two)),
    )
    return CampaignSnapshot(spec, TaskDefaults({}), studies, datetime.date(2026, 12, 6))


def test_a_resumed_tuning_run_takes_its_parents_evaluations_up_to_where_it_resumed() -> None:
    interval = spec_of().eval_interval
    steps = [interval * k for k in range(1, 5)]
    parent = _tuned(3, {steps[0]: 0.9, steps[1]: 0.8, steps[2]: 0.1})  # steps[2]: not its run
    child = _tuned(
        0, {steps[2]: 0.7, steps[3]: 0.6},
        **{ATTR_RESUMED_FROM: steps[1], ATTR_PARENT_STUDY: "c/joint/1", ATTR_PARENT_TRIAL: 3},
    )  # fmt: skip
    fresh = _tuned(1, {s: 0.5 for s in steps})
    snapshot = _snapshot_of([parent], [child, fresh])
    (resumed, whole) = tuning_runs(snapshot, [child, fresh])
    assert resumed == ((steps[0], 0.9), (steps[1], 0.8), (steps[2], 0.7), (steps[3], 0.6))
    assert whole == tuple((s, 0.5) for s in steps)


@pytest.mark.parametrize(
    "odd",
    [
        {ATTR_TRAIN_FRACTION: 0.25},  # fast mode: a window of the rows, not the recipe's run
        {ATTR_RESUMED_FROM: 20, ATTR_PARENT_STUDY: "c/joint/1", ATTR_PARENT_TRIAL: 9},  # unread
    ],
)
def test_no_finalist_counts_a_tuning_run_when_one_is_not_the_recipes(odd: dict) -> None:
    interval = spec_of().eval_interval
    curve = {interval * k: 0.5 for k in range(1, 5)}
    finalists = [_tuned(0, curve), _tuned(1, curve, **odd)]
    assert tuning_runs(_snapshot_of([], finalists), finalists) == [(), ()]


def test_a_tuning_run_with_a_gap_does_not_count() -> None:
    interval = spec_of().eval_interval
    gap = _tuned(0, {interval: 0.5, 3 * interval: 0.4, 4 * interval: 0.3})
    assert tuning_runs(_snapshot_of([], [gap]), [gap]) == [()]


@pytest.mark.parametrize(("odd", "queued"), [({}, 1), ({ATTR_TRAIN_FRACTION: 0.25}, 0)])
def test_the_defaults_run_on_the_tuning_period_where_the_finalists_runs_count(
    odd: dict, queued: int
) -> None:
    """Candidates are ranked by their means, so each must be over the same periods: the
    finalists' own tuning runs count as one, and the defaults' baseline ran shorter."""
    interval = spec_of().eval_interval
    curve = {interval * k: 0.5 for k in range(1, 5)}
    finalists = [_tuned(n, curve, **odd) for n in range(3)]
    snapshot = _snapshot_of([], finalists)
    run = _tuned(0, curve, **{ATTR_SEED: 4242})
    baseline = StudySnapshot(
        "c/baseline/1", StudyFacts(StudyPlan(Stage.BASELINE, 1, 1, 10, 40)), (run,)
    )
    snapshot = dataclasses.replace(snapshot, studies=(baseline, *snapshot.studies))
    new = reevaluation_study(snapshot)
    (design,) = new.facts
    defaults = design.finalists[-1].label
    assert defaults == "c/baseline/1 #0" and len(design.finalists) == 4
    on_tuning = [q for q in new.queued if q.user_attrs[ATTR_PERIOD_INDEX] == TUNING_PERIOD]
    assert [q.user_attrs[ATTR_FINALIST] for q in on_tuning] == [defaults] * queued
    # the baseline run's seed, the recipe's: what `autotune train` of the defaults retrains
    assert design.finalists[-1].recipe.seed == 4242
    assert [q.user_attrs[ATTR_SEED] for q in on_tuning] == [4242] * queued
    assert len(new.queued) == 4 * design.period_count + queued
    assert new.plan.trials == len(new.queued)


def unfinished(finalist: str, period: int, state: TrialState, **attrs: str) -> FrozenTrial:
    """A re-evaluation run of ``finalist`` on ``period`` that ended ``state``."""
    own = {ATTR_FINALIST: finalist, ATTR_PERIOD_INDEX: period, ATTR_REPLICATE: 0}
    return create_trial(state=state, user_attrs={**own, **attrs})


def test_an_answer_with_runs_that_never_finished_is_cautioned() -> None:
    """A retry that finished counts; a run pruned for its non-finite loss does not."""
    reason = {ATTR_PRUNED_REASON: "non-finite loss at step 40"}
    diverged = unfinished("a", 2, TrialState.PRUNED, **reason)
    failed_then_retried = unfinished("a", 1, TrialState.FAIL)
    runs = [
        run("a", 0, {30: 0.4}, 0.4),
        run("a", 1, {30: 0.3}, 0.3),
        failed_then_retried,
        diverged,
        run("b", 2, {30: 0.5}, 0.5),
    ]
    caution = unfinished_runs_caution("a", runs)
    assert caution is not None and caution.startswith(
        "1 of its 3 re-evaluation runs did not finish (non-finite loss at step 40)"
    )
    assert unfinished_runs_caution("b", runs) is None
    assert unfinished_runs_caution("a", runs[:3]) is None  # the failure was retried
    traceback = {ATTR_ERROR_TRACEBACK: "Traceback ...\n  ...\nRuntimeError: out of memory\n"}
    failed = unfinished("b", 0, TrialState.FAIL, **traceback)
    caution = unfinished_runs_caution("b", [*runs, failed])
    assert caution is not None and "(RuntimeError: out of memory)" in caution


def test_the_tuning_period_is_named_apart_from_the_re_evaluations_periods() -> None:
    named = {ATTR_PERIOD_NAME: "fold 1/5 (seed 0)"}
    tuning = create_trial(
        state=TrialState.COMPLETE,
        value=0.5,
        user_attrs={ATTR_PERIOD_INDEX: TUNING_PERIOD, ATTR_PERIOD_NAME: "fold 1/5 (seed 7)"},
    )
    seeded = create_trial(
        state=TrialState.COMPLETE, value=0.5, user_attrs={ATTR_PERIOD_INDEX: 3, **named}
    )
    assert period_names([tuning, seeded]) == {3: "fold 1/5 (seed 0)"}
