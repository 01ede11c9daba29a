"""Whether a worker may start a trial: pure decisions over a round's trials."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
import enum

from optuna.trial import FrozenTrial
from optuna.trial import TrialState

ATTR_ERROR = "error"
RETRY_HISTORY = "retry_history"  # system attribute of a retry: the numbers it descends from


class NextStep(enum.Enum):
    RUN = "run"
    WAIT = "wait"
    DONE = "done"


def consumes_budget(trial: FrozenTrial) -> bool:
    """Whether a trial counts against the round's trial budget.

    Failed trials count only when training itself failed; trials failed as stale or
    interrupted are retried as new WAITING trials, which count instead.
    """
    if trial.state == TrialState.FAIL:
        return ATTR_ERROR in trial.user_attrs
    return True


def next_step(trials: Sequence[FrozenTrial], budget: int, sampling: bool = True) -> NextStep:
    """Start a trial, wait for others, or stop; without sampling only queued trials run."""
    states = Counter(t.state for t in trials)
    if states[TrialState.WAITING] > 0:
        return NextStep.RUN
    if sampling and sum(consumes_budget(t) for t in trials) < budget:
        return NextStep.RUN
    if states[TrialState.RUNNING] > 0:
        return NextStep.WAIT  # a running trial may yet go stale and come back as WAITING
    return NextStep.DONE


def unretried_failures(
    trials: Sequence[FrozenTrial], max_retry: int | None = None
) -> list[FrozenTrial]:
    """Interrupted or stale trials whose retry is missing, and which may still be retried.

    Failing a trial and queuing its retry are two transactions: a worker killed between
    them leaves the configuration with neither a result nor a retry.
    """
    retried = {history[-1] for t in trials if (history := t.system_attrs.get(RETRY_HISTORY))}
    return [
        t
        for t in trials
        if t.state == TrialState.FAIL
        and not consumes_budget(t)
        and t.number not in retried
        and (max_retry is None or len(t.system_attrs.get(RETRY_HISTORY, ())) < max_retry)
    ]
