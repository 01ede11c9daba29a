"""What automatic mode's max_train_steps sweep costs on a task without a fit threshold.

Most user tasks have no ``fit_threshold`` (the loss a noisy problem levels off at is not
known in advance), so the sweep's rates run until their training loss stops improving
(docs/method.md §3). This runs the sweep (and its widenings) of automatic mode on the
built-in tasks with their threshold removed, and on the El Niño example, which has none,
and reports the steps it trained against a full-length sweep's (every rate
``steps_sweep.steps``) and the max_train_steps it measured. One process, one thread: the
figures are steps, not seconds.

    .venv/bin/python benchmarks/sweep_cost.py [--quick] [--tasks digits-mlp ...]

Output: a line per task and rate, then ``RESULT sweep_steps_<task>=...``,
``sweep_full_length_steps_<task>=...`` and ``sweep_max_train_steps_<task>=...``.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
import shutil
import sys
import tempfile
import threading
import time
import types

import torch
import tuning_efficiency as te

from autotune import load_study_spec
from autotune.campaign import Stage
from autotune.campaign import advance
from autotune.campaign import create_campaign
from autotune.campaign import load_campaign
from autotune.storage import embedded_url
from autotune.storage import open_storage
from autotune.training import get_task
from autotune.training._task import TASK_MEMBERS
from autotune.worker._defaults import task_defaults
from autotune.worker._objectives import RoundSetting
from autotune.worker._objectives import make_objective

TASKS = {  # task -> its built-in search space (the El Niño example has its own, "user")
    "digits-mlp": "mlp",
    "co2-lstm": "lstm",
    "cancer-mlp": "tabular",
    "examples.elnino_task:make_task": "user",
}
MODULE = "sweep_cost_tasks"  # where the threshold-free tasks are found by name


@dataclass(frozen=True)
class SweepCost:
    task: str
    steps: int  # trained by every sweep trial, widenings included
    full_length: int  # what every rate trained to steps_sweep.steps would have cost
    max_train_steps: int | None  # None: the sweep stopped the campaign
    reason: str


def without_threshold(task: str) -> str:
    """The name of ``task`` with every member but ``fit_threshold`` (registered here)."""
    module = sys.modules.setdefault(MODULE, types.ModuleType(MODULE))
    attribute = "make_" + "".join(c if c.isalnum() else "_" for c in task)

    def make() -> types.SimpleNamespace:
        full = get_task(task)
        return types.SimpleNamespace(**{name: getattr(full, name) for name in TASK_MEMBERS})

    setattr(module, attribute, make)
    return f"{MODULE}:{attribute}"


def sweep_cost(task: str, space: str, name: str, state: Path, url: str) -> SweepCost:
    """Run the campaign ``name``'s sweep studies in this process until max_train_steps is
    measured."""
    path = state / f"{name}.yaml"
    path.write_text(f"name: {name}\ntask: {without_threshold(task)}\nsearch_space: {space}\n")
    spec = load_study_spec(path)
    campaign, _ = create_campaign(spec, open_storage(url), task_defaults(spec))
    while campaign.current.stage is Stage.STEPS_SWEEP and campaign.stopped is None:
        study = campaign.current
        setting = RoundSetting(study.stage, study.max_train_steps)
        objective = make_objective(spec, threading.Event(), setting)
        campaign.optuna_study(study).optimize(objective, n_trials=study.plan.trials)
        advance(spec.name, open_storage(url))
        campaign = load_campaign(spec.name, open_storage(url))
    sweeps = campaign.stage_studies(Stage.STEPS_SWEEP)
    trials = [t for s in sweeps for t in campaign.trials_of(s)]
    for trial in sorted(trials, key=lambda t: t.params["learning_rate"]):
        attrs = trial.user_attrs
        print(
            f"  {task}: rate {trial.params['learning_rate']:.4g}: fitted at "
            f"{attrs.get('steps_to_fit')}, trained {attrs.get('steps_trained')}, lowest "
            f"loss {attrs.get('sweep_lowest_loss', float('nan')):.4g}"
        )
    result = next((s.facts.sweep for s in reversed(sweeps) if s.facts.sweep), None)
    steps = sum(int(t.user_attrs.get("steps_trained") or 0) for t in trials)
    full = len(trials) * int(spec.steps_sweep.steps or 0)
    if result is None:
        return SweepCost(task, steps, full, None, campaign.stopped or "no decision")
    return SweepCost(task, steps, full, result.max_train_steps, result.reason)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="cancer-mlp only (a minute)")
    parser.add_argument("--tasks", nargs="+", choices=sorted(TASKS), default=sorted(TASKS))
    args = parser.parse_args(argv)
    te._quiet()
    torch.set_num_threads(1)
    tasks = ["cancer-mlp"] if args.quick else args.tasks
    state = Path(tempfile.mkdtemp(prefix="autotune-sweep-cost-"))
    storage = open_storage(embedded_url(state), state_dir=state)
    started = time.perf_counter()
    costs = []
    try:
        for index, task in enumerate(tasks):
            cost = sweep_cost(task, TASKS[task], f"sweep-{index}", state, embedded_url(state))
            te.log(f"{task}: {cost.steps:,} of {cost.full_length:,} steps; {cost.reason}", started)
            costs.append(cost)
    finally:
        te.stop_embedded(state, storage)
        shutil.rmtree(state, ignore_errors=True)
    for cost in costs:
        label = cost.task.split(":")[0].split(".")[-1]
        print(f"RESULT sweep_steps_{label}={cost.steps}")
        print(f"RESULT sweep_full_length_steps_{label}={cost.full_length}")
        print(f"RESULT sweep_max_train_steps_{label}={cost.max_train_steps}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
