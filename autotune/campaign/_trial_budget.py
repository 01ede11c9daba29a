"""Whether a worker may start a trial: pure decisions over a round's trials."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
import enum

from optuna.trial import FrozenTrial
from optuna.trial import TrialState

from autotune.campaign._budget import steps_spent
from autotune.storage import ATTR_ERROR  # noqa: F401 (re-exported)
from autotune.storage import RETRY_HISTORY  # noqa: F401 (re-exported)
from autotune.storage import consumes_budget
from autotune.storage import unretried_failures  # noqa: F401 (re-exported)


class NextStep(enum.Enum):
    RUN = "run"
    WAIT = "wait"
    DONE = "done"


def next_step(
    trials: Sequence[FrozenTrial],
    budget: int,
    sampling: bool = True,
    step_budget: int | None = None,
    trial_length: int = 0,
) -> NextStep:
    """Start a trial, wait for others, or stop; without sampling only queued trials run.

    With a ``step_budget`` a sampling study runs trials while one more of ``trial_length``
    steps still fits (running trials reserve theirs); else up to ``budget`` trials.
    """
    states = Counter(t.state for t in trials)
    if states[TrialState.WAITING] > 0:
        return NextStep.RUN
    if sampling and _room_for_one_more(trials, budget, step_budget, trial_length):
        return NextStep.RUN
    if states[TrialState.RUNNING] > 0:
        return NextStep.WAIT  # a running trial may yet go stale and come back as WAITING
    return NextStep.DONE


def trials_that_fit(
    trials: Sequence[FrozenTrial], budget: int, step_budget: int | None, trial_length: int
) -> int:
    """How many more new trials the round's budget admits now (running trials reserve
    theirs, as in `next_step`); 0 without a trial length to count steps by."""
    if step_budget is None:
        return max(0, budget - sum(consumes_budget(t) for t in trials))
    if trial_length <= 0:
        return 0
    spent = steps_spent(trials, trial_length, carried=True)
    return max(0, (step_budget - spent) // trial_length)


def _room_for_one_more(
    trials: Sequence[FrozenTrial], budget: int, step_budget: int | None, trial_length: int
) -> bool:
    if step_budget is None:
        return sum(consumes_budget(t) for t in trials) < budget
    spent = steps_spent(trials, trial_length, carried=True)
    return spent + trial_length <= step_budget
