"""autotune's own tables and functions in the study database, next to Optuna's.

The rung store's two tables (``autotune.storage._rung_store``) and PL/pgSQL functions that do
in one round trip what took several statements, a BEGIN and a COMMIT: a rung decision,
creating a trial, and writing a trial's buffered writes (and its end). They are made when
first missing (:func:`ensure_schema`), by whichever process meets them missing first;
callers catch :func:`is_missing_schema` errors, ensure the schema and retry.
"""

from __future__ import annotations

from collections.abc import Callable
import hashlib
from typing import TypeVar

from optuna.storages._rdb import models
import sqlalchemy
from sqlalchemy import Engine
from sqlalchemy import text

VALUES_TABLE = "autotune_rung_values"
STATE_TABLE = "autotune_rung_state"
# Functions: a round trip each for what took several statements. A changed function gets a
# new name, so workers of two versions can share a database while a deployment rolls.
RECORD_FUNCTION = "autotune_record_rung_v1"  # a rung decision (autotune.storage._rung_store)
KEEP_COUNT_FUNCTION = "autotune_keep_count_v1"  # autotune.pruning.keep_count, in SQL
CREATE_TRIAL_FUNCTION = "autotune_create_trial_v2"  # a new RUNNING trial, numbered, capped
WRITE_TRIAL_FUNCTION = "autotune_write_trial_v1"  # a trial's buffered writes, and its end
T = TypeVar("T")
_SIGNATURES = {  # argument types, as to_regprocedure takes them
    KEEP_COUNT_FUNCTION: "integer, integer, integer",
    RECORD_FUNCTION: (
        "integer, integer, integer, double precision, double precision, text, integer, integer"
    ),
    CREATE_TRIAL_FUNCTION: "integer, timestamp without time zone, integer",
    WRITE_TRIAL_FUNCTION: (
        "integer, text[], double precision[], text[], integer[], double precision[], text[], "
        "text[], text[], integer[], double precision[], text[], text, "
        "timestamp without time zone"
    ),
}
_TRIALS = models.TrialModel.__tablename__
_PARAMS = models.TrialParamModel.__tablename__
_INTERMEDIATE_VALUES = models.TrialIntermediateValueModel.__tablename__
_USER_ATTRS = models.TrialUserAttributeModel.__tablename__
_VALUES = models.TrialValueModel.__tablename__
_STUDIES = models.StudyModel.__tablename__
_UNDEFINED_TABLE = "42P01"
_UNDEFINED_COLUMN = "42703"
_UNDEFINED_FUNCTION = "42883"
_SCHEMA_LOCK_KEY = int.from_bytes(
    hashlib.sha256(b"autotune.pruning schema").digest()[:8], "big", signed=True
)

_TABLES = (
    f"""CREATE TABLE IF NOT EXISTS {VALUES_TABLE} (
        study_id integer NOT NULL,
        rung integer NOT NULL,
        trial_id integer NOT NULL,
        value double precision NOT NULL,
        badness double precision NOT NULL,
        PRIMARY KEY (study_id, rung, trial_id))""",
    f"""CREATE INDEX IF NOT EXISTS {VALUES_TABLE}_order
        ON {VALUES_TABLE} (study_id, rung, badness, trial_id)""",
    f"""CREATE TABLE IF NOT EXISTS {STATE_TABLE} (
        study_id integer NOT NULL,
        rung integer NOT NULL,
        direction text NOT NULL,
        reduction_factor integer NOT NULL,
        n integer NOT NULL,
        cursor_badness double precision,
        cursor_trial integer,
        PRIMARY KEY (study_id, rung))""",
    # Added after the first release: databases created before it get the column here.
    f"ALTER TABLE {STATE_TABLE} ADD COLUMN IF NOT EXISTS min_keep integer NOT NULL DEFAULT 1",
)

_KEEP_COUNT_DDL = f"""CREATE OR REPLACE FUNCTION {KEEP_COUNT_FUNCTION}(
        n integer, factor integer, min_keep integer) RETURNS integer LANGUAGE sql IMMUTABLE
        AS $$ SELECT greatest(1, least(n, greatest(min_keep, n / factor))) $$"""

_RECORD_DDL = f"""CREATE OR REPLACE FUNCTION {RECORD_FUNCTION}(
        p_study integer, p_rung integer, p_trial integer, p_value double precision,
        p_badness double precision, p_direction text, p_factor integer, p_min_keep integer,
        OUT outcome text, OUT direction text, OUT reduction_factor integer,
        OUT min_keep integer, OUT cursor_badness double precision, OUT cursor_trial integer)
    LANGUAGE plpgsql AS $$
    DECLARE
        state record;
        stored double precision;
    BEGIN
        PERFORM 1 FROM {_TRIALS} t WHERE t.trial_id = p_trial AND t.state = 'RUNNING' FOR SHARE;
        IF NOT FOUND THEN
            outcome := 'not_running';
            RETURN;
        END IF;
        SELECT s.direction, s.reduction_factor, s.min_keep, s.n, s.cursor_badness,
               s.cursor_trial INTO state
            FROM {STATE_TABLE} s WHERE s.study_id = p_study AND s.rung = p_rung FOR UPDATE;
        IF NOT FOUND THEN
            INSERT INTO {STATE_TABLE} (study_id, rung, direction, reduction_factor, min_keep, n)
                VALUES (p_study, p_rung, p_direction, p_factor, p_min_keep, 0)
                ON CONFLICT DO NOTHING;
            SELECT s.direction, s.reduction_factor, s.min_keep, s.n, s.cursor_badness,
                   s.cursor_trial INTO state
                FROM {STATE_TABLE} s WHERE s.study_id = p_study AND s.rung = p_rung FOR UPDATE;
        END IF;
        direction := state.direction;
        reduction_factor := state.reduction_factor;
        min_keep := state.min_keep;
        cursor_badness := state.cursor_badness;
        cursor_trial := state.cursor_trial;
        IF (direction, reduction_factor, min_keep)
                IS DISTINCT FROM (p_direction, p_factor, p_min_keep) THEN
            outcome := 'other_rule';
            RETURN;
        END IF;
        SELECT v.badness INTO stored FROM {VALUES_TABLE} v
            WHERE v.study_id = p_study AND v.rung = p_rung AND v.trial_id = p_trial;
        IF FOUND THEN  -- PostgreSQL's NaN equals NaN, as in the rung order
            outcome := CASE WHEN stored = p_badness THEN 'recorded' ELSE 'changed' END;
            RETURN;
        END IF;
        INSERT INTO {VALUES_TABLE} (study_id, rung, trial_id, value, badness)
            VALUES (p_study, p_rung, p_trial, p_value, p_badness);
        IF cursor_trial IS NULL THEN
            cursor_badness := p_badness;
            cursor_trial := p_trial;
        ELSE
            IF (p_badness, p_trial) < (cursor_badness, cursor_trial) THEN
                SELECT v.badness, v.trial_id INTO cursor_badness, cursor_trial
                    FROM {VALUES_TABLE} v WHERE v.study_id = p_study AND v.rung = p_rung
                    AND (v.badness, v.trial_id) < (cursor_badness, cursor_trial)
                    ORDER BY v.badness DESC, v.trial_id DESC LIMIT 1;
            END IF;
            IF {KEEP_COUNT_FUNCTION}(state.n + 1, p_factor, p_min_keep)
                    > {KEEP_COUNT_FUNCTION}(state.n, p_factor, p_min_keep) THEN
                SELECT v.badness, v.trial_id INTO cursor_badness, cursor_trial
                    FROM {VALUES_TABLE} v WHERE v.study_id = p_study AND v.rung = p_rung
                    AND (v.badness, v.trial_id) > (cursor_badness, cursor_trial)
                    ORDER BY v.badness ASC, v.trial_id ASC LIMIT 1;
            END IF;
        END IF;
        UPDATE {STATE_TABLE} s SET n = state.n + 1,
            cursor_badness = {RECORD_FUNCTION}.cursor_badness,
            cursor_trial = {RECORD_FUNCTION}.cursor_trial
            WHERE s.study_id = p_study AND s.rung = p_rung;
        outcome := 'recorded';
    END $$"""

# The study's row is locked (as Optuna's _create_new_trial locks it), so the count of
# its trials, read by the next statement (a new snapshot), is the new trial's number. With
# p_max_trials, no trial is made once the study holds that many: one row of NULLs says so
# (no row: no such study). v1 had no cap.
_CREATE_TRIAL_DDL = f"""CREATE OR REPLACE FUNCTION {CREATE_TRIAL_FUNCTION}(
        p_study integer, p_start timestamp, p_max_trials integer)
        RETURNS TABLE (trial_id integer, number integer)
    LANGUAGE plpgsql AS $$
    DECLARE
        existing integer;
    BEGIN
        PERFORM 1 FROM {_STUDIES} s WHERE s.study_id = p_study FOR UPDATE;
        IF NOT FOUND THEN
            RETURN;
        END IF;
        SELECT count(*) INTO existing FROM {_TRIALS} c WHERE c.study_id = p_study;
        IF existing >= p_max_trials THEN
            RETURN QUERY SELECT NULL::integer, NULL::integer;
            RETURN;
        END IF;
        RETURN QUERY INSERT INTO {_TRIALS} AS t (number, study_id, state, datetime_start)
            VALUES (existing, p_study, 'RUNNING', p_start)
            RETURNING t.trial_id, t.number;
    END $$"""

# A running trial's writes as Optuna's RDBStorage makes them, under a lock on the trial's row;
# nothing is written to a finished trial. Returns the state found (NULL: no such trial).
_WRITE_TRIAL_DDL = f"""CREATE OR REPLACE FUNCTION {WRITE_TRIAL_FUNCTION}(
        p_trial integer, p_param_names text[], p_param_values double precision[],
        p_param_distributions text[], p_steps integer[], p_step_values double precision[],
        p_step_kinds text[], p_attr_keys text[], p_attr_values text[], p_objectives integer[],
        p_values double precision[], p_value_kinds text[], p_state text,
        p_complete timestamp) RETURNS text
    LANGUAGE plpgsql AS $$
    DECLARE
        stored text;
    BEGIN
        SELECT t.state::text INTO stored FROM {_TRIALS} t WHERE t.trial_id = p_trial FOR UPDATE;
        IF NOT FOUND OR stored IN ('COMPLETE', 'PRUNED', 'FAIL') THEN
            RETURN stored;
        END IF;
        INSERT INTO {_PARAMS} (trial_id, param_name, param_value, distribution_json)
            SELECT p_trial, n, v, d
            FROM unnest(p_param_names, p_param_values, p_param_distributions) AS u(n, v, d);
        INSERT INTO {_INTERMEDIATE_VALUES}
                (trial_id, step, intermediate_value, intermediate_value_type)
            SELECT p_trial, s, v, CAST(k AS trialintermediatevaluetype)
            FROM unnest(p_steps, p_step_values, p_step_kinds) AS u(s, v, k)
            ON CONFLICT (trial_id, step) DO UPDATE SET
                intermediate_value = EXCLUDED.intermediate_value,
                intermediate_value_type = EXCLUDED.intermediate_value_type;
        INSERT INTO {_USER_ATTRS} (trial_id, key, value_json)
            SELECT p_trial, k, v FROM unnest(p_attr_keys, p_attr_values) AS u(k, v)
            ON CONFLICT (trial_id, key) DO UPDATE SET value_json = EXCLUDED.value_json;
        INSERT INTO {_VALUES} (trial_id, objective, value, value_type)
            SELECT p_trial, o, v, CAST(k AS trialvaluetype)
            FROM unnest(p_objectives, p_values, p_value_kinds) AS u(o, v, k)
            ON CONFLICT (trial_id, objective) DO UPDATE SET
                value = EXCLUDED.value, value_type = EXCLUDED.value_type;
        IF p_state IS NOT NULL THEN
            UPDATE {_TRIALS} SET state = CAST(p_state AS trialstate),
                datetime_complete = p_complete WHERE trial_id = p_trial;
        END IF;
        RETURN stored;
    END $$"""

_FUNCTIONS = {
    KEEP_COUNT_FUNCTION: _KEEP_COUNT_DDL,
    RECORD_FUNCTION: _RECORD_DDL,
    CREATE_TRIAL_FUNCTION: _CREATE_TRIAL_DDL,
    WRITE_TRIAL_FUNCTION: _WRITE_TRIAL_DDL,
}

# Whether every object of _TABLES exists. A process that found a table missing, waited for
# the schema lock and ran CREATE INDEX / ALTER TABLE anyway would lock the tables that the
# process which made them is already deciding in: a deadlock (seen with two workers). ALTER
# TABLE also needs the table's owner, which a database made by another role may not be.
_TABLES_COMPLETE = text(
    f"SELECT to_regclass('{VALUES_TABLE}') IS NOT NULL "
    f"AND to_regclass('{VALUES_TABLE}_order') IS NOT NULL "
    f"AND EXISTS (SELECT 1 FROM information_schema.columns WHERE table_name = '{STATE_TABLE}' "
    "AND column_name = 'min_keep' AND table_schema = current_schema())"
)
_FUNCTION_EXISTS = text("SELECT to_regprocedure(:signature) IS NOT NULL")


def ensure_schema(engine: Engine) -> None:
    """Create the tables and functions that are missing; safe when many workers start at
    once. Only what is missing is made: DDL on what exists would lock tables others use, and
    replacing a function needs its owner."""
    with engine.begin() as connection:
        # CREATE ... IF NOT EXISTS races on the catalog; a transaction lock serialises it.
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _SCHEMA_LOCK_KEY})
        if not connection.execute(_TABLES_COMPLETE).scalar():
            for statement in _TABLES:
                connection.execute(text(statement))
        for name, statement in _FUNCTIONS.items():
            signature = f"{name}({_SIGNATURES[name]})"
            if not connection.execute(_FUNCTION_EXISTS, {"signature": signature}).scalar():
                connection.execute(text(statement))


def with_schema(engine: Engine, call: Callable[[], T]) -> T:
    """``call()``; if it met part of autotune's schema missing, once more after making it."""
    try:
        return call()
    except sqlalchemy.exc.ProgrammingError as error:
        if not is_missing_schema(error):
            raise
    ensure_schema(engine)
    return call()


def is_missing_schema(error: sqlalchemy.exc.ProgrammingError) -> bool:
    """A table, a column added since it was made, or a function is missing: ensure the
    schema."""
    missing = (_UNDEFINED_TABLE, _UNDEFINED_COLUMN, _UNDEFINED_FUNCTION)
    return getattr(error.orig, "pgcode", None) in missing
