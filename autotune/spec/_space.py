"""Search spaces: typed parameters in ordered groups, the learning-rate group first."""

from __future__ import annotations

import enum
import math
from typing import Annotated
from typing import Literal
from typing import Union

from pydantic import Field
from pydantic import field_validator
from pydantic import model_validator

from autotune.spec._base import SpecModel

LEARNING_RATE_GROUP = "learning_rate"
LEARNING_RATE_PARAM = "learning_rate"
# Never tuned (docs/method.md §2 and §3): chosen by measurement, fixed per study.
NEVER_TUNED = frozenset({"batch_size", "max_train_steps"})


class ParamType(enum.Enum):
    FLOAT = "float"
    INT = "int"
    CATEGORICAL = "categorical"


class FloatParam(SpecModel):
    """A real-valued parameter in ``[low, high]``, optionally on a log scale or stepped.

    ``hard_low``/``hard_high`` limit how far boundary widening may move the range.
    """

    type: Literal["float"]
    low: float
    high: float
    log: bool = False
    step: float | None = Field(default=None, gt=0)
    hard_low: float | None = None
    hard_high: float | None = None

    @model_validator(mode="after")
    def _check_range(self) -> FloatParam:
        _check_low_high(self.low, self.high, self.log)
        _check_hard_limits(self.low, self.high, self.hard_low, self.hard_high, self.log)
        if self.log and self.step is not None:
            raise ValueError("'step' cannot be combined with 'log: true'")
        return self


class IntParam(SpecModel):
    """An integer parameter in ``[low, high]``, optionally on a log scale or stepped."""

    type: Literal["int"]
    low: int
    high: int
    log: bool = False
    step: int = Field(default=1, ge=1)
    hard_low: int | None = None
    hard_high: int | None = None

    @model_validator(mode="after")
    def _check_range(self) -> IntParam:
        _check_low_high(self.low, self.high, self.log)
        _check_hard_limits(self.low, self.high, self.hard_low, self.hard_high, self.log)
        if self.log and self.step != 1:
            raise ValueError("'step' cannot be combined with 'log: true'")
        return self


Choice = Union[bool, int, float, str]  # noqa: UP007 (pydantic keeps the order for bool before int)


class CategoricalParam(SpecModel):
    """A choice among at least two distinct values (in order, for ordered choices)."""

    type: Literal["categorical"]
    choices: tuple[Choice, ...] = Field(min_length=2)
    ordered: bool = False  # the boundary check reports a best choice at either end

    @field_validator("choices")
    @classmethod
    def _distinct(cls, choices: tuple[Choice, ...]) -> tuple[Choice, ...]:
        if any(isinstance(c, float) and not math.isfinite(c) for c in choices):
            raise ValueError(f"choices must be finite, got {list(choices)}")
        if len(set(map(repr, choices))) != len(choices) or len(set(choices)) != len(choices):
            raise ValueError(
                "choices must be distinct (1, 1.0 and true are the same value), "
                f"got {list(choices)}"
            )
        return choices


Param = Annotated[FloatParam | IntParam | CategoricalParam, Field(discriminator="type")]


class ParamGroup(SpecModel):
    """Parameters tuned together in one stage."""

    name: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    params: dict[str, Param] = Field(min_length=1)


class SearchSpace(SpecModel):
    """Ordered parameter groups; the first is the learning-rate group (docs/method.md §7)."""

    name: str = Field(min_length=1)
    description: str = ""
    groups: tuple[ParamGroup, ...] = Field(min_length=1)

    @field_validator("groups")
    @classmethod
    def _check_groups(cls, groups: tuple[ParamGroup, ...]) -> tuple[ParamGroup, ...]:
        first = groups[0]
        if first.name != LEARNING_RATE_GROUP or LEARNING_RATE_PARAM not in first.params:
            raise ValueError(
                f"the first group must be '{LEARNING_RATE_GROUP}' and contain the parameter "
                f"'{LEARNING_RATE_PARAM}' (learning rate first), got group '{first.name}' "
                f"with {sorted(first.params)}"
            )
        names = [group.name for group in groups]
        if len(set(names)) != len(names):
            raise ValueError(f"group names must differ, got {names}")
        seen: set[str] = set()
        for group in groups:
            for name in group.params:
                if name in NEVER_TUNED:
                    raise ValueError(
                        f"'{name}' cannot be in a search space: it is measured, never tuned "
                        "(set it in the study spec instead)"
                    )
                if name in seen:
                    raise ValueError(f"parameter '{name}' appears in more than one group")
                seen.add(name)
        return groups

    @property
    def params(self) -> dict[str, FloatParam | IntParam | CategoricalParam]:
        """All parameters, in group order."""
        return {name: p for group in self.groups for name, p in group.params.items()}

    @property
    def group_names(self) -> tuple[str, ...]:
        return tuple(group.name for group in self.groups)

    def group_params(
        self, names: tuple[str, ...]
    ) -> dict[str, FloatParam | IntParam | CategoricalParam]:
        """The parameters of the named groups, in group order."""
        return {
            name: p
            for group in self.groups
            if group.name in names
            for name, p in group.params.items()
        }


def _check_low_high(low: float, high: float, log: bool) -> None:
    if low >= high:
        raise ValueError(f"'low' must be below 'high', got low={low} and high={high}")
    if log and low <= 0:
        raise ValueError(f"'low' must be > 0 when 'log: true', got low={low}")


def _check_hard_limits(
    low: float, high: float, hard_low: float | None, hard_high: float | None, log: bool
) -> None:
    if hard_low is not None and hard_low > low:
        raise ValueError(f"'hard_low' must not exceed 'low', got hard_low={hard_low}, low={low}")
    if hard_high is not None and hard_high < high:
        raise ValueError(
            f"'hard_high' must not be below 'high', got hard_high={hard_high}, high={high}"
        )
    if log and hard_low is not None and hard_low <= 0:
        raise ValueError(f"'hard_low' must be > 0 when 'log: true', got hard_low={hard_low}")
