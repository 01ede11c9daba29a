"""Tuning stages: learning rate first, boundary checks with widening, then the next groups.

After round 1 of a tuning stage, every numeric parameter is checked for a best value on a
bound of the range it was searched in (METHOD §1: bad search spaces deceive). A hit bound
is widened, within the space's hard limits, and the stage continues as a new study that
carries the finished trials over with the widened distributions, so nothing is re-run.
Otherwise the next stage tunes its groups with the earlier stages' bests fixed and the
learning rate re-tuned in a range narrowed around the previous best.
"""

from __future__ import annotations

from collections.abc import Mapping
import dataclasses
from typing import Any

import optuna
from optuna.distributions import BaseDistribution
from optuna.distributions import FloatDistribution
from optuna.trial import FrozenTrial
from optuna.trial import TrialState
from optuna.trial import create_trial

from autotune.analysis import ParamBoundary
from autotune.analysis import carried_over
from autotune.analysis import check_boundaries
from autotune.analysis import top_k
from autotune.analysis import widen
from autotune.campaign._campaign import ATTR_BOUNDARIES  # noqa: F401 (re-exported)
from autotune.campaign._campaign import ATTR_DISTRIBUTIONS
from autotune.campaign._campaign import ATTR_STAGE_FIXED
from autotune.campaign._campaign import ATTR_STAGE_INDEX
from autotune.campaign._campaign import ATTR_WIDENING
from autotune.campaign._campaign import Campaign
from autotune.campaign._campaign import Stage
from autotune.campaign._campaign import StudyPlan
from autotune.campaign._campaign import create_stage_study
from autotune.campaign._campaign import distributions_from_json
from autotune.campaign._campaign import distributions_to_json
from autotune.campaign._campaign import publish_stage_study
from autotune.campaign._campaign import space_distributions
from autotune.campaign._campaign import tuning_plan
from autotune.campaign._plain import to_attr
from autotune.pruning import rung_reports
from autotune.pruning import rung_steps
from autotune.spec import CategoricalParam
from autotune.spec import IntParam
from autotune.spec import PrunerKind
from autotune.spec import StageSpec
from autotune.spec import StudySpec
from autotune.worker._objectives import stage_base_hparams

ATTR_CARRIED_FROM = "carried_from"
LEARNING_RATE = "learning_rate"


def study_distributions(study: optuna.Study) -> dict[str, BaseDistribution]:
    """The distributions a tuning study samples (narrowed or widened from the space)."""
    return distributions_from_json(study.user_attrs.get(ATTR_DISTRIBUTIONS) or {})


def study_base(spec: StudySpec, study: optuna.Study) -> dict[str, Any]:
    """The hyperparameters a tuning study does not tune."""
    return stage_base_hparams(spec, study.user_attrs.get(ATTR_STAGE_FIXED) or {})


def stage_spec_of(spec: StudySpec, study: optuna.Study) -> StageSpec:
    return spec.tuning_stages[int(study.user_attrs.get(ATTR_STAGE_INDEX, 0))]


# --- boundary check and widening --------------------------------------------------------


def boundary_records(spec: StudySpec, study: optuna.Study) -> tuple[Any, ...]:
    """The boundary check of a finished tuning study, one record per parameter."""
    ordered = frozenset(
        name
        for name, param in spec.search_space.params.items()
        if isinstance(param, CategoricalParam) and param.ordered
    )
    trials = study.get_trials(deepcopy=False)
    if spec.pruner.type is not PrunerKind.NONE:
        pruner = spec.pruner
        rungs = rung_steps(pruner.min_steps, pruner.reduction_factor, Campaign.steps_of(study))
        trials = ranked_at_a_rung(trials, rungs, spec.boundary.top_k)
    distributions = study_distributions(study)
    records = check_boundaries(
        trials,
        distributions,
        spec.metric.direction,
        top_k=spec.boundary.top_k,
        tolerance=spec.boundary.tolerance,
        ordered_categoricals=ordered,
    )
    return tuple(
        _at_hard_limit(r)
        if isinstance(r, ParamBoundary) and r.hit and _widened(spec, distributions, r) is None
        else r
        for r in records
    )


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
    spec: StudySpec, distributions: Mapping[str, BaseDistribution], records: tuple[Any, ...]
) -> dict[str, BaseDistribution] | None:
    """The distributions with each hit bound moved out; None if none can move."""
    widened = dict(distributions)
    for record in records:
        moved = _widened(spec, distributions, record)
        if moved is not None:
            widened[record.name] = moved
    return None if widened == dict(distributions) else widened


def _widened(
    spec: StudySpec, distributions: Mapping[str, BaseDistribution], record: Any
) -> BaseDistribution | None:
    """The record's distribution with its hit bound moved out; None: no hit, or at a limit."""
    if not isinstance(record, ParamBoundary) or not record.hit:
        return None
    param = spec.search_space.params.get(record.name)
    return widen(
        distributions[record.name],  # type: ignore[arg-type]
        record.side,
        log_factor=spec.boundary.log_factor,
        linear_fraction=spec.boundary.linear_fraction,
        hard_low=default_hard_low(param),
        hard_high=getattr(param, "hard_high", None),
    )


def _at_hard_limit(record: ParamBoundary) -> ParamBoundary:
    """A hit on a bound that cannot move: say so instead of advising to widen."""
    head = record.message.rsplit(": widen", 1)[0]
    message = f"{head}: it is a hard limit of the space, not widened (the best may lie beyond)"
    return dataclasses.replace(record, message=message)


def after_tuning_round_one(campaign: Campaign, latest: optuna.Study) -> bool:
    """Check the bounds; widen and continue, or open the next stage. False: stages done."""
    spec = campaign.spec
    records = boundary_records(spec, latest)
    latest.set_user_attr(ATTR_BOUNDARIES, [to_attr(r) for r in records])
    widening = int(latest.user_attrs.get(ATTR_WIDENING, 0))
    if spec.boundary.widen and widening < spec.boundary.max_widenings:
        widened = widened_distributions(spec, study_distributions(latest), records)
        if widened is not None:
            _continue_widened(campaign, latest, widened, widening + 1)
            return True
    index = int(latest.user_attrs.get(ATTR_STAGE_INDEX, 0))
    if index + 1 >= len(spec.tuning_stages):
        return False
    best = top_k(latest.get_trials(deepcopy=False), 1, spec.metric.direction)
    if not best:
        return False
    _open_next_stage(campaign, latest, best[0], index + 1)
    return True


def _continue_widened(
    campaign: Campaign,
    latest: optuna.Study,
    distributions: dict[str, BaseDistribution],
    widening: int,
) -> None:
    spec = campaign.spec
    stage = stage_spec_of(spec, latest)
    finished = [
        t
        for t in latest.get_trials(deepcopy=False)
        if t.state in (TrialState.COMPLETE, TrialState.PRUNED)
    ]
    new_trials = spec.boundary.trials or max(1, spec.stage_trials(stage) // 2)
    total = campaign.max_train_steps
    assert total is not None  # tuning runs once max_train_steps is known
    plan = StudyPlan(
        Stage.JOINT,
        1,
        len(finished) + new_trials,
        Campaign.steps_of(latest),
        total,
        name=stage.label,
        stage_index=int(latest.user_attrs.get(ATTR_STAGE_INDEX, 0)),
        widening=widening,
        stage_fixed=dict(latest.user_attrs.get(ATTR_STAGE_FIXED) or {}),
        distributions=distributions_to_json(distributions),
    )
    study = create_stage_study(spec, campaign.storage, plan)
    carried = {t.user_attrs.get(ATTR_CARRIED_FROM) for t in study.get_trials(deepcopy=False)}
    for trial in finished:
        if trial.number not in carried:
            study.add_trial(_carry(trial, distributions))
    publish_stage_study(study, spec)


def _carry(trial: FrozenTrial, distributions: Mapping[str, BaseDistribution]) -> FrozenTrial:
    copy = carried_over(trial, distributions)
    copy.user_attrs = {**copy.user_attrs, ATTR_CARRIED_FROM: trial.number}
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


def _open_next_stage(
    campaign: Campaign, latest: optuna.Study, best: FrozenTrial, index: int
) -> None:
    spec = campaign.spec
    stage = spec.tuning_stages[index]
    fixed = dict(latest.user_attrs.get(ATTR_STAGE_FIXED) or {})
    fixed |= {k: v for k, v in best.params.items() if k != LEARNING_RATE}
    learning_rate = best.params.get(LEARNING_RATE, study_base(spec, latest)[LEARNING_RATE])
    distributions = {LEARNING_RATE: narrowed_learning_rate(spec, float(learning_rate))}
    distributions |= space_distributions(spec.search_space.group_params(stage.groups))
    total = campaign.max_train_steps
    assert total is not None  # tuning runs once max_train_steps is known
    plan = tuning_plan(spec, index, total, fixed, distributions)
    publish_stage_study(create_stage_study(spec, campaign.storage, plan), spec)
