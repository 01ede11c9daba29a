"""Study specs: what to tune, on which task, for which metric, with which budget."""

from __future__ import annotations

import enum
import hashlib
import json
from typing import Any

from pydantic import Field
from pydantic import model_validator

from autotune.spec._base import SpecModel
from autotune.spec._space import SearchSpace


class Direction(enum.Enum):
    MINIMIZE = "minimize"
    MAXIMIZE = "maximize"


class SamplerKind(enum.Enum):
    TPE = "tpe"
    RANDOM = "random"


class PrunerKind(enum.Enum):
    SUCCESSIVE_HALVING = "successive_halving"
    NONE = "none"


class MetricSpec(SpecModel):
    """The validation metric the study optimises."""

    name: str = Field(min_length=1)
    direction: Direction


class SamplerSpec(SpecModel):
    type: SamplerKind = SamplerKind.TPE
    n_startup_trials: int = Field(default=10, ge=0)


class PrunerSpec(SpecModel):
    """Successive halving: the first rung at ``min_steps``, then ×``reduction_factor``."""

    type: PrunerKind = PrunerKind.SUCCESSIVE_HALVING
    min_steps: int = Field(default=1, ge=1)
    reduction_factor: int = Field(default=3, ge=2)


Scalar = bool | int | float | str


class StudySpec(SpecModel):
    """One campaign: a task, its search space, the metric and the budgets."""

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", max_length=64)
    description: str = ""
    task: str = Field(min_length=1)
    search_space: SearchSpace
    metric: MetricSpec
    max_train_steps: int = Field(ge=1)
    eval_interval: int = Field(ge=1)
    batch_size: int = Field(ge=1)
    gradient_accumulation_steps: int = Field(default=1, ge=1)
    trials: int = Field(ge=1)
    workers: int = Field(default=2, ge=1)
    sampler: SamplerSpec = SamplerSpec()
    pruner: PrunerSpec = PrunerSpec()
    seed: int = Field(default=0, ge=0)
    fixed: dict[str, Scalar] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _check_budgets(self) -> StudySpec:
        if self.eval_interval > self.max_train_steps:
            raise ValueError(
                f"eval_interval ({self.eval_interval}) must not exceed "
                f"max_train_steps ({self.max_train_steps})"
            )
        if self.pruner.min_steps > self.max_train_steps:
            raise ValueError(
                f"pruner.min_steps ({self.pruner.min_steps}) must not exceed "
                f"max_train_steps ({self.max_train_steps})"
            )
        tuned_and_fixed = sorted(set(self.fixed) & set(self.search_space.params))
        if tuned_and_fixed:
            raise ValueError(f"parameters both fixed and tuned: {', '.join(tuned_and_fixed)}")
        return self

    def to_json_dict(self) -> dict[str, Any]:
        """Plain JSON-compatible form, stored with the campaign so workers need no files."""
        return self.model_dump(mode="json")

    @property
    def spec_hash(self) -> str:
        """Short digest of the spec, to tell whether two specs are the same campaign."""
        canonical = json.dumps(self.to_json_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()[:16]
