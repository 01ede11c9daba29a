"""Base model of every spec: frozen, no unknown keys, unknown keys named with the allowed ones."""

from __future__ import annotations

import types
from typing import Annotated
from typing import Any
from typing import Literal
from typing import Union
from typing import get_args
from typing import get_origin

from pydantic import BaseModel
from pydantic import ConfigDict
from pydantic import model_validator


class SpecModel(BaseModel):
    """A frozen spec object; unknown keys are errors that list the allowed keys."""

    model_config = ConfigDict(
        extra="forbid", frozen=True, use_enum_values=False, allow_inf_nan=False
    )

    @model_validator(mode="before")
    @classmethod
    def _reject_unknown_keys(cls, data: Any) -> Any:
        if isinstance(data, dict):
            unknown = sorted(str(key) for key in data if key not in cls.model_fields)
            if unknown:
                allowed = ", ".join(cls.model_fields)
                raise ValueError(f"unknown key(s) {', '.join(unknown)}; allowed keys: {allowed}")
            data = {
                key: _Boolean(value) if _bool_for_number(cls, key, value) else value
                for key, value in data.items()
            }
        return data


class _Boolean:
    """A boolean given where a number belongs: pydantic would read true as 1; wrapped, it
    fails the field's type check like any other wrong type (every such key reported)."""

    def __init__(self, value: bool) -> None:
        self.value = value

    def __repr__(self) -> str:
        return f"{str(self.value).lower()}, a boolean"


def _bool_for_number(model: type[BaseModel], key: str, value: Any) -> bool:
    field = model.model_fields[key].annotation
    return isinstance(value, bool) and _number_kind(field) != "" and not _accepts(field, bool)


def _scalars(annotation: Any) -> set[Any]:
    """The plain types a field annotation admits (through unions, Annotated, Literal)."""
    origin = get_origin(annotation)
    if origin is Annotated:
        return _scalars(get_args(annotation)[0])
    if origin in (Union, types.UnionType):
        return set().union(*(_scalars(arg) for arg in get_args(annotation)))
    if origin is Literal:
        return {type(arg) for arg in get_args(annotation)}
    return {annotation} if isinstance(annotation, type) else set()


def _accepts(annotation: Any, kind: type) -> bool:
    return kind in _scalars(annotation)


def _number_kind(annotation: Any) -> str:
    """ "an int" or "a number" for a numeric field, else ""."""
    if _accepts(annotation, int):
        return "an int"
    return "a number" if _accepts(annotation, float) else ""
