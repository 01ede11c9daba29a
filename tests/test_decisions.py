"""Pure decisions: when a worker may start a trial, what counts against the budget, progress."""

from __future__ import annotations

from optuna.trial import FrozenTrial
from optuna.trial import TrialState
from optuna.trial import create_trial
import pytest

from autotune.campaign import progress_of
from autotune.campaign._trial_budget import trials_that_fit
from autotune.campaign._trial_budget import unretried_failures
from autotune.spec import Direction
from autotune.worker._worker import NextStep
from autotune.worker._worker import advisory_lock_key
from autotune.worker._worker import consumes_budget
from autotune.worker._worker import next_step


def trial(state: TrialState, value: float | None = None, **user_attrs: object) -> FrozenTrial:
    if state in (TrialState.RUNNING, TrialState.WAITING):
        return create_trial(state=state, user_attrs=user_attrs)
    return create_trial(state=state, value=value, user_attrs=user_attrs)


COMPLETE = trial(TrialState.COMPLETE, 1.0)
PRUNED = trial(TrialState.PRUNED)
RUNNING = trial(TrialState.RUNNING)
WAITING = trial(TrialState.WAITING)
TRAINING_ERROR = trial(TrialState.FAIL, error="ValueError: bad activation")
STALE = trial(TrialState.FAIL)


def failed(number: int, history: tuple[int, ...] = (), **user_attrs: object) -> FrozenTrial:
    system_attrs = {"retry_history": list(history)} if history else {}
    failed = create_trial(state=TrialState.FAIL, user_attrs=user_attrs, system_attrs=system_attrs)
    failed.number = number
    return failed


def retry_of(number: int, history: tuple[int, ...] = ()) -> FrozenTrial:
    waiting = create_trial(
        state=TrialState.WAITING, system_attrs={"retry_history": [*history, number]}
    )
    waiting.number = number + 100
    return waiting


def test_failures_without_a_queued_retry_are_found() -> None:
    retried, orphan = failed(0), failed(1)
    broken = failed(2, error="ValueError: bad activation")  # training errors are not retried
    exhausted = failed(3, history=(7, 8, 9))
    trials = [retried, retry_of(0), orphan, broken, exhausted, COMPLETE, RUNNING]
    assert unretried_failures(trials, max_retry=3) == [orphan]
    assert unretried_failures(trials, max_retry=None) == [orphan, exhausted]
    second = failed(4, history=(1,))  # the retry of an orphan, itself failed and retried
    assert unretried_failures([second, retry_of(4, history=(1,))], max_retry=3) == []


def test_failed_trials_count_only_when_training_failed() -> None:
    assert consumes_budget(TRAINING_ERROR)
    assert not consumes_budget(STALE)
    assert all(consumes_budget(t) for t in (COMPLETE, PRUNED, RUNNING, WAITING))


@pytest.mark.parametrize(
    ("trials", "budget", "expected"),
    [
        ([], 3, NextStep.RUN),
        ([COMPLETE, PRUNED], 3, NextStep.RUN),
        ([COMPLETE, PRUNED, RUNNING], 3, NextStep.WAIT),
        ([COMPLETE, PRUNED, TRAINING_ERROR], 3, NextStep.DONE),
        ([COMPLETE, PRUNED, STALE], 3, NextStep.RUN),
        ([COMPLETE, PRUNED, STALE, WAITING], 3, NextStep.RUN),
        ([COMPLETE, COMPLETE, COMPLETE, WAITING], 3, NextStep.RUN),
    ],
    ids=["empty", "below", "others-running", "spent", "stale-frees", "retry", "queued-first"],
)
def test_next_step(trials: list[FrozenTrial], budget: int, expected: NextStep) -> None:
    assert next_step(trials, budget) == expected


def test_trials_that_fit_count_the_budget_left_as_next_step_does() -> None:
    # a trial budget: every trial but a stale failure counts
    assert trials_that_fit([COMPLETE, PRUNED, RUNNING, STALE], 5, None, 0) == 2
    assert trials_that_fit([COMPLETE] * 6, 5, None, 0) == 0
    # a step budget of 100-step trials: running trials reserve theirs, finished ones count
    # what they trained
    done = trial(TrialState.COMPLETE, 1.0, steps_done=100)
    pruned = trial(TrialState.PRUNED, steps_done=30)
    assert trials_that_fit([done, pruned, RUNNING], 1000, 1000, 100) == 7  # 770 left
    assert trials_that_fit([done] * 10, 1000, 1000, 100) == 0
    assert trials_that_fit([done], 1000, 1000, 0) == 0  # no length to count by: take the lock
    for trials in ([], [done, pruned, RUNNING], [done] * 9, [done] * 10):
        fits = trials_that_fit(trials, 1000, 1000, 100)
        runs = next_step(trials, 1000, True, 1000, 100) is NextStep.RUN
        assert runs == (fits >= 1)


def test_advisory_lock_key_is_stable_and_signed_64_bit() -> None:
    key = advisory_lock_key("quickstart/joint/1")
    assert key == advisory_lock_key("quickstart/joint/1") != advisory_lock_key("other")
    assert -(2**63) <= key < 2**63


def test_progress_counts_and_best() -> None:
    trials = [trial(TrialState.COMPLETE, 0.5), trial(TrialState.COMPLETE, 0.2), PRUNED, RUNNING]
    progress = progress_of(trials, budget=10, direction=Direction.MINIMIZE)
    assert (progress.complete, progress.pruned, progress.running) == (2, 1, 1)
    assert progress.best_value == 0.2
    assert progress_of(trials, 10, Direction.MAXIMIZE).best_value == 0.5
    # the live line and its whole-campaign ETA: tests/report/test_terminal_text.py


def test_progress_counts_interrupted_trials_apart_from_failures() -> None:
    """A Ctrl-C'd round read "5 complete, 0 pruned, 2 failed of 5": the two were stopped by
    their workers and retried, not failures."""
    trials = [
        create_trial(state=TrialState.COMPLETE, value=0.1),
        create_trial(state=TrialState.FAIL, user_attrs={"interrupted": "stop requested"}),
        create_trial(state=TrialState.FAIL),
    ]
    progress = progress_of(trials, budget=3, direction=Direction.MINIMIZE)
    assert (progress.failed, progress.interrupted, progress.finished) == (1, 1, 3)
