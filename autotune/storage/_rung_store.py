"""Rung values in PostgreSQL, so that a rung decision never reads the trials of a study.

Two tables, next to Optuna's:

- ``autotune_rung_values``: one row per (study, rung, trial) with the reported ``value`` and
  its ``badness`` (lower is better: the value, negated when maximizing; NaN stays NaN, which
  PostgreSQL sorts after every number), indexed on (study_id, rung, badness, trial_id).
- ``autotune_rung_state``: one row per (study, rung) with the number of values ``n`` and a
  cursor on the ``k``-th best of them, ``k = keep_count(n, reduction_factor, min_keep)``, in
  the total order (badness, trial_id).

Cost of a decision. Counting the values better than a new one is an index range scan whose
length grows with the number of values recorded (PostgreSQL keeps no order statistics), so
that is not what a decision does. A trial continues iff fewer than ``k`` values are strictly
better than its own, i.e. iff the ``k``-th best value, itself included, is not strictly
better than its own. Adding one value moves ``k`` by at most one and the cursor by at most
one position each way, and each move is a ``LIMIT 1`` probe of the index. So a decision is a
fixed number of primary-key or ``LIMIT 1`` index lookups, O(log n), under a row lock on the
rung's state that serialises decisions at the same rung across workers. They run in one
PL/pgSQL function (``RECORD_FUNCTION``, in ``autotune.storage._schema``), called in a
transaction of its own: one round trip per decision, where 4-6 statements, a BEGIN and a
COMMIT took 1.3 ms on the embedded server, 0.8 ms now (``benchmarks/storage_calls.py``); the
count of better values alone grows from 1 to 15 ms between 0 and 100k values. Replacing a
trial's value at a rung with a different one is rare and takes the long way, in Python.

Failed trials are no competitors: the worker calls :func:`remove_trial` when a trial ends in
FAIL (training error, interruption, or marked stale), and may sweep with
:func:`remove_failed_trials`. A value is recorded only while the trial's row in Optuna's
``trials`` table is RUNNING, under a shared lock on that row; a trial therefore cannot record
a value after it was marked FAIL, even from a process that does not know yet.

Study ids are never reused, so rows of a deleted study are inert.
"""

from __future__ import annotations

from dataclasses import dataclass
from dataclasses import replace
import enum
from typing import Any

import optuna
from optuna.trial import FrozenTrial
import sqlalchemy
from sqlalchemy import Connection
from sqlalchemy import Engine
from sqlalchemy import text

from autotune.pruning._rungs import RungDecision
from autotune.pruning._rungs import badness
from autotune.pruning._rungs import is_better
from autotune.pruning._rungs import keep_count
from autotune.spec import Direction
from autotune.storage._engine import autocommitting
from autotune.storage._engine import engine_of
from autotune.storage._schema import RECORD_FUNCTION
from autotune.storage._schema import STATE_TABLE
from autotune.storage._schema import VALUES_TABLE
from autotune.storage._schema import is_missing_schema
from autotune.storage._schema import with_schema

_Entry = tuple[float, int]  # (badness, trial_id): the total order of values at a rung


@dataclass(frozen=True)
class _RungState:
    study_id: int
    rung: int
    direction: Direction
    reduction_factor: int
    min_keep: int
    n: int
    cursor: _Entry | None

    def keep(self, n: int) -> int:
        """How many of ``n`` values at this rung continue."""
        return keep_count(n, self.reduction_factor, self.min_keep)


def record_rung_value(
    engine: Engine,
    study_id: int,
    rung: int,
    trial_id: int,
    value: float,
    reduction_factor: int,
    direction: Direction,
    min_keep: int = 1,
) -> RungDecision:
    """Record (upsert) a trial's value at a rung and return ASHA's decision for it.

    The decision is :func:`autotune.pruning.decide` against every other value recorded at
    the rung. Recording again with the same value changes nothing and decides again. A trial
    that is no longer RUNNING records nothing and gets CONTINUE: Optuna refuses its next write.
    """
    rule = _Rule(reduction_factor, direction, min_keep)
    return with_schema(engine, lambda: _record(engine, study_id, rung, trial_id, value, rule))


def rank_at_rung(
    engine: Engine, study_id: int, rung: int, value: float, direction: Direction
) -> tuple[int, int]:
    """(values strictly better than ``value``, values recorded) at a rung; NaN is worst.

    For reports and checks, not for decisions: the count scans every better value's index
    entry, O(log n + better).
    """
    query = text(
        f"SELECT count(*) FROM {VALUES_TABLE} "
        "WHERE study_id = :study AND rung = :rung AND badness < :badness"
    )
    total = text(f"SELECT n FROM {STATE_TABLE} WHERE study_id = :study AND rung = :rung")
    params = {"study": study_id, "rung": rung, "badness": badness(value, direction)}
    try:
        with engine.connect() as connection:
            better = connection.execute(query, params).scalar_one()
            n = connection.execute(total, params).scalar()
    except sqlalchemy.exc.ProgrammingError as error:
        if not is_missing_schema(error):
            raise
        return 0, 0
    return better, n or 0


def recorded_rungs(engine: Engine, study_id: int, trial_id: int, rungs: int) -> tuple[int, ...]:
    """The rungs among ``0 .. rungs - 1`` that hold a value of the trial; a key probe each."""
    query = text(
        f"SELECT rung FROM {VALUES_TABLE} "
        "WHERE study_id = :study AND rung = ANY(:rungs) AND trial_id = :trial ORDER BY rung"
    )
    params = {"study": study_id, "rungs": list(range(rungs)), "trial": trial_id}
    try:
        with engine.connect() as connection:
            return tuple(connection.execute(query, params).scalars())
    except sqlalchemy.exc.ProgrammingError as error:
        if not is_missing_schema(error):
            raise
        return ()


def remove_trial(engine: Engine, study_id: int, trial_id: int) -> int:
    """Drop a trial's values at every rung (call it when the trial ends in FAIL).

    Returns how many values were removed; O(rungs * log n).
    """
    rungs_query = text(f"SELECT rung FROM {STATE_TABLE} WHERE study_id = :study ORDER BY rung")
    try:
        with engine.begin() as connection:
            rungs = connection.execute(rungs_query, {"study": study_id}).scalars().all()
            return sum(_remove(connection, study_id, rung, trial_id) for rung in rungs)
    except sqlalchemy.exc.ProgrammingError as error:
        if not is_missing_schema(error):
            raise
        return 0


def remove_failed_trials(engine: Engine, study_id: int) -> int:
    """Drop the values of every trial of the study that is FAIL; a sweep for the janitor.

    Reads all values of the study (joined with Optuna's trials), so call it periodically, not
    per report. Returns how many values were removed.
    """
    query = text(
        f"SELECT v.rung, v.trial_id FROM {VALUES_TABLE} v JOIN trials t USING (trial_id) "
        "WHERE v.study_id = :study AND t.state = 'FAIL' ORDER BY v.rung, v.trial_id"
    )
    try:
        with engine.begin() as connection:
            rows = connection.execute(query, {"study": study_id}).all()
            return sum(_remove(connection, study_id, rung, trial) for rung, trial in rows)
    except sqlalchemy.exc.ProgrammingError as error:
        if not is_missing_schema(error):
            raise
        return 0


@dataclass(frozen=True)
class TrialRungs:
    """One trial's entries in the rung store, for callers that hold Optuna's public objects."""

    engine: Engine
    study_id: int
    trial_id: int

    def recorded(self, rungs: int) -> tuple[int, ...]:
        """See :func:`recorded_rungs`."""
        return recorded_rungs(self.engine, self.study_id, self.trial_id, rungs)

    def record(
        self,
        rung: int,
        value: float,
        reduction_factor: int,
        direction: Direction,
        min_keep: int = 1,
    ) -> RungDecision:
        """See :func:`record_rung_value`."""
        return record_rung_value(
            self.engine,
            self.study_id,
            rung,
            self.trial_id,
            value,
            reduction_factor,
            direction,
            min_keep,
        )

    def remove(self) -> int:
        """See :func:`remove_trial`."""
        return remove_trial(self.engine, self.study_id, self.trial_id)


def trial_rungs(study: optuna.Study, trial: FrozenTrial) -> TrialRungs:
    """The trial's rung entries in the study's PostgreSQL rung store.

    Raises TypeError (not an ``RDBStorage``) or ValueError (not PostgreSQL) otherwise.
    """
    return TrialRungs(engine_of(study._storage), study._study_id, trial._trial_id)


# Statements of a decision, built once (a TextClause parses its binds when made).
_LOCK_RUNNING_TRIAL = text(
    "SELECT 1 FROM trials WHERE trial_id = :trial AND state = 'RUNNING' FOR SHARE"
)
_INSERT_STATE = text(
    f"INSERT INTO {STATE_TABLE} (study_id, rung, direction, reduction_factor, min_keep, n) "
    "VALUES (:study, :rung, :direction, :factor, :min_keep, 0) ON CONFLICT DO NOTHING"
)
_RECORD = text(
    f"SELECT * FROM {RECORD_FUNCTION}(:study, :rung, :trial, :value, :badness, :direction, "
    ":factor, :min_keep)"
)
_LOCK_EXISTING_STATE = text(
    "SELECT direction, reduction_factor, min_keep, n, cursor_badness, cursor_trial "
    f"FROM {STATE_TABLE} WHERE study_id = :study AND rung = :rung FOR UPDATE"
)
_SAVE_STATE = text(
    f"UPDATE {STATE_TABLE} SET n = :n, cursor_badness = :badness, cursor_trial = :trial "
    "WHERE study_id = :study AND rung = :rung"
)
_STORED_BADNESS = text(
    f"SELECT badness FROM {VALUES_TABLE} "
    "WHERE study_id = :study AND rung = :rung AND trial_id = :trial"
)
_INSERT_VALUE = text(
    f"INSERT INTO {VALUES_TABLE} (study_id, rung, trial_id, value, badness) "
    "VALUES (:study, :rung, :trial, :value, :badness)"
)
_DELETE_VALUE = text(
    f"DELETE FROM {VALUES_TABLE} WHERE study_id = :study AND rung = :rung AND trial_id = :trial"
)


def _neighbour_query(operator: str, order: str) -> sqlalchemy.TextClause:
    return text(
        f"SELECT badness, trial_id FROM {VALUES_TABLE} WHERE study_id = :study AND rung = :rung "
        f"AND (badness, trial_id) {operator} (:badness, :trial) "
        f"ORDER BY badness {order}, trial_id {order} LIMIT 1"
    )


_NEIGHBOUR_BEFORE = _neighbour_query("<", "DESC")
_NEIGHBOUR_AFTER = _neighbour_query(">", "ASC")


class _Outcome(enum.Enum):
    """What ``RECORD_FUNCTION`` did."""

    RECORDED = "recorded"  # the value is at the rung (new, or the same as before)
    NOT_RUNNING = "not_running"  # nothing: the trial is no longer RUNNING
    OTHER_RULE = "other_rule"  # nothing: the rung was recorded with another rule
    CHANGED = "changed"  # nothing: the trial holds another value there


@dataclass(frozen=True)
class _Rule:
    """How a rung decides; every worker of a study passes the same one."""

    reduction_factor: int
    direction: Direction
    min_keep: int


def _record(
    engine: Engine, study_id: int, rung: int, trial_id: int, value: float, rule: _Rule
) -> RungDecision:
    """The decision in one round trip (``RECORD_FUNCTION``, in its own transaction); a
    trial recording a different value at a rung again takes :func:`_record_changed`."""
    own = badness(float(value), rule.direction)
    parameters = {
        "study": study_id,
        "rung": rung,
        "trial": trial_id,
        "value": float(value),
        "badness": own,
        "direction": rule.direction.value,
        "factor": rule.reduction_factor,
        "min_keep": rule.min_keep,
    }
    with autocommitting(engine) as connection:
        row = connection.execute(_RECORD, parameters).one()
    outcome = _Outcome(row.outcome)
    if outcome is _Outcome.NOT_RUNNING:
        return RungDecision.CONTINUE
    if outcome is _Outcome.OTHER_RULE:
        _checked(_state_of(study_id, rung, row, n=0), rule)  # raises: the rules differ
    if outcome is _Outcome.CHANGED:
        return _record_changed(engine, study_id, rung, trial_id, value, rule)
    return _decision((row.cursor_badness, row.cursor_trial), own)


def _record_changed(
    engine: Engine, study_id: int, rung: int, trial_id: int, value: float, rule: _Rule
) -> RungDecision:
    """Replace a trial's value at a rung (its old value out, the new one in): rare, so in
    several statements, with the same locks as ``RECORD_FUNCTION``."""
    own = badness(float(value), rule.direction)
    with engine.begin() as connection:
        if not _lock_running_trial(connection, trial_id):
            return RungDecision.CONTINUE
        state = _lock_state(connection, study_id, rung, rule)
        stored = _stored_badness(connection, state, trial_id)
        if stored is None or _differ(stored, own):
            if stored is not None:
                state = _delete(connection, state, (stored, trial_id))
            state = _insert(connection, state, (own, trial_id), float(value))
            _save_state(connection, state)
    assert state.cursor is not None  # at least the trial's own value is recorded
    return _decision(state.cursor, own)


def _decision(cursor: _Entry, own: float) -> RungDecision:
    """A trial continues iff the k-th best value at its rung is not strictly better."""
    return RungDecision.PRUNE if is_better(cursor[0], own) else RungDecision.CONTINUE


def _remove(connection: Connection, study_id: int, rung: int, trial_id: int) -> int:
    state = _lock_existing_state(connection, study_id, rung)
    stored = _stored_badness(connection, state, trial_id) if state else None
    if state is None or stored is None:
        return 0
    _save_state(connection, _delete(connection, state, (stored, trial_id)))
    return 1


def _lock_running_trial(connection: Connection, trial_id: int) -> bool:
    """Share-lock the trial's row if RUNNING, so it cannot turn FAIL before we commit."""
    return connection.execute(_LOCK_RUNNING_TRIAL, {"trial": trial_id}).first() is not None


def _lock_state(connection: Connection, study_id: int, rung: int, rule: _Rule) -> _RungState:
    connection.execute(
        _INSERT_STATE,
        {
            "study": study_id,
            "rung": rung,
            "direction": rule.direction.value,
            "factor": rule.reduction_factor,
            "min_keep": rule.min_keep,
        },
    )
    state = _lock_existing_state(connection, study_id, rung)
    assert state is not None  # inserted above, rows are never deleted
    return _checked(state, rule)


def _checked(state: _RungState, rule: _Rule) -> _RungState:
    """``state``, if recorded with ``rule``; else ValueError (workers disagree on it)."""
    recorded = _Rule(state.reduction_factor, state.direction, state.min_keep)
    if recorded != rule:
        raise ValueError(
            f"study {state.study_id} rung {state.rung} was recorded with "
            f"{state.direction.value}, reduction_factor {state.reduction_factor} and min_keep "
            f"{state.min_keep}, not {rule.direction.value}, {rule.reduction_factor} and "
            f"{rule.min_keep}"
        )
    return state


def _lock_existing_state(connection: Connection, study_id: int, rung: int) -> _RungState | None:
    row = connection.execute(
        _LOCK_EXISTING_STATE,
        {"study": study_id, "rung": rung},
    ).first()
    return None if row is None else _state_of(study_id, rung, row)


def _state_of(study_id: int, rung: int, row: Any, n: int | None = None) -> _RungState:
    cursor = None if row.cursor_trial is None else (row.cursor_badness, row.cursor_trial)
    return _RungState(
        study_id,
        rung,
        Direction(row.direction),
        row.reduction_factor,
        row.min_keep,
        row.n if n is None else n,
        cursor,
    )


def _save_state(connection: Connection, state: _RungState) -> None:
    cursor_badness, cursor_trial = state.cursor or (None, None)
    connection.execute(
        _SAVE_STATE,
        {
            "n": state.n,
            "badness": cursor_badness,
            "trial": cursor_trial,
            "study": state.study_id,
            "rung": state.rung,
        },
    )


def _stored_badness(connection: Connection, state: _RungState, trial_id: int) -> float | None:
    return connection.execute(
        _STORED_BADNESS,
        {"study": state.study_id, "rung": state.rung, "trial": trial_id},
    ).scalar()


def _insert(connection: Connection, state: _RungState, entry: _Entry, value: float) -> _RungState:
    """Add a value and keep the cursor on the k-th best (k grows by at most one)."""
    connection.execute(
        _INSERT_VALUE,
        {
            "study": state.study_id,
            "rung": state.rung,
            "trial": entry[1],
            "value": value,
            "badness": entry[0],
        },
    )
    if state.cursor is None:
        return replace(state, n=1, cursor=entry)
    cursor = state.cursor
    if _precedes(entry, cursor):  # the old k-th best moved to k + 1
        cursor = _neighbour(connection, state, cursor, before=True)
    if state.keep(state.n + 1) > state.keep(state.n):
        cursor = _neighbour(connection, state, cursor, before=False)
    return replace(state, n=state.n + 1, cursor=cursor)


def _delete(connection: Connection, state: _RungState, entry: _Entry) -> _RungState:
    """Remove a value and keep the cursor on the k-th best (k shrinks by at most one)."""
    connection.execute(
        _DELETE_VALUE,
        {"study": state.study_id, "rung": state.rung, "trial": entry[1]},
    )
    if state.n == 1 or state.cursor is None:
        return replace(state, n=0, cursor=None)
    cursor = state.cursor
    shrinks = state.keep(state.n - 1) < state.keep(state.n)
    if _precedes(cursor, entry):  # removed after the k-th best: it moves only if k does
        moved = shrinks
    elif cursor == entry:  # the k-th best removed: the next one, or the one before
        moved = True
    else:  # removed before the k-th best, which is now (k-1)-th: k - 1 keeps it there
        moved = not shrinks
    if moved:  # never past the end: when k == n the cursor is the last value
        cursor = _neighbour(connection, state, cursor, before=shrinks)
    return replace(state, n=state.n - 1, cursor=cursor)


def _neighbour(
    connection: Connection, state: _RungState, entry: _Entry, *, before: bool
) -> _Entry:
    """The value just before or after ``entry`` in (badness, trial_id) order: one index probe."""
    row = connection.execute(
        _NEIGHBOUR_BEFORE if before else _NEIGHBOUR_AFTER,
        {"study": state.study_id, "rung": state.rung, "badness": entry[0], "trial": entry[1]},
    ).one()
    return row.badness, row.trial_id


def _precedes(a: _Entry, b: _Entry) -> bool:
    """Whether ``a`` comes strictly before ``b`` in (badness, trial_id) order; NaN last."""
    if is_better(a[0], b[0]):
        return True
    return not is_better(b[0], a[0]) and a[1] < b[1]


def _differ(a: float, b: float) -> bool:
    return is_better(a, b) or is_better(b, a)
