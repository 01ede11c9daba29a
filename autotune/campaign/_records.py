"""Every fact a campaign stores, as a typed frozen record under one namespaced key.

A campaign's state lives in the user attributes of its studies (one study per stage/round).
Each fact is one record; ``StudyFacts.from_attrs`` reads all of a study's facts back at once
and ``fact_attr`` writes one. Nothing outside this package reads or writes ``autotune.*``
attributes.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
import enum
from typing import Any

from optuna.distributions import BaseDistribution
from optuna.distributions import distribution_to_json
from optuna.distributions import json_to_distribution

from autotune.analysis import BoundarySide
from autotune.analysis import RankAgreement
from autotune.analysis import SignificanceReport
from autotune.analysis import TrivialComparison
from autotune.campaign._plain import from_plain
from autotune.campaign._plain import plain
from autotune.spec import Direction


class Stage(enum.Enum):
    """The kinds of stages of a campaign, in pipeline order."""

    STEPS_SWEEP = "steps"  # max_train_steps measured by a learning-rate sweep ("auto")
    BASELINE = "baseline"  # the task's default configuration vs the trivial predictor
    JOINT = "joint"  # a tuning stage (groups of the space), in rounds of growing budgets
    REEVALUATION = "reeval"  # finalists re-trained on several periods x seeds


STAGE_ORDER = {stage: index for index, stage in enumerate(Stage)}


class StudyKey(enum.Enum):
    """The study user attributes a campaign writes: one key per fact."""

    CAMPAIGN = "autotune.campaign"  # set last: the study is complete and visible
    SPEC = "autotune.spec"
    SPEC_HASH = "autotune.spec_hash"
    TASK_DEFAULTS = "autotune.task_defaults"
    PLAN = "autotune.plan"
    SWEEP = "autotune.sweep"
    BASELINE = "autotune.baseline"
    STEP_ADVICE = "autotune.step_advice"
    BOUNDARIES = "autotune.boundaries"
    REEVALUATION = "autotune.reevaluation"
    SIGNIFICANCE = "autotune.significance"
    RANK_AGREEMENT = "autotune.rank_agreement"
    HORIZON = "autotune.horizon"
    REEVALUATION_SKIPPED = "autotune.reevaluation_skipped"
    RECOMMENDATION = "autotune.recommendation"
    STOPPED = "autotune.stopped"


@dataclass(frozen=True)
class StudyPlan:
    """What one stage/round study runs: its trial budget and step budget.

    Tuning stages also carry their name, index, widening count, the parameters fixed at
    earlier stages' bests and the distributions they sample (Optuna JSON).
    """

    stage: Stage
    round_number: int
    trials: int
    max_train_steps: int
    campaign_max_train_steps: int | None  # None while the sweep has not measured it
    name: str = ""  # default: the stage kind's value
    stage_index: int = 0
    widening: int = 0
    stage_fixed: dict[str, Any] = dataclasses.field(default_factory=dict)
    distributions: dict[str, str] = dataclasses.field(default_factory=dict)
    sampling: bool = True  # False: workers run only queued trials
    step_budget: int | None = None  # a sampling study's share of the campaign's budget
    sweep_steps: int | None = None  # what the max_train_steps sweep cost (None: no record)

    @property
    def study_component(self) -> str:
        return self.name or self.stage.value

    def study_name(self, campaign: str) -> str:
        name = f"{campaign}/{self.study_component}/{self.round_number}"
        return name if self.widening == 0 else f"{name}-widened{self.widening}"

    def decoded_distributions(self) -> dict[str, BaseDistribution]:
        return {name: json_to_distribution(text) for name, text in self.distributions.items()}

    @property
    def position(self) -> tuple[int, int, int, int]:
        """Pipeline order: stage kind, tuning stage, round, widening."""
        return STAGE_ORDER[self.stage], self.stage_index, self.round_number, self.widening


def distributions_to_json(distributions: dict[str, BaseDistribution]) -> dict[str, str]:
    return {name: distribution_to_json(d) for name, d in distributions.items()}


@dataclass(frozen=True)
class TaskDefaults:
    """The task's default hyperparameters, stored when the campaign is created.

    A campaign composes every configuration from them, so reading or advancing it never
    needs the task's code. ``most_periods``: the most re-evaluation periods the task's
    ``periods`` gives (None: as many as a budget may ask for), which caps what a budget buys.
    """

    hyperparameters: dict[str, Any]
    most_periods: int | None = None


@dataclass(frozen=True)
class SweepResult:
    """The max_train_steps sweep's decision (docs/method.md §3) and its reasoning."""

    max_train_steps: int
    fastest_learning_rate: float | None
    on_boundary: BoundarySide
    widenings: int
    reason: str


@dataclass(frozen=True)
class BaselineOutcome:
    """Whether the campaign may go on after the baseline run, and why (docs/method.md §4)."""

    passed: bool
    message: str
    value: float | None
    trivial_value: float | None


@dataclass(frozen=True)
class StepAdvice:
    """The best-step advice applied to a round's budget."""

    planned_steps: int
    steps: int
    note: str


class BoundaryAction(enum.Enum):
    """What the boundary check did about one parameter."""

    NONE = "none"  # the best lies inside
    WIDEN = "widen"  # a hit bound, moved out
    HARD_LIMIT = "hard_limit"  # a hit bound that is a hard limit of the space
    MORE_CHOICES = "more_choices"  # an ordered categorical's best is an end choice


@dataclass(frozen=True)
class BoundaryFinding:
    """One parameter's boundary check, structured (the message is for people only)."""

    name: str
    categorical: bool
    best: float | str | None
    side: BoundarySide
    distance: float | None  # from the nearest bound, in (log) range units; None: categorical
    near_low: int
    near_high: int
    hit: bool
    action: BoundaryAction
    message: str
    # top-k trials leaning toward each bound (within 4x the tolerance): what a hit counts;
    # None for a categorical (its near counts decide) or a check stored before
    lean_low: int | None = None
    lean_high: int | None = None


@dataclass(frozen=True)
class BoundaryCheck:
    findings: tuple[BoundaryFinding, ...]

    @property
    def hits(self) -> tuple[BoundaryFinding, ...]:
        return tuple(f for f in self.findings if f.hit)


@dataclass(frozen=True)
class Recipe:
    """Everything needed to reproduce a model: what a trial's value is the value of.

    The configuration is complete (task defaults, fixed values, earlier stages' bests, the
    tuned parameters, schedule overrides). Training follows a schedule over
    ``max_train_steps`` and stops at ``stop_at_step``, the step whose evaluation gave the
    value (retrospective checkpoint selection made part of the recipe); early stopping is
    off, so the recipe trains exactly that many steps wherever it is re-run.
    """

    task: str
    hyperparameters: dict[str, Any]
    batch_size: int
    gradient_accumulation_steps: int
    max_train_steps: int
    stop_at_step: int
    eval_interval: int
    metric: str
    direction: Direction
    seed: int | None  # the seed of the run the value came from

    @property
    def stopping_rule(self) -> str:
        if self.stop_at_step == self.max_train_steps:
            return f"train to the end of the {self.max_train_steps}-step schedule"
        return (
            f"stop at step {self.stop_at_step} of a {self.max_train_steps}-step schedule "
            "(where the validation metric was best)"
        )


TUNING_PERIOD = "tuning"  # the period key of a finalist's own run on the tuning period


@dataclass(frozen=True)
class Finalist:
    """A configuration the re-evaluation re-trains, as the last round left it."""

    label: str  # "<study> #<trial number>"
    trial: int
    value: float | None
    fast_value: float | None  # its value in round 1 (the short run it was promoted from)
    params: dict[str, Any]
    recipe: Recipe
    # Its own full-length run on the tuning period, (step, value) per eval: one more run of
    # the recipe for the re-evaluation's mean and stop; empty when it does not count.
    tuning_run: tuple[tuple[int, float], ...] = ()


@dataclass(frozen=True)
class Recommendation:
    """The campaign's answer: one recipe, and how far to trust it.

    ``verified``: chosen by the re-evaluation (the finalist with the best mean over periods
    and seeds, ``mean`` with its 95% interval over ``runs`` runs); otherwise the last
    round's best single run, unverified.
    """

    finalist: str
    recipe: Recipe
    verified: bool
    value: float  # the mean over the re-evaluation's runs, or the single run's value
    ci_low: float | None
    ci_high: float | None
    runs: int
    verdict: str  # whether it is distinguishable from the others, and by which rule
    # the answer's re-evaluation runs against the trivial predictor on the same periods
    # (None: unverified, a task without a trivial predictor, or a campaign from before)
    against_trivial: TrivialComparison | None = None
    # what its runs' numbers cannot show on their own (one period outweighing the rest)
    cautions: tuple[str, ...] = ()


@dataclass(frozen=True)
class ReevaluationDesign:
    """Which finalists are re-trained on which periods, with how many seeds."""

    study: str  # the round the finalists come from
    finalists: tuple[Finalist, ...]
    period_count: int
    period_seed: int
    periods_pinned: bool
    seeds: int


@dataclass(frozen=True)
class Significance:
    """The re-evaluation's verdict; ``report`` is None when too few runs finished."""

    report: SignificanceReport | None
    summary: tuple[str, ...]


@dataclass(frozen=True)
class HorizonCheck:
    """Whether the short round ranked the promoted configurations as the long round did
    (docs/method.md §9: short runs favour what learns fast), and what was done about it.

    ``best_short_rank`` is the long round's best configuration's rank among the promoted
    by its short-run value (1: the short round's best too). Ranked in the lower half, the
    short round's cut is not trusted: the next-best configurations below it are promoted
    (``more_promoted``) while the budget allows.
    """

    compared: int
    best_short_rank: int
    misranked: bool
    more_promoted: int
    message: str


@dataclass(frozen=True)
class ReevaluationSkipped:
    reason: str


@dataclass(frozen=True)
class Stopped:
    """Why the campaign stopped early (a failed baseline, an unfit sweep)."""

    reason: str


_FACT_FIELDS: dict[StudyKey, tuple[str, type]] = {
    StudyKey.PLAN: ("plan", StudyPlan),
    StudyKey.SWEEP: ("sweep", SweepResult),
    StudyKey.BASELINE: ("baseline", BaselineOutcome),
    StudyKey.STEP_ADVICE: ("step_advice", StepAdvice),
    StudyKey.BOUNDARIES: ("boundaries", BoundaryCheck),
    StudyKey.REEVALUATION: ("design", ReevaluationDesign),
    StudyKey.SIGNIFICANCE: ("significance", Significance),
    StudyKey.RANK_AGREEMENT: ("rank_agreement", RankAgreement),
    StudyKey.HORIZON: ("horizon", HorizonCheck),
    StudyKey.REEVALUATION_SKIPPED: ("skipped", ReevaluationSkipped),
    StudyKey.RECOMMENDATION: ("recommendation", Recommendation),
    StudyKey.STOPPED: ("stopped", Stopped),
}
_KEY_OF_TYPE = {record_type: key for key, (_, record_type) in _FACT_FIELDS.items()}

Fact = (
    StudyPlan
    | SweepResult
    | BaselineOutcome
    | StepAdvice
    | BoundaryCheck
    | ReevaluationDesign
    | Significance
    | RankAgreement
    | HorizonCheck
    | ReevaluationSkipped
    | Recommendation
    | Stopped
)


@dataclass(frozen=True)
class StudyFacts:
    """Everything the campaign recorded on one study."""

    plan: StudyPlan
    sweep: SweepResult | None = None
    baseline: BaselineOutcome | None = None
    step_advice: StepAdvice | None = None
    boundaries: BoundaryCheck | None = None
    design: ReevaluationDesign | None = None
    significance: Significance | None = None
    rank_agreement: RankAgreement | None = None
    horizon: HorizonCheck | None = None
    skipped: ReevaluationSkipped | None = None
    recommendation: Recommendation | None = None
    stopped: Stopped | None = None

    @classmethod
    def from_attrs(cls, attrs: dict[str, Any]) -> StudyFacts:
        """Read a study's facts from its user attributes (a study without a plan: KeyError)."""
        values = {
            field: from_plain(record_type, attrs[key.value])
            for key, (field, record_type) in _FACT_FIELDS.items()
            if attrs.get(key.value) is not None
        }
        return cls(**values)

    def with_fact(self, fact: Fact) -> StudyFacts:
        field, _ = _FACT_FIELDS[_KEY_OF_TYPE[type(fact)]]
        return dataclasses.replace(self, **{field: fact})


def fact_attr(fact: Fact) -> tuple[str, Any]:
    """The user attribute (key, JSON value) that stores ``fact``."""
    return _KEY_OF_TYPE[type(fact)].value, plain(fact)


def campaign_of(attrs: dict[str, Any]) -> str | None:
    """The campaign a study belongs to (None: not a published campaign study)."""
    name = attrs.get(StudyKey.CAMPAIGN.value)
    return name if isinstance(name, str) else None


def spec_data_of(attrs: dict[str, Any]) -> dict[str, Any]:
    return attrs[StudyKey.SPEC.value]


def task_defaults_of(attrs: dict[str, Any]) -> TaskDefaults:
    stored = attrs.get(StudyKey.TASK_DEFAULTS.value)
    return TaskDefaults({}) if stored is None else from_plain(TaskDefaults, stored)
