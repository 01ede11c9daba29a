"""Campaigns: a study spec turned into Optuna studies in PostgreSQL, and read back."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from datetime import datetime
import json
import math
from pathlib import Path
from typing import Any

import optuna
from optuna.storages import BaseStorage
from optuna.trial import FrozenTrial
from optuna.trial import TrialState

from autotune._errors import CampaignExistsError
from autotune._errors import CampaignNotFoundError
from autotune.analysis import BestStepAnalysis
from autotune.analysis import analyze_best_steps
from autotune.analysis import best_step_records
from autotune.progress import Progress
from autotune.progress import progress_of
from autotune.spec import Direction
from autotune.spec import StudySpec
from autotune.spec import study_spec_from_dict

ATTR_CAMPAIGN = "autotune.campaign"
ATTR_STAGE = "autotune.stage"
ATTR_ROUND = "autotune.round"
ATTR_SPEC = "autotune.spec"
ATTR_SPEC_HASH = "autotune.spec_hash"
ATTR_TRIALS = "autotune.trials"
ATTR_STEPS = "autotune.max_train_steps"
JOINT_STAGE = "joint"  # all groups tuned together; staged tuning arrives with the pipeline


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
    """Create the campaign's first round; reuse it when the same spec exists already.

    Returns the campaign and whether it was newly created. A different spec under the same
    name is an error: nothing existing is changed.
    """
    try:
        study = create_round_study(spec, storage, 1, spec.trials)
    except optuna.exceptions.DuplicatedStudyError:
        campaign = load_campaign(spec.name, storage)
        if campaign.spec.spec_hash != spec.spec_hash:
            raise CampaignExistsError(
                f"campaign {spec.name!r} exists already with a different spec "
                f"(stored {campaign.spec.spec_hash}, given {spec.spec_hash}); "
                f"choose another name (--name) or delete it: autotune delete {spec.name} --yes"
            ) from None
        return campaign, False
    publish_round_study(study, spec)
    return Campaign(spec, storage, [study]), True


def create_round_study(
    spec: StudySpec, storage: BaseStorage, round_number: int, trials: int
) -> optuna.Study:
    """Create (or, for an interrupted promotion, load) the study of one round.

    It stays invisible to ``load_campaign`` until ``publish_round_study`` marks it.
    """
    study = optuna.create_study(
        study_name=study_name(spec.name, JOINT_STAGE, round_number),
        storage=storage,
        direction=optuna_direction(spec.metric.direction),
        load_if_exists=round_number > 1,
    )
    for key, value in {
        ATTR_STAGE: JOINT_STAGE,
        ATTR_ROUND: round_number,
        ATTR_TRIALS: trials,
        ATTR_STEPS: spec.round_steps(round_number),
        ATTR_SPEC_HASH: spec.spec_hash,
        ATTR_SPEC: spec.to_json_dict(),
    }.items():
        study.set_user_attr(key, value)
    return study


def publish_round_study(study: optuna.Study, spec: StudySpec) -> None:
    """Make a fully prepared round visible to workers and readers."""
    study.set_user_attr(ATTR_CAMPAIGN, spec.name)


def load_campaign(name: str, storage: BaseStorage) -> Campaign:
    """The campaign ``name``; CampaignNotFoundError lists the existing ones if absent."""
    summaries = [
        s
        for s in optuna.get_all_study_summaries(storage, include_best_trial=False)
        if s.user_attrs.get(ATTR_CAMPAIGN) == name
    ]
    if not summaries:
        raise CampaignNotFoundError(
            f"no campaign {name!r} in this storage; existing campaigns: "
            f"{', '.join(list_campaigns(storage)) or 'none'}"
        )
    summaries.sort(key=lambda s: s.user_attrs[ATTR_ROUND])
    spec = study_spec_from_dict(summaries[0].user_attrs[ATTR_SPEC], f"campaign {name!r}")
    studies = [optuna.load_study(study_name=s.study_name, storage=storage) for s in summaries]
    return Campaign(spec, storage, studies)


def delete_campaign(name: str, storage: BaseStorage) -> list[str]:
    """Delete every study of the campaign; returns their names."""
    campaign = load_campaign(name, storage)
    names = [study.study_name for study in campaign.studies]
    for study_to_delete in names:
        optuna.delete_study(study_name=study_to_delete, storage=storage)
    return names


def list_campaigns(storage: BaseStorage) -> list[str]:
    """Names of all campaigns in the storage, oldest first."""
    names = (
        s.user_attrs.get(ATTR_CAMPAIGN)
        for s in optuna.get_all_study_summaries(storage, include_best_trial=False)
    )
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
    def round_of(study: optuna.Study) -> int:
        return int(study.user_attrs[ATTR_ROUND])

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
        return progress_of(trials, self.trial_budget(study), self.spec.metric.direction)

    def best_steps(self, study: optuna.Study) -> BestStepAnalysis:
        """Where in their budget the round's trials peaked, and the max_train_steps advice."""
        records = best_step_records(study.get_trials(deepcopy=False))
        return analyze_best_steps(records, self.spec.eval_interval)

    def frozen_trials(self) -> list[tuple[str, FrozenTrial]]:
        return [(s.study_name, t) for s in self.studies for t in s.get_trials(deepcopy=False)]

    def trials(self) -> list[TrialRecord]:
        """Every trial of every study, as plain records."""
        return [_record(study, trial) for study, trial in self.frozen_trials()]

    def best(self) -> BestResult | None:
        """The best COMPLETE trial of the latest round that has one (longest budget)."""
        complete: list[tuple[str, FrozenTrial]] = []
        for study in reversed(self.studies):
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
