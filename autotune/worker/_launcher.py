"""Local runs: start worker processes on this machine and show live progress until they finish."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
import os
from pathlib import Path
import signal
import subprocess
import sys
import time
from typing import TextIO

from autotune.campaign import Campaign
from autotune.campaign import load_campaign
from autotune.report._progress import LiveState
from autotune.report._progress import StepRate
from autotune.report._progress import live_parts
from autotune.report._progress import live_state
from autotune.report._storage_text import STORAGE_ENV
from autotune.report._terminal import LiveLine
from autotune.storage import HeartbeatSettings


@dataclass(frozen=True)
class LocalRun:
    """Outcome of a local run: the workers' exit codes and where their logs are."""

    exit_codes: tuple[int, ...]
    log_paths: tuple[Path, ...]
    interrupted: bool


def worker_command(
    campaign: str, worker_id: str, heartbeat: HeartbeatSettings, threads: int, artifacts: Path
) -> list[str]:
    """The command line of one local worker (the storage URL travels in the environment)."""
    return [
        sys.executable,
        "-m",
        "autotune",
        "worker",
        campaign,
        "--worker-id",
        worker_id,
        "--threads",
        str(threads),
        "--heartbeat-interval",
        str(heartbeat.interval_s),
        "--grace-period",
        str(heartbeat.grace_period_s),
        "--artifacts",
        str(artifacts),
    ]


def run_local_workers(
    campaign: Campaign,
    url: str,
    workers: int,
    log_dir: Path,
    heartbeat: HeartbeatSettings,
    out: TextIO,
    artifacts: Path,
) -> LocalRun:
    """Start ``workers`` worker processes, print progress until all exit, return their codes."""
    log_dir.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, STORAGE_ENV: url}
    processes: list[subprocess.Popen[bytes]] = []
    log_paths = []
    for index in range(workers):
        worker_id = f"{os.uname().nodename}-{os.getpid()}-{index}"
        log_path = log_dir / f"{campaign.name}-worker-{index}.log"
        log_paths.append(log_path)
        with log_path.open("ab") as log:
            processes.append(
                subprocess.Popen(
                    worker_command(campaign.name, worker_id, heartbeat, 1, artifacts),
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    env=env,
                )
            )
    interrupted = _watch(lambda: load_campaign(campaign.name, campaign.storage), processes, out)
    return LocalRun(tuple(p.wait() for p in processes), tuple(log_paths), interrupted)


def _watch(
    load: Callable[[], Campaign], processes: list[subprocess.Popen[bytes]], out: TextIO
) -> bool:
    """Show progress until every process exits; on Ctrl-C ask the workers to stop cleanly."""
    started = time.monotonic()
    interrupted = False
    rate: StepRate | None = None
    with LiveLine(out) as line:
        while True:
            try:
                alive = any(p.poll() is None for p in processes)
                campaign = load()
                state, rate = live_state(campaign, time.monotonic(), started, rate)
                line.show(live_parts(state), _change_key(campaign, state))
                if not alive:
                    break
                time.sleep(1.0)
            except KeyboardInterrupt:
                interrupted = True
                line.print("stopping workers (their running trials will be retried)…")
                for process in processes:
                    if process.poll() is None:
                        process.send_signal(signal.SIGTERM)
    return interrupted


def _change_key(campaign: Campaign, state: LiveState) -> tuple[object, ...]:
    """What a log line is printed for a change of: the study and its finished trials."""
    p = state.progress
    return campaign.current.name, p.complete, p.pruned, p.failed
