"""Training throughput: autotune's training loop vs a minimal hand-written torch loop.

Both loops train the same task model (the task's default hyperparameters: AdamW at a
constant learning rate), on the same data, at the same batch size, for the same number of
steps, on one CPU thread, in back-to-back pairs whose order alternates (library first, then
hand-written first, ...). The library's single evaluation (eval_interval = max_train_steps)
is timed and subtracted, so both timings cover model and optimizer construction plus the
training steps. A pair's ratio is hand-written seconds / library seconds, i.e. the library's
examples/s as a fraction of the hand-written loop's; a config's figure is the median over its
pairs, by wall-clock (RESULT: the worst config) and, as checks, by thread CPU time, by the
fastest run of each loop (best_of_ratio), and by the loop's own steps-only examples/s
(TrainResult.examples_per_s against the hand-written loop's steps).

Usage: .venv/bin/python benchmarks/training_throughput.py [--quick]
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass
import os
import platform
import statistics
import time
from typing import Any

import torch

from autotune.training._budget import Budget
from autotune.training._loop import train
from autotune.training._registry import available_tasks
from autotune.training._registry import get_task
from autotune.training._task import Task


@dataclass(frozen=True)
class Config:
    """One benchmarked case: a built-in task with its default hyperparameters."""

    task: str
    batch_size: int
    steps: int  # per run in the full benchmark; --quick runs a fifth


@dataclass(frozen=True)
class Clock:
    """Wall-clock and thread CPU seconds."""

    wall: float
    cpu: float

    @classmethod
    def now(cls) -> Clock:
        return cls(time.perf_counter(), time.thread_time())

    def __sub__(self, other: Clock) -> Clock:
        return Clock(self.wall - other.wall, self.cpu - other.cpu)


@dataclass(frozen=True)
class Pair:
    """One library run and one hand-written run of a config, back to back."""

    library: Clock  # train() minus its evaluation
    library_reported: float  # TrainResult.examples_per_s (the loop's own steps-only timing)
    handwritten: Clock  # model + optimizer construction + steps
    handwritten_steps: Clock  # steps only


CONFIGS = (
    Config("digits-mlp", 64, 1000),
    Config("digits-mlp", 256, 400),
    Config("digits-cnn", 64, 150),
)
SEED = 0


class _EvalTimedTask:
    """Delegates to `task`, adding up the time spent in evaluate()."""

    def __init__(self, task: Task) -> None:
        self._task = task
        self.eval_time = Clock(0.0, 0.0)

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._task, name)
        setattr(self, name, value)  # later look-ups (task.loss every step) skip __getattr__
        return value

    def evaluate(self, model: torch.nn.Module, data: Any) -> dict[str, float]:
        started = Clock.now()
        try:
            return self._task.evaluate(model, data)
        finally:
            spent = Clock.now() - started
            self.eval_time = Clock(
                self.eval_time.wall + spent.wall, self.eval_time.cpu + spent.cpu
            )


def library_run(
    task: Task, hparams: Mapping[str, Any], batch_size: int, steps: int
) -> tuple[Clock, float]:
    """(time of train() minus its evaluation, TrainResult.examples_per_s)."""
    timed: Any = _EvalTimedTask(task)
    budget = Budget(max_train_steps=steps, eval_interval=steps, batch_size=batch_size, seed=SEED)
    started = Clock.now()
    result = train(hparams, timed, budget, lambda _: None)
    return Clock.now() - started - timed.eval_time, result.examples_per_s


def handwritten_run(
    task: Task, hparams: Mapping[str, Any], batch_size: int, steps: int
) -> tuple[Clock, Clock]:
    """(time of construction + steps, time of the steps) of a plain torch loop."""
    data = task.data()
    x, y, n_rows = data.train_x, data.train_y, len(data.train_y)
    model_hparams = {k: v for k, v in hparams.items() if k in task.model_hyperparameters}
    started = Clock.now()
    model = task.build_model(model_hparams, torch.Generator().manual_seed(SEED))
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=hparams["learning_rate"], weight_decay=0)
    generator = torch.Generator().manual_seed(SEED)
    order, position = torch.randperm(n_rows, generator=generator), 0
    steps_started = Clock.now()
    for _ in range(steps):
        if position + batch_size > n_rows:
            order, position = torch.randperm(n_rows, generator=generator), 0
        rows = order[position : position + batch_size]
        position += batch_size
        optimizer.zero_grad(set_to_none=True)
        task.loss(model(x[rows]), y[rows]).backward()
        optimizer.step()
    finished = Clock.now()
    return finished - started, finished - steps_started


def check_fair(task: Task, hparams: Mapping[str, Any], batch_size: int) -> None:
    """The comparison assumes AdamW, constant rate, default betas/eps/decay, no EMA."""
    allowed = task.model_hyperparameters | {"learning_rate", "optimizer"}
    extra = sorted(set(hparams) - allowed)
    if extra or hparams.get("optimizer", "adamw") != "adamw":
        raise SystemExit(f"{task.name}: default hyperparameters not comparable ({extra})")
    if batch_size > len(task.data().train_y):
        raise SystemExit(f"{task.name}: batch size {batch_size} exceeds the training set")


def measure(config: Config, steps: int, repeats: int) -> list[Pair]:
    """Warm both loops up once, then run pairs, alternating which loop goes first."""
    task = get_task(config.task)
    hparams = task.default_hyperparameters()
    check_fair(task, hparams, config.batch_size)
    args = (task, hparams, config.batch_size, steps)
    library_run(*args)
    handwritten_run(*args)
    pairs = []
    for repeat in range(repeats):
        if repeat % 2 == 0:
            library, reported = library_run(*args)
            handwritten, handwritten_steps = handwritten_run(*args)
        else:
            handwritten, handwritten_steps = handwritten_run(*args)
            library, reported = library_run(*args)
        pairs.append(Pair(library, reported, handwritten, handwritten_steps))
    return pairs


def summary(config: Config, steps: int, pairs: Sequence[Pair]) -> tuple[str, float]:
    """One line of medians for a config, and its wall-clock throughput ratio."""
    examples = steps * config.batch_size
    library = statistics.median(examples / p.library.wall for p in pairs)
    handwritten = statistics.median(examples / p.handwritten.wall for p in pairs)
    ratios = [p.handwritten.wall / p.library.wall for p in pairs]
    cpu_ratio = statistics.median(p.handwritten.cpu / p.library.cpu for p in pairs)
    steps_only = statistics.median(
        p.library_reported * p.handwritten_steps.wall / examples for p in pairs
    )
    quartiles = statistics.quantiles(ratios, n=4) if len(ratios) > 1 else ratios * 3
    best = min(p.handwritten.wall for p in pairs) / min(p.library.wall for p in pairs)
    line = (
        f"CONFIG task={config.task} batch_size={config.batch_size} steps={steps} "
        f"pairs={len(pairs)} library_examples_per_s={library:.0f} "
        f"handwritten_examples_per_s={handwritten:.0f} ratio={statistics.median(ratios):.3f} "
        f"ratio_iqr={quartiles[0]:.3f}..{quartiles[2]:.3f} best_of_ratio={best:.3f} "
        f"cpu_time_ratio={cpu_ratio:.3f} steps_only_ratio={steps_only:.3f}"
    )
    return line, statistics.median(ratios)


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3 pairs of a fifth of the steps")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    repeats = 3 if args.quick else 21
    print(
        f"# torch {torch.__version__}, 1 thread of {os.cpu_count()}, CPU {cpu_model()}, "
        f"Python {platform.python_version()}, load average {os.getloadavg()[0]:.2f}"
    )
    ratios = []
    for config in CONFIGS:
        if config.task not in available_tasks():
            print(f"# skipped {config.task}: not a registered task")
            continue
        steps = config.steps // 5 if args.quick else config.steps
        line, ratio = summary(config, steps, measure(config, steps, repeats))
        print(line, flush=True)
        ratios.append(ratio)
    print(f"RESULT throughput_ratio={min(ratios):.3f}")


if __name__ == "__main__":
    main()
