"""The worker loop: take the next trial, train, record the outcome, repeat until the budget.

Any number of workers on any number of machines may run against one campaign; they share
nothing but the database.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from collections.abc import Iterator
import contextlib
from dataclasses import dataclass
import enum
import hashlib
import logging
import signal
import threading
from typing import Any
import warnings

import optuna
from optuna.storages import RDBStorage
from optuna.trial import FrozenTrial
from optuna.trial import TrialState
import sqlalchemy

from autotune._retry import RetryStaleTrial
from autotune.campaign import Campaign
from autotune.objective import StopRequested
from autotune.objective import make_objective

_logger = logging.getLogger(__name__)

ATTR_ERROR = "error"
ATTR_INTERRUPTED = "interrupted"
ATTR_WORKER = "worker"


class NextStep(enum.Enum):
    RUN = "run"
    WAIT = "wait"
    DONE = "done"


@dataclass(frozen=True)
class WorkerOptions:
    """How one worker behaves; the defaults suit production."""

    worker_id: str
    max_trials: int | None = None
    janitor_interval_s: float = 10.0
    idle_poll_s: float = 2.0
    seed: int | None = None

    def __post_init__(self) -> None:
        if self.max_trials is not None and self.max_trials < 1:
            raise ValueError(f"max_trials must be >= 1, got {self.max_trials}")


@dataclass(frozen=True)
class WorkerSummary:
    """What one worker did."""

    trials_run: int
    states: dict[str, int]
    stopped_by_signal: bool


def consumes_budget(trial: FrozenTrial) -> bool:
    """Whether a trial counts against the campaign's trial budget.

    Failed trials count only when training itself failed; trials failed as stale or
    interrupted are retried as new WAITING trials, which count instead.
    """
    if trial.state == TrialState.FAIL:
        return ATTR_ERROR in trial.user_attrs
    return True


def next_step(trials: list[FrozenTrial], budget: int) -> NextStep:
    """Decide whether a worker may start a trial, must wait for others, or is done."""
    states = Counter(t.state for t in trials)
    if states[TrialState.WAITING] > 0:
        return NextStep.RUN
    if sum(consumes_budget(t) for t in trials) < budget:
        return NextStep.RUN
    if states[TrialState.RUNNING] > 0:
        return NextStep.WAIT  # a running trial may yet go stale and come back as WAITING
    return NextStep.DONE


def advisory_lock_key(name: str) -> int:
    """A stable signed 64-bit key for a PostgreSQL advisory lock."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)


@contextlib.contextmanager
def advisory_lock(storage: RDBStorage, name: str) -> Iterator[None]:
    """Hold a PostgreSQL session advisory lock (released on exit or if the process dies)."""
    key = advisory_lock_key(name)
    with storage.engine.connect() as connection:
        connection.execute(sqlalchemy.text("SELECT pg_advisory_lock(:key)"), {"key": key})
        try:
            yield
        finally:
            connection.execute(sqlalchemy.text("SELECT pg_advisory_unlock(:key)"), {"key": key})
            connection.commit()


class _Periodic:
    """Run a function every ``interval_s`` seconds in a daemon thread until stopped."""

    def __init__(self, interval_s: float, function: Callable[[], None], name: str) -> None:
        self._stop = threading.Event()
        self._interval_s = interval_s
        self._function = function
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)

    def _loop(self) -> None:
        while True:
            try:
                self._function()
            except Exception as error:  # keep the thread alive through database hiccups
                _logger.warning("%s failed: %s", self._thread.name, error)
            if self._stop.wait(self._interval_s):
                return

    def __enter__(self) -> _Periodic:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join()


def fail_stale_trials(study: optuna.Study) -> None:
    """Fail trials whose heartbeat stopped; the storage's retry callback re-enqueues them."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        optuna.storages.fail_stale_trials(study)


def make_sampler(campaign: Campaign, seed: int | None) -> optuna.samplers.BaseSampler:
    from autotune.spec import SamplerKind

    sampler = campaign.spec.sampler
    if sampler.type == SamplerKind.RANDOM:
        return optuna.samplers.RandomSampler(seed=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return optuna.samplers.TPESampler(
            n_startup_trials=sampler.n_startup_trials, seed=seed, constant_liar=True
        )


def make_pruner(campaign: Campaign) -> optuna.pruners.BasePruner:
    from autotune.spec import PrunerKind

    pruner = campaign.spec.pruner
    if pruner.type == PrunerKind.NONE:
        return optuna.pruners.NopPruner()
    return optuna.pruners.SuccessiveHalvingPruner(
        min_resource=pruner.min_steps, reduction_factor=pruner.reduction_factor
    )


class Worker:
    """Pulls trials of one campaign from the database and runs them."""

    def __init__(self, campaign: Campaign, storage: RDBStorage, options: WorkerOptions) -> None:
        self._campaign = campaign
        self._storage = storage
        self._options = options
        self._stop_requested = threading.Event()
        self._study = optuna.load_study(
            study_name=campaign.current_study.study_name,
            storage=storage,
            sampler=make_sampler(campaign, options.seed),
            pruner=make_pruner(campaign),
        )
        self._objective = make_objective(campaign.spec, self._stop_requested)

    def request_stop(self, *_: Any) -> None:
        """Finish at the next eval: the running trial is marked for retry, then exit."""
        if not self._stop_requested.is_set():
            _logger.warning("stop requested: finishing at the next evaluation")
        self._stop_requested.set()

    def install_signal_handlers(self) -> None:
        signal.signal(signal.SIGTERM, self.request_stop)
        signal.signal(signal.SIGINT, self.request_stop)

    def run(self) -> WorkerSummary:
        outcomes: Counter[str] = Counter()
        janitor = _Periodic(
            self._options.janitor_interval_s, lambda: fail_stale_trials(self._study), "janitor"
        )
        with janitor:
            while not self._stop_requested.is_set():
                if self._reached_max_trials(outcomes):
                    break
                trial, step = self._next_trial()
                if step == NextStep.DONE:
                    break
                if trial is None:
                    self._stop_requested.wait(self._options.idle_poll_s)
                    continue
                outcomes[self._run_trial(trial)] += 1
        return WorkerSummary(
            trials_run=sum(outcomes.values()),
            states=dict(outcomes),
            stopped_by_signal=self._stop_requested.is_set(),
        )

    def _reached_max_trials(self, outcomes: Counter[str]) -> bool:
        limit = self._options.max_trials
        return limit is not None and sum(outcomes.values()) >= limit

    def _next_trial(self) -> tuple[optuna.Trial | None, NextStep]:
        with advisory_lock(self._storage, self._study.study_name):
            trials = self._study.get_trials(deepcopy=False)
            step = next_step(trials, self._campaign.spec.trials)
            if step != NextStep.RUN:
                return None, step
            trial = self._study.ask()
        trial.set_user_attr(ATTR_WORKER, self._options.worker_id)
        return trial, step

    def _run_trial(self, trial: optuna.Trial) -> str:
        interval = self._storage.get_heartbeat_interval() or 10
        heartbeat = _Periodic(
            interval, lambda: self._storage.record_heartbeat(trial._trial_id), "heartbeat"
        )
        state, value = TrialState.FAIL, None
        try:
            with heartbeat:
                value = self._objective(trial)
            state = TrialState.COMPLETE
        except optuna.TrialPruned:
            state = TrialState.PRUNED
        except optuna.exceptions.UpdateFinishedTrialError:
            _logger.warning("trial %d was finished by another worker (stale)", trial.number)
            return "lost"
        except StopRequested as stop:
            return self._interrupt(trial, str(stop))
        except Exception as error:  # a training failure must not kill the worker
            _logger.exception("trial %d failed", trial.number)
            self._set_attr(trial, ATTR_ERROR, f"{type(error).__name__}: {error}")
        frozen = self._study.tell(trial, value, state=state, skip_if_finished=True)
        _logger.info("trial %d %s value=%s", trial.number, frozen.state.name, frozen.value)
        return frozen.state.name

    def _interrupt(self, trial: optuna.Trial, reason: str) -> str:
        self._set_attr(trial, ATTR_INTERRUPTED, reason)
        frozen = self._study.tell(trial, state=TrialState.FAIL, skip_if_finished=True)
        if frozen.user_attrs.get(ATTR_INTERRUPTED) == reason:
            retry = self._storage.get_heartbeat_stale_trial_callback() or RetryStaleTrial()
            retry(self._study, frozen)
        _logger.warning("trial %d interrupted (%s); queued for retry", trial.number, reason)
        return "interrupted"

    @staticmethod
    def _set_attr(trial: optuna.Trial, key: str, value: str) -> None:
        with contextlib.suppress(optuna.exceptions.UpdateFinishedTrialError):
            trial.set_user_attr(key, value)
