"""Optuna trials read from PostgreSQL in one query each call.

Optuna's ``RDBStorage`` loads a trial with a query per part (parameters, values, user and
system attributes, intermediate values) and builds ORM objects on the way; a worker reads
its running trial back several times per trial (``ask``, ``tell``). One query with JSON
aggregates per part returns the same :class:`~optuna.trial.FrozenTrial`s, built with
Optuna's own conversions of the stored representations.
"""

from __future__ import annotations

from collections.abc import Mapping
import datetime
import json
from typing import Any

from optuna import distributions
from optuna.storages import BaseStorage
from optuna.storages._rdb import models
from optuna.study._frozen import FrozenStudy
from optuna.trial import FrozenTrial
from optuna.trial import TrialState
import sqlalchemy

_TRIALS = models.TrialModel.__tablename__
# Each part of a trial: its table's model and the columns read, aggregated in primary-key
# order (the order Optuna's ORM relationships load them in).
_PARTS: dict[str, tuple[type[models.BaseModel], tuple[str, ...]]] = {
    "trial_values": (models.TrialValueModel, ("objective", "value", "value_type")),
    "params": (models.TrialParamModel, ("param_name", "param_value", "distribution_json")),
    "user_attrs": (models.TrialUserAttributeModel, ("key", "value_json")),
    "system_attrs": (models.TrialSystemAttributeModel, ("key", "value_json")),
    "intermediate": (
        models.TrialIntermediateValueModel,
        ("step", "intermediate_value", "intermediate_value_type"),
    ),
}


def _aggregate(name: str, model: type[models.BaseModel], columns: tuple[str, ...]) -> str:
    table = model.__table__
    (key,) = table.primary_key.columns
    fields = ", ".join(f"x.{column}" for column in columns)
    return (
        f"(SELECT json_agg(json_build_array({fields}) ORDER BY x.{key.name}) "
        f"FROM {table.name} x WHERE x.trial_id = t.trial_id) AS {name}"
    )


def trials_query(where: str) -> sqlalchemy.TextClause:
    """SELECT every part of the trials matching ``where`` (over alias ``t``), by trial_id."""
    parts = ", ".join(_aggregate(name, *part) for name, part in _PARTS.items())
    return sqlalchemy.text(
        "SELECT t.trial_id, t.number, t.state::text AS state, t.datetime_start, "
        f"t.datetime_complete, {parts} FROM {_TRIALS} t WHERE {where} ORDER BY t.trial_id"
    )


def read_trials(
    connection: sqlalchemy.Connection, where: str, parameters: Mapping[str, Any]
) -> list[FrozenTrial]:
    """The trials matching ``where`` (SQL over alias ``t``), as Optuna's storage builds them."""
    rows = connection.execute(trials_query(where), dict(parameters)).mappings()
    return [frozen_trial(row) for row in rows]


def trial_curve(
    storage: BaseStorage, study_name: str, trial_number: int, until_step: int
) -> dict[int, float]:
    """A trial's intermediate values up to ``until_step``, by step in order.

    A trial resumed from another's checkpoint reports them again: its curve stays whole.
    """
    study_id = storage.get_study_id_from_name(study_name)
    trial_id = storage.get_trial_id_from_study_id_trial_number(study_id, trial_number)
    curve = storage.get_trial(trial_id).intermediate_values
    return {step: value for step, value in sorted(curve.items()) if step <= until_step}


def frozen_trial(row: Mapping[str, Any]) -> FrozenTrial:
    """One row of :func:`trials_query` as a FrozenTrial."""
    params = [
        (name, float(value), distributions.json_to_distribution(encoded))
        for name, value, encoded in row["params"] or ()
    ]
    return FrozenTrial(
        number=row["number"],
        state=TrialState[row["state"]],
        value=None,
        values=_values(row["trial_values"]),
        datetime_start=_local(row["datetime_start"]),
        datetime_complete=_local(row["datetime_complete"]),
        params={name: dist.to_external_repr(value) for name, value, dist in params},
        distributions={name: dist for name, _, dist in params},
        user_attrs={key: json.loads(value) for key, value in row["user_attrs"] or ()},
        system_attrs={key: json.loads(value) for key, value in row["system_attrs"] or ()},
        intermediate_values=_intermediate(row["intermediate"]),
        trial_id=row["trial_id"],
    )


def _values(stored: list[list[Any]] | None) -> list[float] | None:
    if not stored:
        return None
    model = models.TrialValueModel
    values = [0.0] * len(stored)
    for objective, value, value_type in stored:
        values[objective] = model.stored_repr_to_value(
            _float(value), model.TrialValueType[value_type]
        )
    return values


def _intermediate(stored: list[list[Any]] | None) -> dict[int, float]:
    model = models.TrialIntermediateValueModel
    kinds = model.TrialIntermediateValueType
    return {
        step: model.stored_repr_to_intermediate_value(_float(value), kinds[kind])
        for step, value, kind in stored or ()
    }


def _float(stored: float | int | None) -> float | None:
    """JSON writes a whole double as an integer: back to float (None: a non-finite value)."""
    return None if stored is None else float(stored)


def _local(utc: datetime.datetime | None) -> datetime.datetime | None:
    """Naive UTC as stored → naive local time, as Optuna's TrialModel returns it."""
    if utc is None:
        return None
    return utc.replace(tzinfo=datetime.UTC).astimezone().replace(tzinfo=None)


def study_id_of(study: FrozenStudy) -> int:
    """The storage's id of a study listed by ``get_all_studies`` (Optuna keeps it private)."""
    return study._study_id
