"""Study specs: what to tune, on which task, for which metric, with which budget."""

from __future__ import annotations

from collections.abc import Iterator
import datetime
import enum
import hashlib
import json
import math
from typing import Annotated
from typing import Any
from typing import Literal

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
    GRID = "grid"  # every combination, queued up front (per-value trends in the report)


class PairedTestKind(enum.Enum):
    """The paired test of the finalists' re-evaluation; all two-sided."""

    WILCOXON = "wilcoxon"  # scipy.stats.wilcoxon: exact without ties (permutation with ties)
    SIGN = "sign"  # exact binomial sign test on the pairs that are not tied
    PAIRED_T = "paired_t"  # scipy.stats.ttest_rel


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


class StageSpec(SpecModel):
    """One tuning stage: the search-space groups it tunes (earlier stages' bests fixed).

    Later stages re-tune the learning rate in a range narrowed around the previous
    stage's best (``learning_rate_narrowing``). ``trials`` and ``sampler`` default to the
    study's; a grid stage runs every combination of ``grid_points`` values per number.
    """

    name: str | None = Field(default=None, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    groups: tuple[str, ...] = Field(min_length=1)
    trials: int | None = Field(default=None, ge=1)
    sampler: SamplerKind | None = None
    grid_points: int = Field(default=3, ge=2, le=10)

    @property
    def label(self) -> str:
        return self.name or "-".join(self.groups)


class BoundarySpec(SpecModel):
    """The check after every stage whether the best sits on a bound, and the widening."""

    tolerance: float = Field(default=0.05, gt=0.0, lt=0.5)
    top_k: int = Field(default=5, ge=1)
    widen: bool = True
    max_widenings: int = Field(default=2, ge=0, le=10)
    log_factor: float = Field(default=3.0, gt=1.0)
    linear_fraction: float = Field(default=0.5, gt=0.0)
    trials: int | None = Field(default=None, ge=1)  # new trials per widening (default: half)


class ReevaluationSpec(SpecModel):
    """Finalists re-trained on several periods x seeds, and the significance verdict."""

    enabled: bool = True
    finalists: int = Field(default=3, ge=2)
    periods: int = Field(default=12, ge=1)  # 12 x 1: 80% power at 1.5 sd (analysis)
    seeds: int = Field(default=1, ge=1)
    period_seed: int | None = Field(default=None, ge=0)  # pinned; default: year-month
    test: PairedTestKind = PairedTestKind.WILCOXON
    alpha: float = Field(default=0.05, gt=0.0, lt=0.5)
    # the baseline's configuration (the task's defaults with `fixed`) re-trained beside the
    # finalists: chosen by no tuning noise, it is the answer where tuning gained nothing
    defaults: bool = True


class FastModeSpec(SpecModel):
    """Round 1 on a shorter window: the most recent ``train_fraction`` of the training rows.

    The report's rank correlation between round-1 and re-evaluation results says whether
    fast mode ranks configurations like full runs (docs/method.md §11).
    """

    enabled: bool = False
    train_fraction: float = Field(default=0.25, gt=0.0, le=1.0)


class RoundSpec(SpecModel):
    """One round: a step budget (fraction of max_train_steps); later rounds promote top-k.

    Round 1 runs ``trials`` sampled trials with rung pruning; each later round re-runs the
    ``top_k`` best configurations of the round before at its longer budget; with a
    ``budget``, ``top_k`` is the least it promotes (docs/method.md §8).
    """

    budget_fraction: float = Field(default=1.0, gt=0.0, le=1.0)
    top_k: int | None = Field(default=None, ge=1)


class StepsSweepSpec(SpecModel):
    """The constant-learning-rate sweep that measures max_train_steps when it is "auto".

    ``count`` log-spaced learning rates from ``low`` to ``high`` each train up to ``steps``
    steps without regularization; the steps the fastest needs to fit the training set
    become max_train_steps (docs/method.md §3). If the fastest learning rate is at an end of the
    grid, two more grid points beyond it are swept, at most ``max_widenings`` times.
    """

    low: float = Field(default=1e-3, gt=0.0)
    high: float = Field(default=1.0, gt=0.0)
    count: int = Field(default=5, ge=2, le=50)
    steps: int | None = Field(default=None, ge=1)
    max_widenings: int = Field(default=2, ge=0, le=10)

    @model_validator(mode="after")
    def _check_range(self) -> StepsSweepSpec:
        if self.low >= self.high:
            raise ValueError(f"low ({self.low}) must be below high ({self.high})")
        return self


class BudgetSpec(SpecModel):
    """The campaign's total training steps, everything counted: the sweep, the baseline,
    round 1 with its widenings, the longer rounds and the re-evaluation."""

    steps: int = Field(ge=1)


class PeriodSpec(SpecModel):
    """A dated period: train on ``train`` [start, end], validate on ``validation`` [start,
    end] (dates inclusive, validation after training). The worker turns it into the task's
    ``Period.date_range(start, end, validation_start, validation_end)``."""

    train: tuple[datetime.date, datetime.date]
    validation: tuple[datetime.date, datetime.date]

    @field_validator("train", "validation", mode="before")
    @classmethod
    def _date_pair(cls, value: Any) -> Any:
        """One message for anything but two dates (pydantic's speaks of datetimes)."""
        if isinstance(value, list | tuple) and len(value) == 2 and all(map(_is_date, value)):
            return value
        raise ValueError(f"allowed: [start, end], two dates YYYY-MM-DD, got {value!r}")

    @model_validator(mode="after")
    def _check_order(self) -> PeriodSpec:
        (start, end), (validation_start, validation_end) = self.train, self.validation
        if end < start:
            raise ValueError(f"train ends ({end}) before it starts ({start})")
        if validation_end < validation_start:
            raise ValueError(
                f"validation ends ({validation_end}) before it starts ({validation_start})"
            )
        if validation_start <= end:
            raise ValueError(
                f"validation starts {validation_start}, on or before train's end ({end}); "
                "allowed: a validation range after the training range"
            )
        return self

    @property
    def name(self) -> str:
        """The name `Period.date_range` gives it ("START..END validate VSTART..VEND")."""
        (start, end), (first, last) = self.train, self.validation
        return f"{start}..{end} validate {first}..{last}"


def _is_date(value: object) -> bool:
    """A date, or a string that is an ISO date."""
    if isinstance(value, datetime.date) and not isinstance(value, datetime.datetime):
        return True
    try:
        return isinstance(value, str) and bool(datetime.date.fromisoformat(value))
    except ValueError:
        return False


class PeriodsSpec(SpecModel):
    """Which dated periods tune and which check the finalists (for tasks with dated data).

    ``tuning``: the period every tuning, sweep and baseline run trains and validates on
    (default: the task's default period). ``heldout``: the periods the re-evaluation
    re-trains the finalists on, in this order (default: the task's seeded periods); their
    validation ranges must not overlap the tuning period's.
    """

    tuning: PeriodSpec | None = None
    heldout: tuple[PeriodSpec, ...] | None = Field(default=None, min_length=1)


Scalar = bool | int | float | str
AUTO = "auto"
MAX_TRAIN_STEPS = 10**9
_LATER_OPTIONAL_KEYS = ("periods", "evaluations_per_run")
"""Keys added after campaigns were stored: left out of a spec's JSON when unset."""


def number_text_hint(value: object) -> str:
    """Why a number came as a string: YAML 1.1 reads 1e3 (no dot) as the string "1e3"."""
    if isinstance(value, str):
        try:
            float(value)
        except ValueError:
            return ""
        return " (YAML reads it as a string: write plain digits, such as 1000)"
    return ""


class StudySpec(SpecModel):
    """One campaign: a task, its search space, the metric and the budgets."""

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", max_length=64)
    description: str = ""
    task: str = Field(min_length=1)
    search_space: SearchSpace
    metric: MetricSpec
    max_train_steps: Annotated[int, Field(ge=1)] | Literal["auto"]
    eval_interval: int = Field(ge=1)
    # Once max_train_steps is known, evaluate about this many times per run (every multiple
    # of eval_interval nearest max_train_steps / evaluations_per_run); None: every
    # eval_interval. The sweep always evaluates every eval_interval.
    evaluations_per_run: int | None = Field(default=None, ge=2)
    # Steps between the recovery checkpoints a retried trial resumes from (default: 5 evals).
    checkpoint_interval: int | None = Field(default=None, ge=1)
    batch_size: int = Field(ge=1)
    gradient_accumulation_steps: int = Field(default=1, ge=1)
    trials: int = Field(ge=1)
    workers: int = Field(default=2, ge=1)
    sampler: SamplerSpec = SamplerSpec()
    pruner: PrunerSpec = PrunerSpec()
    seed: int = Field(default=0, ge=0)
    fixed: dict[str, Scalar] = Field(default_factory=dict)
    rounds: tuple[RoundSpec, ...] = Field(default=(RoundSpec(),), min_length=1)
    steps_sweep: StepsSweepSpec = StepsSweepSpec()
    baseline: bool = True
    apply_step_advice: bool = False
    stages: tuple[StageSpec, ...] | None = Field(default=None, min_length=1)
    learning_rate_narrowing: float = Field(default=3.0, gt=1.0)
    boundary: BoundarySpec = BoundarySpec()
    reevaluation: ReevaluationSpec = ReevaluationSpec()
    fast_mode: FastModeSpec = FastModeSpec()
    budget: BudgetSpec | None = None
    periods: PeriodsSpec | None = None

    @model_validator(mode="before")
    @classmethod
    def _reevaluate_every_heldout_period(cls, data: Any) -> Any:
        """``periods.heldout`` sets how many periods the re-evaluation runs, when the spec
        leaves ``reevaluation.periods`` out (a different count is refused below)."""
        if not isinstance(data, dict):
            return data
        periods, reevaluation = data.get("periods"), data.get("reevaluation", {})
        heldout = periods.get("heldout") if isinstance(periods, dict) else None
        if isinstance(heldout, list | tuple) and heldout and isinstance(reevaluation, dict):
            if "periods" not in reevaluation:
                data = {**data, "reevaluation": {**reevaluation, "periods": len(heldout)}}
        return data

    @field_validator("max_train_steps", mode="before")
    @classmethod
    def _steps_or_auto(cls, value: Any) -> Any:
        """One message for the int-or-"auto" union instead of one per branch."""
        if value == AUTO:
            return value
        if isinstance(value, int | float) and not isinstance(value, bool):
            if float(value).is_integer() and 1 <= value <= MAX_TRAIN_STEPS:
                return int(value)
        raise ValueError(
            f"allowed: an int in [1, {MAX_TRAIN_STEPS}] or 'auto', "
            f"got {value!r}{number_text_hint(value)}"
        )

    @model_validator(mode="after")
    def _check_consistency(self) -> StudySpec:
        """Every problem between keys at once, one per line (the loader splits them)."""
        problems = list(self._problems())
        if problems:
            raise ValueError("\n".join(problems))
        return self

    def _problems(self) -> Iterator[str]:
        interval = self.checkpoint_interval
        if interval is not None and interval % self.eval_interval:
            yield (
                f"checkpoint_interval ({interval}) must be a multiple of eval_interval "
                f"({self.eval_interval}): checkpoints are written at evaluations"
            )
        if self.max_train_steps == AUTO:
            yield from self._sweep_problems()
        else:
            yield from self._steps_problems(self.max_train_steps, "max_train_steps")
        top_k = self.rounds[1].top_k if len(self.rounds) > 1 else None
        if top_k is not None and top_k > self.trials:
            yield f"round 2 top_k ({top_k}) exceeds trials ({self.trials})"
        tuned_and_fixed = sorted(set(self.fixed) & set(self.search_space.params))
        if tuned_and_fixed:
            yield f"parameters both fixed and tuned: {', '.join(tuned_and_fixed)}"
        yield from self._stage_problems()
        yield from self._heldout_problems()

    def _heldout_problems(self) -> Iterator[str]:
        heldout = None if self.periods is None else self.periods.heldout
        if heldout is None:
            return
        design = self.reevaluation
        if not design.enabled:
            yield "periods.heldout: the re-evaluation trains on them; set reevaluation.enabled"
        if design.periods != len(heldout):
            yield (
                f"reevaluation.periods ({design.periods}) must equal the {len(heldout)} "
                "periods.heldout (or be left out): the re-evaluation trains on those"
            )
        if design.period_seed is not None:
            yield (
                "reevaluation.period_seed picks the task's periods; with periods.heldout the "
                "re-evaluation trains on those: leave period_seed out"
            )
        names = [period.name for period in heldout]
        for index, period in enumerate(heldout):
            if period.name in names[:index]:
                yield f"periods.heldout[{index}]: the same period as [{names.index(period.name)}]"
        yield from self._overlap_problems(heldout)

    def _overlap_problems(self, heldout: tuple[PeriodSpec, ...]) -> Iterator[str]:
        """Held-out validation ranges that overlap the tuning period's: not held out."""
        tuning = None if self.periods is None else self.periods.tuning
        if tuning is None:
            return
        start, end = tuning.validation
        for index, period in enumerate(heldout):
            if period.validation[0] <= end and start <= period.validation[1]:
                yield (
                    f"periods.heldout[{index}].validation {period.validation[0]}.."
                    f"{period.validation[1]} overlaps periods.tuning.validation {start}..{end}; "
                    "allowed: held-out validation ranges outside the tuning one"
                )

    def run_eval_interval(self, max_train_steps: int | None) -> int:
        """Steps between a run's evaluations in a campaign whose runs are ``max_train_steps``
        long (None: not known yet, the sweep's): ``eval_interval``, or with
        ``evaluations_per_run`` the multiple of it nearest ``max_train_steps /
        evaluations_per_run``. Every evaluation is a candidate stop of the recipe, so
        evaluating a long run every few steps picks its stop among many noisy values (the
        best of them flatters it), and a short run needs a fine grid to stop on."""
        if self.evaluations_per_run is None or max_train_steps is None:
            return self.eval_interval
        multiples = round(max_train_steps / self.evaluations_per_run / self.eval_interval)
        return max(1, multiples) * self.eval_interval

    def recovery_interval(self, eval_interval: int) -> int:
        """Steps between recovery checkpoints of runs evaluated every ``eval_interval``:
        ``checkpoint_interval`` (up to a multiple of it: checkpoints are written at
        evaluations) or 5 evals."""
        if self.checkpoint_interval is None:
            return 5 * eval_interval
        return math.ceil(self.checkpoint_interval / eval_interval) * eval_interval

    def first_rung(self, eval_interval: int) -> int:
        """The pruner's first rung for runs evaluated every ``eval_interval``: not before
        their first evaluation."""
        return max(self.pruner.min_steps, eval_interval)

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

    def _stage_problems(self) -> Iterator[str]:
        if self.stages is None:
            return
        known = self.search_space.group_names
        seen: list[str] = []
        for index, stage in enumerate(self.stages):
            for group in stage.groups:
                if group not in known:
                    yield (
                        f"stages[{index}].groups: no group {group!r} in the search space; "
                        f"its groups: {', '.join(known)}"
                    )
                if group in seen:
                    yield (f"stages[{index}].groups: group {group!r} is tuned twice")
                seen.append(group)
        labels = [stage.label for stage in self.stages]
        if len(set(labels)) != len(labels):
            yield (f"stage names must differ, got {labels}")
        if self.stages[0].groups[0] != known[0]:
            yield (
                f"the first stage must tune the {known[0]!r} group first (learning rate "
                f"first), got {list(self.stages[0].groups)}"
            )

    @property
    def tuning_stages(self) -> tuple[StageSpec, ...]:
        """The tuning stages; without ``stages``, one "joint" stage over every group."""
        if self.stages is not None:
            return self.stages
        return (StageSpec(name="joint", groups=self.search_space.group_names),)

    def round_one_keeps(self, stage_index: int) -> int:
        """How many trials round 1 of a stage must finish: what the step after it takes (the
        next round's top_k, else the re-evaluation's finalists after the last stage, else 1).
        """
        if len(self.rounds) > 1:
            top_k = self.rounds[1].top_k
            assert top_k is not None  # validated: every later round has top_k
            return top_k
        if stage_index == len(self.tuning_stages) - 1 and self.reevaluation.enabled:
            return self.reevaluation.finalists
        return 1

    @property
    def defaults_reevaluated(self) -> bool:
        """Whether the re-evaluation re-trains the task's defaults (the baseline's
        configuration) beside its finalists: ``reevaluation.defaults`` with a baseline."""
        return self.reevaluation.defaults and self.baseline

    @property
    def reevaluation_candidates(self) -> int:
        """The recipes the re-evaluation re-trains: its finalists, and the task's defaults
        beside them (`defaults_reevaluated`)."""
        return self.reevaluation.finalists + int(self.defaults_reevaluated)

    def stage_trials(self, stage: StageSpec) -> int:
        return self.trials if stage.trials is None else stage.trials

    def stage_sampler(self, stage: StageSpec) -> SamplerKind:
        return self.sampler.type if stage.sampler is None else stage.sampler

    def _sweep_problems(self) -> Iterator[str]:
        steps = self.steps_sweep.steps
        if steps is None:
            yield (
                "max_train_steps 'auto' needs steps_sweep.steps: how many steps each sweep "
                "trial may train to fit the training set (e.g. a few times what you expect)"
            )
            return
        if self.eval_interval > steps:
            yield (
                f"eval_interval ({self.eval_interval}) must not exceed steps_sweep.steps ({steps})"
            )

    def _steps_problems(self, max_train_steps: int, name: str) -> Iterator[str]:
        if self.eval_interval > max_train_steps:
            yield (
                f"eval_interval ({self.eval_interval}) must not exceed {name} ({max_train_steps})"
            )
        if self.pruner.min_steps > max_train_steps:
            yield (
                f"pruner.min_steps ({self.pruner.min_steps}) must not exceed "
                f"{name} ({max_train_steps})"
            )
        first_round = self.round_steps(1, max_train_steps)
        if first_round < self.eval_interval:
            yield (
                f"round 1 trains {first_round} steps, fewer than eval_interval "
                f"({self.eval_interval}); raise rounds[0].budget_fraction"
            )

    @property
    def measures_max_train_steps(self) -> bool:
        """Whether max_train_steps is "auto": measured by the sweep before round 1."""
        return self.max_train_steps == AUTO

    def round_steps(self, round_number: int, max_train_steps: int | None = None) -> int:
        """max_train_steps of a round (1-based), a multiple of the run's eval interval
        (``run_eval_interval``) except the last.

        ``max_train_steps`` is the measured value for an "auto" spec (default: the spec's).
        """
        total = self.max_train_steps if max_train_steps is None else max_train_steps
        if total == AUTO:
            raise ValueError("max_train_steps is 'auto': pass the measured value")
        fraction = self.rounds[round_number - 1].budget_fraction
        if fraction >= 1.0:
            return total
        interval = self.run_eval_interval(total)
        steps = round(total * fraction / interval) * interval
        return max(interval, min(steps, total))

    def to_json_dict(self) -> dict[str, Any]:
        """Plain JSON-compatible form, stored with the campaign so workers need no files
        (without ``periods`` and ``evaluations_per_run`` when unset: campaigns stored before
        them keep their hash)."""
        unset = {name for name in _LATER_OPTIONAL_KEYS if getattr(self, name) is None}
        return self.model_dump(mode="json", exclude=unset or None)

    @property
    def spec_hash(self) -> str:
        """Short digest of the spec, to tell whether two specs are the same campaign."""
        canonical = json.dumps(self.to_json_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def spec_changes(stored: StudySpec, given: StudySpec, limit: int = 8) -> list[str]:
    """What differs between two specs, as ``key.path: old -> new`` (at most ``limit``, then
    how many more): what a user needs to see when a campaign's name is taken by another
    spec, where two hashes tell nothing."""
    changes = list(_differences(stored.to_json_dict(), given.to_json_dict(), ""))
    if len(changes) > limit:
        changes = [*changes[:limit], f"and {len(changes) - limit} more"]
    return changes


def _differences(old: Any, new: Any, path: str) -> Iterator[str]:
    if isinstance(old, dict) and isinstance(new, dict):
        for key in [*old, *(k for k in new if k not in old)]:
            where = f"{path}.{key}" if path else str(key)
            yield from _differences(old.get(key), new.get(key), where)
    elif isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        for index, (a, b) in enumerate(zip(old, new, strict=True)):
            yield from _differences(a, b, f"{path}[{index}]")
    elif old != new:
        yield f"{path}: {_short(old)} -> {_short(new)}"


def _short(value: Any) -> str:
    text = json.dumps(value, sort_keys=True)
    return text if len(text) <= 60 else f"{text[:57]}..."
