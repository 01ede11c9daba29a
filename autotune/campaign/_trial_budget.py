"""Whether a worker may start a trial: pure decisions over a round's trials."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
import enum

from optuna.trial import FrozenTrial
from optuna.trial import TrialState

from autotune.storage import ATTR_ERROR  # noqa: F401 (re-exported)
from autotune.storage import RETRY_HISTORY  # noqa: F401 (re-exported)
from autotune.storage import consumes_budget
from autotune.storage import unretried_failures  # noqa: F401 (re-exported)


class NextStep(enum.Enum):
    RUN = "run"
    WAIT = "wait"
    DONE = "done"


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
