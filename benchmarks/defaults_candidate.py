"""Does the task's defaults candidate need a run on the tuning period? (issue 14, METHOD §11)

The re-evaluation re-trains the finalists and the task's defaults on the same periods and
ranks them by their means. The finalists' own tuning runs count as one more period; the
defaults' baseline ran at round 1's length, so they have none unless the re-evaluation
queues one. Periods differ far more than candidates do, so a mean over other periods than
the finalists' ranks by the periods' difficulty. This replays drawn campaigns on stored
curves (`stop_rules.py`'s configurations: the answers of record, each trained on 4
re-evaluation periods and the held-out periods) with the defaults' own curves beside them
(trained here, 3 seeds a task), and compares five designs:

- ``no_defaults``: the finalists alone;
- ``defaults_without_tuning_run``: the defaults' mean over the re-evaluation's periods
  alone, the finalists' over those and their tuning run (before);
- ``defaults_with_tuning_run``: every candidate over the same periods (now);
- ``every_candidate_without_tuning_run``: every candidate over the re-evaluation's periods
  alone (the finalists' tuning runs flatter them, the defaults' does not);
- ``finalist_with_it_then_defaults_without``: the finalist chosen with its tuning run, then
  compared with the defaults without it.

A drawn campaign: 24 configurations, the 12 best on the first stored period promoted (round
1's selection on the tuning period), the best 3 finalists, re-evaluated on the next 2 or 3
periods; the defaults are one of their 3 seeds' curves at random. Its score is the chosen
candidate's held-out loss at its stop.

    .venv/bin/python benchmarks/defaults_candidate.py            # 2 min here
    .venv/bin/python benchmarks/defaults_candidate.py --from-json

Output: ``benchmarks/results/defaults_candidate.json`` (the defaults' curves and the
figures) and RESULT lines ``defaults_design_ratio_<design>_<task>_<P>p`` (mean held-out
loss of the answer / the current design's) and ``defaults_chosen_<design>_<task>_<P>p``
(the share of drawn campaigns whose answer is the defaults).
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from collections.abc import Sequence
import concurrent.futures
import datetime
import json
import platform
import sys
import time
from typing import Any

import numpy as np
import stop_rules as sr

from autotune import training
from autotune.spec import load_study_spec

OUT = sr.RESULTS / "defaults_candidate.json"
STORED = {"goog-volatility": "stop_rules_goog-volatility.json"}  # else stop_rules.json
DEFAULTS_SEEDS = (900, 901, 902)  # job indices: each a seed of the defaults' runs
CURRENT = "defaults_with_tuning_run"
WITH, WITHOUT = "with the tuning run", "without it"
# name: (the finalist chosen by its mean, the defaults' mean, compared with the finalist's)
DESIGNS: dict[str, tuple[str, str | None, str]] = {
    "no_defaults": (WITH, None, WITH),
    "defaults_without_tuning_run": (WITH, WITHOUT, WITH),
    CURRENT: (WITH, WITH, WITH),
    "every_candidate_without_tuning_run": (WITHOUT, WITHOUT, WITHOUT),
    "finalist_with_it_then_defaults_without": (WITH, WITHOUT, WITHOUT),
}


def defaults_of(task: str) -> dict[str, Any]:
    """The baseline's configuration: the task's defaults with the spec's ``fixed``."""
    spec = load_study_spec(sr.te.REPO / sr.TASK_SPECS[task])
    return {**training.get_task(spec.task).default_hyperparameters(), **spec.fixed}


def train_defaults(tasks: Sequence[str]) -> dict[str, list[dict[str, Any]]]:
    jobs = [sr.Job(t, seed, defaults_of(t), 4) for t in tasks for seed in DEFAULTS_SEEDS]
    curves: dict[str, list[dict[str, Any]]] = {}
    with concurrent.futures.ProcessPoolExecutor(2) as pool:
        for job, result in zip(jobs, pool.map(sr.curves, jobs), strict=True):
            curves.setdefault(job.task, []).append(result)
    return curves


def stored_records(task: str) -> list[Mapping[str, Any]]:
    path = sr.RESULTS / STORED.get(task, "stop_rules.json")
    return [r for r in json.loads(path.read_text())["records"] if r["task"] == task]


def replay(
    records: Sequence[Mapping[str, Any]], defaults: Sequence[Mapping[str, Any]], periods: int
) -> dict[str, dict[str, float]]:
    """Per design: the answer's mean held-out loss / the current design's, and the share
    of drawn campaigns whose answer is the defaults."""
    tuning = [sr._curves(r["reevaluation"])[0] for r in records]
    later = [sr._curves(r["reevaluation"])[1 : 1 + periods] for r in records]
    heldout = [sr._curves(r["heldout"]) for r in records]
    runs = [sr._curves(d["reevaluation"]) for d in defaults]
    defaults_heldout = [sr._curves(d["heldout"]) for d in defaults]
    finalist_scores = {  # each configuration's (mean at its stop, stop)
        WITH: [sr._mean_at_stop([tuning[i], *later[i]]) for i in range(len(records))],
        WITHOUT: [sr._mean_at_stop(curves) for curves in later],
    }
    defaults_scores = {
        WITH: [sr._mean_at_stop(c[: 1 + periods]) for c in runs],
        WITHOUT: [sr._mean_at_stop(c[1 : 1 + periods]) for c in runs],
    }
    rng = np.random.default_rng(0)
    losses: dict[str, list[float]] = {name: [] for name in DESIGNS}
    chosen = dict.fromkeys(DESIGNS, 0)
    for _ in range(sr.DRAWS):
        shortlist = rng.choice(len(records), min(sr.SHORTLISTED_FROM, len(records)), False)
        promoted = sorted(shortlist, key=lambda i: min(tuning[i].values()))[: sr.ROUND_TWO]
        seed = int(rng.integers(len(defaults)))
        for name, (ranked_by, defaults_by, compared_by) in DESIGNS.items():
            member, stop = sr._pick_scored(finalist_scores[ranked_by], promoted[: sr.FINALISTS])
            own = None if defaults_by is None else defaults_scores[defaults_by][seed]
            if own is not None and own[0] < finalist_scores[compared_by][member][0]:
                chosen[name] += 1
                losses[name].append(sr.heldout_at(defaults_heldout[seed], own[1]))
            else:
                losses[name].append(sr.heldout_at(heldout[member], stop))
    base = float(np.mean(losses[CURRENT]))
    return {
        name: {
            "ratio": float(np.mean(losses[name])) / base,
            "defaults_chosen": chosen[name] / sr.DRAWS,
        }
        for name in DESIGNS
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--tasks", nargs="+", default=list(sr.TASK_SPECS))
    parser.add_argument("--from-json", action="store_true", help="replay the stored curves")
    args = parser.parse_args(argv)
    started = time.monotonic()
    if args.from_json:
        curves = json.loads(OUT.read_text())["defaults_curves"]
    else:
        curves = train_defaults(args.tasks)
    figures = {
        task: {f"{p}p": replay(stored_records(task), curves[task], p) for p in (2, 3)}
        for task in args.tasks
    }
    for task, by_periods in figures.items():
        for periods, designs in by_periods.items():
            for name, figure in designs.items():
                ratio, chosen = figure["ratio"], figure["defaults_chosen"]
                print(f"RESULT defaults_design_ratio_{name}_{task}_{periods}={ratio:.4f}")
                print(f"RESULT defaults_chosen_{name}_{task}_{periods}={chosen:.3f}")
    if not args.from_json:
        OUT.write_text(
            json.dumps(
                {
                    "command": " ".join(["benchmarks/defaults_candidate.py", *sys.argv[1:]]),
                    "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="minutes"),
                    "machine": f"{platform.machine()}, {platform.processor() or 'cpu'}",
                    "wall_s": round(time.monotonic() - started, 1),
                    "figures": figures,
                    "defaults_curves": curves,
                },
                indent=1,
            )
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
