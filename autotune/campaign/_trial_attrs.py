"""Names of the trial user attributes: lineage, configuration, results (one place)."""

from __future__ import annotations

ATTR_SEED = "seed"
ATTR_OVERRIDES = "schedule_overrides"  # set on promoted trials (campaign/_promotion.py)
ATTR_PARENT_STUDY = "parent_study"  # lineage of a promoted trial
ATTR_PARENT_TRIAL = "parent_trial"
ATTR_PARENT_BUDGET = "parent_budget"
ATTR_PARENT_VALUE = "parent_value"
ATTR_CHECKPOINT = "checkpoint"  # {"artifact_id", "step"}: this trial's uploaded checkpoint
ATTR_RESUME = "resume_checkpoint"  # same form: the parent checkpoint a promoted trial resumes
# {"artifact_id", "step", "trial"}: the latest recovery checkpoint of this configuration's
# run and the trial number that wrote it; a retry resumes from it.
ATTR_RECOVERY = "recovery_checkpoint"
ATTR_RECOVERY_ERROR = "recovery_checkpoint_error"  # the first failed upload, why

ATTR_FINALIST = "finalist"  # re-evaluation runs: which finalist, period and seed replicate
ATTR_HPARAMS = "hparams"  # the whole configuration of a baseline, sweep or re-evaluation run
ATTR_PERIOD_NAME = "period"
ATTR_PERIOD_INDEX = "period_index"
ATTR_PERIOD_COUNT = "period_count"
ATTR_PERIOD_SEED = "period_seed"
ATTR_REPLICATE = "replicate"
ATTR_STOP_AT_STEP = "stop_at_step"  # a recipe's fixed stop (re-evaluation runs)
# a widening sweep's trials: the steps the fastest rate so far fitted in (slower ones stop)
ATTR_SWEEP_TO_BEAT = "sweep_steps_to_beat"

INHERITED_BY_RETRIES = (
    ATTR_SEED,
    ATTR_OVERRIDES,
    ATTR_PARENT_STUDY,
    ATTR_PARENT_TRIAL,
    ATTR_PARENT_BUDGET,
    ATTR_PARENT_VALUE,
    ATTR_RESUME,
    ATTR_RECOVERY,
    ATTR_FINALIST,
    ATTR_HPARAMS,
    ATTR_PERIOD_NAME,
    ATTR_PERIOD_INDEX,
    ATTR_PERIOD_COUNT,
    ATTR_PERIOD_SEED,
    ATTR_REPLICATE,
    ATTR_STOP_AT_STEP,
    ATTR_SWEEP_TO_BEAT,
)
"""What a retry of a stale or interrupted trial copies: the configuration and its lineage.

Not Optuna's system attributes (they would carry the pruner's rung records, judging the
retry at rungs it never reached) and not the trial's results or its promotion checkpoint;
the recovery checkpoint is inherited, so the retry resumes where the failed trial left off.
"""

# Results and bookkeeping a run records on its trial.
ATTR_PRUNED_REASON = "pruned_reason"
ATTR_STEPS_TO_FIT = "steps_to_fit"  # sweep trials: steps until the training set is fitted
# sweep trials without a fit threshold: the lowest training loss (which rates are stable)
ATTR_SWEEP_LOWEST_LOSS = "sweep_lowest_loss"
# sweep trials stopped unfitted: the steps another rate had fitted in (analysis.outpaced_by)
ATTR_SWEEP_OUTPACED_BY = "sweep_outpaced_by"
ATTR_DIVERGED = "diverged"
ATTR_RESUMED_FROM = "resumed_from_step"
ATTR_TRAIN_FRACTION = "train_fraction"  # fast mode: the run saw this share of the rows
ATTR_RESUME_ERROR = "resume_error"
ATTR_MAX_TRAIN_STEPS = "max_train_steps"  # the trial's budget, set before it trains
ATTR_STEPS_DONE = "steps_done"  # steps the run reached, resumed ones included
# steps this trial trained itself: steps_done - resumed_from_step (0 for a carried copy)
ATTR_STEPS_TRAINED = "steps_trained"
ATTR_BEST_STEP = "best_step"
TRIVIAL_PREFIX = "trivial_"  # trivial_<metric>: the trivial predictor's value (baseline)
ATTR_CARRIED_FROM = "carried_from"  # a widened stage's copy of a finished trial
ATTR_QUEUED_AS = "queued_as"  # the key that makes queuing a trial idempotent
ATTR_ERROR_TRACEBACK = "error_traceback"  # the failed run's traceback (its last lines)
ATTR_INTERRUPTED = "interrupted"  # why a worker stopped the trial (it is retried)
ATTR_WORKER = "worker"  # the id of the worker that ran the trial
# How long the worker waited for this trial: asking to having it, and of that the wait for
# the study's lock (milliseconds; `autotune status` shows them when they grow).
ATTR_HANDOUT_MS = "handout_ms"
ATTR_LOCK_WAIT_MS = "lock_wait_ms"
