"""Automatic mode on co2-lstm, end to end, with 2 worker processes on a real PostgreSQL.

The spec names the task and its search space and no values; the space is the built-in one
with the learning-rate range set too high on purpose (0.03 to 3: the best is near 0.01, and
the upper part diverges) and the learning-rate group reduced to the learning rate, so stage
1 must widen it downwards. Only knobs outside the search are set: the sweep's steps and the
re-evaluation's periods (to keep the test within minutes), and a boundary tolerance of 25%
(default 5%; the top trials must then lie in the lower half). With 24 trials of 40 steps,
most of them pruned after 10 or 30, seed noise is large: the best sampled learning rate
landed within 5% of the bound in about half the runs and within 20% in all but one of
twelve. (The default is calibrated for under 5% false alarms with the optimum inside.)
"""

from __future__ import annotations

from pathlib import Path
import re

from optuna.trial import TrialState
import pytest

import autotune
from autotune.campaign import TUNING_PERIOD
from autotune.campaign import Stage
from tests.conftest import REPO_ROOT
from tests.conftest import run_autotune
from tests.conftest import run_workers

pytestmark = pytest.mark.e2e

LEARNING_RATE_LINE = r"learning_rate: \{type: float, low: [^,]+, high: [^,]+, log: true,"
HIGH_LEARNING_RATES = "learning_rate: {type: float, low: 3.0e-2, high: 3.0, log: true,"
OTHER_LEARNING_RATE_KNOBS = r"\n +(warmup_fraction|schedule|early_stopping_patience):[^\n]*"


def test_automatic_co2_lstm_campaign_widens_promotes_reevaluates_and_reports(
    storage_url: str, tmp_path: Path
) -> None:
    builtin = (REPO_ROOT / "search_spaces" / "lstm.yaml").read_text()
    space = tmp_path / "lstm-high.yaml"
    high = re.sub(LEARNING_RATE_LINE, HIGH_LEARNING_RATES, builtin)
    space.write_text(re.sub(OTHER_LEARNING_RATE_KNOBS, "", high))
    assert HIGH_LEARNING_RATES in space.read_text() and "warmup" not in space.read_text()
    spec = tmp_path / "auto.yaml"
    spec.write_text(
        f"task: co2-lstm\nname: auto-co2\nsearch_space: {space}\n"
        "steps_sweep: {steps: 400}\n"
        "boundary: {max_widenings: 1, tolerance: 0.25}\n"
        "reevaluation: {finalists: 2, periods: 4, period_seed: 11}\n"
    )
    created = run_autotune("create", str(spec), "--storage", storage_url)
    assert created.returncode == 0, created.stderr
    run_workers("auto-co2", storage_url, count=2, timeout=900)

    campaign = autotune.load("auto-co2", storage=storage_url)
    assert campaign.stopped is None
    (sweep,) = campaign.stage_studies(Stage.STEPS_SWEEP)
    steps = sweep.facts.sweep.max_train_steps
    assert campaign.max_train_steps == steps > 0

    tuning = campaign.stage_studies(Stage.JOINT)
    stages = {s.plan.name for s in tuning}
    assert stages == {"learning_rate", "optimizer-model-regularization"}
    first = [s for s in tuning if s.plan.stage_index == 0]
    record = {f.name: f for f in first[0].facts.boundaries.findings}["learning_rate"]
    assert record.hit and record.side.value == "low", record.message
    assert [s.name for s in first] == [
        "auto-co2/learning_rate/1",
        "auto-co2/learning_rate/1-widened1",
    ]
    widened = first[1].distributions["learning_rate"]
    assert widened.low < 3.0e-2 and widened.high == 3.0

    last = tuning[-1]
    assert last.round_number == 2 and last.max_train_steps == steps
    parent_round = [s for s in tuning if s.plan.stage_index == 1][-2]
    candidates = campaign.trials_of(parent_round, states=(TrialState.COMPLETE,))
    promoted = campaign.trials_of(last)
    assert len(promoted) == min(4, len(candidates)) >= 2  # top 4 of round 1's COMPLETE trials
    assert all(t.state is TrialState.COMPLETE for t in promoted)
    assert {t.user_attrs["parent_trial"] for t in promoted} <= {t.number for t in candidates}

    (reevaluation,) = campaign.stage_studies(Stage.REEVALUATION)
    design = reevaluation.facts.design
    assert design.period_count == 4 and len(design.finalists) == 2 + 1  # and the defaults
    runs = campaign.trials_of(reevaluation, states=(TrialState.COMPLETE,))
    # the task's defaults also run on the tuning period, where the finalists' runs count
    on_tuning = [t for t in runs if t.user_attrs["period_index"] == TUNING_PERIOD]
    *tuned, defaults = design.finalists
    counted = int(all(f.tuning_run for f in tuned))
    assert [t.user_attrs["finalist"] for t in on_tuning] == [defaults.label] * counted
    periods = {t.user_attrs["period"] for t in runs if t not in on_tuning}
    assert len(periods) == 4 and all(re.match(r"\d{4}-\d{2}-\d{2}", p) for p in periods)
    assert len(runs) == 12 + counted
    verdict = reevaluation.facts.significance.report
    assert verdict.comparisons and "periods" in verdict.comparisons[0].verdict

    out = tmp_path / "report"
    report = run_autotune("report", "auto-co2", "--storage", storage_url, "--out", str(out))
    assert report.returncode == 0, report.stderr
    markdown = (out / "report.md").read_text()
    pictures = re.findall(r"^!\[[^\]]*\]\(([^)]+)\)$", markdown, flags=re.MULTILINE)
    assert len(pictures) >= 6 and all((out / p).stat().st_size > 10_000 for p in pictures)
    for heading in ("## Summary", "## max_train_steps", "## Re-evaluation on several periods"):
        assert heading in markdown
