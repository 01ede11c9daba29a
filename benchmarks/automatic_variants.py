"""Variants of automatic mode on more seeds than heldout.py affords (issue "One answer").

``heldout.py --pipeline automatic`` compares automatic mode with its peers on 5-10 seeds, and
two 5-seed runs of the same code differ by up to 15%: too few to rank variants of autotune
itself. This runs only autotune, in automatic mode (the task, its budget of B = 30 full
runs of the example's steps, heldout.py's re-evaluation design), on seeds ``--seeds A B``
(A..B-1), with an optional ``--patch`` YAML merged into the spec (a key of the automatic
defaults among them turns automatic mode off, so a patch spells out the whole pipeline it
compares), and retrains every answer on heldout.py's held-out periods. A seed's score is
the mean over the periods, as in heldout.py, so the figures are comparable with its peers'
medians at the same seeds.

    .venv/bin/python benchmarks/automatic_variants.py cancer-mlp --quick --name smoke
    .venv/bin/python benchmarks/automatic_variants.py cancer-mlp --seeds 0 20 --name current
    .venv/bin/python benchmarks/automatic_variants.py cancer-mlp --seeds 0 20 --name joint \\
        --patch benchmarks/variants/joint.yaml

Output: ``automatic_variant_<name>_<task>.json`` in ``--out`` (every seed's answer and
score) and ``RESULT automatic_variant_<name>_<task>_median=...`` / ``_mean`` lines.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from collections.abc import Sequence
import json
from pathlib import Path
import shutil
import statistics
import sys
import tempfile
import time
from typing import Any

import heldout as ho
import tuning_efficiency as te
import yaml

from autotune import load_study_spec
from autotune.storage import embedded_url
from autotune.storage import open_storage

BUDGET_RUNS = 30  # heldout.py's run of record


def patched_spec(task: str, seed: int, budget: int, patch: Mapping[str, Any], state: Path) -> Path:
    """heldout.py's automatic-mode spec with ``patch`` merged in."""
    path = ho.write_automatic_spec(task, seed, budget, False, state)
    if patch:
        data = {**yaml.safe_load(path.read_text(encoding="utf-8")), **patch}
        path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
        load_study_spec(path)
    return path


def run_variant(task: str, seeds: range, patch: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Every seed's campaign, then every answer retrained on the held-out periods."""
    budget = BUDGET_RUNS * ho.example_steps(task)
    state = Path(tempfile.mkdtemp(prefix="autotune-variant-"))
    storage = open_storage(embedded_url(state), state_dir=state)
    started = time.perf_counter()
    runs: list[tuple[ho.Run, str]] = []  # each with its spec, which the retraining reads
    try:
        for seed in seeds:
            path = patched_spec(task, seed, budget, patch, state)
            run = ho.autotune_run(path, task, seed, budget, state, storage)
            te.log(
                f"{task} seed {seed}: {run.steps:,} / {budget:,} steps, stop "
                f"{run.answer.stop_at_step} of {run.answer.max_train_steps}",
                started,
            )
            runs.append((run, str(path)))
        jobs = [ho.HeldoutJob(task, ho.Method.AUTOTUNE, r.seed, p, r.answer) for r, p in runs]
        held = te.run_parallel(ho.heldout_run, jobs, te.WORKERS)
    finally:
        te.stop_embedded(state, storage)
        shutil.rmtree(state, ignore_errors=True)
    return [
        {**ho.run_record(run, heldout), "heldout_mean": statistics.mean(heldout.final)}
        for (run, _), heldout in zip(runs, held, strict=True)
    ]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("task", choices=sorted(ho.STUDY_FILES))
    parser.add_argument("--quick", action="store_true", help="seed 0 only (a minute or two)")
    parser.add_argument("--seeds", type=int, nargs=2, default=(0, 20), metavar=("FIRST", "END"))
    parser.add_argument("--name", required=True, help="the variant's name in the output")
    parser.add_argument("--patch", type=Path, help="YAML merged into the automatic spec")
    parser.add_argument("--out", type=Path, default=te.REPO / "benchmarks" / "results")
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parser.parse_args(argv)
    patch = yaml.safe_load(args.patch.read_text(encoding="utf-8")) if args.patch else {}
    te._quiet()
    seeds = range(1) if args.quick else range(*args.seeds)
    if not seeds:
        parser.error("--seeds FIRST END needs FIRST < END")
    records = run_variant(args.task, seeds, patch)
    scores = [record["heldout_mean"] for record in records]
    label = f"automatic_variant_{args.name}_{args.task}"
    args.out.mkdir(parents=True, exist_ok=True)
    document = {
        "command": " ".join(["benchmarks/automatic_variants.py", *argv]),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "patch": patch,
        "runs": records,
    }
    (args.out / f"{label}.json").write_text(json.dumps(document, indent=1, default=str))
    print(f"RESULT {label}_median={statistics.median(scores):.5g}")
    print(f"RESULT {label}_mean={statistics.mean(scores):.5g}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
