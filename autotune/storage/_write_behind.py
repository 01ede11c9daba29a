"""autotune's Optuna storage: ``RDBStorage`` on PostgreSQL with fewer round trips per trial.

Three changes, invisible to Optuna and to other processes:

**Write-behind of a running trial's reports.** A report (``trial.report``), a user
attribute (``trial.set_user_attr``) and a parameter (``trial.suggest_*``) each cost a
transaction of several round trips in ``RDBStorage``; a worker reporting every few steps
spends most of its orchestration time there. They are kept per trial and written together,
in one round trip (a PL/pgSQL function, ``autotune.storage._schema``):

- when a buffered write comes ``flush_interval_s`` or more after the trial's last flush
  (reports slower than that are written through, as before);
- before any other write to the trial (its parameters, system attributes, its state at
  ``tell``), so the trial's writes reach the database in the order they were made;
- before this process reads the trial back (``get_trial``, the trial lists), so the
  process reads its own writes;
- with each heartbeat of the trial (a background thread), so reports that stop are written
  within one heartbeat interval;
- on :meth:`WriteBehindStorage.flush`, which callers use when a write must be durable before
  they go on (a recovery checkpoint's reference, before the older checkpoint is removed;
  a trial's parameters, once all are suggested, so that its retry can copy them).

A parameter is checked against the distribution the study's other trials stored for its
name: Optuna's cache passes in the one it has seen; for a trial made here, the study's
distributions are read once per process (one query, where Optuna's ``RDBStorage`` reads
one per parameter in a transaction of its own, at every new worker's and round's first
trial). A parameter whose name the study has not stored yet is written through.

Only the trials this process created or started (WAITING to RUNNING) and has not finished
are written behind: their ids are known here without a database read. A write to any other
trial is written through, so one to a trial that does not exist raises ``KeyError`` and one
to a finished trial ``UpdateFinishedTrialError`` at the call, as Optuna's ``RDBStorage`` does.

Other processes (the dashboard, other workers) see a running trial's learning curve at most
``flush_interval_s`` (or one heartbeat interval) late. A worker killed outright loses at most
that much of its running trial's curve, which its retry re-reports. A trial that another
worker has failed (stale) or deleted refuses the buffered writes at the next flush: they are
dropped, and the next write to it is written through and raises, as Optuna's would.

**One round trip per new trial.** Optuna's ``_create_new_trial`` locks the study's row,
inserts the trial, counts the trials before it and writes the number, through its ORM; here
a PL/pgSQL function (``autotune.storage._schema``) locks the study's row and inserts the
trial with its number (the count, under the same lock), called as a transaction of its own:
no BEGIN or COMMIT round trips. The new trial is remembered until it is first written to, so the
``get_trial`` that ``optuna.Trial`` makes at once reads nothing. Trials copied from a
template (retries) take Optuna's way.

**One round trip per tell** (:func:`tell`): Optuna's ``Study.tell`` reads the trial (which
flushes its buffered writes first), writes its state and values, and reads it again: two
transactions and two reads. Here the buffered writes, the value and the state are written
by one call of the same function, and the finished trial is built from what this process
wrote (the ``optuna.Trial``'s own copy), not read back.

**One query per trial read** (:mod:`autotune.storage._trial_query`): ``get_trial`` and the trial
lists behind ``study.get_trials`` load every part of a trial in one query, not one per part.

**Trials that never sent a heartbeat go stale too.** Optuna fails a RUNNING trial only
when its last heartbeat is older than the grace period; a worker killed between creating a
trial and its first heartbeat would leave the trial RUNNING forever, and its stage never
finishes. Here such a trial is stale once this process's janitor has seen it without a
heartbeat for the grace period (timed by this process's clock, so clock skew between
machines does not matter).
"""

from __future__ import annotations

from collections.abc import Container
from collections.abc import Iterable
from collections.abc import Iterator
from collections.abc import Mapping
from collections.abc import Sequence
import contextlib
import copy
from dataclasses import dataclass
from dataclasses import field
import datetime
import json
import logging
import math
import threading
import time
from typing import Any

import optuna
from optuna.distributions import BaseDistribution
from optuna.distributions import check_distribution_compatibility
from optuna.distributions import distribution_to_json
from optuna.distributions import json_to_distribution
from optuna.storages import RDBStorage
from optuna.storages._rdb import models
from optuna.trial import FrozenTrial
from optuna.trial import TrialState
import sqlalchemy

from autotune.storage._engine import autocommitting
from autotune.storage._schema import CREATE_TRIAL_FUNCTION
from autotune.storage._schema import WRITE_TRIAL_FUNCTION
from autotune.storage._schema import with_schema
from autotune.storage._trial_query import read_trials

_logger = logging.getLogger(__name__)

DEFAULT_FLUSH_INTERVAL_S = 2.0


class TrialLimitReached(Exception):  # noqa: N818 (a signal, not a failure)
    """No trial was made: the study holds as many as :meth:`WriteBehindStorage.trials_at_most`
    allowed."""


@dataclass
class _Pending:
    """A trial's buffered writes, in the order they were made (later ones replace earlier)."""

    last_flush: float
    intermediate_values: dict[int, float] = field(default_factory=dict)
    user_attrs: dict[str, Any] = field(default_factory=dict)
    params: dict[str, tuple[float, BaseDistribution]] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.params or self.intermediate_values or self.user_attrs)

    def merge_older(self, older: _Pending) -> None:
        """Put back writes whose flush failed, under the newer ones made since."""
        self.params = {**older.params, **self.params}
        self.intermediate_values = {**older.intermediate_values, **self.intermediate_values}
        self.user_attrs = {**older.user_attrs, **self.user_attrs}


class WriteBehindStorage(RDBStorage):
    """Optuna's ``RDBStorage`` on PostgreSQL, writing a running trial's reports and user
    attributes behind and reading trials in one query (see the module docstring).
    ``flush_interval_s=0`` writes through."""

    def __init__(
        self, *args: Any, flush_interval_s: float = DEFAULT_FLUSH_INTERVAL_S, **kwargs: Any
    ):
        if flush_interval_s < 0:
            raise ValueError(f"flush_interval_s must be >= 0, got {flush_interval_s}")
        super().__init__(*args, **kwargs)
        self.flush_interval_s = flush_interval_s
        self._init_buffers()

    def _init_buffers(self) -> None:
        self._buffer_lock = threading.RLock()
        self._pending: dict[int, _Pending] = {}
        self._open: set[int] = set()  # trials this process created or started, unfinished
        # study id -> RUNNING trials seen without a heartbeat -> when first seen (monotonic)
        self._silent_since: dict[int, dict[int, float]] = {}
        self._fresh: dict[int, FrozenTrial] = {}  # the trial just created, unwritten since
        self._limits = threading.local()  # this thread's cap on new trials (trials_at_most)
        self._study_of: dict[int, int] = {}  # trial made here, unfinished -> its study
        # study id -> parameter name -> the distribution its trials stored (read once)
        self._distributions: dict[int, dict[str, BaseDistribution]] = {}

    def __getstate__(self) -> dict[Any, Any]:
        self.flush_all()
        state = super().__getstate__()
        for name in (
            "_buffer_lock",
            "_pending",
            "_open",
            "_silent_since",
            "_fresh",
            "_limits",
            "_study_of",
            "_distributions",
        ):
            state.pop(name, None)
        return state

    def __setstate__(self, state: dict[Any, Any]) -> None:
        super().__setstate__(state)
        self._init_buffers()

    # --- buffered writes ------------------------------------------------------------------

    def set_trial_intermediate_value(
        self, trial_id: int, step: int, intermediate_value: float
    ) -> None:
        with self._buffer_lock:
            pending = self._pending_of(trial_id)
            if pending is not None:
                pending.intermediate_values[step] = intermediate_value
                self._flush_if_due(trial_id)
                return
        super().set_trial_intermediate_value(trial_id, step, intermediate_value)

    def set_trial_user_attr(self, trial_id: int, key: str, value: Any) -> None:
        json.dumps(value)  # not JSON-serialisable: fail here, not at the flush
        with self._buffer_lock:
            pending = self._pending_of(trial_id)
            if pending is not None:
                pending.user_attrs[key] = value
                self._flush_if_due(trial_id)
                return
        super().set_trial_user_attr(trial_id, key, value)

    def _pending_of(self, trial_id: int) -> _Pending | None:
        """The trial's buffer; None for a trial not open here, whose writes go through."""
        if trial_id not in self._open:
            return None
        pending = self._pending.get(trial_id)
        if pending is None:
            pending = self._pending[trial_id] = _Pending(time.monotonic())
        return pending

    def _forget(self, trial_id: int) -> None:
        """The trial is finished or gone: drop its buffered writes, write the next through."""
        self._pending.pop(trial_id, None)
        self._open.discard(trial_id)
        self._fresh.pop(trial_id, None)
        self._study_of.pop(trial_id, None)

    def _flush_if_due(self, trial_id: int) -> None:
        if time.monotonic() - self._pending[trial_id].last_flush >= self.flush_interval_s:
            self.flush(trial_id)

    # --- flushing -------------------------------------------------------------------------

    def flush(self, trial_id: int) -> None:
        """Write the trial's buffered writes now, in one transaction."""
        with self._buffer_lock:
            pending = self._pending.get(trial_id)
            if not pending:
                return
            self._pending[trial_id] = _Pending(time.monotonic())
            try:
                self._write(trial_id, pending)
            except (KeyError, optuna.exceptions.UpdateFinishedTrialError):
                self._forget(trial_id)  # finished or deleted by another process
                raise
            except Exception:
                self._pending[trial_id].merge_older(pending)  # try again at the next flush
                raise

    def flush_all(self) -> None:
        """Flush every trial with buffered writes (trials finished elsewhere: dropped)."""
        with self._buffer_lock:
            for trial_id in list(self._pending):
                self._flush_quietly(trial_id)

    def _flush_quietly(self, trial_id: int) -> None:
        """Flush before a read: a trial finished or deleted elsewhere drops its writes, no
        error (the read says what became of it). ``flush`` takes the buffer lock itself."""
        try:
            self.flush(trial_id)
        except (KeyError, optuna.exceptions.UpdateFinishedTrialError) as error:
            _logger.debug("buffered writes of trial %d dropped: %s", trial_id, error)

    def _write(self, trial_id: int, pending: _Pending) -> None:
        self._fresh.pop(trial_id, None)
        try:
            stored = _write_trial(self.engine, _write_arguments(trial_id, pending))
        except sqlalchemy.exc.IntegrityError as error:  # all or nothing, as before
            _logger.debug("ignoring %r: another process wrote the same key first", error)
            return
        if stored is None:
            raise KeyError(models.NOT_FOUND_MSG)
        self.check_trial_is_updatable(trial_id, stored)

    def _read_trial(self, trial_id: int) -> FrozenTrial:
        """The trial as stored, in one read (no BEGIN, no ROLLBACK)."""
        with autocommitting(self.engine) as connection:
            trials = read_trials(connection, "t.trial_id = :trial", {"trial": trial_id})
        if not trials:
            raise KeyError(models.NOT_FOUND_MSG)
        return trials[0]

    # --- writes and reads that see the buffered writes first ------------------------------

    def _set_trial_param(
        self,
        trial_id: int,
        param_name: str,
        param_value_internal: float,
        distribution: BaseDistribution,
        previous_distribution: BaseDistribution | None,
    ) -> None:
        """Optuna's _CachedStorage calls this one, with the distribution it has seen
        (``set_trial_param`` too, with none); one the study has not stored: written through."""
        if previous_distribution is None and self.flush_interval_s > 0:
            previous_distribution = self._stored_distribution(trial_id, param_name)
        if previous_distribution is None or self.flush_interval_s == 0:
            self._fresh.pop(trial_id, None)
            self.flush(trial_id)
            super()._set_trial_param(
                trial_id, param_name, param_value_internal, distribution, previous_distribution
            )
            known = self._distributions.get(self._study_of.get(trial_id, -1))
            if known is not None:  # stored now, with this distribution or a compatible one
                known.setdefault(param_name, distribution)
            return
        check_distribution_compatibility(previous_distribution, distribution)
        with self._buffer_lock:
            pending = self._pending_of(trial_id)
            if pending is not None:
                pending.params[param_name] = (param_value_internal, distribution)
                self._flush_if_due(trial_id)
                return
        super()._set_trial_param(
            trial_id, param_name, param_value_internal, distribution, previous_distribution
        )

    def _stored_distribution(self, trial_id: int, param_name: str) -> BaseDistribution | None:
        """The distribution the study of a trial made here stored for ``param_name``; the
        study's are read at the first call (None: another process's trial, or a name the
        study had not stored then)."""
        study_id = self._study_of.get(trial_id)
        if study_id is None:
            return None
        if study_id not in self._distributions:
            with autocommitting(self.engine) as connection:
                rows = connection.execute(_STORED_DISTRIBUTIONS, {"study": study_id}).all()
            self._distributions[study_id] = {
                name: json_to_distribution(encoded) for name, encoded in rows
            }
        return self._distributions[study_id].get(param_name)

    def set_trial_system_attr(self, trial_id: int, key: str, value: Any) -> None:
        self._fresh.pop(trial_id, None)
        self.flush(trial_id)
        super().set_trial_system_attr(trial_id, key=key, value=value)

    def set_trial_state_values(self, trial_id: int, state: TrialState, values: Any = None) -> bool:
        """Flush first; a trial started here opens, one finished closes (under the buffer
        lock, so that no write slips between the flush and the new state)."""
        with self._buffer_lock:
            self._fresh.pop(trial_id, None)
            self.flush(trial_id)
            try:
                changed = super().set_trial_state_values(trial_id, state=state, values=values)
            except (KeyError, optuna.exceptions.UpdateFinishedTrialError):
                self._forget(trial_id)
                raise
            if state.is_finished():
                self._forget(trial_id)
            elif changed:
                self._open.add(trial_id)
            return changed

    def _create_new_trial(
        self, study_id: int, template_trial: FrozenTrial | None = None
    ) -> FrozenTrial:
        """Optuna's ``create_new_trial`` and ``_CachedStorage`` call this one. A new trial
        without a template is made in one round trip (Optuna's ORM: six) and remembered
        for the ``get_trial`` that ``optuna.Trial`` makes at once (one read fewer)."""
        if template_trial is not None:
            trial = super()._create_new_trial(study_id, template_trial)
        else:
            trial = self._insert_trial(study_id)
        if not trial.state.is_finished():
            with self._buffer_lock:
                self._open.add(trial._trial_id)
                self._study_of[trial._trial_id] = study_id
                if template_trial is None:
                    self._fresh = {trial._trial_id: trial}
        return trial

    @contextlib.contextmanager
    def trials_at_most(self, limit: int) -> Iterator[None]:
        """New trials made in the block, by this thread, only while the study holds fewer
        than ``limit`` trials (checked under the study's row lock as the trial is made);
        else :class:`TrialLimitReached`. A hand-out that counted the room left in its
        round's budget on a read without the study's lock makes its trial this way."""
        self._limits.value = limit
        try:
            yield
        finally:
            self._limits.value = None

    def _insert_trial(self, study_id: int) -> FrozenTrial:
        """A RUNNING trial, numbered as Optuna numbers it, in one round trip; a database
        without autotune's functions gets them first."""
        started = datetime.datetime.now()
        limit = getattr(self._limits, "value", None)
        parameters = {"study": study_id, "start": started, "limit": limit}
        row = with_schema(
            self.engine, lambda: _autocommitted(self.engine, _CREATE_TRIAL, parameters)
        )
        if row is None:
            raise KeyError(models.NOT_FOUND_MSG)
        if row.trial_id is None:
            raise TrialLimitReached(f"study {study_id} holds {limit} trials or more")
        return FrozenTrial(
            number=row.number,
            state=TrialState.RUNNING,
            value=None,
            values=None,
            datetime_start=started,
            datetime_complete=None,
            params={},
            distributions={},
            user_attrs={},
            system_attrs={},
            intermediate_values={},
            trial_id=row.trial_id,
        )

    def finish_trial(
        self,
        trial_id: int,
        state: TrialState,
        values: Sequence[float] | None,
        known: FrozenTrial | None = None,
    ) -> FrozenTrial:
        """Write the trial's buffered writes, ``values`` and finished ``state`` in one
        round trip; the trial as it now stands, built from ``known`` (the trial as this
        process wrote it) where given, else read first. A trial finished already (failed
        as stale by another worker) is read and returned as it is, its buffered writes
        dropped, as ``Study.tell(..., skip_if_finished=True)`` does."""
        assert state.is_finished()
        finished_at = datetime.datetime.now()
        with self._buffer_lock:
            pending = self._pending.get(trial_id) or _Pending(time.monotonic())
            if known is None:
                known = self._read_trial(trial_id)
            end = _End(state, values, finished_at)
            stored = _write_trial(self.engine, _write_arguments(trial_id, pending, end))
            if stored is None:
                raise KeyError(models.NOT_FOUND_MSG)
            self._forget(trial_id)
            if stored.is_finished():
                return self._read_trial(trial_id)
        return _finished(known, pending, state, values, finished_at)

    def delete_study(self, study_id: int) -> None:
        with self.engine.connect() as connection:
            trial_ids = connection.execute(_TRIALS_OF_STUDY, {"study": study_id}).scalars().all()
        super().delete_study(study_id)
        with self._buffer_lock:
            for trial_id in trial_ids:
                self._forget(trial_id)

    def get_trial(self, trial_id: int) -> FrozenTrial:
        with self._buffer_lock:
            fresh = self._fresh.pop(trial_id, None)
            if fresh is not None and not self._pending.get(trial_id):
                return copy.deepcopy(fresh)  # created here, nothing written to it since
        self._flush_quietly(trial_id)
        return self._read_trial(trial_id)

    def _get_trials(
        self,
        study_id: int,
        states: Container[TrialState] | None,
        included_trial_ids: set[int],
        trial_id_greater_than: int,
    ) -> list[FrozenTrial]:
        """Optuna's trial list (and _CachedStorage's increments of it), in one query."""
        self.flush_all()
        where, parameters = ["t.study_id = :study"], {"study": study_id}
        if states is not None:
            where.append("t.state::text = ANY(:states)")
            parameters["states"] = [state.name for state in states]  # type: ignore[attr-defined]
        if trial_id_greater_than > -1:
            included = [i for i in included_trial_ids if i <= trial_id_greater_than]
            where.append("(t.trial_id = ANY(:included) OR t.trial_id > :greater)")
            parameters |= {"included": included, "greater": trial_id_greater_than}
        with autocommitting(self.engine) as connection:  # reads: no BEGIN, no ROLLBACK
            trials = read_trials(connection, " AND ".join(where), parameters)
            if not trials and not _study_exists(connection, study_id):
                raise KeyError(models.NOT_FOUND_MSG)
        return trials

    def get_trial_param(self, trial_id: int, param_name: str) -> float:
        self._flush_quietly(trial_id)
        return super().get_trial_param(trial_id, param_name)

    def get_trial_user_attrs(self, trial_id: int) -> dict[str, Any]:
        self._flush_quietly(trial_id)
        return super().get_trial_user_attrs(trial_id)

    def _get_stale_trial_ids(self, study_id: int) -> list[int]:
        """Optuna's stale trials, and those silent since creation for the grace period."""
        stale = super()._get_stale_trial_ids(study_id)
        grace_s = self.grace_period or 2 * (self.heartbeat_interval or 0)
        with self.engine.connect() as connection:
            silent = set(connection.execute(_SILENT_TRIALS, {"study": study_id}).scalars())
        now = time.monotonic()
        since = silent_since(self._silent_since.get(study_id, {}), silent, now)
        self._silent_since[study_id] = since
        return stale + sorted(t for t, first in since.items() if now - first > grace_s)

    def record_heartbeat(self, trial_id: int) -> None:
        self._flush_quietly(trial_id)
        super().record_heartbeat(trial_id)


def silent_since(
    previous: Mapping[int, float], silent: Iterable[int], now: float
) -> dict[int, float]:
    """When each trial now silent was first seen so: as before if it was, else ``now``."""
    return {trial_id: previous.get(trial_id, now) for trial_id in silent}


_TRIALS_OF_STUDY = sqlalchemy.text(
    f"SELECT trial_id FROM {models.TrialModel.__tablename__} WHERE study_id = :study"
)

_SILENT_TRIALS = sqlalchemy.text(
    f"SELECT t.trial_id FROM {models.TrialModel.__tablename__} t "
    "WHERE t.study_id = :study AND t.state = 'RUNNING' AND NOT EXISTS "
    f"(SELECT 1 FROM {models.TrialHeartbeatModel.__tablename__} h "
    "WHERE h.trial_id = t.trial_id)"
)


def _study_exists(connection: sqlalchemy.Connection, study_id: int) -> bool:
    table = models.StudyModel.__tablename__
    query = sqlalchemy.text(f"SELECT 1 FROM {table} WHERE study_id = :study")
    return connection.execute(query, {"study": study_id}).first() is not None


_STORED_DISTRIBUTIONS = sqlalchemy.text(
    f"SELECT DISTINCT ON (p.param_name) p.param_name, p.distribution_json "
    f"FROM {models.TrialParamModel.__tablename__} p JOIN {models.TrialModel.__tablename__} t "
    "ON t.trial_id = p.trial_id WHERE t.study_id = :study ORDER BY p.param_name, p.param_id"
)
_CREATE_TRIAL = sqlalchemy.text(
    f"SELECT * FROM {CREATE_TRIAL_FUNCTION}(:study, :start, CAST(:limit AS integer))"
)


def _autocommitted(
    engine: sqlalchemy.Engine, statement: sqlalchemy.TextClause, parameters: Mapping[str, Any]
) -> sqlalchemy.Row | None:
    """The first row of one statement run as a transaction of its own."""
    with autocommitting(engine) as connection:
        return connection.execute(statement, parameters).first()


@dataclass(frozen=True)
class _End:
    """How a trial ends: its finished state, its values (or none) and when."""

    state: TrialState
    values: Sequence[float] | None
    at: datetime.datetime


_WRITE_TRIAL = sqlalchemy.text(
    f"SELECT {WRITE_TRIAL_FUNCTION}(:trial, CAST(:param_names AS text[]), "
    "CAST(:param_values AS float8[]), CAST(:param_distributions AS text[]), "
    "CAST(:steps AS int[]), CAST(:step_values AS float8[]), CAST(:step_kinds AS text[]), "
    "CAST(:attr_keys AS text[]), CAST(:attr_values AS text[]), CAST(:objectives AS int[]), "
    "CAST(:values AS float8[]), CAST(:value_kinds AS text[]), CAST(:state AS text), "
    "CAST(:complete AS timestamp))"
)


def _write_trial(engine: sqlalchemy.Engine, arguments: Mapping[str, Any]) -> TrialState | None:
    """Write a trial's writes in one round trip; the state found (None: no such trial),
    with nothing written if it was finished. Errors as Optuna's ``_create_scoped_session``
    raises them: an integrity error as it is, others as ``StorageInternalError``."""
    try:
        row = with_schema(engine, lambda: _autocommitted(engine, _WRITE_TRIAL, arguments))
    except sqlalchemy.exc.IntegrityError:
        raise
    except sqlalchemy.exc.SQLAlchemyError as error:
        raise optuna.exceptions.StorageInternalError(
            "An exception is raised during the commit. This typically happens due to invalid "
            "data in the commit, e.g. exceeding max length. "
        ) from error
    stored = None if row is None else row[0]
    return None if stored is None else TrialState[stored]


def _write_arguments(trial_id: int, pending: _Pending, end: _End | None = None) -> dict[str, Any]:
    """The write function's arguments: the buffered writes, and the trial's end if given."""
    params = pending.params
    intermediate_model = models.TrialIntermediateValueModel
    steps = [
        intermediate_model.intermediate_value_to_stored_repr(v)
        for v in pending.intermediate_values.values()
    ]
    values = [] if end is None or not end.values else end.values
    stored_values = [models.TrialValueModel.value_to_stored_repr(v) for v in values]
    return {
        "trial": trial_id,
        "param_names": list(params),
        "param_values": [internal for internal, _ in params.values()],
        "param_distributions": [distribution_to_json(d) for _, d in params.values()],
        "steps": list(pending.intermediate_values),
        "step_values": [value for value, _ in steps],
        "step_kinds": [kind.name for _, kind in steps],
        "attr_keys": list(pending.user_attrs),
        "attr_values": [json.dumps(v) for v in pending.user_attrs.values()],
        "objectives": list(range(len(stored_values))),
        "values": [value for value, _ in stored_values],
        "value_kinds": [kind.name for _, kind in stored_values],
        "state": None if end is None else end.state.name,
        "complete": None if end is None else end.at,
    }


def _finished(
    trial: FrozenTrial,
    pending: _Pending,
    state: TrialState,
    values: Sequence[float] | None,
    finished_at: datetime.datetime,
) -> FrozenTrial:
    """``trial`` (as this process wrote it, or as read before ``finish_trial`` wrote) with
    its buffered writes, values, state and finish time."""
    params = dict(trial.params)
    distributions = dict(trial.distributions)
    for name, (internal, distribution) in pending.params.items():
        params[name] = distribution.to_external_repr(internal)
        distributions[name] = distribution
    return FrozenTrial(
        number=trial.number,
        state=state,
        value=None,
        values=None if values is None else [float(v) for v in values],
        datetime_start=trial.datetime_start,
        datetime_complete=finished_at,
        params=params,
        distributions=distributions,
        user_attrs={**trial.user_attrs, **pending.user_attrs},
        system_attrs=dict(trial.system_attrs),
        intermediate_values={**trial.intermediate_values, **pending.intermediate_values},
        trial_id=trial._trial_id,
    )


def tell(
    study: optuna.Study, trial: optuna.Trial, value: float | None, state: TrialState
) -> FrozenTrial:
    """``study.tell(trial, value, state=state, skip_if_finished=True)``; on a write-behind
    storage in one transaction (see the module docstring), else Optuna's own.

    The value told is Optuna's: a COMPLETE trial's ``value`` (not a number: Optuna's tell,
    which raises), a PRUNED trial's last report if it is a number, none for FAIL.
    """
    storage = getattr(study._storage, "_backend", study._storage)
    complete = state is TrialState.COMPLETE
    if not isinstance(storage, WriteBehindStorage) or (complete and not _is_number(value)):
        return study.tell(trial, value, state=state, skip_if_finished=True)
    study._thread_local.cached_all_trials = None
    cached = trial._cached_frozen_trial
    values = [float(value)] if complete else None  # type: ignore[arg-type]
    if state is TrialState.PRUNED and cached.intermediate_values:
        last = cached.intermediate_values[max(cached.intermediate_values)]
        values = [float(last)] if _is_number(last) else None
    study.sampler.after_trial(study, cached, state, values)
    return storage.finish_trial(trial._trial_id, state, values, known=cached)


def _is_number(value: Any) -> bool:
    try:
        return not math.isnan(float(value))
    except (TypeError, ValueError):
        return False


def flush(trial: optuna.Trial) -> None:
    """Make the trial's writes so far durable (no-op on storages that write through)."""
    storage = getattr(trial.storage, "_backend", trial.storage)  # behind optuna's cache
    if isinstance(storage, WriteBehindStorage):
        storage.flush(trial._trial_id)


def record_heartbeat(storage: RDBStorage, trial: optuna.Trial) -> None:
    """Record that the trial is alive (and write its buffered reports, on a write-behind
    storage): the worker calls this every heartbeat interval while the trial runs."""
    storage.record_heartbeat(trial._trial_id)
