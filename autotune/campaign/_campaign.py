"""Campaigns: created from a spec, read back as typed records over ordinary Optuna studies."""

from __future__ import annotations

from collections.abc import Mapping
import csv
from dataclasses import dataclass
from datetime import datetime
import difflib
import enum
import json
import math
from pathlib import Path
from typing import Any
from typing import TextIO

import optuna
from optuna.distributions import BaseDistribution
from optuna.storages import BaseStorage
from optuna.trial import FrozenTrial
from optuna.trial import TrialState

from autotune._errors import CampaignNotFoundError
from autotune._errors import SpecError
from autotune.analysis import BestStepAnalysis
from autotune.analysis import SweepPoint
from autotune.analysis import analyze_best_steps
from autotune.analysis import best_step_records
from autotune.campaign._apply import campaign_lock_name
from autotune.campaign._apply import create_stage_study
from autotune.campaign._budget import BudgetPlan
from autotune.campaign._budget import BudgetTooSmallError
from autotune.campaign._budget import plan_budget
from autotune.campaign._budget import steps_spent
from autotune.campaign._extend import Extension
from autotune.campaign._extend import extension
from autotune.campaign._extend import fact_updates
from autotune.campaign._plan import first_study
from autotune.campaign._progress import Progress
from autotune.campaign._progress import progress_of
from autotune.campaign._records import BoundaryCheck
from autotune.campaign._records import Recommendation
from autotune.campaign._records import Significance
from autotune.campaign._records import Stage
from autotune.campaign._records import StudyFacts
from autotune.campaign._records import StudyKey
from autotune.campaign._records import StudyPlan
from autotune.campaign._records import TaskDefaults
from autotune.campaign._records import campaign_of
from autotune.campaign._snapshot import StoredCampaign
from autotune.campaign._snapshot import stored_campaign
from autotune.campaign._sweep import sweep_points
from autotune.campaign._trial_attrs import ATTR_ERROR_TRACEBACK
from autotune.campaign._trial_attrs import ATTR_INTERRUPTED
from autotune.campaign._trial_attrs import ATTR_WORKER
from autotune.campaign._trial_budget import ATTR_ERROR
from autotune.spec import Direction
from autotune.spec import StudySpec
from autotune.storage import advisory_lock


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
class TrialFailure:
    """One FAIL trial and why: its training error, or why a worker gave it up (retried)."""

    study: str
    number: int
    reason: str
    retried: bool  # interrupted or stale: a new trial runs it again
    worker: str | None
    traceback: str | None  # the stored traceback of a training error (its last lines)


def failure_of(study: str, trial: FrozenTrial) -> TrialFailure:
    """Why ``trial`` (a FAIL trial) failed, from what its worker stored."""
    attrs = trial.user_attrs
    error, interrupted = attrs.get(ATTR_ERROR), attrs.get(ATTR_INTERRUPTED)
    if error is not None:
        reason = str(error)
    elif interrupted is not None:
        reason = f"interrupted ({interrupted}); retried"
    else:
        reason = "its worker stopped reporting (killed or cut off); retried"
    worker = attrs.get(ATTR_WORKER)
    return TrialFailure(
        study=study,
        number=trial.number,
        reason=reason,
        retried=error is None,
        worker=None if worker is None else str(worker),
        traceback=attrs.get(ATTR_ERROR_TRACEBACK),
    )


@dataclass(frozen=True)
class BestResult:
    """The trial behind the campaign's answer (before one, the best trial so far). Its
    ``value`` is the answer's; ``params`` are the trial's tuned ones and ``user_attrs``
    its own run's: the recipe to train is ``Campaign.recommendation().recipe``."""

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


@dataclass(frozen=True)
class CampaignStudy:
    """One stage/round study of a campaign, as its records describe it."""

    study_id: int
    name: str
    facts: StudyFacts

    @property
    def plan(self) -> StudyPlan:
        return self.facts.plan

    @property
    def stage(self) -> Stage:
        return self.plan.stage

    @property
    def round_number(self) -> int:
        return self.plan.round_number

    @property
    def trial_budget(self) -> int:
        """How many trials the round runs (sampled in round 1, promoted later)."""
        return self.plan.trials

    @property
    def max_train_steps(self) -> int:
        """max_train_steps of the round's trials."""
        return self.plan.max_train_steps

    @property
    def samples(self) -> bool:
        """Whether workers sample new trials in the study (else they run queued ones)."""
        return self.plan.sampling

    @property
    def distributions(self) -> dict[str, BaseDistribution]:
        """The distributions a tuning study samples (narrowed or widened from the space)."""
        return self.plan.decoded_distributions()

    @property
    def label(self) -> str:
        """How people read the study's place in the pipeline, e.g. "round 2" or "baseline"."""
        plan = self.plan
        if plan.stage is Stage.JOINT:
            name, number = plan.study_component, plan.round_number
            label = f"round {number}" if name == Stage.JOINT.value else f"{name} round {number}"
            return label if not plan.widening else f"{label} (widened {plan.widening}x)"
        if plan.stage is Stage.STEPS_SWEEP:
            widenings = plan.round_number - 1
            return "steps sweep" if not widenings else f"steps sweep (widened {widenings}x)"
        if plan.stage is Stage.BASELINE:
            return "baseline" if plan.round_number == 1 else "baseline (full budget)"
        return "re-evaluation"


class CreateOutcome(enum.Enum):
    """What creating a campaign found: nothing (created), the same spec, or sizes grown."""

    CREATED = "created"
    EXISTS = "exists"
    EXTENDED = "extended"


@dataclass(frozen=True)
class CampaignCreation:
    """The campaign a spec names, what was done to it, and the sentence saying so."""

    campaign: Campaign
    outcome: CreateOutcome
    message: str


def create_campaign(
    spec: StudySpec, storage: BaseStorage, task_defaults: Mapping[str, Any] | TaskDefaults
) -> tuple[Campaign, bool]:
    """Create the campaign's first study; reuse it when the same spec exists already, or
    extend it when the spec grows only its sizes (see ``create_or_extend_campaign``).

    Returns the campaign and whether it was newly created.
    """
    creation = create_or_extend_campaign(spec, storage, task_defaults)
    return creation.campaign, creation.outcome is CreateOutcome.CREATED


def create_or_extend_campaign(
    spec: StudySpec, storage: BaseStorage, task_defaults: Mapping[str, Any] | TaskDefaults
) -> CampaignCreation:
    """Create the campaign's first study, reuse it (same spec), or extend it (a spec that
    only grows trials, budget or top_k where the pipeline has not moved past them).

    ``task_defaults`` are the task's default hyperparameters (or the whole record, with the
    periods it gives), stored with the campaign so that reading and advancing it never
    needs the task's code. Any other change of spec is a CampaignExistsError naming the
    keys: nothing existing is changed.
    """
    with advisory_lock(storage, campaign_lock_name(spec.name)):
        stored = stored_campaign(storage, spec.name)
        if stored is None:
            check_budget(spec)
            defaults = (
                task_defaults
                if isinstance(task_defaults, TaskDefaults)
                else TaskDefaults(dict(task_defaults))
            )
            create_stage_study(storage, spec, defaults, first_study(spec))
            campaign = load_campaign(spec.name, storage)
            return CampaignCreation(
                campaign, CreateOutcome.CREATED, f"created: campaign {spec.name!r}"
            )
        if stored.spec.spec_hash == spec.spec_hash:
            campaign = Campaign(stored, storage)
            return CampaignCreation(
                campaign, CreateOutcome.EXISTS, f"exists (same spec): campaign {spec.name!r}"
            )
        grown = extension([(s.name, s.facts) for s in stored.studies], stored.spec, spec)
        check_budget(spec)
        _write_extension(storage, stored, grown)
        campaign = load_campaign(spec.name, storage)
    return CampaignCreation(campaign, CreateOutcome.EXTENDED, grown.message())


def _write_extension(storage: BaseStorage, stored: StoredCampaign, grown: Extension) -> None:
    """Reopened studies first, the spec last and on the first study last (the one read):
    a writer stopped half-way leaves the old spec, and the next create redoes it all."""
    facts = {s.name: s for s in stored.studies}
    for name, new in grown.reopened:
        study = facts[name]
        for key, value in fact_updates(study.facts, new):
            storage.set_study_user_attr(study.study_id, key, value)
    for study in reversed(stored.studies):
        storage.set_study_user_attr(study.study_id, StudyKey.SPEC.value, grown.spec.to_json_dict())
        storage.set_study_user_attr(study.study_id, StudyKey.SPEC_HASH.value, grown.spec.spec_hash)


def check_budget(spec: StudySpec, source: str | None = None) -> None:
    """A total budget must fit the pipeline (``source``: the spec's file, else the campaign
    is named); with a measured max_train_steps this is checked once the sweep has run."""
    if spec.budget is None or spec.measures_max_train_steps:
        return
    try:
        plan_budget(spec, int(spec.max_train_steps), spec.budget.steps, 0)
    except BudgetTooSmallError as error:
        where = source or f"campaign {spec.name!r}"
        raise SpecError(where, [f"budget.steps: {error}"]) from None


def load_campaign(name: str, storage: BaseStorage) -> Campaign:
    """The campaign ``name``; CampaignNotFoundError lists the existing ones if absent."""
    stored = stored_campaign(storage, name)
    if stored is None:
        raise _not_found(name, storage)
    return Campaign(stored, storage)


NAMES_SHOWN = 5


def _not_found(name: str, storage: BaseStorage) -> CampaignNotFoundError:
    """The error for a missing campaign: the existing ones, or with many, the few closest
    by name (a storage with thousands would print them all)."""
    names = list_campaigns(storage)
    if len(names) <= NAMES_SHOWN:
        existing = f"existing campaigns: {', '.join(names) or 'none'}"
    else:
        closest = difflib.get_close_matches(name, names, n=NAMES_SHOWN, cutoff=0.0)
        existing = (
            f"{len(names)} campaigns, the closest by name: {', '.join(closest)} "
            "(autotune status lists them all)"
        )
    return CampaignNotFoundError(f"no campaign {name!r} in this storage; {existing}")


def campaign_study_names(name: str, storage: BaseStorage) -> list[str]:
    """The names of the campaign's studies, from their campaign attribute alone: no spec or
    facts parsed, so a campaign stored by a newer version (keys this one does not know)
    can still be listed and deleted. CampaignNotFoundError if it has none."""
    names = [s.study_name for s in storage.get_all_studies() if campaign_of(s.user_attrs) == name]
    if not names:
        raise _not_found(name, storage)
    return names


def delete_campaign(name: str, storage: BaseStorage) -> list[str]:
    """Delete every study of the campaign, whatever version stored it; returns their names."""
    names = campaign_study_names(name, storage)
    for study_name in names:
        optuna.delete_study(study_name=study_name, storage=storage)
    return names


def list_campaigns(storage: BaseStorage) -> list[str]:
    """Names of all campaigns in the storage, oldest first."""
    # get_all_studies, not get_all_study_summaries: those read every trial in the storage
    names = (campaign_of(s.user_attrs) for s in storage.get_all_studies())
    return list(dict.fromkeys(n for n in names if n is not None))


class Campaign:
    """A tuning campaign: its spec and its stage/round studies (ordinary Optuna studies)."""

    def __init__(self, stored: StoredCampaign, storage: BaseStorage) -> None:
        self.spec = stored.spec
        self.task_defaults = stored.task_defaults
        self.storage = storage
        self.studies = tuple(CampaignStudy(s.study_id, s.name, s.facts) for s in stored.studies)

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def current(self) -> CampaignStudy:
        """The study workers draw trials from now: the latest round."""
        return self.studies[-1]

    def stage_studies(self, stage: Stage | str) -> list[CampaignStudy]:
        """The studies of one stage, in round order; the stage as its value ("reeval") too,
        and ValueError naming the stages for one that is none (a misspelt "joint" read as
        a stage without studies)."""
        try:
            wanted = Stage(stage)
        except ValueError:
            allowed = ", ".join(s.value for s in Stage)
            raise ValueError(f"stage {stage!r} is invalid; allowed: {allowed}") from None
        return [s for s in self.studies if s.stage is wanted]

    @property
    def max_train_steps(self) -> int | None:
        """The campaign's max_train_steps: the spec's, or measured (None: not yet)."""
        return self.current.plan.campaign_max_train_steps

    @property
    def stopped(self) -> str | None:
        """Why the campaign stopped early (a failed baseline, an unfit sweep), or None."""
        reasons = (s.facts.stopped.reason for s in self.studies if s.facts.stopped)
        return next(reasons, None)

    def optuna_study(self, study: CampaignStudy, **kwargs: Any) -> optuna.Study:
        """The Optuna study behind ``study`` (``kwargs``: sampler, pruner)."""
        return optuna.load_study(study_name=study.name, storage=self.storage, **kwargs)

    def trials_of(
        self, study: CampaignStudy, states: tuple[TrialState, ...] | None = None
    ) -> list[FrozenTrial]:
        return self.storage.get_all_trials(study.study_id, deepcopy=False, states=states)

    def direction_of(self, study: CampaignStudy) -> Direction:
        """A sweep's values are steps to fit (fewer is better); else the metric's direction."""
        if study.stage is Stage.STEPS_SWEEP:
            return Direction.MINIMIZE
        return self.spec.metric.direction

    def progress(self, study: CampaignStudy | None = None) -> Progress:
        """Trial counts against the budget and best value of one study (default: current)."""
        study = study or self.current
        plan = study.plan
        share = plan.step_budget if plan.sampling else None
        trials = self.trials_of(study)
        return progress_of(trials, study.trial_budget, self.direction_of(study), share)

    def value_name(self, study: CampaignStudy) -> str:
        """What a study's trial values are: the metric, or a sweep's steps to fit."""
        return "steps to fit" if study.stage is Stage.STEPS_SWEEP else self.spec.metric.name

    def best_steps(self, study: CampaignStudy) -> BestStepAnalysis:
        """Where in their budget the round's trials peaked, and the max_train_steps advice."""
        records = best_step_records(self.trials_of(study))
        interval = self.spec.run_eval_interval(study.plan.campaign_max_train_steps)
        return analyze_best_steps(records, interval)

    def boundaries(self) -> dict[str, BoundaryCheck]:
        """The boundary check of every checked tuning study, by study name."""
        return {s.name: s.facts.boundaries for s in self.studies if s.facts.boundaries}

    def significance(self) -> Significance | None:
        """The re-evaluation's verdict (best, comparisons, summary), once it is done."""
        for study in self.stage_studies(Stage.REEVALUATION):
            return study.facts.significance
        return None

    def sweep_points(self) -> list[SweepPoint]:
        """Every sweep study's finished trials as (learning rate, steps to fit) points."""
        sweeps = self.stage_studies(Stage.STEPS_SWEEP)
        trials = [t for s in sweeps for t in self.trials_of(s)]
        return sweep_points(trials, sweeps[0].max_train_steps) if sweeps else []

    def steps_spent(self) -> int:
        """Every training step the campaign has cost so far (running trials reserve theirs)."""
        return sum(
            steps_spent(self.trials_of(s), s.max_train_steps, carried=False) for s in self.studies
        )

    def budget_plan(self) -> BudgetPlan | None:
        """How the total budget is shared among the stages, once max_train_steps is known."""
        steps = self.max_train_steps
        if self.spec.budget is None or steps is None:
            return None
        return plan_budget(self.spec, steps, self.spec.budget.steps, self.current.plan.sweep_steps)

    def frozen_trials(self) -> list[tuple[str, FrozenTrial]]:
        return [(s.name, t) for s in self.studies for t in self.trials_of(s)]

    def trials(self) -> list[TrialRecord]:
        """Every trial of every study, as plain records."""
        return [_record(study, trial) for study, trial in self.frozen_trials()]

    def failures(self) -> list[TrialFailure]:
        """Every FAIL trial of every study, in pipeline order, with its reason."""
        return [
            failure_of(study.name, trial)
            for study in self.studies
            for trial in self.trials_of(study, states=(TrialState.FAIL,))
        ]

    def trial(self, study_name: str, number: int) -> FrozenTrial:
        """Trial ``number`` of the study ``study_name``; KeyError naming what exists."""
        study = next((s for s in self.studies if s.name == study_name), None)
        if study is None:
            names = ", ".join(s.name for s in self.studies)
            raise KeyError(
                f"campaign {self.name!r} has no study {study_name!r}; its studies: {names}"
            )
        trial = next((t for t in self.trials_of(study) if t.number == number), None)
        if trial is None:
            count = len(self.trials_of(study))
            raise KeyError(
                f"study {study_name!r} has no trial #{number}; its trials: #0 to #{count - 1}"
            )
        return trial

    def recommendation(self) -> Recommendation | None:
        """The campaign's answer, once its last stage has chosen it: one recipe, chosen by
        the re-evaluation (or the last round's best run, marked unverified)."""
        answers = (s.facts.recommendation for s in reversed(self.studies))
        return next((answer for answer in answers if answer is not None), None)

    def best(self) -> BestResult | None:
        """The recommended trial once there is a recommendation (its value: the
        re-evaluation's mean), before that the best COMPLETE trial of the latest round."""
        answer = self.recommendation()
        if answer is not None:
            return self._recommended(answer)
        return self._best_so_far()

    def _recommended(self, answer: Recommendation) -> BestResult:
        study_name, _, number = answer.finalist.rpartition(" #")
        study = next(s for s in self.studies if s.name == study_name)
        trial = next(t for t in self.trials_of(study) if t.number == int(number))
        return BestResult(study.name, trial.number, answer.value, trial.params, trial.user_attrs)

    def _best_so_far(self) -> BestResult | None:
        for study in reversed(self.stage_studies(Stage.JOINT)):
            complete = [
                t
                for t in self.trials_of(study, states=(TrialState.COMPLETE,))
                if t.value is not None and math.isfinite(t.value)
            ]
            if complete:
                sign = 1.0 if self.spec.metric.direction == Direction.MINIMIZE else -1.0
                trial = min(complete, key=lambda t: sign * t.value)
                return BestResult(
                    study.name, trial.number, trial.value, trial.params, trial.user_attrs
                )
        return None

    def to_csv(self, path: str | Path) -> Path:
        """Write every trial as one CSV row (params and user attributes as columns)."""
        path = Path(path)
        with path.open("w", newline="", encoding="utf-8") as handle:
            self.write_csv(handle)
        return path

    def write_csv(self, handle: TextIO) -> None:
        """Every trial as one CSV row: params_* and user_attrs_* columns; a dict or list
        cell (a checkpoint, a configuration) is JSON, readable back with json.loads."""
        records = self.trials()
        param_keys = sorted({k for r in records for k in r.params})
        attr_keys = sorted({k for r in records for k in r.user_attrs})
        header = ["study", "number", "state", "value", "duration_s", "datetime_start"]
        header += [f"params_{k}" for k in param_keys] + [f"user_attrs_{k}" for k in attr_keys]
        header.append("intermediate_values")
        writer = csv.writer(handle)
        writer.writerow(header)
        for r in records:
            writer.writerow(
                [r.study, r.number, r.state.name, r.value, r.duration_s, r.datetime_start]
                + [csv_cell(r.params.get(k)) for k in param_keys]
                + [csv_cell(r.user_attrs.get(k)) for k in attr_keys]
                + [json.dumps(r.intermediate_values)]
            )


def csv_cell(value: Any) -> Any:
    """A CSV cell: containers as JSON (not Python's repr), anything else as it is."""
    if isinstance(value, dict | list | tuple):
        return json.dumps(value, sort_keys=True)
    return value


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
