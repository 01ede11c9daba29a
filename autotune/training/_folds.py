"""Seeded, stratified k-fold splits of iid data, addressed by FOLD periods."""

from __future__ import annotations

import numpy as np

from ._period import Period
from ._period import PeriodKind


def kfold_periods(count: int, seed: int) -> list[Period]:
    """The `count` folds of one seeded `count`-fold split (count >= 2, seed >= 0)."""
    if isinstance(count, bool) or not isinstance(count, int) or count < 2:
        raise ValueError(f"periods count={count!r} is invalid; allowed: an int >= 2 (folds)")
    return [Period.kfold(fold, count, seed) for fold in range(count)]


def repeated_kfold_periods(count: int, seed: int, folds: int) -> list[Period]:
    """`count` folds, each validating on 1/`folds` of the rows: the folds of a seeded
    `folds`-fold split, then of the split seeded `seed + 1`, and so on.

    Unlike `kfold_periods`, every period trains on as many rows as a `folds`-fold default
    period, whatever `count` is: periods that compare recipes must train them on what
    tuning and deployment do (3 periods of a 3-fold split would train on 67%, not 80%).
    Periods of one split have disjoint validation rows.
    """
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise ValueError(f"periods count={count!r} is invalid; allowed: an int >= 1")
    if isinstance(folds, bool) or not isinstance(folds, int) or folds < 2:
        raise ValueError(f"folds={folds!r} is invalid; allowed: an int >= 2")
    return [Period.kfold(index % folds, folds, seed + index // folds) for index in range(count)]


def fold_assignment(strata: np.ndarray, folds: int, seed: int) -> np.ndarray:
    """The fold (0..folds-1) of every row, balanced within each stratum and overall.

    Rows of each stratum are shuffled with `seed`, strata are laid end to end, and
    folds are dealt round-robin, so every fold gets each stratum's share to within one
    row and the fold sizes differ by at most one.
    """
    rng = np.random.default_rng(seed)
    order = np.concatenate(
        [rng.permutation(np.flatnonzero(strata == value)) for value in np.unique(strata)]
    )
    assignment = np.empty(len(strata), dtype=np.int64)
    assignment[order] = np.arange(len(strata)) % folds
    return assignment


def fold_rows(
    period: Period, n_rows: int, strata: np.ndarray | None = None, task_name: str = "task"
) -> tuple[np.ndarray, np.ndarray]:
    """Sorted training and validation row indices of a FOLD period.

    `strata` (one label per row, e.g. the class) makes the split stratified; None
    treats all rows alike. ValueError if `period` is not a fold or a fold would be empty.
    """
    if period.kind is not PeriodKind.FOLD:
        raise ValueError(
            f"period {period.name!r} is invalid for {task_name!r}; allowed: a fold period "
            "(Period.kfold or task.periods), this task's data is not a time series"
        )
    if period.folds > n_rows:
        raise ValueError(
            f"period {period.name!r} is invalid for {task_name!r}: folds={period.folds} "
            f"exceeds the {n_rows} rows; allowed: folds <= {n_rows}"
        )
    labels = np.zeros(n_rows, dtype=np.int64) if strata is None else np.asarray(strata)
    if labels.shape != (n_rows,):
        raise ValueError(f"strata has shape {labels.shape}; allowed: ({n_rows},), one per row")
    assignment = fold_assignment(labels, period.folds, period.seed)
    return np.flatnonzero(assignment != period.fold), np.flatnonzero(assignment == period.fold)
