"""Frozen analysis records as plain JSON-able data, for study user attributes."""

from __future__ import annotations

import dataclasses
import enum
import math
from typing import Any


def to_attr(record: Any) -> dict[str, Any]:
    """A dataclass record as JSON-able data: enums by value, tuples as lists, inf as text."""
    return plain(dataclasses.asdict(record))


def plain(value: Any) -> Any:
    """``value`` with enums, tuples and non-finite floats made JSON-friendly."""
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value
