"""Is the best really better? Finalists re-trained on several periods x seeds (METHOD §5).

The finalists (top-k of the last round) are re-trained on P periods, each with S seeds; every
run is a queued trial of a re-evaluation study, so all workers share the work. The periods
rotate with the calendar month (a new month picks new periods, against overfitting the
periods by extensive tuning) unless the spec pins them. The verdict compares each finalist
with the best, paired by period and seed.
"""

from __future__ import annotations

import datetime
from typing import Any

import numpy as np
import optuna
from optuna.trial import FrozenTrial
from optuna.trial import TrialState

from autotune import training
from autotune.analysis import compare_finalists
from autotune.analysis import rank_agreement
from autotune.analysis import top_k
from autotune.campaign._campaign import ATTR_SIGNIFICANCE
from autotune.campaign._campaign import Campaign
from autotune.campaign._campaign import Stage
from autotune.campaign._campaign import StudyPlan
from autotune.campaign._campaign import create_stage_study
from autotune.campaign._campaign import publish_stage_study
from autotune.campaign._plain import to_attr
from autotune.campaign._staging import study_base
from autotune.campaign._trial_attrs import ATTR_PARENT_VALUE
from autotune.campaign._trial_attrs import ATTR_SEED
from autotune.spec import StudySpec
from autotune.worker._objectives import ATTR_FINALIST
from autotune.worker._objectives import ATTR_HPARAMS
from autotune.worker._objectives import ATTR_PERIOD_COUNT
from autotune.worker._objectives import ATTR_PERIOD_INDEX
from autotune.worker._objectives import ATTR_PERIOD_NAME
from autotune.worker._objectives import ATTR_PERIOD_SEED
from autotune.worker._objectives import ATTR_REPLICATE
from autotune.worker._objectives import trial_hparams

ATTR_DESIGN = "autotune.reevaluation"
ATTR_RANK_AGREEMENT = "autotune.rank_agreement"
ATTR_SKIPPED = "autotune.reevaluation_skipped"
SEED_STRIDE = 1_000_003


def rotating_period_seed(today: datetime.date) -> int:
    """The period seed of a calendar month, e.g. 202611: a new month picks new periods."""
    return today.year * 100 + today.month


def finalist_label(trial: FrozenTrial) -> str:
    return f"trial {trial.number}"


def reevaluation_trials(
    finalists: list[tuple[str, dict[str, Any]]],
    period_names: list[str],
    period_seed: int,
    replicates: int,
    seed: int,
) -> list[dict[str, Any]]:
    """The user attributes of every queued run: finalist x period x seed replicate."""
    return [
        {
            ATTR_FINALIST: label,
            ATTR_HPARAMS: hparams,
            ATTR_PERIOD_NAME: period,
            ATTR_PERIOD_INDEX: index,
            ATTR_PERIOD_COUNT: len(period_names),
            ATTR_PERIOD_SEED: period_seed,
            ATTR_REPLICATE: replicate,
            ATTR_SEED: seed + SEED_STRIDE * (replicate + 1),
        }
        for label, hparams in finalists
        for index, period in enumerate(period_names)
        for replicate in range(replicates)
    ]


def start_reevaluation(campaign: Campaign, last_round: optuna.Study, today: datetime.date) -> bool:
    """Queue the re-evaluation of the last round's finalists; False if disabled or < 2."""
    spec = campaign.spec
    design = spec.reevaluation
    if not design.enabled:
        return False
    finalists = top_k(
        last_round.get_trials(deepcopy=False), design.finalists, spec.metric.direction
    )
    if len(finalists) < 2:
        reason = (
            f"re-evaluation skipped: {len(finalists)} complete trial(s) in "
            f"{Campaign.label_of(last_round)}, at least 2 finalists are needed"
        )
        last_round.set_user_attr(ATTR_SKIPPED, reason)
        return False
    pinned = design.period_seed is not None
    period_seed = design.period_seed if pinned else rotating_period_seed(today)
    periods = training.get_task(spec.task).periods(design.periods, period_seed)
    base = study_base(spec, last_round)
    labelled = [
        (finalist_label(t), trial_hparams(base, t.params, t.user_attrs)) for t in finalists
    ]
    names = [period.name for period in periods]
    runs = reevaluation_trials(labelled, names, period_seed, design.seeds, spec.seed)
    total = campaign.max_train_steps
    plan = StudyPlan(Stage.REEVALUATION, 1, len(runs), Campaign.steps_of(last_round), total)
    study = create_stage_study(spec, campaign.storage, plan)
    record = _design_record(spec, finalists, last_round, names, period_seed, pinned)
    study.set_user_attr(ATTR_DESIGN, record)
    if not study.get_trials(deepcopy=False):
        for attrs in runs:
            study.enqueue_trial({}, user_attrs=attrs)
    publish_stage_study(study, spec)
    return True


def _design_record(
    spec: StudySpec,
    finalists: list[FrozenTrial],
    last_round: optuna.Study,
    period_names: list[str],
    period_seed: int,
    pinned: bool,
) -> dict[str, Any]:
    return {
        "study": last_round.study_name,
        "finalists": {
            finalist_label(t): {
                "trial": t.number,
                "value": t.value,
                "fast_value": t.user_attrs.get(ATTR_PARENT_VALUE, t.value),
                "params": t.params,
            }
            for t in finalists
        },
        "periods": period_names,
        "period_seed": period_seed,
        "periods_pinned": pinned,
        "seeds": spec.reevaluation.seeds,
    }


def reevaluation_results(trials: list[FrozenTrial]) -> dict[str, dict[tuple[str, int], float]]:
    """finalist -> (period, replicate) -> value, from the finished re-evaluation runs."""
    results: dict[str, dict[tuple[str, int], float]] = {}
    for trial in trials:
        if trial.state is TrialState.COMPLETE and trial.value is not None:
            key = (str(trial.user_attrs[ATTR_PERIOD_NAME]), int(trial.user_attrs[ATTR_REPLICATE]))
            results.setdefault(str(trial.user_attrs[ATTR_FINALIST]), {})[key] = trial.value
    return results


def finish_reevaluation(campaign: Campaign, study: optuna.Study) -> None:
    """Record the significance verdict and the fast-mode rank agreement (once)."""
    if ATTR_SIGNIFICANCE in study.user_attrs:
        return
    spec = campaign.spec
    results = reevaluation_results(study.get_trials(deepcopy=False))
    usable = {k: v for k, v in results.items() if len(v) >= 2}
    if len(usable) < 2:
        study.set_user_attr(ATTR_SIGNIFICANCE, {"summary": ["too few finished runs to compare"]})
        return
    design = spec.reevaluation
    report = compare_finalists(usable, spec.metric.direction, design.alpha, design.test)
    study.set_user_attr(ATTR_SIGNIFICANCE, to_attr(report))
    fast = {k: v["fast_value"] for k, v in study.user_attrs[ATTR_DESIGN]["finalists"].items()}
    full = {label: float(np.mean(list(values.values()))) for label, values in usable.items()}
    if len(set(fast) & set(full)) >= 3:
        agreement = rank_agreement(fast, full, spec.metric.direction)
        study.set_user_attr(ATTR_RANK_AGREEMENT, to_attr(agreement))
