"""Frozen records ↔ plain JSON-able data, for Optuna user attributes.

One generic round trip instead of a hand-written pair per record: ``to_plain`` writes
enums by value, tuples as lists and non-finite floats as text; ``from_plain`` reads the
same data back into the record's declared field types.
"""

from __future__ import annotations

import dataclasses
import enum
import math
import types
from typing import Any
from typing import Union
from typing import get_args
from typing import get_origin
from typing import get_type_hints


def to_attr(record: Any) -> dict[str, Any]:
    """A dataclass record as JSON-able data (see ``to_plain``)."""
    return plain(dataclasses.asdict(record))


def plain(value: Any) -> Any:
    """``value`` with enums, tuples and non-finite floats made JSON-friendly."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value


def from_plain(hint: Any, data: Any) -> Any:
    """``data`` (as written by ``plain``) read back as type ``hint``.

    Raises ValueError or TypeError on data that does not fit the hint.
    """
    origin = get_origin(hint)
    if origin in (Union, types.UnionType):
        return _from_union(get_args(hint), data)
    if origin is tuple:
        args = get_args(hint)
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(from_plain(args[0], item) for item in data)
        return tuple(from_plain(arg, item) for arg, item in zip(args, data, strict=True))
    if origin is dict:
        _, value_hint = get_args(hint)
        return {key: from_plain(value_hint, value) for key, value in data.items()}
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        return _from_dataclass(hint, data)
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        return hint(data)
    if hint is float:
        return float(data)
    if hint is int and not isinstance(data, bool):
        return int(data)
    return data


def _from_union(options: tuple[Any, ...], data: Any) -> Any:
    if data is None and type(None) in options:
        return None
    errors = []
    for option in (o for o in options if o is not type(None)):
        try:
            return from_plain(option, data)
        except (TypeError, ValueError, KeyError, AttributeError) as error:
            errors.append(error)
    raise ValueError(f"{data!r} fits none of {options}: {errors}")


def _from_dataclass(cls: type, data: Any) -> Any:
    if not isinstance(data, dict):
        raise TypeError(f"{cls.__name__} needs a mapping, got {type(data).__name__}")
    hints = get_type_hints(cls)
    values = {
        field.name: from_plain(hints[field.name], data[field.name])
        for field in dataclasses.fields(cls)
        if field.init and field.name in data
    }
    return cls(**values)
