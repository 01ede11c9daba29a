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
import logging
import math
from pathlib import Path
import signal
import threading
import time
from typing import Any
from typing import Protocol
from typing import TypeVar
import warnings

import optuna
from optuna.storages import RDBStorage
from optuna.trial import TrialState

from autotune.campaign import Campaign
from autotune.campaign import CampaignStudy
from autotune.campaign import Stage
from autotune.campaign import TransitionKind
from autotune.campaign import advance
from autotune.campaign import load_campaign
from autotune.campaign import stage_base_hparams
from autotune.campaign._trial_attrs import ATTR_ERROR_TRACEBACK
from autotune.campaign._trial_attrs import ATTR_HANDOUT_MS
from autotune.campaign._trial_attrs import ATTR_INTERRUPTED
from autotune.campaign._trial_attrs import ATTR_LOCK_WAIT_MS
from autotune.campaign._trial_budget import ATTR_ERROR
from autotune.campaign._trial_budget import NextStep
from autotune.campaign._trial_budget import consumes_budget  # noqa: F401 (re-exported)
from autotune.campaign._trial_budget import next_step
from autotune.campaign._trial_budget import trials_that_fit
from autotune.spec import SamplerKind
from autotune.spec import StudySpec
from autotune.storage import STORAGE_ERRORS
from autotune.storage import CheckpointStore
from autotune.storage import DatabaseUnavailableError
from autotune.storage import HeartbeatSettings
from autotune.storage import advisory_lock
from autotune.storage import advisory_lock_key  # noqa: F401 (re-exported)
from autotune.storage import claim_trial
from autotune.storage import create_trial_within
from autotune.storage import first_line
from autotune.storage import forget_rung_values
from autotune.storage import has_stale_trials
from autotune.storage import is_connection_lost
from autotune.storage import max_retry_of
from autotune.storage import normalize_url
from autotune.storage import open_storage
from autotune.storage import record_heartbeat
from autotune.storage import retry_failed_trial
from autotune.storage import retry_unretried_failures
from autotune.storage import tell
from autotune.storage import unretried_failures
from autotune.storage import wait_for_database
from autotune.storage import wait_for_server
from autotune.worker._checkpoints import discard_recovery_checkpoint
from autotune.worker._factories import make_pruner
from autotune.worker._factories import make_sampler
from autotune.worker._objectives import RoundSetting
from autotune.worker._objectives import StopRequested
from autotune.worker._objectives import make_objective
from autotune.worker._outcome import TrialOutcome
from autotune.worker._traceback import traceback_tail

_logger = logging.getLogger(__name__)
_T = TypeVar("_T")

OUTAGE_WORTH_A_WARNING_S = 1.0  # a first connection takes some milliseconds: no outage
ATTR_WORKER = "worker"


@dataclass(frozen=True)
class WorkerOptions:
    """How one worker behaves; the defaults suit production."""

    worker_id: str
    max_trials: int | None = None
    janitor_interval_s: float = 10.0
    idle_poll_s: float = 2.0
    seed: int | None = None
    outage_limit_s: float = 300.0  # how long to wait for an unreachable database
    report_where: str = ""  # the storage options the published report's hints need

    def __post_init__(self) -> None:
        if self.max_trials is not None and self.max_trials < 1:
            raise ValueError(f"max_trials must be >= 1, got {self.max_trials}")


@dataclass(frozen=True)
class TrialReport:
    """A trial this worker ran, as its progress display and log lines tell it."""

    study: str
    number: int
    outcome: TrialOutcome
    value: float | None
    value_name: str  # what the value is: the metric, or a sweep's steps to fit
    duration_s: float


class WorkerObserver(Protocol):
    """Told of the worker's trials and rounds (``autotune worker`` shows them)."""

    def round_opened(self, study: CampaignStudy) -> None: ...

    def trial_started(self, study: str, number: int) -> None: ...

    def trial_finished(self, report: TrialReport) -> None: ...


@dataclass(frozen=True)
class WorkerSummary:
    """What one worker did."""

    trials_run: int
    states: dict[TrialOutcome, int]
    stopped_by_signal: bool


class _Periodic:
    """Run a function at once, then every ``interval_s`` seconds, in a daemon thread until
    stopped."""

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
                _logger.warning("%s failed: %s", self._thread.name, first_line(error))
            if self._stop.wait(self._interval_s):
                return

    def __enter__(self) -> _Periodic:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join()


class _TrialHeartbeat:
    """One thread for the worker's life that records the running trial's heartbeat every
    ``interval_s``, the first one interval after the trial started (a trial shorter than
    the interval costs no heartbeat transaction; see `WriteBehindStorage`).

    A thread per trial cost its start and join, each a wait for a core when eight workers
    finish their trials together. A beat under way when its trial ends may land just after
    the trial's tell: a heartbeat row of a finished trial, which nothing reads.
    """

    def __init__(self, interval_s: float, beat: Callable[[optuna.Trial], None]) -> None:
        self._interval_s, self._beat = interval_s, beat
        self._lock = threading.Lock()
        self._trial: optuna.Trial | None = None
        self._due = math.inf  # monotonic time of the next beat
        self._changed, self._stopped = threading.Event(), threading.Event()
        self._thread = threading.Thread()  # made on entry: a worker may run more than once

    def __enter__(self) -> _TrialHeartbeat:
        self._stopped.clear()
        self._thread = threading.Thread(target=self._loop, name="heartbeat", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stopped.set()
        self._changed.set()
        self._thread.join()

    @contextlib.contextmanager
    def beating(self, trial: optuna.Trial) -> Iterator[None]:
        """Beat ``trial`` while the block runs."""
        self._set(trial, time.monotonic() + self._interval_s)
        try:
            yield
        finally:
            self._set(None, math.inf)

    def _set(self, trial: optuna.Trial | None, due: float) -> None:
        with self._lock:
            self._trial, self._due = trial, due
        self._changed.set()

    def _loop(self) -> None:
        while not self._stopped.is_set():
            with self._lock:
                trial, wait_s = self._trial, self._due - time.monotonic()
            if trial is None or wait_s > 0:
                self._changed.wait(None if trial is None else wait_s)
                self._changed.clear()  # the state is read again before anything is done
                continue
            try:
                self._beat(trial)
            except Exception as error:  # keep the thread alive through database hiccups
                _logger.warning("heartbeat failed: %s", first_line(error))
            with self._lock:
                if self._trial is trial:
                    self._due = time.monotonic() + self._interval_s


def open_worker_storage(
    url: str | None, heartbeat: HeartbeatSettings, state_dir: Path, outage_limit_s: float
) -> RDBStorage:
    """The worker's storage; a server that is down is waited for up to ``outage_limit_s``
    (DatabaseUnavailableError after), as a running worker waits out an outage."""
    if url is not None:
        waited = wait_for_server(normalize_url(url), outage_limit_s)
        if waited >= OUTAGE_WORTH_A_WARNING_S:
            _logger.warning("database reachable after %.1f s", waited)
    return open_storage(url, heartbeat, state_dir)


def fail_stale_trials(study: optuna.Study, storage: RDBStorage) -> None:
    """Fail trials whose heartbeat stopped; the storage's retry callback re-enqueues them.

    Under the study's advisory lock, the one :meth:`Worker._next_trial` takes: no worker
    counts the budget between a trial turning FAIL and its retry being queued (a hand-out
    without the lock that sees a failure not yet retried takes the lock instead). The lock
    is taken only when a look without it finds a stale trial.
    """
    if not has_stale_trials(study):
        return
    with advisory_lock(storage, study.study_name), warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        optuna.storages.fail_stale_trials(study)


@dataclass(frozen=True)
class _Round:
    """The study of one stage/round, opened with its sampler, pruner and objective."""

    study: optuna.Study
    label: str
    value_name: str
    sampling: bool  # sample new trials up to the budget (else run only queued ones)
    budget: int
    objective: Callable[[optuna.Trial], float]
    step_budget: int | None = None  # a sampling study's share of a total step budget
    steps: int = 0  # one trial's training steps


def _stage_sampler(spec: StudySpec, study: CampaignStudy) -> SamplerKind | None:
    if study.stage is not Stage.JOINT:
        return SamplerKind.RANDOM  # queued trials only
    return spec.stage_sampler(spec.tuning_stages[study.plan.stage_index])


def round_setting(campaign: Campaign, study: CampaignStudy) -> RoundSetting:
    """What the objective of a stage/round study needs: its steps and the next round's."""
    spec, plan = campaign.spec, study.plan
    interval = spec.run_eval_interval(plan.campaign_max_train_steps)
    if plan.stage is not Stage.JOINT:
        return RoundSetting(plan.stage, plan.max_train_steps, eval_interval=interval)
    promote_to = None
    total = plan.campaign_max_train_steps
    last_stage = plan.stage_index == len(spec.tuning_stages) - 1
    if last_stage and plan.round_number < len(spec.rounds) and total is not None:
        promote_to = spec.round_steps(plan.round_number + 1, total)
    fast = spec.fast_mode.enabled and plan.round_number == 1
    defaults = campaign.task_defaults.hyperparameters
    return RoundSetting(
        plan.stage,
        plan.max_train_steps,
        promote_to,
        distributions=study.distributions,
        base=stage_base_hparams(spec, defaults, plan.stage_fixed),
        train_fraction=spec.fast_mode.train_fraction if fast else 1.0,
        eval_interval=interval,
    )


ObjectiveFactory = Callable[
    [StudySpec, threading.Event, RoundSetting, CheckpointStore | None],
    Callable[[optuna.Trial], float],
]
"""Builds a round's objective (default :func:`autotune.worker._objectives.make_objective`)."""


class Worker:
    """Pulls trials of one campaign from the database, round after round, and runs them.

    ``objective_factory`` replaces the training objective (benchmarks run the worker path
    around a trivial objective with it).
    """

    def __init__(
        self,
        campaign: Campaign,
        storage: RDBStorage,
        options: WorkerOptions,
        checkpoints: CheckpointStore | None = None,
        objective_factory: ObjectiveFactory = make_objective,
        observer: WorkerObserver | None = None,
    ) -> None:
        self._campaign = campaign
        self._storage = storage
        self._options = options
        self._checkpoints = checkpoints
        self._objective_factory = objective_factory
        self._observer = observer
        self._stop_requested = threading.Event()
        self._waiting = False  # the last hand-out found only others' trials running
        self._heartbeat = _TrialHeartbeat(
            storage.get_heartbeat_interval() or 10,
            lambda trial: record_heartbeat(storage, trial),
        )
        self._round = self._open_round(campaign.current)

    def _open_round(self, study: CampaignStudy) -> _Round:
        spec, plan = self._campaign.spec, study.plan
        setting = round_setting(self._campaign, study)
        if self._observer is not None:
            self._observer.round_opened(study)
        sampler = make_sampler(spec, self._options.seed, _stage_sampler(spec, study))
        pruner = make_pruner(spec, plan, setting.max_train_steps)
        return _Round(
            study=self._campaign.optuna_study(study, sampler=sampler, pruner=pruner),
            label=study.label,
            value_name=self._campaign.value_name(study),
            sampling=study.samples,
            budget=study.trial_budget,
            objective=self._objective_factory(
                spec, self._stop_requested, setting, self._checkpoints
            ),
            step_budget=plan.step_budget,
            steps=plan.max_train_steps,
        )

    def request_stop(self, *_: Any) -> None:
        """Finish at the next eval: the running trial is marked for retry, then exit."""
        if not self._stop_requested.is_set():
            _logger.warning("stop requested: finishing at the next evaluation")
        self._stop_requested.set()

    def install_signal_handlers(self) -> None:
        signal.signal(signal.SIGTERM, self.request_stop)
        signal.signal(signal.SIGINT, self.request_stop)

    def run(self) -> WorkerSummary:
        outcomes: Counter[TrialOutcome] = Counter()
        janitor = _Periodic(
            self._options.janitor_interval_s,
            lambda: fail_stale_trials(self._round.study, self._storage),
            "janitor",
        )
        with janitor, self._heartbeat:
            while not self._stop_requested.is_set():
                if self._reached_max_trials(outcomes):
                    break
                try:
                    trial, step = self._next_trial()
                    if step == NextStep.DONE and not self._advance():
                        break
                except STORAGE_ERRORS as error:
                    self._ride_out(error)
                    continue
                if trial is None:
                    if step == NextStep.WAIT:
                        self._stop_requested.wait(self._options.idle_poll_s)
                    continue
                outcomes[self._run_observed(trial)] += 1
        return WorkerSummary(
            trials_run=sum(outcomes.values()),
            states=dict(outcomes),
            stopped_by_signal=self._stop_requested.is_set(),
        )

    def _advance(self) -> bool:
        """Move to the next stage/round (creating it if first); False when done or stopped."""
        name = self._campaign.name
        transition = advance(name, self._storage)
        self._campaign = load_campaign(name, self._storage)
        latest = self._campaign.current
        if latest.name == self._round.study.study_name:
            if transition.kind in (TransitionKind.FINISHED, TransitionKind.STOP):
                stopped = self._campaign.stopped
                if stopped is not None:
                    _logger.error("campaign %s stopped: %s", name, stopped)
                self._publish_report()
                return False
            if transition.kind is TransitionKind.WAIT:  # another worker's trial: wait
                self._stop_requested.wait(self._options.idle_poll_s)
        else:
            _logger.info("campaign %s: %s", name, latest.label)
        self._round = self._open_round(latest)  # a study can gain trials (PROMOTE_MORE)
        return True

    def _publish_report(self) -> None:
        """The finished campaign's report into the dashboard, unless published already
        (failures are logged: the campaign is done whatever becomes of its report)."""
        from autotune.report._publish import publish_finished_campaign  # plotly: only now

        store = None if self._checkpoints is None else self._checkpoints.artifact_store
        publish_finished_campaign(self._campaign, store, self._options.report_where)

    def _reached_max_trials(self, outcomes: Counter[TrialOutcome]) -> bool:
        limit = self._options.max_trials
        return limit is not None and sum(outcomes.values()) >= limit

    def _next_trial(self) -> tuple[optuna.Trial | None, NextStep]:
        """A trial to run, or why not; the study's lock only where it must be.

        In a sampling round, or when it was waiting, the worker reads the trials without
        the lock first. A worker that was waiting stops there unless something changed: at
        a round's end hundreds of idle workers poll, and a stale read only delays them
        (nothing is written). Where the budget has room, the trial is made without the
        lock, capped at that room (see `create_trial_within`); else (and in a round of
        queued trials) it is claimed under the lock. It is built after.
        """
        current, asked = self._round, time.perf_counter()
        trial_id, waited_s = None, 0.0
        if self._waiting or current.sampling:  # a queued round's trials: under the lock
            trials = current.study.get_trials(deepcopy=False)
            if self._waiting:
                orphans = unretried_failures(trials, max_retry_of(current.study))
                step = NextStep.RUN if orphans else self._allowed(trials)  # retries: locked
                self._waiting = step is NextStep.WAIT
                if step is not NextStep.RUN:
                    return None, step
            trial_id = self._create_without_lock(trials)
        if trial_id is None:
            with advisory_lock(self._storage, current.study.study_name) as hold:
                trials = current.study.get_trials(deepcopy=False)
                if retry_unretried_failures(current.study, trials):
                    trials = current.study.get_trials(deepcopy=False)
                step = self._allowed(trials)
                self._waiting = step is NextStep.WAIT
                if step != NextStep.RUN:
                    return None, step
                trial_id = claim_trial(current.study, trials)
            waited_s = hold.waited_s
        self._waiting = False
        trial = optuna.Trial(current.study, trial_id)
        trial.set_user_attr(ATTR_WORKER, self._options.worker_id)
        trial.set_user_attr(ATTR_LOCK_WAIT_MS, round(waited_s * 1000, 1))
        trial.set_user_attr(ATTR_HANDOUT_MS, round((time.perf_counter() - asked) * 1000, 1))
        return trial, NextStep.RUN

    def _create_without_lock(self, trials: list[optuna.trial.FrozenTrial]) -> int | None:
        """A new trial where ``trials`` (read without the lock) leave room for one in a
        sampling round with nothing queued or to retry; None: take the lock."""
        current = self._round
        if not current.sampling or unretried_failures(trials, max_retry_of(current.study)):
            return None
        if any(t.state is TrialState.WAITING for t in trials):
            return None
        room = trials_that_fit(trials, current.budget, current.step_budget, current.steps)
        if room < 1:
            return None
        return create_trial_within(current.study, len(trials) + room)

    def _allowed(self, trials: list[optuna.trial.FrozenTrial]) -> NextStep:
        """What the round's budget allows, given its ``trials``."""
        current = self._round
        return next_step(
            trials, current.budget, current.sampling, current.step_budget, current.steps
        )

    def _run_observed(self, trial: optuna.Trial) -> TrialOutcome:
        """Run the trial, telling the observer when it starts and how it ended."""
        study, started = self._round.study.study_name, time.monotonic()
        if self._observer is not None:
            self._observer.trial_started(study, trial.number)
        outcome, value = self._run_trial(trial)
        if self._observer is not None:
            duration = time.monotonic() - started
            report = TrialReport(
                study, trial.number, outcome, value, self._round.value_name, duration
            )
            self._observer.trial_finished(report)
        return outcome

    def _run_trial(self, trial: optuna.Trial) -> tuple[TrialOutcome, float | None]:
        """Train and record the trial; giving up on the database, say what becomes of it."""
        try:
            return self._train_and_tell(trial)
        except DatabaseUnavailableError as error:
            raise DatabaseUnavailableError(
                f"{error}; trial {trial.number} of {self._round.study.study_name} stays "
                "RUNNING until the database is back: the next worker to reach it fails the "
                "trial as stale (its heartbeat is older than the grace period) and retries "
                "it from its last recovery checkpoint"
            ) from None

    def _train_and_tell(self, trial: optuna.Trial) -> tuple[TrialOutcome, float | None]:
        """Train, tell; the outcome and the value told (a pruned trial's: its last report).

        The first heartbeat comes one interval in: a trial that never beat is stale only
        after a whole grace period of silence (see `WriteBehindStorage`), and a trial shorter
        than the interval then costs two transactions fewer."""
        state, value = TrialState.FAIL, None
        try:
            with self._heartbeat.beating(trial):
                value = self._round.objective(trial)
            state = TrialState.COMPLETE
        except optuna.TrialPruned:
            state = TrialState.PRUNED
        except optuna.exceptions.UpdateFinishedTrialError:
            _logger.warning("trial %d was finished by another worker (stale)", trial.number)
            return TrialOutcome.LOST, None
        except StopRequested as stop:
            return self._interrupt(trial, str(stop)), None
        except Exception as error:  # a training failure must not kill the worker
            if is_connection_lost(error):
                self._ride_out(error)
                return self._interrupt(trial, "database connection lost"), None
            _logger.exception("trial %d failed", trial.number)
            self._set_attr(trial, ATTR_ERROR, f"{type(error).__name__}: {error}")
            self._set_attr(trial, ATTR_ERROR_TRACEBACK, traceback_tail(error))
        frozen = self._reconnecting(lambda: tell(self._round.study, trial, value, state))
        if frozen.state == TrialState.FAIL:
            forget_rung_values(self._round.study, frozen)
        if self._checkpoints is not None:
            discard_recovery_checkpoint(self._checkpoints, frozen)
        _logger.info("trial %d %s value=%s", trial.number, frozen.state.name, frozen.value)
        return TrialOutcome.of_state(frozen.state), frozen.value

    def _ride_out(self, error: Exception) -> None:
        """Wait for the database to return after a lost connection; re-raise other errors."""
        if not is_connection_lost(error):
            raise error
        _logger.warning("database connection lost: %s", first_line(error))
        waited = wait_for_database(self._storage, self._options.outage_limit_s)
        _logger.warning("database back after %.1f s", waited)

    def _reconnecting(self, call: Callable[[], _T]) -> _T:
        """``call()``, repeated after each database outage until it goes through."""
        while True:
            try:
                return call()
            except STORAGE_ERRORS as error:
                self._ride_out(error)

    def _interrupt(self, trial: optuna.Trial, reason: str) -> TrialOutcome:
        self._set_attr(trial, ATTR_INTERRUPTED, reason)
        study = self._round.study
        with advisory_lock(self._storage, study.study_name):  # see fail_stale_trials
            frozen = study.tell(trial, state=TrialState.FAIL, skip_if_finished=True)
            forget_rung_values(study, frozen)
            if frozen.user_attrs.get(ATTR_INTERRUPTED) == reason:
                retry_failed_trial(study, frozen)
        _logger.warning("trial %d interrupted (%s); queued for retry", trial.number, reason)
        return TrialOutcome.INTERRUPTED

    @staticmethod
    def _set_attr(trial: optuna.Trial, key: str, value: str) -> None:
        with contextlib.suppress(optuna.exceptions.UpdateFinishedTrialError):
            trial.set_user_attr(key, value)
