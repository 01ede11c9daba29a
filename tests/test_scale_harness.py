"""benchmarks/scale.py at 2 workers with short sleeps: it runs end to end on the test
PostgreSQL, its campaign finishes, and it finds no lost, duplicate or over-budget trial.

The harness is run as a user runs it (a subprocess), so a broken import or argument shows
here rather than on the day of the run of record.
"""

from __future__ import annotations

import json
from pathlib import Path
import re
import subprocess
import sys

import pytest

from tests.conftest import REPO_ROOT

RESULT = re.compile(r"^RESULT (\w+)=(-?[\d.]+|nan)$", re.MULTILINE)
EXPECTED = {
    "trials_per_s_2w",
    "optuna_trials_per_s_2w",
    "max_workers_without_error",
    "lost_trials",
    "duplicate_trials",
    "budget_overrun",
}


@pytest.mark.e2e
def test_two_workers_lose_and_duplicate_nothing(server_url: str, tmp_path: Path) -> None:
    out = tmp_path / "scale.json"
    command = [
        sys.executable,
        str(REPO_ROOT / "benchmarks" / "scale.py"),
        "--workers",
        "2",
        "--trials",
        "2",
        "--step-sleep",
        "0.005",
        "--storage",
        server_url,
        "--json",
        str(out),
    ]
    done = subprocess.run(
        command, capture_output=True, text=True, timeout=600, cwd=REPO_ROOT, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr

    figures = {name: float(value) for name, value in RESULT.findall(done.stdout)}
    assert EXPECTED <= figures.keys(), done.stdout
    assert figures["lost_trials"] == 0
    assert figures["duplicate_trials"] == 0
    assert figures["budget_overrun"] == 0
    assert figures["max_workers_without_error"] == 2, done.stdout
    assert figures["trials_per_s_2w"] > 0 and figures["optuna_trials_per_s_2w"] > 0

    results = json.loads(out.read_text())["results"]
    kinds = {(r["case"]["scenario"], r["case"]["system"]) for r in results}
    assert kinds == {("steady", "autotune"), ("steady", "optuna"), ("campaign", "autotune")}
    for result in results:
        assert result["errors"] == 0, result["error_samples"]
        assert result["statements_per_trial"] > 0
        assert result["connections_max"] >= 2  # both workers were connected
    assert all(r["case"]["length_spread"] == 0.1 for r in results)  # the default
    steady = [r for r in results if r["case"]["scenario"] == "steady"]
    assert all(r["integrity"]["finished_trials"] == 2 * (2 + 1) for r in steady)  # + warm-ups
    campaign = next(r for r in results if r["case"]["scenario"] == "campaign")
    assert campaign["integrity"]["campaign_finished"] is True


def test_trial_lengths_spread_alike_for_both_systems_and_none_without_spread() -> None:
    sys.path.insert(0, str(REPO_ROOT / "benchmarks"))
    import scale

    def case(system: scale.System, spread: float) -> scale.Case:
        return scale.Case(system, scale.Scenario.STEADY, 8, 6, 0.05, 60.0, 1, spread)

    spread = case(scale.System.AUTOTUNE, 0.1)
    sleeps = [spread.step_sleep(worker, trial) for worker in range(8) for trial in range(50)]
    assert all(0.045 <= s <= 0.055 for s in sleeps)
    assert len(set(sleeps)) == len(sleeps)  # no two trials in step
    assert abs(sum(sleeps) / len(sleeps) - 0.05) < 0.001  # 1-second trials on average
    optuna_case = case(scale.System.OPTUNA, 0.1)
    assert [optuna_case.step_sleep(3, t) for t in range(9)] == [
        spread.step_sleep(3, t) for t in range(9)
    ]
    lockstep = case(scale.System.AUTOTUNE, 0.0)
    assert {lockstep.step_sleep(w, t) for w in range(8) for t in range(9)} == {0.05}


def test_storage_calls_benchmark_prints_each_calls_cost(server_url: str) -> None:
    command = [
        sys.executable,
        str(REPO_ROOT / "benchmarks" / "storage_calls.py"),
        "--calls",
        "5",
        "--rounds",
        "1",
        "--storage",
        server_url,
    ]
    done = subprocess.run(
        command, capture_output=True, text=True, timeout=300, cwd=REPO_ROOT, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
    figures = {name: float(value) for name, value in RESULT.findall(done.stdout)}
    calls = ("create_trial", "rung_decision", "get_trial", "tell")
    assert figures.keys() == {f"{c}_{m}" for c in calls for m in ("wall_ms", "cpu_ms")}
    assert all(value > 0 for value in figures.values()), done.stdout
