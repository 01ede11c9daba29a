"""Names of the trial user attributes that several modules read and write."""

from __future__ import annotations

ATTR_SEED = "seed"
ATTR_OVERRIDES = "schedule_overrides"  # set on promoted trials (autotune.campaign._pipeline)
ATTR_PARENT_STUDY = "parent_study"  # lineage of a promoted trial
ATTR_PARENT_TRIAL = "parent_trial"
ATTR_PARENT_BUDGET = "parent_budget"
ATTR_PARENT_VALUE = "parent_value"
ATTR_CHECKPOINT = "checkpoint"  # {"artifact_id", "step"}: this trial's uploaded checkpoint
ATTR_RESUME = "resume_checkpoint"  # same form: the parent checkpoint a promoted trial resumes
# {"artifact_id", "step", "trial"}: the latest recovery checkpoint of this configuration's
# run and the trial number that wrote it; a retry resumes from it.
ATTR_RECOVERY = "recovery_checkpoint"

ATTR_FINALIST = "finalist"  # re-evaluation runs: which finalist, period and seed replicate
ATTR_HPARAMS = "hparams"  # the whole configuration of a baseline, sweep or re-evaluation run
ATTR_PERIOD_NAME = "period"
ATTR_PERIOD_INDEX = "period_index"
ATTR_PERIOD_COUNT = "period_count"
ATTR_PERIOD_SEED = "period_seed"
ATTR_REPLICATE = "replicate"

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
)
"""What a retry of a stale or interrupted trial copies: the configuration and its lineage.

Not Optuna's system attributes (they would carry the pruner's rung records, judging the
retry at rungs it never reached) and not the trial's results or its promotion checkpoint;
the recovery checkpoint is inherited, so the retry resumes where the failed trial left off.
"""
