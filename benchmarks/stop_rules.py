"""Which rule for a recipe's stop step holds up on held-out data? (issue 14, METHOD §11)

A finalist's recipe stops at one step, chosen on its re-evaluation runs' curves. This
benchmark compares stop rules on the same configurations, paired, without the noise of
whole campaigns: for every configuration that a held-out run of record handed a user
(``benchmarks/results/heldout_*.json``: autotune's and the peers' answers), it trains the
configuration to the end on the re-evaluation's periods (as the campaign does: the task's
seeded periods) and on the held-out periods (as ``heldout.py`` does), recording every
evaluation. A run stopped at step s is the full run's model at s (same seed, the schedule
spans max_train_steps), so one full run per period gives the held-out value of every stop.
Each rule picks a stop from the re-evaluation curves; its score is the held-out mean there.

    .venv/bin/python benchmarks/stop_rules.py --periods 2 3 4   # every task: 8 min here
    .venv/bin/python benchmarks/stop_rules.py --quick           # cancer-mlp, 4 configurations

Output: ``benchmarks/results/stop_rules.json`` (every curve) and RESULT lines
``stop_rule_ratio_<rule>_<task>_<R>p`` (held-out loss at the rule's stop / at the current
rule's, mean over configurations; below 1: better than the current rule),
``stop_rule_oracle_gap_<task>_<R>p`` (the current rule's held-out loss / the held-out
curve's own best, median: what a perfect choice of stop could still gain), and
``selection_ratio_<rule>_<task>_<R>p``: the same configurations drawn as random sets of 3
finalists, the held-out loss of the finalist each rule for choosing among them picks / the
current rule's (the best mean over periods at each finalist's stop); and
``design_ratio_<design>_<task>``: the re-evaluation's design (how many finalists, how many
periods, whether the finalists' own tuning runs count as one more period) over random
campaigns drawn from the same curves, the answer's held-out loss / the current design's
(see `designs`). ``--from-json`` recomputes every figure from stored curves in seconds.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from collections.abc import Mapping
from collections.abc import Sequence
import concurrent.futures
from dataclasses import dataclass
import json
import math
from pathlib import Path
import sys
import time
from typing import Any

from heldout import heldout_periods
import numpy as np
from tqdm import tqdm
import tuning_efficiency as te

from autotune import training
from autotune.analysis import shared_best_step
from autotune.spec import Direction
from autotune.spec import load_study_spec

RESULTS = te.REPO / "benchmarks" / "results"
SOURCES = (
    "heldout_5seeds_rounds.json",
    "heldout_5seeds_rounds_peers_reused.json",
    "heldout_5seeds_third_run.json",
    "heldout_5seeds_smoothed_stop_tried.json",
    "heldout_5seeds_goog-volatility.json",
)
TASK_SPECS = {
    "digits-mlp": "studies/quickstart.yaml",
    "co2-lstm": "studies/co2_lstm.yaml",
    "cancer-mlp": "studies/cancer.yaml",
    "goog-volatility": "studies/volatility.yaml",
}
PERIOD_SEED = 1000  # as heldout.py pins the re-evaluation's periods
Curve = dict[int, float]
Rule = Callable[[Sequence[Curve], int], int]


@dataclass(frozen=True)
class Job:
    task: str
    index: int
    hparams: Mapping[str, Any]
    periods: int


def configurations(task: str) -> list[dict[str, Any]]:
    """Every distinct answer of ``task`` in the held-out runs of record."""
    seen: dict[str, dict[str, Any]] = {}
    for name in SOURCES:
        path = RESULTS / name
        if not path.exists():
            continue
        runs = json.loads(path.read_text())["tasks"].get(task, {}).get("runs", {})
        for method_runs in runs.values():
            for run in method_runs:
                hparams = run["answer"]["hparams"]
                seen.setdefault(json.dumps(hparams, sort_keys=True), hparams)
    return list(seen.values())


def _curve_of(hparams, task, spec, period, seed: int) -> Curve:
    budget = training.Budget(
        max_train_steps=spec.max_train_steps,
        eval_interval=spec.eval_interval,
        batch_size=spec.batch_size,
        seed=seed,
        gradient_accumulation_steps=spec.gradient_accumulation_steps,
    )
    curve: Curve = {}
    metric = spec.metric.name

    def on_eval(evaluation: training.EvalResult) -> None:
        value = float(evaluation.metrics[metric])
        curve[evaluation.step] = float(f"{value:.6g}") if math.isfinite(value) else math.inf

    try:
        training.train(dict(hparams), task, budget, on_eval, metric, period=period)
    except training.NonFiniteLossError:
        pass
    return curve


def curves(job: Job) -> dict[str, Any]:
    """The configuration's curves on the re-evaluation's and the held-out periods."""
    te._quiet()
    spec = load_study_spec(te.REPO / TASK_SPECS[job.task])
    task = training.get_task(spec.task)
    hparams = {**job.hparams, "early_stopping_patience": 0}
    seed = te.TRIAL_SEED_STRIDE * (job.index + 1)
    reevaluation = [
        _curve_of(hparams, task, spec, period, seed + k)
        for k, period in enumerate(task.periods(job.periods, PERIOD_SEED))
    ]
    heldout = [
        _curve_of(hparams, task, spec, period, te.HELDOUT_SEED + seed + k)
        for k, period in enumerate(heldout_periods(task))
    ]
    return {
        "task": job.task,
        "index": job.index,
        "hparams": dict(job.hparams),
        "reevaluation": reevaluation,
        "heldout": heldout,
    }


# --- rules ---------------------------------------------------------------------------------


def _shared(runs: Sequence[Curve]) -> list[int]:
    return sorted(set.intersection(*(set(c) for c in runs)))


def argmin_mean(runs: Sequence[Curve], _end: int) -> int:
    """The current rule: where the mean over periods is lowest."""
    return shared_best_step(runs, Direction.MINIMIZE) or _end


def end(_runs: Sequence[Curve], end_step: int) -> int:
    return end_step


def within_paired_se(later: bool) -> Rule:
    """The latest (or earliest) step not distinguishable from the best: its paired
    difference to the best step's curve is within one standard error."""

    def rule(runs: Sequence[Curve], end_step: int) -> int:
        best = argmin_mean(runs, end_step)
        steps = _shared(runs)
        if len(runs) < 2:
            return best
        fits = []
        for step in steps:
            diffs = np.array([c[step] - c[best] for c in runs])
            if not np.all(np.isfinite(diffs)):
                continue
            se = diffs.std(ddof=1) / math.sqrt(len(diffs))
            if diffs.mean() <= se:
                fits.append(step)
        return (max if later else min)(fits) if fits else best

    return rule


def median_of_argmins(runs: Sequence[Curve], end_step: int) -> int:
    """Each period's own best step, the median of them (on the grid)."""
    steps = _shared(runs)
    bests = [min(steps, key=lambda s, c=c: c[s]) for c in runs]
    target = float(np.median(bests))
    return min(steps, key=lambda s: (abs(s - target), s))


RULES: dict[str, Rule] = {
    "argmin_mean": argmin_mean,
    "latest_within_1se": within_paired_se(later=True),
    "earliest_within_1se": within_paired_se(later=False),
    "median_of_argmins": median_of_argmins,
    "end": end,
}


def _curves(raw: Sequence[Mapping[Any, float]]) -> list[Curve]:
    return [{int(step): float(value) for step, value in curve.items()} for curve in raw]


def heldout_at(heldout: Sequence[Curve], step: int) -> float:
    return float(np.mean([curve.get(step, math.inf) for curve in heldout]))


def _summary(ratios: Sequence[float], stops: Sequence[int]) -> dict[str, Any]:
    finite = [r for r in ratios if math.isfinite(r)]
    rng = np.random.default_rng(0)
    boots = [float(np.mean(rng.choice(finite, len(finite)))) for _ in range(2000)]
    return {
        "mean_ratio": float(np.mean(finite)),
        "interval": [float(np.quantile(boots, 0.025)), float(np.quantile(boots, 0.975))],
        "better": int(sum(r < 1 - 1e-9 for r in finite)),
        "worse": int(sum(r > 1 + 1e-9 for r in finite)),
        "median_stop": float(np.median(stops)),
    }


def evaluate(records: Sequence[Mapping[str, Any]], periods: int) -> dict[str, dict[str, Any]]:
    """Per rule: held-out at its stop / at the current rule's, over configurations (the
    first ``periods`` re-evaluation curves of each); and the current rule's oracle gap."""
    ratios: dict[str, list[float]] = {name: [] for name in RULES}
    stops: dict[str, list[int]] = {name: [] for name in RULES}
    gaps = []
    for record in records:
        runs, heldout = _curves(record["reevaluation"])[:periods], _curves(record["heldout"])
        end_step = max(_shared(runs))
        base = heldout_at(heldout, argmin_mean(runs, end_step))
        gaps.append(base / min(heldout_at(heldout, s) for s in _shared(heldout)))
        for name, rule in RULES.items():
            step = rule(runs, end_step)
            ratios[name].append(heldout_at(heldout, step) / base)
            stops[name].append(step)
    out = {name: _summary(ratios[name], stops[name]) for name in RULES}
    out["oracle_gap_median"] = float(np.median(gaps))
    return out


# --- choosing among finalists --------------------------------------------------------------

FINALISTS = 3  # as the benchmark's campaigns re-evaluate
DRAWS = 3000  # random finalist sets per task


def _leave_one_period_out(runs: Sequence[Curve]) -> float:
    """Each period's value at the stop the other periods choose: no period picks its own."""
    values = []
    for held in range(len(runs)):
        others = [curve for index, curve in enumerate(runs) if index != held]
        values.append(runs[held][argmin_mean(others, max(_shared(others)))])
    return float(np.mean(values))


def _mean_at_stop(runs: Sequence[Curve]) -> tuple[float, int]:
    """The mean over ``runs`` at their best-mean step, and that step (the campaign's rule)."""
    stop = argmin_mean(runs, max(_shared(runs)))
    return float(np.mean([curve[stop] for curve in runs])), stop


def _selection_scores(runs: Sequence[Curve]) -> dict[str, float]:
    """What each finalist-choosing rule ranks a configuration by (lower is better)."""
    steps = _shared(runs)
    late = steps[-max(1, len(steps) // 3) :]
    mean, stop = _mean_at_stop(runs)
    return {
        "mean_at_stop": mean,
        "leave_one_period_out": _leave_one_period_out(runs) if len(runs) > 1 else math.inf,
        "median_at_stop": float(np.median([curve[stop] for curve in runs])),
        "mean_of_last_third": float(np.mean([[curve[s] for s in late] for curve in runs])),
    }


def selection(records: Sequence[Mapping[str, Any]], periods: int) -> dict[str, float]:
    """Per rule: the held-out loss of the finalist it chooses (stopped where the current
    rule stops it) over random sets of ``FINALISTS`` configurations, / the current rule's;
    with the best of each set (oracle) and a random member for scale."""
    scored = []
    for record in records:
        runs, heldout = _curves(record["reevaluation"])[:periods], _curves(record["heldout"])
        stop = argmin_mean(runs, max(_shared(runs)))
        scored.append((_selection_scores(runs), heldout_at(heldout, stop)))
    rng = np.random.default_rng(0)
    chosen: dict[str, list[float]] = {name: [] for name in scored[0][0]}
    oracle = []
    for _ in range(DRAWS):
        members = rng.choice(len(scored), min(FINALISTS, len(scored)), replace=False)
        for name in chosen:
            pick = min(members, key=lambda i, n=name: scored[i][0][n])
            chosen[name].append(scored[pick][1])
        oracle.append(min(scored[i][1] for i in members))
    base = float(np.mean(chosen["mean_at_stop"]))
    out = {name: float(np.mean(values)) / base for name, values in chosen.items()}
    out["oracle"] = float(np.mean(oracle)) / base
    out["random_member"] = float(np.mean([held for _, held in scored])) / base
    return out


# --- the re-evaluation's design: which finalists, how many periods -----------------------

ROUND_TWO, SHORTLISTED_FROM = 12, 24  # a promoted round, the best of a wider round 1
DESIGN_PERIODS = 3  # re-evaluation periods; the stored first period stands for tuning's


def _pick(curves: Sequence[Sequence[Curve]], members: Sequence[int]) -> tuple[int, int]:
    """The member with the best mean over its curves at its own best-mean step, and that
    step (the campaign's rule)."""
    return _pick_scored([_mean_at_stop(runs) for runs in curves], members)


def _pick_scored(scored: Sequence[tuple[float, int]], members: Sequence[int]) -> tuple[int, int]:
    """``_pick`` on each configuration's (mean at its stop, stop), computed once."""
    member = min(members, key=lambda i: scored[i][0])
    return member, scored[member][1]


def designs(records: Sequence[Mapping[str, Any]]) -> dict[str, float]:
    """Per re-evaluation design: the held-out loss of the answer it picks / the current
    design's, over random campaigns drawn from ``records``.

    A drawn campaign: ``SHORTLISTED_FROM`` configurations, the ``ROUND_TWO`` best on the
    first stored period promoted (round 1's selection on the tuning period), that period's
    curve as each one's tuning run; finalists are the best tuning runs (as `finalists_of`
    ranks them), re-evaluated on the next ``DESIGN_PERIODS`` periods.
    """
    tuning = [_curves(r["reevaluation"])[0] for r in records]
    later = [_curves(r["reevaluation"])[1 : 1 + DESIGN_PERIODS] for r in records]
    heldout = [_curves(r["heldout"]) for r in records]
    scored = {  # per design, each configuration's mean at its stop, and the stop
        name: [
            _mean_at_stop([tuning[i]] * with_tuning + later[i][:periods])
            for i in range(len(records))
        ]
        for name, (_, periods, with_tuning) in DESIGNS.items()
    }
    rng = np.random.default_rng(0)
    picks: dict[str, list[float]] = {name: [] for name in DESIGNS}
    for _ in range(DRAWS):
        shortlist = rng.choice(len(records), min(SHORTLISTED_FROM, len(records)), replace=False)
        promoted = sorted(shortlist, key=lambda i: min(tuning[i].values()))[:ROUND_TWO]
        for name, (finalists, _, _) in DESIGNS.items():
            member, stop = _pick_scored(scored[name], promoted[:finalists])
            picks[name].append(heldout_at(heldout[member], stop))
    base = float(np.mean(picks["current"]))
    return {name: float(np.mean(values)) / base for name, values in picks.items()}


# name: (finalists, re-evaluation periods, the tuning run counted as one more period)
DESIGNS: dict[str, tuple[int, int, bool]] = {
    "current": (3, DESIGN_PERIODS, False),
    "tuning_run_as_a_period": (3, DESIGN_PERIODS, True),
    "tuning_run_and_one_period_less": (3, DESIGN_PERIODS - 1, True),
    "four_finalists_one_period_less": (4, DESIGN_PERIODS - 1, False),
    "six_finalists": (6, DESIGN_PERIODS, False),
    "every_promoted": (ROUND_TWO, DESIGN_PERIODS, False),
}


# --- early-stopped tuning runs as a period -------------------------------------------------

MAX_PATIENCE = 8  # early_stopping_patience's range in the built-in spaces: 0 (off) to 8


def early_stopped(curve: Curve, patience: int) -> Curve:
    """``curve`` as early stopping with ``patience`` evaluations would have ended it."""
    if patience <= 0:
        return curve
    best, since, kept = math.inf, 0, {}
    for step in sorted(curve):
        kept[step] = curve[step]
        best, since = (curve[step], 0) if curve[step] < best else (best, since + 1)
        if since >= patience:
            break
    return kept


def _mean_stop(runs: Sequence[Curve], steps: Sequence[int]) -> tuple[float, int]:
    """The best mean over the runs that evaluated each of ``steps``, and its step."""

    def mean_at(step: int) -> float:
        return float(np.mean([curve[step] for curve in runs if step in curve]))

    stop = min(sorted(steps), key=mean_at)
    return mean_at(stop), stop


def early_stopping_designs(records: Sequence[Mapping[str, Any]]) -> dict[str, float]:
    """A finalist's tuning run ends where its early stopping did (patience drawn 0-8 per
    configuration), while its re-evaluation runs train the whole schedule; the stop is
    chosen on steps every run has, so the tuning run caps it. Per rule for counting such a
    run, the answer's held-out loss / the current rule's, over campaigns drawn as `designs`.
    """
    full = [_curves(r["reevaluation"])[0] for r in records]
    later = [_curves(r["reevaluation"])[1 : 1 + DESIGN_PERIODS] for r in records]
    heldout = [_curves(r["heldout"]) for r in records]
    rng = np.random.default_rng(0)
    rules: dict[str, Callable[[Curve, int], tuple[float, int]]] = {
        "current": lambda own, i: _mean_stop([own, *later[i]], _shared([own, *later[i]])),
        "tuning_run_where_it_ran": lambda own, i: _mean_stop([own, *later[i]], _shared(later[i])),
        "no_tuning_run": lambda own, i: _mean_stop(later[i], _shared(later[i])),
        "never_early_stopped": lambda own, i: _mean_stop(
            [full[i], *later[i]], _shared([full[i], *later[i]])
        ),
    }
    picks: dict[str, list[float]] = {name: [] for name in rules}
    for _ in range(DRAWS):
        patience = rng.integers(0, MAX_PATIENCE + 1, size=len(records))
        tuning = [early_stopped(c, int(p)) for c, p in zip(full, patience, strict=True)]
        shortlist = rng.choice(len(records), min(SHORTLISTED_FROM, len(records)), replace=False)
        finalists = sorted(shortlist, key=lambda i: min(tuning[i].values()))[:FINALISTS]
        for name, rule in rules.items():
            scored = {i: rule(tuning[i], i) for i in finalists}
            best = min(finalists, key=lambda i: scored[i][0])
            picks[name].append(heldout_at(heldout[best], scored[best][1]))
    base = float(np.mean(picks["current"]))
    return {name: float(np.mean(values)) / base for name, values in picks.items()}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="cancer-mlp, 4 configurations")
    parser.add_argument("--tasks", nargs="+", default=list(TASK_SPECS))
    parser.add_argument("--periods", nargs="+", type=int, default=[4])
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--limit", type=int, default=0, help="configurations per task (0: all)")
    parser.add_argument("--from-json", type=Path, help="reuse the curves of an earlier run")
    parser.add_argument("--out", type=Path, default=RESULTS / "stop_rules.json")
    args = parser.parse_args(argv)
    if args.quick:
        args.tasks, args.limit, args.periods = ["cancer-mlp"], 4, [2]
        if args.out == RESULTS / "stop_rules.json":
            args.out = RESULTS / "stop_rules_quick.json"
    started = time.time()
    if args.from_json:
        records = json.loads(args.from_json.read_text())["records"]
    else:
        jobs = []
        for task in args.tasks:
            configs = configurations(task)
            configs = configs[: args.limit] if args.limit else configs
            jobs += [Job(task, i, c, max(args.periods)) for i, c in enumerate(configs)]
        with concurrent.futures.ProcessPoolExecutor(args.jobs) as pool:
            records = list(
                tqdm(pool.map(curves, jobs), total=len(jobs), desc="curves", dynamic_ncols=True)
            )
    summary = {}
    for task in args.tasks:
        mine = [r for r in records if r["task"] == task]
        for periods in args.periods:
            summary[f"{task}_{periods}p"] = evaluate(mine, periods)
            print_summary(task, periods, len(mine), summary[f"{task}_{periods}p"])
            chosen = selection(mine, periods)
            summary[f"{task}_{periods}p"]["selection"] = chosen
            print(
                f"{task:11s} {periods}p choosing {FINALISTS} finalists: "
                + " ".join(f"{name} {ratio:.4f}" for name, ratio in chosen.items())
            )
            for name, ratio in chosen.items():
                print(f"RESULT selection_ratio_{name}_{task}_{periods}p={ratio:.4f}")
        if all(len(r["reevaluation"]) > DESIGN_PERIODS for r in mine):
            summary[f"{task}_designs"] = designed = designs(mine)
            print(
                f"{task:11s} re-evaluation designs: "
                + " ".join(f"{name} {ratio:.4f}" for name, ratio in designed.items())
            )
            for name, ratio in designed.items():
                print(f"RESULT design_ratio_{name}_{task}={ratio:.4f}")
            summary[f"{task}_early_stopping"] = stopped = early_stopping_designs(mine)
            for name, ratio in stopped.items():
                print(f"RESULT early_stopped_tuning_run_ratio_{name}_{task}={ratio:.4f}")
    command = " ".join(["benchmarks/stop_rules.py", *sys.argv[1:]])
    wall_s = time.time() - started
    args.out.write_text(
        json.dumps({"command": command, "wall_s": wall_s, "summary": summary, "records": records})
    )
    return 0


def print_summary(task: str, periods: int, count: int, figures: Mapping[str, Any]) -> None:
    for rule in RULES:
        rule_figures = figures[rule]
        lo, hi = rule_figures["interval"]
        print(
            f"{task:11s} {periods}p {rule:20s} ratio {rule_figures['mean_ratio']:.4f} "
            f"[{lo:.4f}, {hi:.4f}] better {rule_figures['better']:2d} worse "
            f"{rule_figures['worse']:2d} median stop {rule_figures['median_stop']:.0f} (n={count})"
        )
        print(f"RESULT stop_rule_ratio_{rule}_{task}_{periods}p={rule_figures['mean_ratio']:.4f}")
    print(f"RESULT stop_rule_oracle_gap_{task}_{periods}p={figures['oracle_gap_median']:.4f}")


if __name__ == "__main__":
    raise SystemExit(main())
