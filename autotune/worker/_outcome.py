"""How one trial run by a worker ended, as counted in the worker's summary."""

from __future__ import annotations

import enum

from optuna.trial import TrialState


class TrialOutcome(enum.Enum):
    """A trial's end as its worker saw it: a told state, or not told by this worker."""

    COMPLETE = "complete"
    PRUNED = "pruned"
    FAIL = "fail"
    LOST = "lost"  # finished by another worker meanwhile (its heartbeat was stale)
    INTERRUPTED = "interrupted"  # stopped (signal, lost connection); queued for retry

    @classmethod
    def of_state(cls, state: TrialState) -> TrialOutcome:
        """The outcome of a trial told ``state`` (COMPLETE, PRUNED or FAIL)."""
        return cls[state.name]
