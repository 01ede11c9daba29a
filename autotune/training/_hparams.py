"""Parsing and validation helpers for hyperparameter mappings."""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Iterable
from collections.abc import Mapping
import enum
import math
import numbers
from typing import Any
from typing import TypeVar

from autotune._domains import MODEL_DOMAINS
from autotune._domains import TRAINING_DOMAINS
from autotune._domains import Domain

E = TypeVar("E", bound=enum.Enum)


def _invalid(name: str, value: object, allowed: str) -> ValueError:
    return ValueError(f"invalid hyperparameter {name}={value!r}; allowed: {allowed}")


def check_known(hparams: Mapping[str, Any], allowed: Iterable[str], owner: str) -> None:
    """Raise ValueError listing the allowed names if `hparams` has an unknown key."""
    allowed = sorted(allowed)
    unknown = sorted(set(hparams) - set(allowed))
    if unknown:
        raise ValueError(
            f"unknown hyperparameter(s) {', '.join(map(repr, unknown))} for {owner}; "
            f"allowed: {', '.join(allowed)}"
        )


def parse_float(
    hparams: Mapping[str, Any],
    name: str,
    default: float | None,
    allowed: str,
    valid: Callable[[float], bool],
) -> float:
    """Read a finite float; `default=None` makes it required."""
    if name not in hparams:
        if default is None:
            raise ValueError(f"hyperparameter {name!r} is required; allowed: {allowed}")
        return default
    value = hparams[name]
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise _invalid(name, value, allowed)
    number = float(value)
    if not math.isfinite(number) or not valid(number):
        raise _invalid(name, value, allowed)
    return number


def parse_int(hparams: Mapping[str, Any], name: str, default: int, minimum: int) -> int:
    """Read an int >= minimum."""
    value = hparams.get(name, default)
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise _invalid(name, value, f"an int >= {minimum}")
    return int(value)


def domain_of(name: str) -> Domain:
    """The shared domain of a built-in hyperparameter (autotune/_domains.py)."""
    return TRAINING_DOMAINS.get(name) or MODEL_DOMAINS[name]


def parse_float_in(hparams: Mapping[str, Any], name: str, default: float | None) -> float:
    """Read a float of the shared domain of ``name``; ``default=None`` makes it required."""
    domain = domain_of(name)
    return parse_float(hparams, name, default, domain.allowed, domain.contains_number)


def parse_int_in(hparams: Mapping[str, Any], name: str, default: int | None) -> int | None:
    """Read an int of the shared domain of ``name``; null (absent with default None) is
    None where the domain allows null."""
    domain = domain_of(name)
    value = hparams.get(name, default)
    if not (domain.contains_number(value) or (value is None and domain.nullable)):
        raise _invalid(name, value, domain.allowed)
    return None if value is None else int(value)


def parse_choice(hparams: Mapping[str, Any], name: str, default: E, choices: type[E]) -> E:
    """Read an enum member given as the member itself or its string value."""
    value = hparams.get(name, default)
    if isinstance(value, choices):
        return value
    for member in choices:
        if value == member.value:
            return member
    raise _invalid(name, value, ", ".join(repr(m.value) for m in choices))


def parse_bool(hparams: Mapping[str, Any], name: str, default: bool) -> bool:
    """Read a bool (True or False; not 0/1 or strings)."""
    value = hparams.get(name, default)
    if not isinstance(value, bool):
        raise _invalid(name, value, "true or false")
    return value
