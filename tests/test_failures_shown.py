"""A task that raises: the summary, status and ``autotune logs`` say why, grouped by reason."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
import re

import pytest

from autotune.campaign import load_campaign
from autotune.report._summary import run_summary
from autotune.storage import open_storage
from tests.conftest import FAST_HEARTBEAT
from tests.conftest import run_autotune
from tests.conftest import write_study

pytestmark = pytest.mark.e2e

SWISH = "ValueError: invalid hyperparameter activation='swish'"


def test_failures_are_explained_and_their_tracebacks_shown(
    storage_url: str, tmp_path: Path
) -> None:
    space = tmp_path / "space.yaml"
    space.write_text(
        "name: broken\ngroups:\n"
        "  - name: learning_rate\n    params:\n"
        "      learning_rate: {type: float, low: 1.0e-3, high: 1.0e-2, log: true}\n"
        "  - name: model\n    params:\n"
        "      activation: {type: categorical, choices: [relu, swish]}\n",
        encoding="utf-8",
    )
    spec = write_study(
        tmp_path,
        "broken",
        trials=8,
        max_train_steps=40,
        space=space,
        sampler="{type: random}",
        baseline=True,
    )
    # This task's model builds with "swish" (create checks that) and raises in training.
    spec.write_text(
        spec.read_text().replace(
            "task: digits-mlp", "task: tests.tasks.broken:swish_fails_in_training"
        )
    )
    state = ("--storage", storage_url, "--state-dir", str(tmp_path / "state"))
    assert run_autotune("create", str(spec), *state).returncode == 0
    worker = run_autotune("worker", "broken", *state, *FAST_HEARTBEAT)
    assert worker.returncode == 0, worker.stdout + worker.stderr

    summary = "\n".join(run_summary(load_campaign("broken", open_storage(storage_url))))
    failed = int(re.search(r"(\d+) failed of 8", summary)[1])
    assert failed > 0, summary
    grouped = re.compile(rf"{failed} trials?: {re.escape(SWISH)}.* \(broken/joint/1 #\d+")
    assert grouped.search(summary), summary

    status = run_autotune("status", "broken", *state)
    assert grouped.search(status.stdout), status.stdout
    logs = run_autotune("logs", "broken", *state)
    assert logs.returncode == 0 and grouped.search(logs.stdout), logs.stdout + logs.stderr
    number = re.search(r"broken/joint/1 #(\d+)", logs.stdout)[1]

    one = run_autotune("logs", "broken", "--trial", f"broken/joint/1#{number}", *state)
    assert one.returncode == 0, one.stderr
    assert f"reason: {SWISH}" in one.stdout
    assert "Traceback (most recent call last):" in one.stdout and "swish" in one.stdout
    assert "no local worker logs here" in one.stdout  # `autotune worker` logs to its terminal

    exported = run_autotune("export", "broken", "--csv", *state)
    assert exported.returncode == 0, exported.stderr
    rows = list(csv.DictReader(io.StringIO(exported.stdout)))
    assert len(rows) == 9  # the baseline and round 1
    baseline = json.loads(rows[0]["user_attrs_hparams"])  # a dict cell: JSON, not repr
    assert rows[0]["study"] == "broken/baseline/1" and baseline["hidden_units"] == 64
    assert sum(row["user_attrs_error"].startswith(SWISH) for row in rows) == failed

    bad = run_autotune("logs", "broken", "--trial", "broken/joint/9#0", *state)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    assert (
        "no study 'broken/joint/9'; its studies: broken/baseline/1, broken/joint/1" in bad.stderr
    )
