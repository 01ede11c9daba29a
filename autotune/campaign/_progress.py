"""Progress of a study as plain numbers: counts against the budget, best so far."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
import math

from optuna.trial import FrozenTrial
from optuna.trial import TrialState

from autotune.campaign._trial_attrs import ATTR_CARRIED_FROM
from autotune.campaign._trial_attrs import ATTR_INTERRUPTED
from autotune.spec import Direction


@dataclass(frozen=True)
class Progress:
    """Counts of one study's trials against its budget, and the best value so far."""

    budget: int
    complete: int
    pruned: int
    failed: int
    running: int
    waiting: int
    best_value: float | None
    best_number: int | None
    # a study sampling until its share of the campaign's steps is spent: ``budget`` is only
    # how many unpruned trials the share buys (pruned ones cost less, so more run)
    step_share: int | None = None
    # trials a worker stopped (Ctrl-C, SIGTERM, an outage past its limit): FAIL in Optuna,
    # each retried by a copy, so neither a failure nor lost; not in ``failed``
    interrupted: int = 0
    # a widened study's copies of the finished trials of the study it widens: in its best,
    # not in its counts or budget (they ran there; counted twice, round 1 read 386 of 208)
    carried: int = 0

    @property
    def finished(self) -> int:
        return self.complete + self.pruned + self.failed + self.interrupted

    @property
    def trials_text(self) -> str:
        """Trials done, against the budget where the budget caps them: "12/24", or "336";
        a widened study's carried copies after them: "30+178 carried"."""
        done = self.complete + self.pruned
        text = str(done) if self.step_share is not None else f"{done}/{self.budget}"
        return f"{text}+{self.carried} carried" if self.carried else text


def progress_of(
    trials: list[FrozenTrial], budget: int, direction: Direction, step_share: int | None = None
) -> Progress:
    """Summarise trials: states counted, best COMPLETE value found in the given direction
    (a widened study's carried copies count in its best, apart in its counts and budget)."""
    own = [t for t in trials if ATTR_CARRIED_FROM not in t.user_attrs]
    carried = len(trials) - len(own)
    states = Counter(t.state for t in own)
    interrupted = sum(t.state == TrialState.FAIL and ATTR_INTERRUPTED in t.user_attrs for t in own)
    complete = [
        t
        for t in trials
        if t.state == TrialState.COMPLETE and t.value is not None and math.isfinite(t.value)
    ]
    sign = 1.0 if direction == Direction.MINIMIZE else -1.0
    best = min(complete, key=lambda t: sign * t.value) if complete else None
    return Progress(
        budget=budget - carried,
        complete=states[TrialState.COMPLETE],
        pruned=states[TrialState.PRUNED],
        failed=states[TrialState.FAIL] - interrupted,
        running=states[TrialState.RUNNING],
        waiting=states[TrialState.WAITING],
        best_value=best.value if best else None,
        best_number=best.number if best else None,
        step_share=step_share,
        interrupted=interrupted,
        carried=carried,
    )
