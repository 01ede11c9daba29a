"""Study specs: what to tune, on which task, for which metric, with which budget."""

from __future__ import annotations

import enum
import hashlib
import json
from typing import Any

from pydantic import Field
from pydantic import field_validator
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


class RoundSpec(SpecModel):
    """One round: a step budget (fraction of max_train_steps); later rounds promote top-k.

    Round 1 runs ``trials`` sampled trials with rung pruning; each later round re-runs the
    ``top_k`` best configurations of the round before at its longer budget (METHOD §1).
    """

    budget_fraction: float = Field(default=1.0, gt=0.0, le=1.0)
    top_k: int | None = Field(default=None, ge=1)


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
    rounds: tuple[RoundSpec, ...] = Field(default=(RoundSpec(),), min_length=1)

    @field_validator("rounds")
    @classmethod
    def _check_rounds(cls, rounds: tuple[RoundSpec, ...]) -> tuple[RoundSpec, ...]:
        if rounds[0].top_k is not None:
            raise ValueError(
                f"round 1 samples `trials` configurations and takes no top_k, got top_k="
                f"{rounds[0].top_k}"
            )
        for number, (before, after) in enumerate(zip(rounds, rounds[1:], strict=False), 2):
            if after.top_k is None:
                raise ValueError(f"round {number} needs top_k: how many configurations to promote")
            if after.budget_fraction <= before.budget_fraction:
                raise ValueError(
                    f"round {number} budget_fraction ({after.budget_fraction}) must exceed "
                    f"round {number - 1}'s ({before.budget_fraction}): rounds get longer"
                )
            if before.top_k is not None and after.top_k > before.top_k:
                raise ValueError(
                    f"round {number} top_k ({after.top_k}) exceeds the {before.top_k} "
                    f"configurations of round {number - 1}"
                )
        return rounds

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
        first_round = self.round_steps(1)
        if first_round < self.eval_interval:
            raise ValueError(
                f"round 1 trains {first_round} steps, fewer than eval_interval "
                f"({self.eval_interval}); raise rounds[0].budget_fraction"
            )
        top_k = self.rounds[1].top_k if len(self.rounds) > 1 else None
        if top_k is not None and top_k > self.trials:
            raise ValueError(f"round 2 top_k ({top_k}) exceeds trials ({self.trials})")
        tuned_and_fixed = sorted(set(self.fixed) & set(self.search_space.params))
        if tuned_and_fixed:
            raise ValueError(f"parameters both fixed and tuned: {', '.join(tuned_and_fixed)}")
        return self

    def round_steps(self, round_number: int) -> int:
        """max_train_steps of a round (1-based), a multiple of eval_interval except the last."""
        fraction = self.rounds[round_number - 1].budget_fraction
        if fraction >= 1.0:
            return self.max_train_steps
        steps = round(self.max_train_steps * fraction / self.eval_interval) * self.eval_interval
        return max(self.eval_interval, min(steps, self.max_train_steps))

    def to_json_dict(self) -> dict[str, Any]:
        """Plain JSON-compatible form, stored with the campaign so workers need no files."""
        return self.model_dump(mode="json")

    @property
    def spec_hash(self) -> str:
        """Short digest of the spec, to tell whether two specs are the same campaign."""
        canonical = json.dumps(self.to_json_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()[:16]
