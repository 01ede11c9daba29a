"""Short-horizon bias, measured and acted on (docs/method.md §9).

Round 1's short runs favour configurations that learn fast; the promoted round shows
whether that ranking held at the longer budget. When the long round's best came from the
lower half of the short round's ranking, the cut that chose the promoted few is not to be
trusted, so the next-best configurations below it are promoted too, with what the budget
has left. When the ranking held, that leftover goes to the re-evaluation's periods instead.
"""

from __future__ import annotations

import dataclasses
import math

from optuna.trial import FrozenTrial
from optuna.trial import TrialState

from autotune.analysis import top_k
from autotune.campaign._budget import affordable_runs
from autotune.campaign._hparams import stage_base_hparams
from autotune.campaign._plan import NewStudy
from autotune.campaign._plan import QueuedTrial
from autotune.campaign._promotion import promoted_trial_attrs
from autotune.campaign._promotion import queued_as
from autotune.campaign._records import HorizonCheck
from autotune.campaign._snapshot import CampaignSnapshot
from autotune.campaign._snapshot import StudySnapshot
from autotune.campaign._trial_attrs import ATTR_PARENT_STUDY
from autotune.campaign._trial_attrs import ATTR_PARENT_TRIAL
from autotune.campaign._trial_attrs import ATTR_PARENT_VALUE
from autotune.spec import Direction


def best_short_rank(trials: list[FrozenTrial], direction: Direction) -> int | None:
    """The long round's best trial's rank among ``trials`` by its parent's (short) value;
    None with fewer than two comparable trials."""
    sign = 1.0 if direction is Direction.MINIMIZE else -1.0
    compared = [t for t in trials if _comparable(t)]
    if len(compared) < 2:
        return None
    best = min(compared, key=lambda t: (sign * float(t.value), t.number))
    short = sign * float(best.user_attrs[ATTR_PARENT_VALUE])
    return 1 + sum(sign * float(t.user_attrs[ATTR_PARENT_VALUE]) < short for t in compared)


def horizon_check(snapshot: CampaignSnapshot) -> tuple[HorizonCheck, NewStudy | None]:
    """The check of the last promoted round, and the same study with more configurations
    queued when the short round misranked and the budget has room (else None)."""
    spec, latest = snapshot.spec, snapshot.latest
    promoted = [t for t in latest.trials if _comparable(t)]
    rank = best_short_rank(promoted, spec.metric.direction)
    if rank is None:
        message = "fewer than 2 promoted runs finished: no short-vs-long ranking to check"
        return HorizonCheck(len(promoted), 0, False, 0, message), None
    misranked = rank > math.ceil(len(promoted) / 2)
    said = (
        f"the best of {len(promoted)} runs at {latest.plan.max_train_steps} steps was "
        f"#{rank} of them at the short budget"
    )
    if not misranked:
        half = math.ceil(len(promoted) / 2)
        message = (
            f"{said}, in the short round's top half (the rule: #{half} or better), so its "
            "cut is kept; no more are promoted"
        )
        return HorizonCheck(len(promoted), rank, False, 0, message), None
    queued = _more_promotions(snapshot)
    if not queued:
        message = f"{said}: short runs misrank here ({_why_none_more(snapshot)})"
        return HorizonCheck(len(promoted), rank, True, 0, message), None
    message = f"{said}: short runs misrank here, so the next {len(queued)} were promoted too"
    plan = dataclasses.replace(latest.plan, trials=latest.plan.trials + len(queued))
    check = HorizonCheck(len(promoted), rank, True, len(queued), message)
    return check, NewStudy(plan, tuple(queued))


def _why_none_more(snapshot: CampaignSnapshot) -> str:
    """Why no more configurations were promoted, and what would let autotune."""
    if snapshot.spec.budget is None:
        return "set a budget to let autotune promote more; or raise top_k"
    if not _unpromoted(snapshot):
        return "every finished configuration of the short round is promoted already"
    return "no budget left to promote more: a larger budget would"


def _unpromoted(snapshot: CampaignSnapshot) -> list[FrozenTrial]:
    """The parent round's finished configurations not promoted yet, best first."""
    latest = snapshot.latest
    parent_study = _parent_study(snapshot, latest)
    if parent_study is None:
        return []
    done = {t.user_attrs.get(ATTR_PARENT_TRIAL) for t in latest.trials}
    direction = snapshot.spec.metric.direction
    ranked = top_k(list(parent_study.trials), len(parent_study.trials), direction)
    return [t for t in ranked if t.number not in done]


def _more_promotions(snapshot: CampaignSnapshot) -> list[QueuedTrial]:
    """The next-best unpromoted configurations of the parent round, as many as the round's
    top_k and the budget's leftover allow (none without a budget: nothing caps them)."""
    spec, latest = snapshot.spec, snapshot.latest
    parent_study = _parent_study(snapshot, latest)
    total = latest.plan.campaign_max_train_steps
    if spec.budget is None or parent_study is None or total is None:
        return []
    steps = latest.plan.max_train_steps
    room = affordable_runs(
        spec, snapshot.steps_spent, latest.plan, latest.plan.round_number, steps
    )
    candidates = _unpromoted(snapshot)
    top = spec.rounds[latest.plan.round_number - 1].top_k
    assert top is not None  # validated by the spec: every later round has top_k
    count = min(top, room, len(candidates))
    base = stage_base_hparams(
        spec, snapshot.task_defaults.hyperparameters, latest.plan.stage_fixed
    )
    return [
        QueuedTrial(
            queued_as(parent),
            dict(parent.params),
            promoted_trial_attrs(spec, base, parent, parent_study, steps),
        )
        for parent in candidates[:count]
    ]


def _parent_study(snapshot: CampaignSnapshot, study: StudySnapshot) -> StudySnapshot | None:
    names = {t.user_attrs.get(ATTR_PARENT_STUDY) for t in study.trials} - {None}
    if len(names) != 1:
        return None
    (name,) = names
    return next((s for s in snapshot.studies if s.name == name), None)


def _comparable(trial: FrozenTrial) -> bool:
    parent = trial.user_attrs.get(ATTR_PARENT_VALUE)
    return (
        trial.state is TrialState.COMPLETE
        and trial.value is not None
        and math.isfinite(trial.value)
        and isinstance(parent, int | float)
        and math.isfinite(parent)
    )
