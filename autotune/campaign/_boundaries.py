"""Boundary check and widening after round 1 of a tuning stage (docs/method.md §6).

Every numeric parameter is checked for a best value on a bound of the range it was searched
in (bad search spaces deceive). A hit bound is widened within the space's hard limits, and
the stage continues as a new study that carries the finished trials over with the widened
distributions, so nothing is re-run.
"""

from __future__ import annotations

from collections.abc import Mapping
from collections.abc import Sequence
from typing import Any

from optuna.distributions import BaseDistribution
from optuna.distributions import FloatDistribution
from optuna.trial import FrozenTrial
from optuna.trial import TrialState
from optuna.trial import create_trial

from autotune._domains import MODEL_DOMAINS
from autotune._domains import TRAINING_DOMAINS
from autotune._domains import Domain
from autotune.analysis import BoundarySide
from autotune.analysis import CategoricalEdge
from autotune.analysis import ParamBoundary
from autotune.analysis import carried_over
from autotune.analysis import check_boundaries
from autotune.analysis import widen
from autotune.campaign._records import BoundaryAction
from autotune.campaign._records import BoundaryCheck
from autotune.campaign._records import BoundaryFinding
from autotune.campaign._snapshot import StudySnapshot
from autotune.campaign._trial_attrs import ATTR_CARRIED_FROM
from autotune.campaign._trial_attrs import ATTR_STEPS_TRAINED
from autotune.pruning import rung_reports
from autotune.pruning import rung_steps
from autotune.spec import CategoricalParam
from autotune.spec import IntParam
from autotune.spec import PrunerKind
from autotune.spec import StudySpec

LEARNING_RATE = "learning_rate"


def boundary_check(spec: StudySpec, study: StudySnapshot) -> BoundaryCheck:
    """The boundary check of a finished round-1 study, one finding per parameter."""
    ordered = frozenset(
        name
        for name, param in spec.search_space.params.items()
        if isinstance(param, CategoricalParam) and param.ordered
    )
    trials = list(study.trials)
    if spec.pruner.type is not PrunerKind.NONE:
        plan, pruner = study.plan, spec.pruner
        first = spec.first_rung(spec.run_eval_interval(plan.campaign_max_train_steps))
        rungs = rung_steps(first, pruner.reduction_factor, plan.max_train_steps)
        trials = ranked_at_a_rung(trials, rungs, spec.boundary.top_k)
    distributions = study.plan.decoded_distributions()
    records = check_boundaries(
        trials,
        distributions,
        spec.metric.direction,
        top_k=spec.boundary.top_k,
        tolerance=spec.boundary.tolerance,
        ordered_categoricals=ordered,
    )
    return BoundaryCheck(tuple(_finding(spec, distributions, r) for r in records))


def _finding(
    spec: StudySpec,
    distributions: Mapping[str, BaseDistribution],
    record: ParamBoundary | CategoricalEdge,
) -> BoundaryFinding:
    if isinstance(record, CategoricalEdge):
        action = BoundaryAction.MORE_CHOICES if record.hit else BoundaryAction.NONE
        return BoundaryFinding(
            record.name, True, record.best_choice, record.side, None,
            record.near_low, record.near_high, record.hit, action, record.message,
        )  # fmt: skip
    action, message = BoundaryAction.NONE, record.message
    if record.hit:
        action = BoundaryAction.WIDEN
        if _widened_side(spec, distributions, record.name, record.side) is None:
            origin = _limit_origin(spec, record.name, record.side)
            action, message = BoundaryAction.HARD_LIMIT, _hard_limit_message(record, origin)
    return BoundaryFinding(
        record.name, False, record.best_value, record.side, record.distance,
        record.near_low, record.near_high, record.hit, action, message,
        record.lean_low, record.lean_high,
    )  # fmt: skip


def _hard_limit_message(record: ParamBoundary, origin: str) -> str:
    upper = record.side is BoundarySide.HIGH
    end, bound = ("upper", record.high) if upper else ("lower", record.low)
    beyond = (  # no warmup below 0: "the best may lie beyond" asked for the impossible
        "nothing beyond it is a value" if origin == DOMAIN_ORIGIN else "the best may lie beyond"
    )
    return (
        f"{record.name}: best {record.best_value:g} is at the {end} bound {bound:g}: it is a "
        f"hard limit ({origin}), not widened ({beyond})"
    )


DOMAIN_ORIGIN = "the end of the values training accepts for it"


def _limit_origin(spec: StudySpec, name: str, side: BoundarySide) -> str:
    """Where a hard limit comes from, so a user knows whether and how to move it."""
    key = "hard_high" if side is BoundarySide.HIGH else "hard_low"
    if getattr(spec.search_space.params.get(name), key, None) is not None:
        return f"the space's {key}"
    domain = _known_domain(spec, name)
    if domain is not None and (domain.high if key == "hard_high" else domain.low) is not None:
        return DOMAIN_ORIGIN
    return f"a range from 0 or 1 keeps its sign; set {key} in the space to widen past it"


def ranked_at_a_rung(
    trials: list[FrozenTrial], rungs: tuple[int, ...], top_k: int
) -> list[FrozenTrial]:
    """The trials for the boundary check, with values that compare like with like.

    Under rung pruning most trials stop early, and a pruned trial's value (its last report)
    does not compare with a complete one's. With fewer than ``top_k`` COMPLETE trials, every
    trial that reached the deepest rung at least ``top_k`` trials reached is ranked by its
    report there (pruned or not), as a COMPLETE copy with that value; else ``trials``.
    Deeper rungs rank on more training: at the first rungs seed noise can outweigh the
    parameters.
    """
    complete = [t for t in trials if t.state is TrialState.COMPLETE and t.value is not None]
    if len(complete) >= top_k:
        return trials
    finished = [t for t in trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]
    reports = {t.number: rung_reports(t.intermediate_values, rungs) for t in finished}
    for rung in reversed(range(len(rungs))):
        reached = [t for t in finished if len(reports[t.number]) > rung]
        if len(reached) >= top_k:
            return [_valued(t, reports[t.number][rung].value) for t in reached]
    return trials


def _valued(trial: FrozenTrial, value: float) -> FrozenTrial:
    copy = create_trial(
        value=value, params=dict(trial.params), distributions=dict(trial.distributions)
    )
    copy.number = trial.number
    return copy


def default_hard_low(param: Any) -> float | None:
    """How far down a range may widen: the space's hard_low, else keep the sign.

    A range starting at 0 or above stays non-negative (dropout, fractions); an integer
    range starting at 1 or above stays positive (layer and unit counts).
    """
    if param is None or getattr(param, "hard_low", None) is not None:
        return None if param is None else param.hard_low
    if isinstance(param, IntParam) and param.low >= 1:
        return 1
    return 0.0 if param.low >= 0 else None


def widened_distributions(
    spec: StudySpec, distributions: Mapping[str, BaseDistribution], check: BoundaryCheck
) -> dict[str, BaseDistribution] | None:
    """The distributions with each widenable hit bound moved out; None if none moves."""
    widened = dict(distributions)
    for finding in check.findings:
        if finding.action is BoundaryAction.WIDEN:
            moved = _widened_side(spec, distributions, finding.name, finding.side)
            if moved is not None:
                widened[finding.name] = moved
    return None if widened == dict(distributions) else widened


def _widened_side(
    spec: StudySpec,
    distributions: Mapping[str, BaseDistribution],
    name: str,
    side: BoundarySide,
) -> BaseDistribution | None:
    """The distribution with its ``side`` bound moved out; None: at a hard limit."""
    param = spec.search_space.params.get(name)
    distribution = distributions[name]
    domain = _known_domain(spec, name)
    return widen(
        distribution,  # type: ignore[arg-type]
        side,
        log_factor=spec.boundary.log_factor,
        linear_fraction=spec.boundary.linear_fraction,
        hard_low=_tighter(default_hard_low(param), _domain_low(domain, distribution), max),
        hard_high=_tighter(getattr(param, "hard_high", None), _domain_high(domain, distribution)),
    )


def _known_domain(spec: StudySpec, name: str) -> Domain | None:
    """The values training accepts for ``name``: the training loop's for every task, a
    built-in model's for a built-in task (a user task, ``module:factory``, names its own)."""
    builtin_task = ":" not in spec.task
    return TRAINING_DOMAINS.get(name) or (MODEL_DOMAINS.get(name) if builtin_task else None)


def _domain_high(domain: Domain | None, distribution: BaseDistribution) -> float | None:
    """How far up widening may go inside the domain: to a closed end, halfway to an open
    one (dropout's 1 is never reached, each widening halves the distance)."""
    if domain is None or domain.high is None:
        return None
    if not domain.high_open:
        return domain.high
    return (distribution.high + domain.high) / 2  # type: ignore[attr-defined]


def _domain_low(domain: Domain | None, distribution: BaseDistribution) -> float | None:
    """How far down widening may go inside the domain (see :func:`_domain_high`); a log
    range never reaches an open 0 (it divides), so it is not held back."""
    if domain is None or domain.low is None:
        return None
    if not domain.low_open:
        return domain.low
    if distribution.log:  # type: ignore[attr-defined]
        return None
    return (distribution.low + domain.low) / 2  # type: ignore[attr-defined]


def _tighter(
    space_limit: float | None, domain_limit: float | None, pick: Any = min
) -> float | None:
    """The stricter of the space's hard limit and the domain's (either may be absent)."""
    limits = [limit for limit in (space_limit, domain_limit) if limit is not None]
    return pick(limits) if limits else None


def widened_trials(
    trials: Sequence[FrozenTrial], distributions: Mapping[str, BaseDistribution]
) -> tuple[FrozenTrial, ...]:
    """The finished trials of a stage, copied for its widened study (nothing re-run)."""
    finished = [t for t in trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]
    return tuple(_carry(t, distributions) for t in finished)


def _carry(trial: FrozenTrial, distributions: Mapping[str, BaseDistribution]) -> FrozenTrial:
    copy = carried_over(trial, distributions)
    copy.user_attrs = {**copy.user_attrs, ATTR_CARRIED_FROM: trial.number, ATTR_STEPS_TRAINED: 0}
    return copy


def narrowed_learning_rate(spec: StudySpec, best: float) -> FloatDistribution:
    """A log range around the previous best: [best / f, best * f] within the hard limits."""
    factor = spec.learning_rate_narrowing
    param = spec.search_space.params[LEARNING_RATE]
    low, high = best / factor, best * factor
    hard_low, hard_high = getattr(param, "hard_low", None), getattr(param, "hard_high", None)
    if hard_low is not None and hard_low < best:
        low = max(low, hard_low)
    if hard_high is not None and hard_high > best:
        high = min(high, hard_high)
    return FloatDistribution(low, high, log=True)
