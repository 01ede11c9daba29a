"""The Optuna pruner: rung bookkeeping of running trials over the PostgreSQL rung store."""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
import threading

import optuna
from optuna.trial import FrozenTrial

from autotune.pruning._rungs import RungDecision
from autotune.pruning._rungs import rung_reports
from autotune.pruning._rungs import rung_steps
from autotune.spec import Direction
from autotune.storage import TrialRungs
from autotune.storage import trial_rungs

# Running trials whose progress a pruner remembers; a forgotten trial costs one more query
# (its recorded rungs) at its next rung.
_REMEMBERED_TRIALS = 1024


@dataclass(frozen=True)
class _Progress:
    judged: int  # rungs 0 .. judged - 1 have been decided
    pruned: bool


class RungPruner(optuna.pruners.BasePruner):
    """Asynchronous successive halving with rungs at ``min_steps * reduction_factor**r``.

    At the first report at or past a rung's step, the trial's value there is recorded in the
    rung store and judged against every value recorded at that rung by trials that did not
    fail (see :func:`autotune.pruning.decide`; the first ``min_keep`` at a rung continue,
    so that the round finishes as many trials as the next round promotes). Reports that
    cross no new rung return False without touching the database: whether a rung is crossed
    follows from the trial's own reports, which Optuna holds in memory, and the rungs already
    judged are remembered here per trial. The store is the durable record of them: the first
    time this pruner meets a trial past two or more rungs (it resumed with its reports, or
    this pruner forgot it), it reads which rungs the trial already recorded (a primary-key
    probe per rung) rather than judging them again. A trial met at its first rung records
    it without asking: recording a rung again with the same value changes nothing.
    Needs a PostgreSQL ``RDBStorage``.

    The worker calls :func:`autotune.storage.forget_rung_values` when a trial ends in FAIL,
    so that failed and interrupted trials are no competitors.
    """

    def __init__(
        self,
        min_steps: int,
        reduction_factor: int,
        max_train_steps: int,
        direction: Direction,
        min_keep: int = 1,
    ) -> None:
        if not isinstance(direction, Direction):
            raise TypeError(f"direction must be an autotune.spec.Direction, got {direction!r}")
        self._rungs = rung_steps(min_steps, reduction_factor, max_train_steps)
        self._reduction_factor = reduction_factor
        self._min_keep = min_keep
        self._direction = direction
        self._progress: OrderedDict[tuple[str, int], _Progress] = OrderedDict()
        self._lock = threading.Lock()

    @property
    def rungs(self) -> tuple[int, ...]:
        """The rung steps."""
        return self._rungs

    def prune(self, study: optuna.Study, trial: FrozenTrial) -> bool:
        key = (study.study_name, trial.number)
        progress = self._recall(key)
        if progress is not None and progress.pruned:
            return True
        judged = 0 if progress is None else progress.judged
        latest = max(trial.intermediate_values, default=None)
        if judged == len(self._rungs) or latest is None or latest < self._rungs[judged]:
            return False  # no new rung crossed: no query
        store = trial_rungs(study, trial)
        if progress is None and self._crossed(latest) > 1:  # resumed, or forgotten here
            rungs = len(self._rungs)
            recorded = store.recorded(rungs)
            judged = next((r for r in range(rungs) if r not in recorded), rungs)
        progress = self._judge(store, trial, judged)
        self._remember(key, progress)
        return progress.pruned

    def _crossed(self, step: int) -> int:
        """How many rungs a trial at ``step`` has crossed."""
        return sum(rung <= step for rung in self._rungs)

    def _judge(self, store: TrialRungs, trial: FrozenTrial, judged: int) -> _Progress:
        """Record and decide every rung from ``judged`` on that the trial has reached."""
        progress = _Progress(judged, pruned=False)
        for report in rung_reports(trial.intermediate_values, self._rungs)[judged:]:
            decision = store.record(
                report.rung, report.value, self._reduction_factor, self._direction, self._min_keep
            )
            progress = _Progress(report.rung + 1, pruned=decision == RungDecision.PRUNE)
            if progress.pruned:
                break
        return progress

    def _recall(self, key: tuple[str, int]) -> _Progress | None:
        with self._lock:
            return self._progress.get(key)

    def _remember(self, key: tuple[str, int], progress: _Progress) -> None:
        with self._lock:
            self._progress[key] = progress
            self._progress.move_to_end(key)
            while len(self._progress) > _REMEMBERED_TRIALS:
                self._progress.popitem(last=False)
