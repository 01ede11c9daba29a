"""Periods: the data split a training run uses (a date range or one of k seeded folds)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
import datetime
import enum
import numbers
import re
from typing import Any

_DATE_FIELDS = ("start", "end")
_VALIDATION_FIELDS = ("validation_start", "validation_end")
_FOLD_FIELDS = ("fold", "folds", "seed")
_JSON_KEYS = frozenset({"name", *_DATE_FIELDS, *_VALIDATION_FIELDS, *_FOLD_FIELDS})
_ISO = r"\d{4}-\d{2}-\d{2}"
_DATE_RANGE_NAME = re.compile(rf"({_ISO})\.\.({_ISO})(?: validate ({_ISO})\.\.({_ISO}))?")


class PeriodKind(enum.Enum):
    """How a period selects data: a date range of a time series, or a fold of iid data."""

    DATE_RANGE = "date_range"
    FOLD = "fold"


def _is_int(value: object) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _invalid(field: str, value: object, allowed: str) -> ValueError:
    return ValueError(f"Period.{field}={value!r} is invalid; allowed: {allowed}")


@dataclass(frozen=True)
class Period:
    """A data split: a date range (time series) or one of k disjoint seeded folds (iid data).

    A period says what it trains and what it validates on. Time series: train on the
    observations dated `start`..`end` (inclusive), validate on `validation_start`..
    `validation_end` (inclusive, after `end`), or when those are None on the task's
    validation span right after `end`. Iid data: the rows are split into `folds`
    disjoint folds by a seeded assignment; validate on fold `fold` (0-based), train on
    the others. Build periods with `Period.date_range` or `Period.kfold`, or ask a task
    for them (`task.periods(count, seed)`, `task.default_period()`).
    """

    name: str
    start: datetime.date | None = None
    end: datetime.date | None = None
    fold: int | None = None
    folds: int | None = None
    seed: int | None = None
    validation_start: datetime.date | None = None
    validation_end: datetime.date | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise _invalid("name", self.name, "a non-empty string")
        dates = [getattr(self, f) for f in _DATE_FIELDS]
        folds = [getattr(self, f) for f in _FOLD_FIELDS]
        if all(v is not None for v in dates) and all(v is None for v in folds):
            self._check_dates()
        elif all(v is not None for v in folds) and all(v is None for v in dates):
            self._check_fold()
        else:
            raise ValueError(
                f"Period {self.name!r} is invalid: start={self.start!r}, end={self.end!r}, "
                f"fold={self.fold!r}, folds={self.folds!r}, seed={self.seed!r}; allowed: "
                "either start and end (a date range) or fold, folds and seed (a fold)"
            )

    def _check_dates(self) -> None:
        for field in _DATE_FIELDS:
            value = getattr(self, field)
            if not isinstance(value, datetime.date) or isinstance(value, datetime.datetime):
                raise _invalid(field, value, "a datetime.date")
        if self.end < self.start:
            raise _invalid("end", self.end, f"a date on or after start ({self.start})")
        self._check_validation()

    def _check_validation(self) -> None:
        given = [getattr(self, f) is not None for f in _VALIDATION_FIELDS]
        if not any(given):
            return
        if not all(given) or self.kind is PeriodKind.FOLD:
            raise ValueError(
                f"Period {self.name!r} is invalid: validation_start={self.validation_start!r},"
                f" validation_end={self.validation_end!r}; allowed: both or neither, on a date"
                " range (a fold validates on its fold)"
            )
        for field in _VALIDATION_FIELDS:
            value = getattr(self, field)
            if not isinstance(value, datetime.date) or isinstance(value, datetime.datetime):
                raise _invalid(field, value, "a datetime.date")
        if self.validation_start <= self.end:
            raise _invalid(
                "validation_start", self.validation_start, f"a date after end ({self.end})"
            )
        if self.validation_end < self.validation_start:
            raise _invalid(
                "validation_end",
                self.validation_end,
                f"a date on or after validation_start ({self.validation_start})",
            )

    def _check_fold(self) -> None:
        self._check_validation()
        if not _is_int(self.folds) or self.folds < 2:
            raise _invalid("folds", self.folds, "an int >= 2")
        if not _is_int(self.fold) or not 0 <= self.fold < self.folds:
            raise _invalid("fold", self.fold, f"an int in [0, {self.folds - 1}]")
        if not _is_int(self.seed) or self.seed < 0:
            raise _invalid("seed", self.seed, "an int >= 0")

    @classmethod
    def date_range(
        cls,
        start: datetime.date,
        end: datetime.date,
        validation_start: datetime.date | None = None,
        validation_end: datetime.date | None = None,
    ) -> Period:
        """Train on `start`..`end` (inclusive), named like "1990-01-06..1999-12-25"; validate
        on `validation_start`..`validation_end` (default: the task's span right after end)."""
        name = f"{start}..{end}"
        if validation_start is not None or validation_end is not None:
            name += f" validate {validation_start}..{validation_end}"
        return cls(name, start, end, None, None, None, validation_start, validation_end)

    @classmethod
    def kfold(cls, fold: int, folds: int, seed: int) -> Period:
        """Validate on fold `fold` of a `folds`-fold split seeded by `seed`."""
        return cls(name=f"fold {fold}/{folds} (seed {seed})", fold=fold, folds=folds, seed=seed)

    @classmethod
    def from_name(cls, text: str) -> Period | None:
        """The date range a name of `date_range`'s form spells ("START..END", optionally
        " validate VSTART..VEND"); None if `text` is not of that form."""
        match = _DATE_RANGE_NAME.fullmatch(text.strip())
        if match is None:
            return None
        dates = [None if g is None else parse_date(g, "period date") for g in match.groups()]
        return cls.date_range(*dates)  # type: ignore[arg-type]

    @property
    def kind(self) -> PeriodKind:
        """DATE_RANGE or FOLD."""
        return PeriodKind.FOLD if self.folds is not None else PeriodKind.DATE_RANGE

    def to_json_dict(self) -> dict[str, Any]:
        """JSON-safe form: the name and the set fields (dates as ISO strings)."""
        data: dict[str, Any] = {"name": self.name}
        if self.kind is PeriodKind.DATE_RANGE:
            data |= {"start": self.start.isoformat(), "end": self.end.isoformat()}
            if self.validation_start is not None:
                data["validation_start"] = self.validation_start.isoformat()
                data["validation_end"] = self.validation_end.isoformat()
            return data
        return {**data, "fold": self.fold, "folds": self.folds, "seed": self.seed}

    @classmethod
    def from_json_dict(cls, data: Mapping[str, Any]) -> Period:
        """Inverse of `to_json_dict`; ValueError names unknown keys or bad values."""
        if not isinstance(data, Mapping):
            raise ValueError(f"Period JSON {data!r} is invalid; allowed: a mapping")
        unknown = sorted(set(data) - _JSON_KEYS)
        if unknown:
            raise ValueError(
                f"unknown Period key(s) {', '.join(map(repr, unknown))}; "
                f"allowed: {', '.join(sorted(_JSON_KEYS))}"
            )
        fields = dict(data)
        for field in (*_DATE_FIELDS, *_VALIDATION_FIELDS):
            if fields.get(field) is not None:
                fields[field] = parse_date(fields[field], f"Period.{field}")
        return cls(**fields)


def parse_date(value: object, what: str) -> datetime.date:
    """A datetime.date from a date or an ISO "YYYY-MM-DD" string; ValueError names `what`."""
    if isinstance(value, datetime.date) and not isinstance(value, datetime.datetime):
        return value
    if isinstance(value, str):
        try:
            return datetime.date.fromisoformat(value)
        except ValueError:
            pass
    raise ValueError(f"{what}={value!r} is invalid; allowed: a date or an ISO date 'YYYY-MM-DD'")
