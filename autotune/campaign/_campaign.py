"""Campaigns: a study spec turned into Optuna studies in PostgreSQL, and read back."""

from __future__ import annotations

from collections.abc import Mapping
import csv
from dataclasses import dataclass
from dataclasses import field
from datetime import datetime
import enum
import itertools
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import optuna
from optuna.distributions import BaseDistribution
from optuna.distributions import CategoricalDistribution
from optuna.distributions import FloatDistribution
from optuna.distributions import IntDistribution
from optuna.distributions import distribution_to_json
from optuna.distributions import json_to_distribution
from optuna.storages import BaseStorage
from optuna.trial import FrozenTrial
from optuna.trial import TrialState

from autotune._errors import CampaignExistsError
from autotune._errors import CampaignNotFoundError
from autotune.analysis import BestStepAnalysis
from autotune.analysis import analyze_best_steps
from autotune.analysis import best_step_records
from autotune.analysis import sweep_learning_rates
from autotune.report._progress import Progress
from autotune.report._progress import progress_of
from autotune.spec import Direction
from autotune.spec import FloatParam
from autotune.spec import IntParam
from autotune.spec import SamplerKind
from autotune.spec import StudySpec
from autotune.spec import study_spec_from_dict
from autotune.storage._locks import advisory_lock

ATTR_CAMPAIGN = "autotune.campaign"
ATTR_STAGE = "autotune.stage"
ATTR_ROUND = "autotune.round"
ATTR_SPEC = "autotune.spec"
ATTR_SPEC_HASH = "autotune.spec_hash"
ATTR_TRIALS = "autotune.trials"
ATTR_STEPS = "autotune.max_train_steps"
ATTR_CAMPAIGN_STEPS = "autotune.campaign_max_train_steps"
ATTR_STOPPED = "autotune.stopped"
ATTR_STAGE_NAME = "autotune.stage_name"
ATTR_STAGE_INDEX = "autotune.stage_index"
ATTR_WIDENING = "autotune.widening"
ATTR_STAGE_FIXED = "autotune.stage_fixed"  # params fixed at earlier stages' bests
ATTR_DISTRIBUTIONS = "autotune.distributions"  # what the stage samples (narrowed, widened)
ATTR_SAMPLING = "autotune.sampling"  # False: workers run only queued trials
ATTR_BOUNDARIES = "autotune.boundaries"  # the boundary check of a tuning study
ATTR_SIGNIFICANCE = "autotune.significance"  # the re-evaluation's verdict


class Stage(enum.Enum):
    """The kinds of stages of a campaign, in pipeline order."""

    STEPS_SWEEP = "steps"  # max_train_steps measured by a learning-rate sweep ("auto")
    BASELINE = "baseline"  # the task's default configuration vs the trivial predictor
    JOINT = "joint"  # a tuning stage (groups of the space), in rounds of growing budgets
    REEVALUATION = "reeval"  # finalists re-trained on several periods x seeds


STAGE_ORDER = {stage: index for index, stage in enumerate(Stage)}


@dataclass(frozen=True)
class StudyPlan:
    """What one stage/round study runs: its trial budget and step budget.

    Tuning stages also carry their name, index, widening count, the parameters fixed at
    earlier stages' bests and the distributions they sample.
    """

    stage: Stage
    round_number: int
    trials: int
    max_train_steps: int
    campaign_max_train_steps: int | None  # None while the sweep has not measured it
    name: str = ""  # default: the stage kind's value
    stage_index: int = 0
    widening: int = 0
    stage_fixed: dict[str, Any] = field(default_factory=dict)
    distributions: dict[str, str] = field(default_factory=dict)  # name -> optuna JSON
    queued: tuple[dict[str, Any], ...] = ()  # params of trials queued up front (sweep, grid)

    @property
    def sampling(self) -> bool:
        """Whether workers sample new trials (else they run only queued ones)."""
        if self.queued:
            return False
        return self.stage is Stage.BASELINE or (
            self.stage is Stage.JOINT and self.round_number == 1
        )

    @property
    def study_component(self) -> str:
        return self.name or self.stage.value

    def study_name(self, campaign: str) -> str:
        name = study_name(campaign, self.study_component, self.round_number)
        return name if self.widening == 0 else f"{name}-widened{self.widening}"


def first_plan(spec: StudySpec) -> StudyPlan:
    """The first study of a campaign: the sweep, the baseline or round 1."""
    if spec.measures_max_train_steps:
        sweep = spec.steps_sweep
        rates = sweep_learning_rates(sweep.low, sweep.high, sweep.count)
        queued = tuple({"learning_rate": rate} for rate in rates)
        return StudyPlan(Stage.STEPS_SWEEP, 1, len(rates), _sweep_steps(spec), None, queued=queued)
    return plan_after_steps(spec, int(spec.max_train_steps))


def plan_after_steps(spec: StudySpec, max_train_steps: int) -> StudyPlan:
    """The study that follows once max_train_steps is known: the baseline or round 1."""
    if spec.baseline:
        steps = spec.round_steps(1, max_train_steps)
        return StudyPlan(Stage.BASELINE, 1, 1, steps, max_train_steps)
    return tuning_plan(spec, 0, max_train_steps)


def tuning_plan(
    spec: StudySpec,
    index: int,
    total_steps: int,
    stage_fixed: dict[str, Any] | None = None,
    distributions: dict[str, BaseDistribution] | None = None,
) -> StudyPlan:
    """Round 1 of tuning stage ``index`` (default distributions: its groups' ranges).

    A grid stage queues every combination of its values and samples nothing else.
    """
    stage = spec.tuning_stages[index]
    if distributions is None:
        distributions = space_distributions(spec.search_space.group_params(stage.groups))
    queued: tuple[dict[str, Any], ...] = ()
    trials = spec.stage_trials(stage)
    if spec.stage_sampler(stage) is SamplerKind.GRID:
        queued = tuple(grid_combinations(distributions, stage.grid_points))
        trials = len(queued)
    return StudyPlan(
        Stage.JOINT,
        1,
        trials,
        spec.round_steps(1, total_steps),
        total_steps,
        name=stage.label,
        stage_index=index,
        stage_fixed=dict(stage_fixed or {}),
        distributions=distributions_to_json(distributions),
        queued=queued,
    )


def grid_combinations(
    distributions: Mapping[str, BaseDistribution], points: int
) -> list[dict[str, Any]]:
    """Every combination of ``points`` values per number (log-aware) and every choice."""
    axes = {name: _grid_values(dist, points) for name, dist in distributions.items()}
    names = list(axes)
    return [dict(zip(names, values, strict=True)) for values in itertools.product(*axes.values())]


def _grid_values(dist: BaseDistribution, points: int) -> list[Any]:
    if isinstance(dist, CategoricalDistribution):
        return list(dist.choices)
    assert isinstance(dist, FloatDistribution | IntDistribution)  # the only other kinds
    spaced = np.geomspace if dist.log else np.linspace
    values = [float(v) for v in spaced(dist.low, dist.high, points)]
    if isinstance(dist, IntDistribution):
        return sorted({int(round(v)) for v in values})
    return values


def space_distributions(params: dict[str, Any]) -> dict[str, BaseDistribution]:
    """Optuna distributions of spec parameters."""
    distributions: dict[str, BaseDistribution] = {}
    for name, param in params.items():
        if isinstance(param, FloatParam):
            distributions[name] = FloatDistribution(
                param.low, param.high, log=param.log, step=param.step
            )
        elif isinstance(param, IntParam):
            distributions[name] = IntDistribution(
                param.low, param.high, log=param.log, step=param.step
            )
        else:
            distributions[name] = CategoricalDistribution(list(param.choices))
    return distributions


def distributions_to_json(distributions: dict[str, BaseDistribution]) -> dict[str, str]:
    return {name: distribution_to_json(d) for name, d in distributions.items()}


def distributions_from_json(encoded: dict[str, str]) -> dict[str, BaseDistribution]:
    return {name: json_to_distribution(text) for name, text in encoded.items()}


def _sweep_steps(spec: StudySpec) -> int:
    steps = spec.steps_sweep.steps
    assert steps is not None  # validated by the spec when max_train_steps is "auto"
    return steps


@dataclass(frozen=True)
class TrialRecord:
    """One trial as plain data."""

    study: str
    number: int
    state: TrialState
    params: dict[str, Any]
    value: float | None
    intermediate_values: dict[int, float]
    user_attrs: dict[str, Any]
    datetime_start: datetime | None
    datetime_complete: datetime | None
    duration_s: float | None


@dataclass(frozen=True)
class BestResult:
    """The best trial of a campaign so far."""

    study: str
    trial_number: int
    value: float
    params: dict[str, Any]
    user_attrs: dict[str, Any]

    def to_json_dict(self) -> dict[str, Any]:
        return {
            "study": self.study,
            "trial_number": self.trial_number,
            "value": self.value,
            "params": self.params,
            "metrics": self.user_attrs,
        }


def study_name(campaign: str, stage: str, round_number: int) -> str:
    """Name of one stage/round study: ``<campaign>/<stage>/<round>``."""
    return f"{campaign}/{stage}/{round_number}"


def optuna_direction(direction: Direction) -> optuna.study.StudyDirection:
    return {
        Direction.MINIMIZE: optuna.study.StudyDirection.MINIMIZE,
        Direction.MAXIMIZE: optuna.study.StudyDirection.MAXIMIZE,
    }[direction]


def create_campaign(spec: StudySpec, storage: BaseStorage) -> tuple[Campaign, bool]:
    """Create the campaign's first study; reuse it when the same spec exists already.

    Returns the campaign and whether it was newly created. A different spec under the same
    name is an error: nothing existing is changed.
    """
    with advisory_lock(storage, f"campaign:{spec.name}"):
        if spec.name in list_campaigns(storage):
            campaign = load_campaign(spec.name, storage)
            if campaign.spec.spec_hash != spec.spec_hash:
                raise CampaignExistsError(
                    f"campaign {spec.name!r} exists already with a different spec (stored "
                    f"{campaign.spec.spec_hash}, given {spec.spec_hash}); choose another name "
                    f"(--name) or delete it: autotune delete {spec.name} --yes"
                )
            return campaign, False
        study = create_stage_study(spec, storage, first_plan(spec))
        publish_stage_study(study, spec)
    return Campaign(spec, storage, [study]), True


def create_stage_study(spec: StudySpec, storage: BaseStorage, plan: StudyPlan) -> optuna.Study:
    """Create (or, after an interrupted attempt, load) the study of one stage/round.

    It stays invisible to ``load_campaign`` until ``publish_stage_study`` marks it.
    """
    study = optuna.create_study(
        study_name=plan.study_name(spec.name),
        storage=storage,
        direction=_stage_direction(spec, plan.stage),
        load_if_exists=True,
    )
    for key, value in {
        ATTR_STAGE: plan.stage.value,
        ATTR_ROUND: plan.round_number,
        ATTR_TRIALS: plan.trials,
        ATTR_STEPS: plan.max_train_steps,
        ATTR_CAMPAIGN_STEPS: plan.campaign_max_train_steps,
        ATTR_STAGE_NAME: plan.study_component,
        ATTR_STAGE_INDEX: plan.stage_index,
        ATTR_WIDENING: plan.widening,
        ATTR_STAGE_FIXED: plan.stage_fixed,
        ATTR_DISTRIBUTIONS: plan.distributions,
        ATTR_SAMPLING: plan.sampling,
        ATTR_SPEC_HASH: spec.spec_hash,
        ATTR_SPEC: spec.to_json_dict(),
    }.items():
        study.set_user_attr(key, value)
    if plan.queued and not study.get_trials(deepcopy=False):
        for params in plan.queued:
            study.enqueue_trial(params)
    return study


def _stage_direction(spec: StudySpec, stage: Stage) -> optuna.study.StudyDirection:
    if stage is Stage.STEPS_SWEEP:  # a sweep trial's value is its steps to fit
        return optuna.study.StudyDirection.MINIMIZE
    return optuna_direction(spec.metric.direction)


def publish_stage_study(study: optuna.Study, spec: StudySpec) -> None:
    """Make a fully prepared stage/round visible to workers and readers."""
    study.set_user_attr(ATTR_CAMPAIGN, spec.name)


def load_campaign(name: str, storage: BaseStorage) -> Campaign:
    """The campaign ``name``; CampaignNotFoundError lists the existing ones if absent."""
    # get_all_studies, not get_all_study_summaries: those read every trial in the storage
    frozen = [s for s in storage.get_all_studies() if s.user_attrs.get(ATTR_CAMPAIGN) == name]
    if not frozen:
        raise CampaignNotFoundError(
            f"no campaign {name!r} in this storage; existing campaigns: "
            f"{', '.join(list_campaigns(storage)) or 'none'}"
        )
    frozen.sort(key=lambda s: _position(s.user_attrs))
    spec = study_spec_from_dict(frozen[0].user_attrs[ATTR_SPEC], f"campaign {name!r}")
    studies = [optuna.load_study(study_name=s.study_name, storage=storage) for s in frozen]
    return Campaign(spec, storage, studies)


def _position(user_attrs: dict[str, Any]) -> tuple[int, int, int, int]:
    """Pipeline order: stage kind, tuning stage, round, widening."""
    stage = Stage(user_attrs.get(ATTR_STAGE, Stage.JOINT.value))
    index, widening = user_attrs.get(ATTR_STAGE_INDEX, 0), user_attrs.get(ATTR_WIDENING, 0)
    return STAGE_ORDER[stage], index, int(user_attrs[ATTR_ROUND]), widening


def delete_campaign(name: str, storage: BaseStorage) -> list[str]:
    """Delete every study of the campaign; returns their names."""
    campaign = load_campaign(name, storage)
    names = [study.study_name for study in campaign.studies]
    for study_to_delete in names:
        optuna.delete_study(study_name=study_to_delete, storage=storage)
    return names


def list_campaigns(storage: BaseStorage) -> list[str]:
    """Names of all campaigns in the storage, oldest first."""
    # get_all_studies, not get_all_study_summaries: those read every trial in the storage
    names = (s.user_attrs.get(ATTR_CAMPAIGN) for s in storage.get_all_studies())
    return list(dict.fromkeys(n for n in names if n is not None))


class Campaign:
    """A tuning campaign: its spec and its Optuna studies (ordinary studies, one per stage)."""

    def __init__(self, spec: StudySpec, storage: BaseStorage, studies: list[optuna.Study]) -> None:
        if not studies:
            raise ValueError(f"campaign {spec.name!r} has no studies")
        self.spec = spec
        self.storage = storage
        self.studies = studies

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def current_study(self) -> optuna.Study:
        """The study workers draw trials from now: the latest round."""
        return self.studies[-1]

    @staticmethod
    def stage_of(study: optuna.Study) -> Stage:
        return Stage(study.user_attrs[ATTR_STAGE])

    @staticmethod
    def samples(study: optuna.Study) -> bool:
        """Whether workers sample new trials in the study (else they run queued ones)."""
        return bool(study.user_attrs.get(ATTR_SAMPLING, True))

    @staticmethod
    def round_of(study: optuna.Study) -> int:
        return int(study.user_attrs[ATTR_ROUND])

    @staticmethod
    def label_of(study: optuna.Study) -> str:
        """How people read a study's place in the pipeline, e.g. "round 2" or "baseline"."""
        stage, number = Campaign.stage_of(study), Campaign.round_of(study)
        if stage is Stage.JOINT:
            name = study.user_attrs.get(ATTR_STAGE_NAME, Stage.JOINT.value)
            widening = study.user_attrs.get(ATTR_WIDENING, 0)
            label = f"round {number}" if name == Stage.JOINT.value else f"{name} round {number}"
            return label if not widening else f"{label} (widened {widening}x)"
        if stage is Stage.STEPS_SWEEP:
            return "steps sweep" if number == 1 else f"steps sweep (widened {number - 1}x)"
        return "baseline" if stage is Stage.BASELINE else "re-evaluation"

    def stage_studies(self, stage: Stage) -> list[optuna.Study]:
        """The studies of one stage, in round order."""
        return [s for s in self.studies if self.stage_of(s) is stage]

    @property
    def max_train_steps(self) -> int | None:
        """The campaign's max_train_steps: the spec's, or measured (None: not yet)."""
        value = self.current_study.user_attrs.get(ATTR_CAMPAIGN_STEPS)
        return None if value is None else int(value)

    @property
    def stopped(self) -> str | None:
        """Why the campaign stopped early (a failed baseline, an unfit sweep), or None."""
        reasons = (s.user_attrs.get(ATTR_STOPPED) for s in self.studies)
        return next((r for r in reasons if r is not None), None)

    @staticmethod
    def trial_budget(study: optuna.Study) -> int:
        """How many trials the round runs (sampled in round 1, promoted later)."""
        return int(study.user_attrs[ATTR_TRIALS])

    @staticmethod
    def steps_of(study: optuna.Study) -> int:
        """max_train_steps of the round's trials."""
        return int(study.user_attrs[ATTR_STEPS])

    def progress(self, study: optuna.Study | None = None) -> Progress:
        """Trial counts against the budget and best value of one study (default: current)."""
        study = study or self.current_study
        trials = study.get_trials(deepcopy=False)
        direction = self.spec.metric.direction
        if self.stage_of(study) is Stage.STEPS_SWEEP:
            direction = Direction.MINIMIZE
        return progress_of(trials, self.trial_budget(study), direction)

    def value_name(self, study: optuna.Study) -> str:
        """What a study's trial values are: the metric, or a sweep's steps to fit."""
        if self.stage_of(study) is Stage.STEPS_SWEEP:
            return "steps to fit"
        return self.spec.metric.name

    def best_steps(self, study: optuna.Study) -> BestStepAnalysis:
        """Where in their budget the round's trials peaked, and the max_train_steps advice."""
        records = best_step_records(study.get_trials(deepcopy=False))
        return analyze_best_steps(records, self.spec.eval_interval)

    def boundaries(self) -> dict[str, list[dict[str, Any]]]:
        """The boundary check of every checked tuning study: study name -> records."""
        return {
            s.study_name: s.user_attrs[ATTR_BOUNDARIES]
            for s in self.stage_studies(Stage.JOINT)
            if ATTR_BOUNDARIES in s.user_attrs
        }

    def significance(self) -> dict[str, Any] | None:
        """The re-evaluation's significance report (best, comparisons, summary), if done."""
        for study in self.stage_studies(Stage.REEVALUATION):
            return study.user_attrs.get(ATTR_SIGNIFICANCE)
        return None

    def frozen_trials(self) -> list[tuple[str, FrozenTrial]]:
        return [(s.study_name, t) for s in self.studies for t in s.get_trials(deepcopy=False)]

    def trials(self) -> list[TrialRecord]:
        """Every trial of every study, as plain records."""
        return [_record(study, trial) for study, trial in self.frozen_trials()]

    def best(self) -> BestResult | None:
        """The best COMPLETE trial of the latest round that has one (longest budget)."""
        complete: list[tuple[str, FrozenTrial]] = []
        for study in reversed(self.stage_studies(Stage.JOINT)):
            complete = [
                (study.study_name, t)
                for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
                if t.value is not None and math.isfinite(t.value)
            ]
            if complete:
                break
        if not complete:
            return None
        sign = 1.0 if self.spec.metric.direction == Direction.MINIMIZE else -1.0
        study, trial = min(complete, key=lambda pair: sign * pair[1].value)
        return BestResult(study, trial.number, trial.value, trial.params, trial.user_attrs)

    def to_csv(self, path: str | Path) -> Path:
        """Write every trial as one CSV row (params and user attributes as columns)."""
        path = Path(path)
        records = self.trials()
        param_keys = sorted({k for r in records for k in r.params})
        attr_keys = sorted({k for r in records for k in r.user_attrs})
        header = ["study", "number", "state", "value", "duration_s", "datetime_start"]
        header += [f"params_{k}" for k in param_keys] + [f"user_attrs_{k}" for k in attr_keys]
        header.append("intermediate_values")
        with path.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(header)
            for r in records:
                writer.writerow(
                    [r.study, r.number, r.state.name, r.value, r.duration_s, r.datetime_start]
                    + [r.params.get(k) for k in param_keys]
                    + [r.user_attrs.get(k) for k in attr_keys]
                    + [json.dumps(r.intermediate_values)]
                )
        return path


def _record(study: str, trial: FrozenTrial) -> TrialRecord:
    duration = trial.duration.total_seconds() if trial.duration is not None else None
    return TrialRecord(
        study=study,
        number=trial.number,
        state=trial.state,
        params=dict(trial.params),
        value=trial.value,
        intermediate_values=dict(trial.intermediate_values),
        user_attrs=dict(trial.user_attrs),
        datetime_start=trial.datetime_start,
        datetime_complete=trial.datetime_complete,
        duration_s=duration,
    )
