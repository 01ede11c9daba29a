"""Held-out quality of each method's final answer at equal total training steps (issue "One
answer"): the headline benchmark, replacing tuning_efficiency.py's steps-to-target figure.

Every method gets the same total step budget ``B`` per task, set up front (``--budget-runs``
full-length runs; default 40, ``--quick`` 16), everything counted:

- ``autotune``: the task's example spec (``studies/quickstart.yaml``, ``studies/co2_lstm.yaml``
  with two rounds 0.4/1.0 top 4 as in tuning_efficiency.py, ``studies/cancer.yaml``) with
  ``budget: {steps: B}``, its ``seed`` varied and the re-evaluation ON (3 finalists x 4
  periods x 1 seed; ``--quick`` 2 x 3; ``period_seed`` pinned to the run's seed): its steps
  count, as do the baseline (and its recheck), widening and promotion. A real campaign on
  an embedded PostgreSQL of the benchmark's own: ``autotune create`` + 2 ``autotune worker``
  processes. Its answer: ``Campaign.recommendation().recipe``.
- ``random`` (RandomSampler, no pruning), ``optuna_median`` (TPE + MedianPruner),
  ``optuna_hyperband`` (TPE + HyperbandPruner), ``optuna_asha`` (TPE +
  SuccessiveHalvingPruner); pruner resources from the spec (min_steps .. max_train_steps,
  reduction factor 3). In-process, one trial at a time per run, the search space, fixed
  values, batch size, eval_interval and max_train_steps of the spec. A trial starts only if
  its full length still fits in ``B`` (as autotune's budgeted rounds), so no run exceeds B.
  A trial's value is its best eval; the answer is the best trial's recipe: its
  configuration, early stopping off, the max_train_steps schedule, stopped at the step its
  value came from (autotune's recipe rule).

Held out. Each answer is retrained by its own recipe on periods the tuning period never
validated on (tuning_efficiency.heldout_periods: digits and cancer folds 1-4 of the 5-fold
split whose fold 0 is the tuning period; co2 the four 520-week ranges whose 104-week
validation spans lie just before the tuning period's), taking the model at the recipe's stop
(the final eval). Same training seed for every method on a (seed, period). A seed's score is
the mean over the periods. Caveat: autotune's re-evaluation periods are a seeded split /
seeded ranges of their own, so they can validate on rows the held-out periods validate on
(on k-fold tasks every row is validated in one re-evaluation period); every method has
trained on those rows during tuning.

Statistics per task: median over seeds with a 95% bootstrap interval of the median; rank of
autotune's median among the methods (1 = best); the best peer (the other method with the
best median); autotune / best peer medians; a Wilcoxon signed-rank test against the best
peer, paired by seed (p and wins). ``budget_overrun_max_pct``: max over campaigns of
(steps_spent - B) / B in %. ``recommendation_agrees_with_reevaluation``: in every campaign the
recommended finalist has the best mean of the stored re-evaluation trials.
``heldout_ratio_vs_trivial_<task>`` (autotune's median / the task's trivial predictor on the
same held-out periods) and ``heldout_beats_trivial_<task>`` (seeds where the answer beats
it): the issue's failure was an answer worse than yesterday's value.

Output: a table per task, ``RESULT`` lines, ``heldout[_quick].json`` and ``heldout[_quick].png``
in ``--out``.

Usage: .venv/bin/python benchmarks/heldout.py [--quick] [--tasks T ...] [--seeds N]
       [--budget-runs R] [--jobs 2] [--out benchmarks/results] [--peers-from JSON ...]

``--pipeline automatic`` runs autotune in automatic mode instead of the example study: the
task, ``budget`` and the same re-evaluation, everything else from autotune's defaults
(max_train_steps measured by the learning-rate sweep, the learning-rate group first, the
built-in space): the pipeline a new user gets. The peers still run the example's space,
steps and batch size; output ``heldout_automatic.json`` / ``.png``.

``--tasks goog-volatility`` runs the weak-signal user task of ``examples/volatility_task.py``
(its study ``studies/volatility.yaml``; held out: four spans of half the tuning validation's
length laid back to back before it, each trained on everything from the tuning period's
start): the regime of the issue, where a model trained past its best step is worse than the
trivial predictor.

``--peers-from`` takes the peers' runs and held-out scores from earlier result files (same
tasks, seeds and B) and runs only autotune: a change to autotune compared in a third of the
time. A run of record runs every method.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import asdict
from dataclasses import dataclass
from dataclasses import field
import datetime
import enum
import json
import math
from pathlib import Path
import shutil
import sys
import tempfile
import time
from types import MappingProxyType
from typing import Any

import numpy as np
import optuna
from scipy import stats
import tuning_efficiency as te
import yaml

from autotune import load_study_spec
from autotune import training
from autotune.analysis import ranking_means
from autotune.campaign import Campaign
from autotune.campaign import Stage
from autotune.campaign import baseline_hparams
from autotune.campaign import load_campaign
from autotune.campaign import reevaluation_results
from autotune.campaign import space_distributions
from autotune.campaign import stage_base_hparams
from autotune.campaign import tuning_runs_of
from autotune.spec import StudySpec
from autotune.storage import embedded_url
from autotune.storage import open_storage
from autotune.worker._objectives import suggest_from

REPO = te.REPO
DEFAULT_TASKS = ("digits-mlp", "co2-lstm", "cancer-mlp")
STUDY_FILES = MappingProxyType(
    {
        "digits-mlp": "quickstart.yaml",
        "co2-lstm": "co2_lstm.yaml",
        "cancer-mlp": "cancer.yaml",
        "goog-volatility": "volatility.yaml",  # a user task with a weak signal (examples/)
    }
)
EARLY_STOPPING = "early_stopping_patience"
BOOTSTRAP = 4000


class Pipeline(enum.Enum):
    """Which spec autotune runs: the task's example study, or automatic mode (the task and
    the budget and nothing else: what a new user gets by default)."""

    EXAMPLE = "example"
    AUTOMATIC = "automatic"


class Method(enum.Enum):
    AUTOTUNE = "autotune"
    RANDOM = "random"
    TPE_MEDIAN = "optuna_median"
    TPE_HYPERBAND = "optuna_hyperband"
    TPE_ASHA = "optuna_asha"


PEERS = (Method.RANDOM, Method.TPE_MEDIAN, Method.TPE_HYPERBAND, Method.TPE_ASHA)
COLORS = MappingProxyType(
    {
        Method.AUTOTUNE: "tab:red",
        Method.RANDOM: "dimgray",
        Method.TPE_MEDIAN: "tab:blue",
        Method.TPE_HYPERBAND: "tab:green",
        Method.TPE_ASHA: "tab:purple",
    }
)


@dataclass(frozen=True)
class Answer:
    """The recipe a method hands a user: train ``hparams`` on a ``max_train_steps`` schedule,
    stop at ``stop_at_step`` (early stopping off), take the model there; evaluated every
    ``eval_interval`` steps (None: the spec's), which checkpoint averaging averages over."""

    hparams: Mapping[str, Any]
    max_train_steps: int
    stop_at_step: int
    tuning_value: float | None  # what the method believed (autotune: the re-evaluation mean)
    source: str
    eval_interval: int | None = None


@dataclass(frozen=True)
class Run:
    """One method tuning one task with one seed."""

    task: str
    method: Method
    seed: int
    budget: int
    steps: int  # every training step the run cost
    answer: Answer
    wall_s: float
    states: Mapping[str, int]
    agrees: bool | None = None  # autotune: recommendation = best re-evaluation mean
    verdict: str = ""
    notes: tuple[str, ...] = field(default_factory=tuple)


# --- autotune -------------------------------------------------------------------------------


def spec_overrides(task: str, seed: int, budget: int, quick: bool) -> dict[str, Any]:
    """What the benchmark changes in the task's example spec (besides name and seed)."""
    finalists, periods = (2, 3) if quick else (3, 4)
    overrides: dict[str, Any] = {
        "budget": {"steps": budget},
        "reevaluation": {
            "enabled": True,
            "finalists": finalists,
            "periods": periods,
            "seeds": 1,
            "period_seed": 1000 + seed,
        },
    }
    if task == "co2-lstm":  # two rounds like the quickstart; a rung (60) inside round 1
        overrides["rounds"] = [{"budget_fraction": 0.4}, {"budget_fraction": 1.0, "top_k": 4}]
    if quick:
        rounds = overrides.get("rounds") or yaml.safe_load(study_file(task).read_text())["rounds"]
        overrides["rounds"] = [rounds[0], {**rounds[1], "top_k": 2}]
    return overrides


def study_file(task: str) -> Path:
    if task not in STUDY_FILES:
        raise SystemExit(f"no example study for task {task!r}; known: {', '.join(STUDY_FILES)}")
    return REPO / "studies" / STUDY_FILES[task]


def task_reference(task: str) -> str:
    """What a spec's ``task:`` says: the built-in's name, or the example's module:factory."""
    return str(yaml.safe_load(study_file(task).read_text(encoding="utf-8"))["task"])


def heldout_periods(task: Any) -> list[training.Period]:
    """tuning_efficiency's held-out periods for the built-in tasks; for a dated user task,
    ``te.HELDOUT_PERIODS`` validation spans of half the tuning validation's rows, laid back
    to back before it, each trained on everything from the tuning period's start."""
    default = task.default_period()
    if default.kind is training.PeriodKind.FOLD or hasattr(task, "series"):
        return te.heldout_periods(task)
    days = np.asarray(task.dates, dtype="datetime64[D]")
    tuning = int(np.searchsorted(days, np.datetime64(default.validation_start, "D")))
    end = int(np.searchsorted(days, np.datetime64(default.validation_end, "D"), side="right"))
    span = (end - tuning) // 2
    periods = []
    for k in range(1, te.HELDOUT_PERIODS + 1):
        start = tuning - k * span
        periods.append(
            training.Period.date_range(
                default.start,
                days[start - 1].item(),
                days[start].item(),
                days[start + span - 1].item(),
            )
        )
    return periods


def example_steps(task: str) -> int:
    return int(yaml.safe_load(study_file(task).read_text(encoding="utf-8"))["max_train_steps"])


def write_spec(task: str, seed: int, budget: int, quick: bool, directory: Path) -> Path:
    """The example study with the benchmark's budget, seed and re-evaluation: autotune's spec
    in the example pipeline, and every peer's (their space, steps, batch size, eval grid)."""
    data = yaml.safe_load(study_file(task).read_text(encoding="utf-8"))
    space = data["search_space"]
    data |= spec_overrides(task, seed, budget, quick)
    data |= {"name": f"ho-{task}-s{seed}", "seed": seed, "workers": te.WORKERS}
    if isinstance(space, str):  # a built-in space by name; an inline one stays as it is
        data["search_space"] = str(REPO / "search_spaces" / f"{space}.yaml")
    path = directory / f"{data['name']}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    load_study_spec(path)  # fail here (a budget too small names its minimum), not in a worker
    return path


def write_automatic_spec(task: str, seed: int, budget: int, quick: bool, directory: Path) -> Path:
    """Automatic mode: the task, the budget, the seed and the benchmark's re-evaluation
    design; the rest from autotune's defaults (max_train_steps measured by the sweep, the
    learning-rate group first, the built-in search space)."""
    overrides = spec_overrides(task, seed, budget, quick)
    data = {
        "name": f"ho-{task}-s{seed}-automatic",
        "task": task_reference(task),
        "seed": seed,
        "workers": te.WORKERS,
        "budget": overrides["budget"],
        "reevaluation": overrides["reevaluation"],
    }
    path = directory / f"{data['name']}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    load_study_spec(path)
    return path


def reevaluation_means(campaign: Campaign) -> dict[str, float]:
    """Mean value per finalist over the re-evaluation runs (its tuning run among them where
    it counts) at its stop, from storage: over the runs every finalist finished, as the
    campaign ranks them (`ranking_means`: a run one finalist lost is left out for all)."""
    direction = campaign.spec.metric.direction
    means: dict[str, float] = {}
    for study in campaign.stage_studies(Stage.REEVALUATION):
        tuning = tuning_runs_of(study.facts.design)
        results = reevaluation_results(campaign.trials_of(study), direction, tuning)
        means |= ranking_means({label: v for label, v in results.items() if len(v) >= 2})
    return means


def agrees_with_reevaluation(campaign: Campaign) -> bool:
    """Whether the recommendation is the finalist with the best re-evaluation mean."""
    answer, means = campaign.recommendation(), reevaluation_means(campaign)
    if answer is None or not means:
        return False
    sign = te.direction_sign(campaign.spec.metric.direction)
    return answer.verified and answer.finalist == min(means, key=lambda k: sign * means[k])


def campaign_answer(campaign: Campaign, task: str) -> Answer:
    """The recommendation's recipe; a campaign that stopped without one hands over the
    baseline (the task's defaults with the spec's fixed values) at full length (the
    example's, if it stopped before measuring one)."""
    answer = campaign.recommendation()
    if answer is not None:
        recipe = answer.recipe
        return Answer(
            recipe.hyperparameters,
            recipe.max_train_steps,
            recipe.stop_at_step,
            answer.value,
            answer.finalist,
            recipe.eval_interval,
        )
    steps = campaign.max_train_steps or example_steps(task)  # stopped before it measured
    hparams = {**baseline_hparams(campaign.spec, campaign.task_defaults.hyperparameters)}
    return Answer({**hparams, EARLY_STOPPING: 0}, steps, steps, None, "baseline (no answer)")


def autotune_run(path: Path, task: str, seed: int, budget: int, state_dir: Path, storage) -> Run:
    """One campaign of the spec at ``path``, its answer and what it cost."""
    name = path.stem
    wall = te.run_campaign(name, path, embedded_url(state_dir), state_dir)
    campaign = load_campaign(name, storage)
    _, states, failures = te.campaign_trials(campaign)
    answer = campaign.recommendation()
    return Run(
        task,
        Method.AUTOTUNE,
        seed,
        budget,
        campaign.steps_spent(),
        campaign_answer(campaign, task),
        wall,
        states,
        agrees_with_reevaluation(campaign),
        answer.verdict if answer else (campaign.stopped or "no recommendation"),
        failures,
    )


# --- plain Optuna (child processes) ---------------------------------------------------------


@dataclass(frozen=True)
class OptunaJob:
    task: str
    method: Method
    seed: int
    spec_path: str
    budget: int


def make_study(method: Method, seed: int, spec: StudySpec, steps: int) -> optuna.Study:
    """An in-memory study with the method's sampler and pruner."""
    if method is Method.RANDOM:
        sampler: optuna.samplers.BaseSampler = optuna.samplers.RandomSampler(seed=seed)
        pruner: optuna.pruners.BasePruner = optuna.pruners.NopPruner()
    else:
        sampler = optuna.samplers.TPESampler(seed=seed)
        low = spec.pruner.min_steps
        pruner = {
            Method.TPE_MEDIAN: optuna.pruners.MedianPruner(),
            Method.TPE_HYPERBAND: optuna.pruners.HyperbandPruner(low, steps, 3),
            Method.TPE_ASHA: optuna.pruners.SuccessiveHalvingPruner(low, 3),
        }[method]
    direction = spec.metric.direction.value
    return optuna.create_study(direction=direction, sampler=sampler, pruner=pruner)


def optuna_run(job: OptunaJob) -> Run:
    """Start trials while a full-length one still fits in the budget; hand over the best."""
    te._quiet()
    spec = load_study_spec(job.spec_path)
    task = training.get_task(spec.task)
    steps = spec.max_train_steps
    base = stage_base_hparams(spec, task.default_hyperparameters(), {})
    distributions = space_distributions(spec.search_space.params)
    study = make_study(job.method, job.seed, spec, steps)
    sign = te.direction_sign(spec.metric.direction)
    used, best, answer = 0, math.inf, None
    prune = job.method is not Method.RANDOM
    started = time.perf_counter()
    while used + steps <= job.budget:
        trial = study.ask()
        hparams = {**base, **suggest_from(trial, distributions)}
        seed = job.seed * te.TRIAL_SEED_STRIDE + trial.number
        outcome = te.train_reporting(trial, hparams, task, spec, steps, seed, prune)
        study.tell(trial, outcome.value, state=outcome.state)
        used, value, best_step = used + outcome.steps, outcome.value, outcome.best_step
        if value is not None and sign * value < best:
            best = sign * value
            recipe = {**hparams, EARLY_STOPPING: 0}
            answer = Answer(recipe, steps, best_step, value, f"trial {trial.number}")
    if answer is None:  # nothing finished: the baseline at full length
        answer = Answer({**base, EARLY_STOPPING: 0}, steps, steps, None, "baseline (no answer)")
    states: dict[str, int] = {}
    for frozen in study.get_trials(deepcopy=False):
        states[frozen.state.name] = states.get(frozen.state.name, 0) + 1
    wall = time.perf_counter() - started
    return Run(job.task, job.method, job.seed, job.budget, used, answer, wall, states)


# --- held out (child processes) -------------------------------------------------------------


@dataclass(frozen=True)
class HeldoutJob:
    task: str
    method: Method
    seed: int
    spec_path: str
    answer: Answer


@dataclass(frozen=True)
class Heldout:
    task: str
    method: Method
    seed: int
    periods: tuple[str, ...]
    final: tuple[float, ...]  # the metric of the model at the recipe's stop, per period

    @property
    def mean(self) -> float:
        return float(np.mean(self.final))


def heldout_run(job: HeldoutJob) -> Heldout:
    """Retrain the answer by its recipe on each held-out period; the final eval."""
    te._quiet()
    spec = load_study_spec(job.spec_path)
    task = training.get_task(spec.task)
    metric, worst = spec.metric.name, te.direction_sign(spec.metric.direction) * math.inf
    answer, names, final = job.answer, [], []
    for index, period in enumerate(heldout_periods(task)):
        budget = training.Budget(
            max_train_steps=answer.max_train_steps,
            eval_interval=answer.eval_interval or spec.eval_interval,
            batch_size=spec.batch_size,
            seed=te.HELDOUT_SEED + te.TRIAL_SEED_STRIDE * job.seed + index,
            gradient_accumulation_steps=spec.gradient_accumulation_steps,
            stop_at_step=answer.stop_at_step,
        )
        try:
            result = training.train(
                answer.hparams, task, budget, lambda _: None, metric, period=period
            )
            value = float(result.final.metrics[metric])
        except training.NonFiniteLossError:
            value = worst
        names.append(period.name)
        final.append(value if math.isfinite(value) else worst)  # diverged: the worst
    return Heldout(job.task, job.method, job.seed, tuple(names), tuple(final))


# --- statistics -----------------------------------------------------------------------------


def median_interval(values: Sequence[float], seed: int = 0) -> tuple[float, float, float]:
    """The median and a 95% percentile-bootstrap interval of it."""
    data = np.asarray(values, dtype=float)
    if len(data) < 2:
        return float(np.median(data)), math.nan, math.nan
    rng = np.random.default_rng(seed)
    medians = np.median(rng.choice(data, size=(BOOTSTRAP, len(data))), axis=1)
    low, high = np.quantile(medians, [0.025, 0.975])
    return float(np.median(data)), float(low), float(high)


@dataclass(frozen=True)
class TaskSummary:
    task: str
    metric: str
    sign: float
    budget: int
    scores: Mapping[Method, Mapping[int, float]]  # per seed: mean over held-out periods
    trivial: float  # the task's trivial predictor, mean over the same held-out periods

    def median(self, method: Method) -> float:
        return float(np.median(list(self.scores[method].values())))

    def ranking(self) -> list[Method]:
        return sorted(self.scores, key=lambda m: self.sign * self.median(m))

    @property
    def rank(self) -> int:
        return self.ranking().index(Method.AUTOTUNE) + 1

    @property
    def best_peer(self) -> Method:
        return next(m for m in self.ranking() if m is not Method.AUTOTUNE)

    @property
    def ratio(self) -> float:
        return self.median(Method.AUTOTUNE) / self.median(self.best_peer)

    def paired(self) -> tuple[np.ndarray, np.ndarray]:
        seeds = sorted(set(self.scores[Method.AUTOTUNE]) & set(self.scores[self.best_peer]))
        ours = np.array([self.scores[Method.AUTOTUNE][s] for s in seeds])
        return ours, np.array([self.scores[self.best_peer][s] for s in seeds])

    @property
    def wins(self) -> tuple[int, int]:
        ours, theirs = self.paired()
        return int(np.sum(self.sign * ours < self.sign * theirs)), len(ours)

    @property
    def beats_trivial(self) -> tuple[int, int]:
        """Seeds where autotune's answer beats the trivial predictor on held-out data (the
        issue's failure: worse than yesterday's value on 2 of 3 seeds), and all seeds."""
        ours = list(self.scores[Method.AUTOTUNE].values())
        return sum(self.sign * v < self.sign * self.trivial for v in ours), len(ours)

    @property
    def wilcoxon_p(self) -> float:
        """Two-sided Wilcoxon signed-rank p, autotune vs the best peer (nan: < 2 pairs or
        no difference)."""
        ours, theirs = self.paired()
        if len(ours) < 2 or np.all(ours == theirs):
            return math.nan
        return float(stats.wilcoxon(ours, theirs).pvalue)


def summarize(task: str, spec: StudySpec, budget: int, heldouts: Sequence[Heldout]):
    scores = {m: {h.seed: h.mean for h in heldouts if h.method is m} for m in Method}
    sign = te.direction_sign(spec.metric.direction)
    return TaskSummary(task, spec.metric.name, sign, budget, scores, trivial_heldout(spec))


def trivial_heldout(spec: StudySpec) -> float:
    """The trivial predictor's metric (majority class, training mean, last value), mean over
    the held-out periods every answer is scored on."""
    task = training.get_task(spec.task)
    periods = heldout_periods(task)
    return float(np.mean([task.trivial_metrics(p)[spec.metric.name] for p in periods]))


# --- output ---------------------------------------------------------------------------------


def fmt(value: float) -> str:
    return "-" if not math.isfinite(value) else f"{value:.4g}"


def task_table(summary: TaskSummary, runs: Sequence[Run]) -> str:
    wins, pairs = summary.wins
    lines = [
        f"TASK {summary.task}: B = {summary.budget:,} steps per run; held-out "
        f"{summary.metric} (final eval at the recipe's stop, mean over periods); median "
        f"[95% bootstrap interval] over seeds. Best peer {summary.best_peer.value}: "
        f"autotune wins {wins}/{pairs} seeds, Wilcoxon p = {fmt(summary.wilcoxon_p)}; the "
        f"trivial predictor scores {fmt(summary.trivial)}, autotune beats it on "
        "{}/{} seeds".format(*summary.beats_trivial),
        "| method | held-out median [95% CI] | per seed | steps used (max) | wall s (median) |",
        "|---|---|---|---|---|",
    ]
    for method in summary.ranking():
        mine = [r for r in runs if r.method is method]
        median, low, high = median_interval(list(summary.scores[method].values()))
        seeds = ", ".join(fmt(v) for _, v in sorted(summary.scores[method].items()))
        used = max(r.steps for r in mine)
        wall = float(np.median([r.wall_s for r in mine]))
        lines.append(
            f"| {method.value} | {fmt(median)} [{fmt(low)}, {fmt(high)}] | {seeds} "
            f"| {used:,} | {wall:.0f} |"
        )
    return "\n".join(lines)


def results(summaries: Sequence[TaskSummary], runs: Sequence[Run]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for s in summaries:
        out[f"heldout_rank_{s.task}"] = s.rank
        out[f"heldout_ratio_vs_best_peer_{s.task}"] = s.ratio
        out[f"heldout_best_peer_{s.task}"] = s.best_peer.value
        out[f"heldout_wilcoxon_p_{s.task}"] = s.wilcoxon_p
        out[f"heldout_wins_vs_best_peer_{s.task}"] = "{}/{}".format(*s.wins)
        out[f"heldout_ratio_vs_trivial_{s.task}"] = s.median(Method.AUTOTUNE) / s.trivial
        out[f"heldout_beats_trivial_{s.task}"] = "{}/{}".format(*s.beats_trivial)
    ours = [r for r in runs if r.method is Method.AUTOTUNE]
    for s in summaries:
        used = [100.0 * r.steps / r.budget for r in ours if r.task == s.task]
        out[f"autotune_budget_used_pct_{s.task}"] = float(np.median(used))
    out["budget_overrun_max_pct"] = max(100.0 * (r.steps - r.budget) / r.budget for r in ours)
    out["recommendation_agrees_with_reevaluation"] = all(r.agrees for r in ours)
    return out


def fmt_result(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int | str):
        return str(value)
    return f"{value:.3f}" if math.isfinite(value) else str(value)


def target_lines(summaries: Sequence[TaskSummary], figures: Mapping[str, Any]) -> list[str]:
    lines = []
    for s in summaries:
        verdict = "met" if s.ratio <= 1.0 else "MISSED"
        lines.append(
            f"TARGET {s.task}: autotune / best peer ({s.best_peer.value}) held-out median = "
            f"{s.ratio:.3f} (goal <= 1.00): {verdict}"
        )
    overrun = figures["budget_overrun_max_pct"]
    lines.append(
        f"TARGET budget overrun max {overrun:.2f}% (goal <= 2): "
        f"{'met' if overrun <= 2 else 'MISSED'}"
    )
    agrees = figures["recommendation_agrees_with_reevaluation"]
    verdict = "met" if agrees else "MISSED"
    lines.append(f"TARGET recommendation agrees with re-evaluation: {verdict}")
    return lines


def plot(summaries: Sequence[TaskSummary], path: Path, pipeline: Pipeline) -> None:
    """Per task: each method's held-out score per seed, its median and 95% interval."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    width = max(5.2 * len(summaries), 7.5)  # the title fits over one task too
    fig, axes = plt.subplots(1, len(summaries), figsize=(width, 4.8), dpi=110)
    for ax, s in zip(np.atleast_1d(axes), summaries, strict=True):
        for x, method in enumerate(Method):
            values = list(s.scores[method].values())
            jitter = np.linspace(-0.15, 0.15, len(values)) if len(values) > 1 else [0.0]
            color = COLORS[method]
            ax.scatter(x + np.asarray(jitter), values, color=color, s=18, alpha=0.6)
            median, low, high = median_interval(values)
            ax.plot([x - 0.3, x + 0.3], [median, median], color=color, lw=2.5)
            if math.isfinite(low):
                ax.errorbar(
                    x + 0.32,
                    median,
                    [[median - low], [high - median]],
                    color=color,
                    capsize=3,
                    lw=1.2,
                )
        ax.set_xticks(
            range(len(Method)),
            [m.value.replace("optuna_", "tpe+") for m in Method],
            rotation=30,
            fontsize=8,
        )
        scores = [v for m in Method for v in s.scores[m].values() if math.isfinite(v)]
        if scores and min(scores) / 1.5 <= s.trivial <= 1.5 * max(scores):  # else off scale
            ax.axhline(s.trivial, color="black", ls="--", lw=1, label="trivial predictor")
            ax.legend(loc="upper right", fontsize=8)
        better = "lower" if s.sign > 0 else "higher"
        ax.set_ylabel(f"held-out {s.metric} ({better} is better)")
        wins, pairs = s.wins
        ax.set_title(
            f"{s.task}: rank {s.rank}, ratio vs {s.best_peer.value.replace('optuna_', 'tpe+')} "
            f"{s.ratio:.3f}\nwins {wins}/{pairs}, Wilcoxon p {fmt(s.wilcoxon_p)}; "
            f"B = {s.budget:,} steps",
            fontsize=9,
        )
        ax.grid(True, axis="y", alpha=0.3)
    which = "" if pipeline is Pipeline.EXAMPLE else f" (autotune in {pipeline.value} mode)"
    fig.suptitle(
        f"held-out quality of each method's answer at equal total training steps{which}",
        fontsize=10,
    )
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def run_record(run: Run, heldout: Heldout | None) -> dict[str, Any]:
    return {
        "seed": run.seed,
        "steps": run.steps,
        "budget": run.budget,
        "wall_s": round(run.wall_s, 2),
        "states": run.states,
        "answer": asdict(run.answer),
        "agrees_with_reevaluation": run.agrees,
        "verdict": run.verdict,
        "notes": run.notes,
        "heldout": None if heldout is None else asdict(heldout),
    }


# --- main -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Options:
    quick: bool
    tasks: tuple[str, ...]
    seeds: tuple[int, ...]
    budget_runs: int
    jobs: int
    out: Path
    keep_state: bool
    peers_from: tuple[Path, ...] = ()
    pipeline: Pipeline = Pipeline.EXAMPLE

    @property
    def stem(self) -> str:
        stem = "heldout_quick" if self.quick else "heldout"
        return stem if self.pipeline is Pipeline.EXAMPLE else f"{stem}_{self.pipeline.value}"

    def budget(self, task: str) -> int:
        return self.budget_runs * example_steps(task)


def parse_args(argv: Sequence[str] | None) -> Options:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1 seed, B = 16 runs (minutes)")
    parser.add_argument("--tasks", nargs="+", default=list(DEFAULT_TASKS))
    parser.add_argument("--seeds", type=int, help="seeds 0..N-1 (default 5; --quick 1)")
    parser.add_argument("--budget-runs", type=int, help="B in full-length runs (40; quick 16)")
    parser.add_argument("--jobs", type=int, default=te.WORKERS, help="training processes (2)")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results")
    parser.add_argument("--keep-state", action="store_true", help="keep the database dir")
    parser.add_argument(
        "--peers-from",
        nargs="+",
        type=Path,
        default=[],
        help="reuse the peers' runs and held-out scores of earlier result files (same tasks, "
        "seeds and B) and run only autotune: for comparing autotune changes",
    )
    parser.add_argument(
        "--pipeline",
        type=Pipeline,
        choices=list(Pipeline),
        default=Pipeline.EXAMPLE,
        metavar="{" + ",".join(p.value for p in Pipeline) + "}",
        help="autotune's spec: the task's example study (default) or automatic mode (the "
        "task and the budget only)",
    )
    args = parser.parse_args(argv)
    seeds = args.seeds if args.seeds is not None else (1 if args.quick else 5)
    runs = args.budget_runs if args.budget_runs is not None else (16 if args.quick else 40)
    if seeds < 1 or args.jobs < 1 or runs < 1:
        parser.error("--seeds, --budget-runs and --jobs must be >= 1")
    for task in args.tasks:
        study_file(task)
    return Options(
        args.quick,
        tuple(args.tasks),
        tuple(range(seeds)),
        runs,
        args.jobs,
        args.out,
        args.keep_state,
        tuple(args.peers_from),
        args.pipeline,
    )


@dataclass(frozen=True)
class Measured:
    runs: tuple[Run, ...]
    heldouts: tuple[Heldout, ...]
    specs: Mapping[str, str]  # task -> autotune spec of the first seed (its text)
    wall_s: Mapping[str, float]


def measure(options: Options, state_dir: Path, started: float) -> Measured:
    """Autotune campaigns, then the Optuna methods, then every answer's held-out runs."""
    storage = open_storage(embedded_url(state_dir), state_dir=state_dir)
    wall: dict[str, float] = {}
    try:
        runs: list[Run] = []
        spec_of = {  # the peers' spec, which fixes the held-out retraining's batch and grid
            (t, s): str(write_spec(t, s, options.budget(t), options.quick, state_dir))
            for t in options.tasks
            for s in options.seeds
        }
        autotune_spec_of = (
            spec_of
            if options.pipeline is Pipeline.EXAMPLE
            else {
                (t, s): str(
                    write_automatic_spec(t, s, options.budget(t), options.quick, state_dir)
                )
                for t in options.tasks
                for s in options.seeds
            }
        )
        for task in options.tasks:
            for seed in options.seeds:
                path = Path(autotune_spec_of[task, seed])
                run = autotune_run(path, task, seed, options.budget(task), state_dir, storage)
                te.log(
                    f"autotune {task} seed {seed}: {run.steps:,} / {run.budget:,} steps, "
                    f"{run.wall_s:.0f} s, agrees {run.agrees}",
                    started,
                )
                runs.append(run)
        wall["autotune"] = time.perf_counter() - started
        reused: list[Heldout] = []
        if options.peers_from:
            peer_runs, reused = reused_peers(options)
            runs += peer_runs
            te.log(f"{len(peer_runs)} plain-Optuna runs reused from earlier files", started)
        else:
            jobs = [
                OptunaJob(task, method, seed, spec_of[task, seed], options.budget(task))
                for task in options.tasks
                for method in PEERS
                for seed in options.seeds
            ]
            te.log(f"{len(jobs)} plain-Optuna runs on {options.jobs} processes", started)
            runs += te.run_parallel(optuna_run, jobs, options.jobs)
        wall["optuna"] = time.perf_counter() - started - wall["autotune"]
        done = {(h.task, h.method, h.seed) for h in reused}
        held_jobs = [
            HeldoutJob(
                r.task,
                r.method,
                r.seed,
                (autotune_spec_of if r.method is Method.AUTOTUNE else spec_of)[r.task, r.seed],
                r.answer,
            )
            for r in runs
            if (r.task, r.method, r.seed) not in done
        ]
        te.log(f"{len(held_jobs)} held-out retrainings", started)
        heldouts = reused + te.run_parallel(heldout_run, held_jobs, options.jobs)
        wall["heldout"] = time.perf_counter() - started - wall["autotune"] - wall["optuna"]
        specs = {
            t: Path(autotune_spec_of[t, options.seeds[0]]).read_text(encoding="utf-8")
            for t in options.tasks
        }
    finally:
        te.stop_embedded(state_dir, storage)
    return Measured(tuple(runs), tuple(heldouts), specs, wall)


def reused_peers(options: Options) -> tuple[list[Run], list[Heldout]]:
    """The peers' runs and held-out scores from earlier result files, for every task and
    seed asked for; an error when a file lacks one or ran at another budget."""
    found: dict[tuple[str, Method, int], tuple[Run, Heldout]] = {}
    for path in options.peers_from:
        document = json.loads(path.read_text(encoding="utf-8"))
        for task, data in document["tasks"].items():
            for method in PEERS:
                for record in data["runs"][method.value]:
                    found[task, method, record["seed"]] = _reused(task, method, record)
    runs, heldouts = [], []
    for task in options.tasks:
        for method in PEERS:
            for seed in options.seeds:
                if (task, method, seed) not in found:
                    raise SystemExit(f"--peers-from: no {method.value} run of {task} seed {seed}")
                run, heldout = found[task, method, seed]
                if run.budget != options.budget(task):
                    raise SystemExit(
                        f"--peers-from: {task} ran at B = {run.budget}, not {options.budget(task)}"
                    )
                runs.append(run)
                heldouts.append(heldout)
    return runs, heldouts


def _reused(task: str, method: Method, record: Mapping[str, Any]) -> tuple[Run, Heldout]:
    answer, held = record["answer"], record["heldout"]
    run = Run(
        task,
        method,
        record["seed"],
        record["budget"],
        record["steps"],
        Answer(**answer),
        record["wall_s"],
        record["states"],
        record["agrees_with_reevaluation"],
        record["verdict"],
        tuple(record["notes"]),
    )
    final = tuple(float(v) for v in held["final"])
    return run, Heldout(task, method, record["seed"], tuple(held["periods"]), final)


def report(options: Options, measured: Measured, started: float) -> int:
    summaries, tasks = [], {}
    options.out.mkdir(parents=True, exist_ok=True)
    for task in options.tasks:
        runs = [r for r in measured.runs if r.task == task]
        heldouts = [h for h in measured.heldouts if h.task == task]
        spec = te.load_study_spec_text(measured.specs[task])
        summary = summarize(task, spec, options.budget(task), heldouts)
        summaries.append(summary)
        print(task_table(summary, runs), "\n", flush=True)
        held = {(h.method, h.seed): h for h in heldouts}
        tasks[task] = {
            "metric": summary.metric,
            "budget": summary.budget,
            "heldout_periods": list(heldouts[0].periods),
            "ranking": [m.value for m in summary.ranking()],
            "medians": {
                m.value: median_interval(list(summary.scores[m].values())) for m in Method
            },
            "autotune_spec_seed0": yaml.safe_load(measured.specs[task]),
            "runs": {
                m.value: [run_record(r, held.get((m, r.seed))) for r in runs if r.method is m]
                for m in Method
            },
        }
    figures = results(summaries, measured.runs)
    plot(summaries, options.out / f"{options.stem}.png", options.pipeline)
    document = {
        "benchmark": "heldout",
        "mode": "quick" if options.quick else "full",
        "pipeline": options.pipeline.value,
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "peers_reused_from": [str(p) for p in options.peers_from],
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "machine": te.machine(),
        "seeds": list(options.seeds),
        "budget_runs": options.budget_runs,
        "wall_s": {**measured.wall_s, "total": time.perf_counter() - started},
        "tasks": tasks,
        "results": figures,
    }
    path = options.out / f"{options.stem}.json"
    path.write_text(json.dumps(te.plain(document), indent=1) + "\n", encoding="utf-8")
    print(f"wrote {path} and {options.out / options.stem}.png")
    for line in target_lines(summaries, figures):
        print(line)
    for name, value in figures.items():
        print(f"RESULT {name}={fmt_result(value)}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    options = parse_args(argv)
    te._quiet()
    started = time.perf_counter()
    state_dir = Path(tempfile.mkdtemp(prefix="autotune-ho-"))
    te.log(
        f"tasks {', '.join(options.tasks)}; seeds {len(options.seeds)}; "
        f"B = {options.budget_runs} full runs; state {state_dir}",
        started,
    )
    try:
        measured = measure(options, state_dir, started)
    finally:
        if not options.keep_state:
            shutil.rmtree(state_dir, ignore_errors=True)
    return report(options, measured, started)


if __name__ == "__main__":
    sys.exit(main())
