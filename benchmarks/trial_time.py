"""Where a trial's time goes: quickstart trials split into training, evaluation,
checkpointing, storage calls, the rest of the worker's code, and idle.

Runs round-1 trials of ``studies/quickstart.yaml`` (digits-mlp, 150 steps, an eval every 30,
rung pruning, a recovery checkpoint every 5 evals; the baseline switched off so that every
trial is a tuning trial) through a real :class:`autotune.worker._worker.Worker` on an embedded
PostgreSQL of its own, one worker, one torch thread. Timers wrap the functions of each part
and count exclusive time (a part called inside another counts for itself only), on the
worker's main thread; the heartbeat and janitor threads run beside it and are not counted.

- training: ``_Run.train_until`` (the optimizer steps);
- evaluation: ``_Run.evaluate``;
- checkpointing: writing and pruning local checkpoint files, uploading, removing and
  downloading them through the artifact store;
- storage: every call into the Optuna storage (``WriteBehindStorage``), the rung store and
  PostgreSQL itself (SQLAlchemy ``Connection.execute`` and commits), advisory locks;
- worker code: the rest of ``Worker._next_trial`` / ``_run_trial`` (sampling, the
  objective's bookkeeping, Python around the calls above);
- idle: the worker loop's time outside those (waiting, advancing the campaign).

Usage: .venv/bin/python benchmarks/trial_time.py [--quick]
"""

from __future__ import annotations

import argparse
from collections import Counter
from collections.abc import Callable
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import field
import enum
import functools
import os
from pathlib import Path
import statistics
import sys
import tempfile
import threading
import time
from typing import Any
import warnings

import optuna
import sqlalchemy
import torch
import yaml

REPO = Path(__file__).resolve().parent.parent


class Part(enum.Enum):
    TRAINING = "training"
    EVALUATION = "evaluation"
    CHECKPOINTING = "checkpointing"
    STORAGE = "storage"
    WORKER = "worker code"
    IDLE = "idle"


@dataclass(frozen=True)
class TrialTimes:
    wall_s: float
    parts: dict[Part, float]


@dataclass
class _Frame:
    part: Part
    started: float
    children: float = 0.0


@dataclass
class Clock:
    """Exclusive time per part on one thread; one Counter per trial."""

    thread: int
    trials: list[Counter[Part]] = field(default_factory=list)
    window_started: float = 0.0
    _stack: list[_Frame] = field(default_factory=list)

    def open_window(self) -> None:
        """A trial's window starts where the worker looks for it."""
        self.trials.append(Counter())
        self.window_started = time.perf_counter()

    def close_window(self) -> TrialTimes:
        """The current window's parts; idle is what they do not cover."""
        wall = time.perf_counter() - self.window_started
        spent = {part: self.trials[-1].get(part, 0.0) for part in Part if part is not Part.IDLE}
        return TrialTimes(wall, spent | {Part.IDLE: max(wall - sum(spent.values()), 0.0)})

    def wrap(self, part: Part, function: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(function)
        def timed(*args: Any, **kwargs: Any) -> Any:
            if threading.get_ident() != self.thread or not self.trials:
                return function(*args, **kwargs)
            self._stack.append(_Frame(part, time.perf_counter()))
            try:
                return function(*args, **kwargs)
            finally:
                frame = self._stack.pop()
                elapsed = time.perf_counter() - frame.started
                self.trials[-1][frame.part] += elapsed - frame.children
                if self._stack:
                    self._stack[-1].children += elapsed

        return timed

    def patch(self, owner: Any, name: str, part: Part) -> None:
        setattr(owner, name, self.wrap(part, getattr(owner, name)))


def instrument(clock: Clock) -> None:
    """Wrap the functions of every part (see the module docstring)."""
    from autotune import storage
    from autotune.training import _loop
    from autotune.worker import _worker as worker

    clock.patch(_loop._Run, "train_until", Part.TRAINING)
    clock.patch(_loop._Run, "evaluate", Part.EVALUATION)
    for name in ("save_checkpoint", "prune_checkpoints"):
        clock.patch(_loop, name, Part.CHECKPOINTING)
    for name in ("upload", "save_recovery", "remove", "download"):
        clock.patch(storage.CheckpointStore, name, Part.CHECKPOINTING)
    storage_methods = [
        name
        for name, value in vars(optuna.storages.RDBStorage).items()
        if callable(value) and not name.startswith("__")
    ]
    for name in storage_methods + ["flush", "flush_all"]:
        clock.patch(storage.WriteBehindStorage, name, Part.STORAGE)
    for name in ("record", "recorded"):
        clock.patch(storage.TrialRungs, name, Part.STORAGE)
    for name in ("execute", "commit", "exec_driver_sql"):
        clock.patch(sqlalchemy.engine.Connection, name, Part.STORAGE)
    clock.patch(sqlalchemy.orm.Session, "commit", Part.STORAGE)
    clock.patch(worker.Worker, "_next_trial", Part.WORKER)
    clock.patch(worker.Worker, "_run_trial", Part.WORKER)


def quickstart_spec(directory: Path, trials: int) -> Path:
    """The quickstart spec, one round of ``trials`` tuning trials, no baseline."""
    spec = yaml.safe_load((REPO / "studies" / "quickstart.yaml").read_text())
    spec.update(
        name="trial-time",
        trials=trials,
        rounds=[spec["rounds"][0]],
        baseline=False,
        reevaluation={"enabled": False},
        search_space=str(REPO / "search_spaces" / f"{spec['search_space']}.yaml"),
    )
    path = directory / "trial-time.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def run_trials(trials: int, directory: Path) -> list[TrialTimes]:
    from autotune.campaign import create_campaign
    from autotune.spec import load_study_spec
    from autotune.storage import CheckpointStore
    from autotune.storage import embedded_url
    from autotune.storage import open_artifact_store
    from autotune.storage import open_storage
    from autotune.worker._defaults import task_defaults
    from autotune.worker._worker import Worker
    from autotune.worker._worker import WorkerOptions

    url = embedded_url(directory / "state")
    storage = open_storage(url)
    spec = load_study_spec(quickstart_spec(directory, trials))
    campaign, _ = create_campaign(spec, storage, task_defaults(spec))
    checkpoints = CheckpointStore(open_artifact_store(str(directory / "artifacts")))
    clock = Clock(threading.get_ident())
    instrument(clock)
    times: list[TrialTimes] = []

    def next_trial(original: Callable[..., Any]) -> Callable[..., Any]:
        def timed(self: Worker) -> Any:
            if clock.trials:
                times.append(clock.close_window())
            clock.open_window()
            return original(self)

        return timed

    Worker._next_trial = next_trial(Worker._next_trial)  # type: ignore[method-assign]
    options = WorkerOptions(worker_id="trial-time", max_trials=trials + 1, seed=0)
    Worker(campaign, storage, options, checkpoints).run()
    return times[1:]  # the first trial pays for imports and warm-up


def report(times: Sequence[TrialTimes]) -> dict[str, float]:
    total = sum(t.wall_s for t in times)
    median_trial_ms = statistics.median(t.wall_s for t in times) * 1000
    print(f"{len(times)} trials, {total:.2f} s in all, median {median_trial_ms:.0f} ms per trial")
    print(f"{'part':15s} {'share':>7s} {'ms/trial (median)':>18s}")
    shares = {}
    for part in Part:
        spent = sum(t.parts[part] for t in times)
        median_ms = statistics.median(t.parts[part] for t in times) * 1000
        shares[part] = 100 * spent / total
        print(f"{part.value:15s} {shares[part]:6.1f}% {median_ms:18.1f}")
    return {f"share_pct_{part.name.lower()}": share for part, share in shares.items()}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="5 trials instead of 40")
    args = parser.parse_args(argv)
    warnings.simplefilter("ignore")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    torch.set_num_threads(1)
    print(f"nproc={os.cpu_count()} load={os.getloadavg()[0]:.2f} torch={torch.__version__}")
    with tempfile.TemporaryDirectory(prefix="autotune-trial-time-") as scratch:
        times = run_trials(5 if args.quick else 40, Path(scratch))
    for name, value in report(times).items():
        print(f"RESULT {name}={value:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
