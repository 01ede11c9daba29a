"""Replay a campaign without a database: snapshot → next_transition → applied in memory.

A synthetic "task" gives every configuration a value (a smooth function of its parameters
with an optimum inside or outside the range, plus seeded noise) and a learning curve, so
whole pipelines (sweep, baseline, rounds, widening, stages, promotion, re-evaluation) run
in milliseconds, as Syne Tune replays recorded curves.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from dataclasses import field
import datetime
import math
from typing import Any

import numpy as np
from optuna.distributions import BaseDistribution
from optuna.distributions import CategoricalDistribution
from optuna.distributions import FloatDistribution
from optuna.distributions import IntDistribution
from optuna.trial import FrozenTrial
from optuna.trial import TrialState
from optuna.trial import create_trial

from autotune.analysis import outpaced_by
from autotune.campaign import TUNING_PERIOD
from autotune.campaign import CampaignSnapshot
from autotune.campaign import Stage
from autotune.campaign import StudyFacts
from autotune.campaign import StudySnapshot
from autotune.campaign import TaskDefaults
from autotune.campaign import Transition
from autotune.campaign import TransitionKind
from autotune.campaign import first_study
from autotune.campaign import next_transition
from autotune.campaign._plan import NewStudy
from autotune.campaign._snapshot import studies_deciding
from autotune.campaign._trial_attrs import ATTR_CARRIED_FROM
from autotune.campaign._trial_attrs import ATTR_HPARAMS
from autotune.campaign._trial_attrs import ATTR_PERIOD_INDEX
from autotune.campaign._trial_attrs import ATTR_QUEUED_AS
from autotune.campaign._trial_attrs import ATTR_SEED
from autotune.campaign._trial_attrs import ATTR_STEPS_DONE
from autotune.campaign._trial_attrs import ATTR_STEPS_TO_FIT
from autotune.campaign._trial_attrs import ATTR_SWEEP_OUTPACED_BY
from autotune.campaign._trial_attrs import ATTR_SWEEP_TO_BEAT
from autotune.campaign._trial_attrs import TRIVIAL_PREFIX
from autotune.campaign._trial_budget import NextStep
from autotune.campaign._trial_budget import next_step
from autotune.spec import StudySpec
from autotune.spec import study_spec_from_dict

SWEEP_RATES = FloatDistribution(1e-8, 1e3, log=True)  # as the sweep objective suggests
DEFAULTS = {"learning_rate": 0.01, "optimizer": "adamw", "schedule": "constant"}
TODAY = datetime.date(2026, 12, 5)
Objective = Callable[[dict[str, Any]], float]


def spec_of(**overrides: Any) -> StudySpec:
    """A small fixed-steps spec over a two-group space; keys of ``overrides`` replace."""
    data: dict[str, Any] = {
        "name": "replay",
        "task": "synthetic",
        "search_space": {
            "name": "synthetic",
            "groups": [
                {
                    "name": "learning_rate",
                    "params": {
                        "learning_rate": {
                            "type": "float", "low": 1e-3, "high": 1.0, "log": True,
                            "hard_low": 1e-6, "hard_high": 10.0,
                        }
                    },
                },
                {
                    "name": "model",
                    "params": {
                        "width": {"type": "int", "low": 8, "high": 64, "log": True},
                        "dropout": {"type": "float", "low": 0.0, "high": 0.5},
                    },
                },
            ],
        },
        "metric": {"name": "val_loss", "direction": "minimize"},
        "max_train_steps": 400,
        "eval_interval": 10,
        "batch_size": 32,
        "trials": 12,
        "rounds": [{"budget_fraction": 0.25}, {"budget_fraction": 1.0, "top_k": 3}],
        "pruner": {"type": "none"},
        "reevaluation": {"finalists": 3, "periods": 4, "period_seed": 11},
        "seed": 3,
    }  # fmt: skip
    data |= overrides
    return study_spec_from_dict(data, "replay")


def bowl(optimum_log_rate: float = math.log(0.05)) -> Objective:
    """A value with its best learning rate at ``exp(optimum_log_rate)``, width 32, no dropout."""

    def value(hparams: dict[str, Any]) -> float:
        rate = math.log(float(hparams.get("learning_rate", 0.01)))
        width = math.log(float(hparams.get("width", 32)) / 32)
        return (
            0.1
            + (rate - optimum_log_rate) ** 2
            + 0.2 * width**2
            + float(hparams.get("dropout", 0.0))
        )

    return value


@dataclass
class ReplayedStudy:
    name: str
    facts: StudyFacts
    trials: list[FrozenTrial] = field(default_factory=list)

    def snapshot(self, with_trials: bool = True) -> StudySnapshot:
        return StudySnapshot(self.name, self.facts, tuple(self.trials) if with_trials else ())


@dataclass
class Replay:
    """One campaign, advanced by the real transition function, trained by ``objective``."""

    spec: StudySpec
    objective: Objective = field(default_factory=bowl)
    long_objective: Objective | None = None  # promoted and re-evaluated runs (default: same)
    trivial: float | None = 5.0  # the trivial predictor's value (baseline)
    steps_to_fit: Callable[[float], int | None] = lambda rate: None
    max_retry: int | None = None
    # re-evaluation runs overfit after this fraction of their schedule (default: they don't)
    reevaluation_peak: float | None = None
    most_periods: int | None = None  # the most re-evaluation periods the task gives
    studies: list[ReplayedStudy] = field(default_factory=list)
    transitions: list[Transition] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._rng = np.random.default_rng(self.spec.seed)
        self._create(first_study(self.spec))

    def snapshot(self) -> CampaignSnapshot:
        deciding = studies_deciding([(s.name, s.facts.plan) for s in self.studies])
        return CampaignSnapshot(  # the trials read_snapshot reads, no more
            self.spec,
            TaskDefaults(dict(DEFAULTS), self.most_periods),
            tuple(s.snapshot(with_trials=s.name in deciding) for s in self.studies),
            TODAY,
            self.max_retry,
            campaign_steps(self) if self.spec.budget is not None else 0,
        )

    def study(self, name: str) -> ReplayedStudy:
        return next(s for s in self.studies if s.name == name)

    @property
    def latest(self) -> ReplayedStudy:
        return self.studies[-1]

    def step(self) -> Transition:
        """Decide on the snapshot and apply the transition in memory."""
        transition = next_transition(self.snapshot())
        for name, fact in transition.facts:
            study = self.study(name)
            study.facts = study.facts.with_fact(fact)
        if transition.new_study is not None:
            self._create(transition.new_study)
        self.transitions.append(transition)
        return transition

    def run(self, limit: int = 30) -> list[TransitionKind]:
        """Train the latest study's trials and advance until nothing is left to do."""
        for _ in range(limit):
            self.train_latest()
            kind = self.step().kind
            if kind in (TransitionKind.FINISHED, TransitionKind.STOP):
                break
        return [t.kind for t in self.transitions]

    def _create(self, new: NewStudy) -> None:
        name = new.plan.study_name(self.spec.name)
        if any(s.name == name for s in self.studies):  # as create_stage_study: load, add
            self._extend(self.study(name), new)
            return
        facts = StudyFacts(new.plan)
        for fact in new.facts:
            facts = facts.with_fact(fact)
        known = {**new.plan.decoded_distributions(), "learning_rate": SWEEP_RATES}
        queued = [
            _waiting(
                len(new.carried) + i, q.params, {**q.user_attrs, ATTR_QUEUED_AS: q.key}, known
            )
            for i, q in enumerate(new.queued)
        ]
        carried = list(new.carried)
        for number, trial in enumerate(carried):
            trial.number = number
        self.studies.append(ReplayedStudy(name, facts, carried + queued))

    def _extend(self, study: ReplayedStudy, new: NewStudy) -> None:
        study.facts = study.facts.with_fact(new.plan)
        keys = {t.user_attrs.get(ATTR_QUEUED_AS) for t in study.trials}
        known = new.plan.decoded_distributions()
        for q in new.queued:
            if q.key not in keys:
                attrs = {**q.user_attrs, ATTR_QUEUED_AS: q.key}
                study.trials.append(_waiting(len(study.trials), q.params, attrs, known))

    def train_latest(self) -> None:
        """Run every waiting trial, then sample new ones up to the study's budget."""
        study = self.latest
        plan = study.facts.plan
        for index, trial in enumerate(study.trials):  # in order: a sweep trial sees those before
            if trial.state is TrialState.WAITING:
                study.trials[index] = self._run(study, trial)
        while plan.sampling and self._room(study):
            distributions = plan.decoded_distributions()
            trial = _waiting(len(study.trials), self._sample(distributions), {}, distributions)
            study.trials.append(self._run(study, trial))

    def _room(self, study: ReplayedStudy) -> bool:
        plan = study.facts.plan
        step = next_step(study.trials, plan.trials, True, plan.step_budget, plan.max_train_steps)
        return step is NextStep.RUN

    def _sample(self, distributions: dict[str, BaseDistribution]) -> dict[str, Any]:
        return {name: _draw(self._rng, d) for name, d in distributions.items()}

    def _run(self, study: ReplayedStudy, trial: FrozenTrial) -> FrozenTrial:
        plan = study.facts.plan
        attrs = dict(trial.user_attrs)
        attrs.setdefault(ATTR_SEED, self.spec.seed * 100_003 + trial.number)
        if plan.stage is Stage.STEPS_SWEEP:
            return self._sweep_run(study, trial, attrs)
        hparams = attrs.get(ATTR_HPARAMS) or {
            **DEFAULTS,
            **self.spec.fixed,
            **plan.stage_fixed,
            **trial.params,
        }
        long = plan.stage is Stage.REEVALUATION or plan.round_number > 1
        objective = self.long_objective if long and self.long_objective else self.objective
        value = objective(hparams)
        if plan.stage is Stage.REEVALUATION:  # periods differ alike; the tuning period adds 0
            value += _period_offset(attrs[ATTR_PERIOD_INDEX])
        if plan.stage is Stage.BASELINE and self.trivial is not None:
            attrs[f"{TRIVIAL_PREFIX}{self.spec.metric.name}"] = self.trivial
        if plan.stage is Stage.REEVALUATION and self.trivial is not None:  # as the worker
            offset = max(0.0, _period_offset(attrs[ATTR_PERIOD_INDEX]) - 0.01)
            attrs[f"{TRIVIAL_PREFIX}{self.spec.metric.name}"] = self.trivial + offset
        last = int(attrs.get("stop_at_step") or plan.max_train_steps)
        interval = self.spec.run_eval_interval(plan.campaign_max_train_steps)
        steps = [*range(interval, last, interval), last]  # as training evaluates
        # improving to the end, where it reaches the run's value
        curve = {s: value * (1 + 10 / s - 10 / last) for s in steps}
        if plan.stage is Stage.REEVALUATION and self.reevaluation_peak is not None:
            peak = self.reevaluation_peak * last  # as good there, worse before and after
            curve = {s: value * (1 + abs(s - peak) / last) for s in curve}
            value = curve[last]
        attrs |= {"best_step": last, "max_train_steps": plan.max_train_steps}
        return _finished(trial, value, attrs, curve)

    def _sweep_run(
        self, study: ReplayedStudy, trial: FrozenTrial, attrs: dict[str, Any]
    ) -> FrozenTrial:
        """As the worker runs it: until it fits, or (pruned) until an earlier trial of its
        study, or the widening's steps to beat, fitted sooner."""
        plan = study.facts.plan
        steps = self.steps_to_fit(float(trial.params["learning_rate"]))
        fitted = [t.user_attrs.get(ATTR_STEPS_TO_FIT) for t in study.trials]
        fitted.append(attrs.get(ATTR_SWEEP_TO_BEAT))
        known = [s for s in fitted if isinstance(s, int)]
        last_unfitted = plan.max_train_steps if steps is None else steps - 1
        bound = outpaced_by(last_unfitted, known)
        if bound is not None:
            attrs |= {ATTR_SWEEP_OUTPACED_BY: bound, ATTR_STEPS_DONE: bound}
            return _finished(trial, None, attrs, {}, TrialState.PRUNED)
        attrs[ATTR_STEPS_TO_FIT] = steps
        attrs[ATTR_STEPS_DONE] = plan.max_train_steps if steps is None else steps  # it stops
        return _finished(trial, math.inf if steps is None else float(steps), attrs, {})


def _period_offset(index: int | str) -> float:
    """What a re-evaluation period adds to a run's value: 0.01 x (index + 1), nothing on
    the tuning period (where the task's defaults also run)."""
    return 0.0 if index == TUNING_PERIOD else 0.01 * (int(index) + 1)


def _draw(rng: np.random.Generator, dist: BaseDistribution) -> Any:
    if isinstance(dist, CategoricalDistribution):
        return dist.choices[int(rng.integers(len(dist.choices)))]
    assert isinstance(dist, FloatDistribution | IntDistribution)
    low, high = (math.log(dist.low), math.log(dist.high)) if dist.log else (dist.low, dist.high)
    value = float(rng.uniform(low, high))
    value = math.exp(value) if dist.log else value
    return int(round(value)) if isinstance(dist, IntDistribution) else value


def _waiting(
    number: int,
    params: dict[str, Any],
    attrs: dict[str, Any],
    distributions: dict[str, BaseDistribution],
) -> FrozenTrial:
    trial = create_trial(
        state=TrialState.WAITING,
        params=dict(params),
        distributions={name: distributions[name] for name in params},
        user_attrs=attrs,
    )
    trial.number = number
    return trial


def _finished(
    trial: FrozenTrial,
    value: float | None,
    attrs: dict[str, Any],
    curve: dict[int, float],
    state: TrialState = TrialState.COMPLETE,
) -> FrozenTrial:
    done = create_trial(
        state=state,
        value=value,
        params=dict(trial.params),
        distributions=dict(trial.distributions),
        user_attrs=attrs,
        intermediate_values=curve,
    )
    done.number = trial.number
    return done


def carried_numbers(study: ReplayedStudy) -> list[int]:
    return sorted(
        t.user_attrs[ATTR_CARRIED_FROM] for t in study.trials if ATTR_CARRIED_FROM in t.user_attrs
    )


def campaign_steps(replay: Replay) -> int:
    """Every training step the replayed campaign spent (widened copies counted once)."""
    from autotune.campaign._budget import steps_spent

    return sum(steps_spent(s.trials, s.facts.plan.max_train_steps, False) for s in replay.studies)
