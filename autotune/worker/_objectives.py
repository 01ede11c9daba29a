"""Optuna trial ↔ hyperparameters from the spec's space ↔ one torch training run."""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Mapping
from dataclasses import dataclass
from dataclasses import field
import logging
import math
from pathlib import Path
import tempfile
import threading
from typing import Any

import optuna
from optuna.distributions import BaseDistribution
from optuna.distributions import CategoricalDistribution
from optuna.distributions import FloatDistribution
from optuna.distributions import IntDistribution

from autotune import analysis
from autotune import training
from autotune.campaign import TUNING_PERIOD
from autotune.campaign import Stage
from autotune.campaign import baseline_hparams
from autotune.campaign import promotion_overrides
from autotune.campaign import space_distributions
from autotune.campaign import trial_hparams
from autotune.campaign._trial_attrs import ATTR_CHECKPOINT
from autotune.campaign._trial_attrs import ATTR_DIVERGED
from autotune.campaign._trial_attrs import ATTR_HPARAMS
from autotune.campaign._trial_attrs import ATTR_MAX_TRAIN_STEPS
from autotune.campaign._trial_attrs import ATTR_PERIOD_COUNT
from autotune.campaign._trial_attrs import ATTR_PERIOD_INDEX
from autotune.campaign._trial_attrs import ATTR_PERIOD_NAME
from autotune.campaign._trial_attrs import ATTR_PERIOD_SEED
from autotune.campaign._trial_attrs import ATTR_PRUNED_REASON
from autotune.campaign._trial_attrs import ATTR_RESUME_ERROR
from autotune.campaign._trial_attrs import ATTR_RESUMED_FROM
from autotune.campaign._trial_attrs import ATTR_SEED
from autotune.campaign._trial_attrs import ATTR_STEPS_DONE
from autotune.campaign._trial_attrs import ATTR_STEPS_TO_FIT
from autotune.campaign._trial_attrs import ATTR_STEPS_TRAINED
from autotune.campaign._trial_attrs import ATTR_STOP_AT_STEP
from autotune.campaign._trial_attrs import ATTR_SWEEP_LOWEST_LOSS
from autotune.campaign._trial_attrs import ATTR_SWEEP_OUTPACED_BY
from autotune.campaign._trial_attrs import ATTR_SWEEP_TO_BEAT
from autotune.campaign._trial_attrs import ATTR_TRAIN_FRACTION
from autotune.campaign._trial_attrs import TRIVIAL_PREFIX
from autotune.spec import SearchSpace
from autotune.spec import StudySpec
from autotune.storage import CheckpointRef
from autotune.storage import CheckpointStore
from autotune.storage import flush
from autotune.storage import trial_curve
from autotune.worker._checkpoints import RecoveryCheckpoints
from autotune.worker._checkpoints import resume_sources
from autotune.worker._checkpoints import takes_recovery_checkpoint
from autotune.worker._periods import reevaluation_period
from autotune.worker._periods import tuning_period

_logger = logging.getLogger(__name__)

SWEEP_PARAM_RANGE = (1e-8, 1e3)  # the sweep's learning rates are enqueued; any fit inside
_REGULARIZATION_OFF = {"weight_decay": 0.0, "dropout": 0.0}


@dataclass(frozen=True)
class RoundSetting:
    """What an objective needs to know about the stage/round whose trials it runs."""

    stage: Stage
    max_train_steps: int
    promote_to_steps: int | None = None  # the next round's steps, if trials may be promoted
    distributions: Mapping[str, BaseDistribution] = field(default_factory=dict)
    base: Mapping[str, Any] = field(default_factory=dict)  # hparams the stage does not tune
    train_fraction: float = 1.0  # fast mode: round 1 on a shorter window of training rows
    eval_interval: int | None = None  # steps between evaluations (None: the spec's)


class StopRequested(Exception):
    """The worker was asked to stop (SIGTERM/SIGINT); the running trial is to be retried."""


def suggest(trial: optuna.Trial, space: SearchSpace) -> dict[str, Any]:
    """Ask the trial for a value of every parameter of the space, in group order."""
    return suggest_from(trial, space_distributions(space.params))


def suggest_from(
    trial: optuna.Trial, distributions: Mapping[str, BaseDistribution]
) -> dict[str, Any]:
    """Ask the trial for a value of every distribution (a stage's narrowed or widened space),
    then write them in one transaction (a retry copies its parameters from the database)."""
    values: dict[str, Any] = {}
    for name, dist in distributions.items():
        if isinstance(dist, FloatDistribution):
            values[name] = trial.suggest_float(
                name, dist.low, dist.high, log=dist.log, step=dist.step
            )
        elif isinstance(dist, IntDistribution):
            values[name] = trial.suggest_int(
                name, dist.low, dist.high, log=dist.log, step=dist.step
            )
        elif isinstance(dist, CategoricalDistribution):
            values[name] = trial.suggest_categorical(name, list(dist.choices))
        else:
            raise TypeError(f"unsupported distribution {type(dist).__name__} for {name!r}")
    flush(trial)
    return values


def trial_seed(spec: StudySpec, trial: optuna.Trial) -> int:
    """The training seed of a trial, recorded as a user attribute.

    Retries inherit their original's user attributes, so a retried configuration trains
    with the same seed and reproduces the original's curve.
    """
    seed = trial.user_attrs.get(ATTR_SEED)
    if seed is None:
        seed = spec.seed * 100_003 + trial.number
        trial.set_user_attr(ATTR_SEED, seed)
    return int(seed)


def trial_budget(
    spec: StudySpec,
    seed: int,
    max_train_steps: int,
    train_fraction: float = 1.0,
    stop_at_step: int | None = None,
    eval_interval: int | None = None,
) -> training.Budget:
    """Training budget of one trial of a round that trains ``max_train_steps`` steps (a
    recipe's run stops at its ``stop_at_step``), evaluated every ``eval_interval`` steps
    (default: the spec's)."""
    return training.Budget(
        max_train_steps=max_train_steps,
        eval_interval=eval_interval or spec.eval_interval,
        batch_size=spec.batch_size,
        seed=seed,
        gradient_accumulation_steps=spec.gradient_accumulation_steps,
        train_fraction=train_fraction,
        stop_at_step=stop_at_step,
    )


def result_attrs(result: training.TrainResult) -> dict[str, Any]:
    """Rich metrics of a finished run, recorded as trial user attributes."""
    attrs: dict[str, Any] = {f"final_{k}": v for k, v in result.final.metrics.items()}
    attrs |= {f"best_{k}": v for k, v in result.best.metrics.items()}
    attrs |= {
        "best_step": result.best.step,
        ATTR_STEPS_DONE: result.steps_done,
        ATTR_RESUMED_FROM: result.resumed_from_step,
        ATTR_STEPS_TRAINED: result.steps_done - result.resumed_from_step,
        "wall_time_s": round(result.wall_time_s, 3),
        "examples_per_s": round(result.examples_per_s, 1),
        "evaluated_model": result.evaluated_model.value,
    }
    return attrs


def sweep_hparams(spec: StudySpec, task: training.Task, learning_rate: float) -> dict[str, Any]:
    """A sweep trial: the baseline at a constant learning rate, without regularization."""
    known = training.TRAINING_HYPERPARAMETERS | task.model_hyperparameters
    hparams = {
        k: v
        for k, v in baseline_hparams(spec, task.default_hyperparameters()).items()
        if k not in training.SCHEDULE_HYPERPARAMETERS
    }
    hparams |= {k: v for k, v in _REGULARIZATION_OFF.items() if k in known}
    return hparams | {"learning_rate": learning_rate, "schedule": "constant"}


def make_objective(
    spec: StudySpec,
    stop_requested: threading.Event,
    setting: RoundSetting,
    checkpoints: CheckpointStore | None = None,
) -> Callable[[optuna.Trial], float]:
    """The objective of a stage: tuning trials, the baseline run, or a sweep trial."""
    if setting.stage is Stage.STEPS_SWEEP:
        return _SweepObjective(spec, stop_requested, setting)
    if setting.stage is Stage.BASELINE:
        return _BaselineObjective(spec, stop_requested, setting, checkpoints)
    if setting.stage is Stage.REEVALUATION:
        return _ReevaluationObjective(spec, stop_requested, setting, checkpoints)
    return _TuningObjective(spec, stop_requested, setting, checkpoints)


# Strings, not the classes: naming training's classes here would import torch, and the CLI
# imports this module for commands that only read a campaign (tests/test_load_anywhere.py).
AfterEval = Callable[["training.EvalResult", "training.CheckpointSettings | None"], None]
"""What an objective does at an eval once it is reported and checkpointed (prune, upload)."""


class _Objective:
    """Shared by the objectives: one training run reported to the trial at every eval.

    With an artifact store, every training trial uploads a recovery checkpoint every
    ``spec.recovery_interval`` steps and when the worker stops; its retry resumes from the
    latest, so a killed run redoes at most one interval.
    """

    def __init__(
        self,
        spec: StudySpec,
        stop_requested: threading.Event,
        setting: RoundSetting,
        checkpoints: CheckpointStore | None = None,
    ) -> None:
        self.spec, self.stop_requested, self.setting = spec, stop_requested, setting
        self.checkpoints = checkpoints
        self.task = training.get_task(spec.task)
        self.tuning_period = tuning_period(spec)  # None: the task's default period

    def budget(self, trial: optuna.Trial) -> training.Budget:
        """The trial's training budget, recorded on it before it trains (pruned and failed
        runs show theirs too)."""
        seed, setting = trial_seed(self.spec, trial), self.setting
        trial.set_user_attr(ATTR_MAX_TRAIN_STEPS, setting.max_train_steps)
        if setting.train_fraction < 1.0:
            trial.set_user_attr(ATTR_TRAIN_FRACTION, setting.train_fraction)
        stop = trial.user_attrs.get(ATTR_STOP_AT_STEP)
        steps, fraction = setting.max_train_steps, setting.train_fraction
        stop_at = None if stop is None else int(stop)
        return trial_budget(self.spec, seed, steps, fraction, stop_at, self.eval_interval)

    @property
    def eval_interval(self) -> int:
        """Steps between this round's evaluations."""
        return self.setting.eval_interval or self.spec.eval_interval

    def check_stop(self, step: int) -> None:
        if self.stop_requested.is_set():
            raise StopRequested(f"stop requested at step {step}")

    def run_reporting(
        self,
        trial: optuna.Trial,
        hparams: Mapping[str, Any],
        period: training.Period | None = None,
        final: bool = False,
    ) -> float:
        """Train without pruning, reporting the metric at every eval; the best value (with
        ``final``, the value of the model where training ended: a recipe's)."""
        try:
            result = self.train_recovering(trial, dict(hparams), _carry_on, period)
        except training.NonFiniteLossError as error:
            _prune(trial, str(error))
        return self.finish(trial, result, final)

    def train_recovering(
        self,
        trial: optuna.Trial,
        hparams: dict[str, Any],
        after_eval: AfterEval,
        period: training.Period | None = None,
    ) -> training.TrainResult:
        """Train, reporting the metric at every eval, then ``after_eval``; with an artifact
        store, resume where the trial may (:func:`resume_sources`) and upload recovery
        checkpoints."""
        budget = self.budget(trial)
        if self.checkpoints is None:
            on_eval = self._on_eval(trial, budget, after_eval, None, None)
            return self._train(trial, hparams, budget, on_eval, period, None, None)
        recovery = RecoveryCheckpoints(trial, self.checkpoints)
        with tempfile.TemporaryDirectory(prefix="autotune-") as scratch:
            settings = training.CheckpointSettings(Path(scratch) / "run", keep_last=1)
            resume = self._fetch_resume(trial, Path(scratch))
            on_eval = self._on_eval(trial, budget, after_eval, settings, recovery)
            return self._train(trial, hparams, budget, on_eval, period, settings, resume)

    def _on_eval(
        self,
        trial: optuna.Trial,
        budget: training.Budget,
        after_eval: AfterEval,
        settings: training.CheckpointSettings | None,
        recovery: RecoveryCheckpoints | None,
    ) -> Callable[[training.EvalResult], None]:
        """Report (before the checkpoint: a retry reports this run's curve up to it),
        checkpoint, ``after_eval``, then stop if asked to (not at the last step: the result
        is in)."""
        metric, last = self.spec.metric.name, budget.last_step
        interval = self.spec.recovery_interval(self.eval_interval)

        def on_eval(evaluation: training.EvalResult) -> None:
            step = evaluation.step
            trial.report(evaluation.metrics[metric], step)
            stopping = self.stop_requested.is_set()  # read once: checkpoint, then stop
            if recovery is not None and settings is not None:
                if takes_recovery_checkpoint(step, interval, last, stopping):
                    recovery.upload(settings.directory, step)
            after_eval(evaluation, settings)
            if stopping and step < last:
                raise StopRequested(f"stop requested at step {step}")

        return on_eval

    def _fetch_resume(self, trial: optuna.Trial, scratch: Path) -> Path | None:
        """The checkpoint to resume from, downloaded, its run's curve reported; None: fresh."""
        for source in resume_sources(trial.user_attrs, trial.study.study_name):
            path = self._download(trial, source.checkpoint, scratch)
            if path is not None:
                # Before the curve: a flush that writes the curve (a buffered write may be
                # due at any report) then writes this too, so a run killed right after
                # resuming does not count the parent's steps as its own.
                trial.set_user_attr(ATTR_RESUMED_FROM, source.step)  # known even if pruned
                _report_curve_of(trial, source.study_name, source.trial_number, source.step)
                return path
        return None

    def _download(self, trial: optuna.Trial, ref: CheckpointRef, scratch: Path) -> Path | None:
        assert self.checkpoints is not None  # no resume without a store
        try:
            path = self.checkpoints.download(ref, scratch)
            training.load_checkpoint(path)
        except Exception as error:  # missing, truncated or corrupt: restart from scratch
            _resume_failed(trial, f"checkpoint {ref.artifact_id} unusable: {error}")
            return None
        return path

    def _train(
        self,
        trial: optuna.Trial,
        hparams: dict[str, Any],
        budget: training.Budget,
        on_eval: Callable[[training.EvalResult], None],
        period: training.Period | None,
        settings: training.CheckpointSettings | None,
        resume: Path | None,
    ) -> training.TrainResult:
        metric = self.spec.metric.name
        if resume is not None:
            try:
                return training.train(
                    hparams,
                    self.task,
                    budget,
                    on_eval,
                    metric,
                    period=period,
                    checkpoints=settings,
                    resume_from=resume,
                )
            except training.CheckpointMismatchError as error:
                _resume_failed(trial, str(error))
        return training.train(
            hparams, self.task, budget, on_eval, metric, period=period, checkpoints=settings
        )

    def finish(
        self, trial: optuna.Trial, result: training.TrainResult, final: bool = False
    ) -> float:
        """Record the result's metrics; the best value of the metric, or with ``final`` the
        last one (non-finite: pruned)."""
        for key, value in result_attrs(result).items():
            trial.set_user_attr(key, value)
        metric = self.spec.metric.name
        value = (result.final if final else result.best).metrics[metric]
        if not math.isfinite(value):
            _prune(trial, f"{metric} is {value}")
        return value


def _prune(trial: optuna.Trial, reason: str, steps_done: int | None = None) -> None:
    """Stop the trial as PRUNED with its reason (and how far it trained, when known)."""
    trial.set_user_attr(ATTR_PRUNED_REASON, reason)
    if steps_done is not None:
        record_steps(trial, steps_done)
    raise optuna.TrialPruned(reason)


def _carry_on(evaluation: training.EvalResult, settings: object) -> None:
    """An objective that neither prunes nor uploads at an eval."""


def record_steps(trial: optuna.Trial, steps_done: int) -> None:
    """How far the trial's run got, and the steps it trained itself (resumed ones not)."""
    resumed = int(trial.user_attrs.get(ATTR_RESUMED_FROM) or 0)
    trial.set_user_attr(ATTR_STEPS_DONE, steps_done)
    trial.set_user_attr(ATTR_STEPS_TRAINED, max(0, steps_done - resumed))


class _TuningObjective(_Objective):
    """A tuning trial: suggest, train (resuming where possible), prune.

    Returns the best validation value of the run (retrospective checkpoint selection). It
    resumes from its own recovery checkpoint (a retry) or its parent's (a promoted trial).
    In a round whose trials may be promoted, the checkpoint a promoted trial can resume
    from is uploaded too, when training passes it.
    """

    def __call__(self, trial: optuna.Trial) -> float:
        params = suggest_from(trial, self.setting.distributions)
        hparams = trial_hparams(self.setting.base, params, trial.user_attrs)
        after_eval = self._after_eval(trial, self._upload_step(hparams))
        try:
            result = self.train_recovering(trial, hparams, after_eval, self.tuning_period)
        except training.NonFiniteLossError as error:
            _prune(trial, str(error))
        return self.finish(trial, result)

    def _upload_step(self, hparams: Mapping[str, Any]) -> int:
        """The eval step whose checkpoint a promoted copy of this trial could resume from."""
        steps, later = self.setting.max_train_steps, self.setting.promote_to_steps
        if self.checkpoints is None or later is None or self.setting.train_fraction < 1.0:
            return 0  # nothing to promote into, or a fast-mode run on other data
        child = {**hparams, **promotion_overrides(hparams, steps)}
        return training.resumable_step(hparams, steps, child, later, self.eval_interval)

    def _after_eval(self, trial: optuna.Trial, upload_step: int) -> AfterEval:
        """Upload the checkpoint a promoted copy resumes from; prune (not at the last step:
        the result is in, keep it)."""
        steps = self.setting.max_train_steps

        def after_eval(
            evaluation: training.EvalResult, settings: training.CheckpointSettings | None
        ) -> None:
            step = evaluation.step
            if settings is not None and step == upload_step:
                self._upload(trial, settings, upload_step)
            if step < steps and trial.should_prune():
                _prune(trial, f"successive halving at step {step}", steps_done=step)

        return after_eval

    def _upload(
        self, trial: optuna.Trial, settings: training.CheckpointSettings, step: int
    ) -> None:
        assert self.checkpoints is not None  # no settings without a store
        path = training.latest_checkpoint(settings.directory)
        try:
            if path is None:
                raise FileNotFoundError(f"no checkpoint in {settings.directory}")
            ref = self.checkpoints.upload(trial, path, step)
            trial.set_user_attr(ATTR_CHECKPOINT, ref.to_attr())
        except Exception as error:  # a promoted copy then trains from scratch
            _logger.warning("trial %d: checkpoint upload failed: %s", trial.number, error)


def _report_curve_of(trial: optuna.Trial, study_name: str, number: int, until_step: int) -> None:
    """Report another trial's values up to the resumed step: the learning curve stays whole."""
    for step, value in trial_curve(trial.storage, study_name, number, until_step).items():
        trial.report(value, step)


def _resume_failed(trial: optuna.Trial, reason: str) -> None:
    _logger.warning("trial %d restarts from scratch: %s", trial.number, reason)
    trial.set_user_attr(ATTR_RESUME_ERROR, reason)
    trial.set_user_attr(ATTR_RESUMED_FROM, 0)


class _BaselineObjective(_Objective):
    """The baseline run: the task's default configuration, with the trivial predictor's value."""

    def __call__(self, trial: optuna.Trial) -> float:
        hparams = baseline_hparams(self.spec, self.task.default_hyperparameters())
        trial.set_user_attr(ATTR_HPARAMS, hparams)
        record_trivial(trial, self.task, self.tuning_period)
        return self.run_reporting(trial, hparams, self.tuning_period)


def record_trivial(
    trial: optuna.Trial, task: training.Task, period: training.Period | None
) -> None:
    """The trivial predictor's metrics on ``period``, when the task knows them: what the
    baseline must beat, and what the answer is compared with on each re-evaluation period."""
    if isinstance(task, training.HasTrivialMetrics):
        for name, value in task.trivial_metrics(period).items():
            trial.set_user_attr(f"{TRIVIAL_PREFIX}{name}", float(value))


class _Fitted(Exception):
    """The sweep trial fitted at step ``args[0]`` (evaluated up to step ``args[1]``)."""


class _SweepObjective(_Objective):
    """A sweep trial: how many steps a constant learning rate needs to fit the training set.

    With the task's ``fit_threshold``: until the training loss reaches it. Without: until
    the loss has stopped improving (`analysis.plateau_step`, which a longer curve would not
    move), with the lowest loss recorded so the campaign can tell stable rates
    (docs/method.md §3).
    Its value is the steps to fit (inf: not within the sweep's steps, or diverged); the
    training loss at every eval is reported as the learning curve.
    """

    def __call__(self, trial: optuna.Trial) -> float:
        learning_rate = trial.suggest_float("learning_rate", *SWEEP_PARAM_RANGE, log=True)
        hparams = sweep_hparams(self.spec, self.task, learning_rate)
        trial.set_user_attr(ATTR_HPARAMS, hparams)
        flush(trial)  # durable before training: a retry copies the learning rate
        threshold = getattr(self.task, "fit_threshold", None)
        curve: list[tuple[int, float]] = []

        def on_eval(evaluation: training.EvalResult) -> None:
            loss = evaluation.metrics[training.TRAIN_LOSS]
            trial.report(loss, evaluation.step)
            curve.append((evaluation.step, loss))
            self.check_stop(evaluation.step)
            if threshold is None:
                plateau = analysis.plateau_step(curve)
                if plateau is not None:
                    raise _Fitted(plateau, evaluation.step)
                return
            if loss <= float(threshold):
                raise _Fitted(evaluation.step, evaluation.step)
            _stop_if_outpaced(trial, evaluation.step)

        try:
            result = training.train(
                hparams,
                self.task,
                self.budget(trial),
                on_eval,
                training.TRAIN_LOSS,
                period=self.tuning_period,
            )
            record_steps(trial, result.steps_done)
        except _Fitted as fitted:
            if threshold is None:
                _record_lowest_loss(trial, curve)
            return _fitted_at(trial, int(fitted.args[0]), steps_done=int(fitted.args[1]))
        except training.NonFiniteLossError as error:
            record_steps(trial, error.step)
            trial.set_user_attr(ATTR_DIVERGED, str(error))
            curve.clear()  # a diverged rate is no stable one, whatever it reached before
        if threshold is None and curve:  # still improving at the sweep's end
            _record_lowest_loss(trial, curve)
        trial.set_user_attr(ATTR_STEPS_TO_FIT, None)
        return math.inf


def _record_lowest_loss(trial: optuna.Trial, curve: list[tuple[int, float]]) -> None:
    """The lowest training loss a plateau-rule sweep trial reached (docs/method.md §3)."""
    trial.set_user_attr(ATTR_SWEEP_LOWEST_LOSS, min(loss for _, loss in curve))


def _stop_if_outpaced(trial: optuna.Trial, step: int) -> None:
    """Prune a sweep trial still unfitted at the steps another rate fitted in (this sweep's
    finished trials, or the earlier sweeps' fastest a widening carries): it is slower, so
    it cannot be the fastest (`analysis.outpaced_by`)."""
    finished = trial.study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    fitted = [t.user_attrs.get(ATTR_STEPS_TO_FIT) for t in finished]
    fitted.append(trial.user_attrs.get(ATTR_SWEEP_TO_BEAT))
    bound = analysis.outpaced_by(step, (s for s in fitted if isinstance(s, int)))
    if bound is not None:
        trial.set_user_attr(ATTR_SWEEP_OUTPACED_BY, bound)
        _prune(trial, f"another learning rate fitted in {bound} steps: slower", steps_done=step)


def _fitted_at(trial: optuna.Trial, steps: int, steps_done: int | None = None) -> float:
    """Record a sweep trial's steps to fit; they are its value."""
    if steps_done is not None:
        record_steps(trial, steps_done)
    trial.set_user_attr(ATTR_STEPS_TO_FIT, steps)
    return float(steps)


class _ReevaluationObjective(_Objective):
    """A finalist's recipe re-trained on one period with one seed (attributes set when
    queued): trained to the recipe's stop, its value that of the model there. The task's
    defaults also run on the tuning period (`TUNING_PERIOD`), where the finalists' own
    tuning runs count."""

    def __call__(self, trial: optuna.Trial) -> float:
        attrs = trial.user_attrs
        period = self._period(attrs)
        trial.set_user_attr(ATTR_PERIOD_NAME, period.name)
        record_trivial(trial, self.task, period)
        return self.run_reporting(trial, attrs[ATTR_HPARAMS], period, final=True)

    def _period(self, attrs: Mapping[str, Any]) -> training.Period:
        index = attrs[ATTR_PERIOD_INDEX]
        if index == TUNING_PERIOD:
            return self.tuning_period or self.task.default_period()
        count, seed = attrs[ATTR_PERIOD_COUNT], attrs[ATTR_PERIOD_SEED]
        return reevaluation_period(self.spec, self.task, index, count, seed)
