"""Is the best finalist really better? Paired re-evaluation statistics (docs/method.md §11).

The finalists are re-trained on P periods x S seeds. Every finalist is compared with the
best one, paired on the (period, seed) runs both have, so that what a period does to all
finalists alike (an easy or a hard month) cancels out. Fast mode is checked by the rank
agreement of its results with full runs.
"""

from __future__ import annotations

from collections.abc import Collection
from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import replace
import math
import numbers

import numpy as np

from autotune.spec import Direction
from autotune.spec import PairedTestKind as PairedTest


def _stats():
    """scipy.stats, imported on first use: importing it costs about 0.6 s, which every
    `autotune` command would otherwise pay before doing anything."""
    from scipy import stats

    return stats


DEFAULT_PERIODS = 12
"""Periods of the default re-evaluation design (see DEFAULT_SEEDS)."""
DEFAULT_SEEDS = 1
"""Seeds per period of the default design: 12 x 1 = 12 runs per finalist.

Chosen with `simulate_power` / `simulate_false_positive_rate` (Wilcoxon, alpha=0.05, period
sd 1, run noise sd 1, 10,000 simulations, rng seeds 1 and 2): a true difference of 1.5
run-noise sd is found significant with power 0.89 for 2 finalists (1 comparison) and 0.86
for 3 finalists (2 Holm-corrected comparisons); equal finalists give a false positive in
4.4% (2 finalists) and 5.5% (3 finalists) of re-evaluations. Period sd 3 gives the same
power: pairing removes it. 10 runs would do for 2 finalists only (power 0.83, 0.75 for 3).
Without a period x finalist interaction, 6 x 2 or 4 x 3 do as well; with one (sd 0.5)
their false-positive rate grows to 6.5% and 8% (seeds of one period are not independent
pairs) while 12 x 1 stays at 4.2%, so periods are preferred over seeds.
"""
MIN_RANK_RHO = 0.5
"""Fast mode is trusted when its Spearman rho with full runs is at least this (and p < alpha)."""
EXACT_SPEARMAN_MAX_N = 7  # 7! = 5,040 orderings: scipy enumerates them all (exact)

_MAX_PAIRS = 10_000


TEST_LABELS = {
    PairedTest.WILCOXON: "Wilcoxon",
    PairedTest.SIGN: "sign",
    PairedTest.PAIRED_T: "paired t",
}


@dataclass(frozen=True)
class PairedComparison:
    """One finalist against the best (`reference`), paired on their shared (period, seed) runs.

    Differences are "how much better the reference is" in metric units (positive = the
    reference is better, whatever the direction). `wins` counts the pairs the reference
    won. `ci_low`/`ci_high` bound the mean difference (t-based, level 1 - alpha).
    `effect_size` is Cohen's d_z: mean difference / sd of the differences (inf when the
    differences are constant and not zero, 0 when all are zero). `p_adjusted` is Holm's
    over all comparisons of the report; `significant` needs p_adjusted < alpha and the test
    favouring the reference.
    """

    finalist: str
    reference: str
    n_pairs: int
    wins: int
    losses: int
    ties: int
    mean_difference: float
    ci_low: float
    ci_high: float
    test: PairedTest
    p_value: float
    p_adjusted: float
    effect_size: float
    significant: bool
    verdict: str


@dataclass(frozen=True)
class SignificanceReport:
    """Every finalist against the best one.

    `min_pairs_needed` is the fewest pairs with which the test could reach p < alpha at all
    for the most favourable comparison (all pairs won, Holm threshold alpha / comparisons).
    `summary` holds the warning (if any) first, then one verdict per comparison.
    """

    best: str
    comparisons: tuple[PairedComparison, ...]
    alpha: float
    test: PairedTest
    n_periods: int
    n_seeds: int
    min_pairs_needed: int
    too_few_pairs_warning: str | None
    summary: tuple[str, ...]


@dataclass(frozen=True)
class RankAgreement:
    """How well fast-mode results rank the finalists like full runs do.

    `full_rank_of_fast_best` is the full-run rank (1 = best) of the fast-mode best.
    """

    rho: float
    p_value: float
    n: int
    agrees: bool
    full_rank_of_fast_best: int
    message: str


def compare_finalists(
    results: Mapping[str, Mapping[tuple[str, int], float]],
    direction: Direction,
    alpha: float = 0.05,
    test: PairedTest = PairedTest.WILCOXON,
    given: Collection[tuple[str, int]] = (),
) -> SignificanceReport:
    """Compare every finalist with the best one; `results[finalist][(period, seed)] = value`.

    The best has the best mean (`ranking_means`; ties go to the first name in sorted
    order). Each other finalist is paired with it on the (period, seed) keys both have
    (at least 2); p-values are Holm-corrected across all comparisons. Comparisons are
    listed best-ranked finalist first. ``given`` are keys no design choice adds (each
    finalist's own run on the tuning period): the advice on how many periods to use
    counts them apart, since a user sets only the others.
    """
    _check_direction(direction)
    _check_alpha_and_test(alpha, test)
    _check_results(results)
    sign = 1.0 if direction is Direction.MINIMIZE else -1.0
    means = {name: sign * mean for name, mean in ranking_means(results).items()}
    ranked = sorted(results, key=lambda name: (means[name], name))
    best, others = ranked[0], ranked[1:]
    paired = [_paired_differences(results, best, name, sign) for name in others]
    p_values = [float(p_values_of(diffs[None, :], test)[0]) for _, diffs in paired]
    adjusted = holm_adjust(p_values)
    comparisons = tuple(
        _comparison(name, best, keys, diffs, p, p_adj, alpha, test, len(others))
        for name, (keys, diffs), p, p_adj in zip(others, paired, p_values, adjusted, strict=True)
    )
    needed = min_pairs_to_reach(alpha, test, len(others))
    warning = _too_few_pairs_warning(comparisons, paired, needed, alpha, len(others), given)
    keys = {key for runs in results.values() for key in runs}
    return SignificanceReport(
        best,
        comparisons,
        alpha,
        test,
        n_periods=len({period for period, _ in keys}),
        n_seeds=len({seed for _, seed in keys}),
        min_pairs_needed=needed,
        too_few_pairs_warning=warning,
        summary=(() if warning is None else (warning,)) + tuple(c.verdict for c in comparisons),
    )


@dataclass(frozen=True)
class MeanInterval:
    """A mean with its two-sided 95% Student-t interval (None with a single value)."""

    mean: float
    low: float | None
    high: float | None
    n: int


def mean_interval(
    values: Sequence[float], confidence: float = 0.95, floor: float | None = None
) -> MeanInterval:
    """The mean of ``values`` and its t interval: how precisely the runs pin it down. The
    t interval is symmetric: ``floor``, the least the metric can take (0 for a loss), cuts
    it there (an MSE with one period's losses 4x the others' read [-3.5, 17.5] around 7.0)."""
    data = np.asarray(values, dtype=float)
    if data.size == 0 or not np.all(np.isfinite(data)):
        raise ValueError(f"values={list(values)!r} is invalid; allowed: finite numbers, >= 1")
    mean = float(data.mean())
    if data.size < 2:
        return MeanInterval(mean, None, None, 1)
    half = float(_stats().t.ppf(0.5 + confidence / 2, data.size - 1) * _stats().sem(data))
    low = mean - half if floor is None else max(floor, mean - half)
    return MeanInterval(mean, low, mean + half, int(data.size))


def min_pairs_to_reach(alpha: float, test: PairedTest, comparisons: int = 1) -> int:
    """The fewest pairs with which `test` can give a two-sided p < alpha / comparisons at all.

    That is the Holm threshold of the most favourable of `comparisons` comparisons; the
    pairs are all won. Wilcoxon and sign tests are discrete (with n pairs their smallest
    p-value is 2 / 2**n); a t-test reaches any p with 2 pairs that agree exactly.
    """
    _check_alpha_and_test(alpha, test)
    if isinstance(comparisons, bool) or not isinstance(comparisons, int) or comparisons < 1:
        raise ValueError(f"comparisons={comparisons!r} is invalid; allowed: an int >= 1")
    if test is PairedTest.PAIRED_T:
        return 2
    for n in range(2, _MAX_PAIRS):
        all_won = np.arange(1.0, n + 1.0)[None, :]
        if p_values_of(all_won, test)[0] < alpha / comparisons:
            return n
    raise ValueError(f"alpha={alpha!r} is invalid; allowed: one reachable with fewer pairs")


def holm_adjust(p_values: Sequence[float]) -> tuple[float, ...]:
    """Holm-adjusted p-values, in input order: monotone in the raw p-values, capped at 1."""
    for p in p_values:
        if isinstance(p, bool) or not (isinstance(p, numbers.Real) and 0.0 <= p <= 1.0):
            raise ValueError(f"p-value {p!r} is invalid; allowed: a float in [0, 1]")
    if not p_values:
        return ()
    return tuple(float(p) for p in _holm(np.asarray(p_values, dtype=float)))


def rank_agreement(
    fast: Mapping[str, float],
    full: Mapping[str, float],
    direction: Direction,
    *,
    alpha: float = 0.05,
) -> RankAgreement:
    """Spearman rank correlation of fast-mode and full-run values over the finalists in both.

    Fast mode agrees when rho >= MIN_RANK_RHO and its p-value < alpha; needs 3 finalists.
    """
    _check_direction(direction)
    _check_alpha_and_test(alpha, PairedTest.WILCOXON)
    names = sorted(set(fast) & set(full))
    if len(names) < 3:
        raise ValueError(
            f"fast and full share {len(names)} finalists ({names}); allowed: at least 3"
        )
    x = np.array([_finite(f"fast[{name!r}]", fast[name]) for name in names])
    y = np.array([_finite(f"full[{name!r}]", full[name]) for name in names])
    sign = 1.0 if direction is Direction.MINIMIZE else -1.0
    full_rank = 1 + int(np.sum(sign * y < sign * y[int(np.argmin(sign * x))]))
    if np.ptp(x) == 0 or np.ptp(y) == 0:
        rho, p = math.nan, math.nan
    else:
        rho, p = float(_stats().spearmanr(x, y).statistic), spearman_p_value(x, y)
    agrees = rho >= MIN_RANK_RHO and p < alpha
    message = _rank_message(rho, p, len(names), agrees, full_rank)
    if not agrees and 2 / math.factorial(len(names)) >= alpha:
        message += (
            f" (with {len(names)} finalists even a perfect agreement has "
            f"p={2 / math.factorial(len(names)):.2g}: re-evaluate 5 or more to tell)"
        )
    return RankAgreement(rho, p, len(names), agrees, full_rank, message)


def spearman_p_value(x: np.ndarray, y: np.ndarray) -> float:
    """Two-sided p-value of Spearman's rho: exact over every pairing for up to
    EXACT_SPEARMAN_MAX_N values (the t approximation says p=0 for 3 perfectly ranked
    values), scipy's approximation above."""
    if len(x) > EXACT_SPEARMAN_MAX_N:
        return float(_stats().spearmanr(x, y).pvalue)
    result = _stats().permutation_test(  # every ordering of x against y: exact for n! < 9,999
        (x,),
        lambda shuffled: _stats().spearmanr(shuffled, y).statistic,
        permutation_type="pairings",
        alternative="two-sided",
    )
    return float(result.pvalue)


def simulate_power(
    n_periods: int,
    n_seeds: int,
    effect_sd: float,
    n_finalists: int,
    n_sim: int,
    rng: np.random.Generator,
    *,
    alpha: float = 0.05,
    test: PairedTest = PairedTest.WILCOXON,
    period_sd: float = 1.0,
    interaction_sd: float = 0.0,
) -> float:
    """Share of simulated re-evaluations that find a truly better best significantly better.

    Model: value = period effect (sd `period_sd`, shared by all finalists in a period) +
    finalist effect + period x finalist interaction (sd `interaction_sd`: a period that
    suits one finalist more than another) + run noise (sd 1, a fresh draw per period and
    seed). The best finalist is `effect_sd` run-noise sds better than each of the
    `n_finalists - 1` others. A comparison counts when the true best was picked and it is
    significant (Holm across the comparisons); the result is the average over the others.
    """
    model = _Model(n_periods, n_seeds, n_finalists, effect_sd, period_sd, interaction_sd)
    best, significant = _simulate(model, n_sim, rng, alpha, test)
    return float(np.mean(significant[:, 1:] & (best == 0)[:, None]))


def simulate_false_positive_rate(
    n_periods: int,
    n_seeds: int,
    n_finalists: int,
    n_sim: int,
    rng: np.random.Generator,
    *,
    alpha: float = 0.05,
    test: PairedTest = PairedTest.WILCOXON,
    period_sd: float = 1.0,
    interaction_sd: float = 0.0,
) -> float:
    """Share of simulated re-evaluations of equal finalists with any significant comparison.

    Same model as `simulate_power` with no finalist effect (family-wise error rate). With
    more than 2 finalists the best is picked as the most extreme one, so the rate can exceed
    alpha a little: Holm corrects for the comparisons made, not for that selection.
    """
    model = _Model(n_periods, n_seeds, n_finalists, 0.0, period_sd, interaction_sd)
    _, significant = _simulate(model, n_sim, rng, alpha, test)
    return float(np.mean(significant.any(axis=1)))


@dataclass(frozen=True)
class _Model:
    """The simulated re-evaluation: finalist 0 is `effect_sd` better (lower) than the rest."""

    n_periods: int
    n_seeds: int
    n_finalists: int
    effect_sd: float
    period_sd: float
    interaction_sd: float

    def __post_init__(self) -> None:
        for label, low in (("n_periods", 1), ("n_seeds", 1), ("n_finalists", 2)):
            value = getattr(self, label)
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ValueError(f"{label}={value!r} is invalid; allowed: an int >= {low}")
        if self.n_periods * self.n_seeds < 2:
            raise ValueError(
                f"n_periods x n_seeds={self.n_periods * self.n_seeds} is invalid; "
                "allowed: at least 2 pairs"
            )
        for label in ("effect_sd", "period_sd", "interaction_sd"):
            value = getattr(self, label)
            if not (isinstance(value, int | float) and math.isfinite(value) and value >= 0):
                raise ValueError(f"{label}={value!r} is invalid; allowed: a finite float >= 0")

    def draw(self, n_sim: int, rng: np.random.Generator) -> np.ndarray:
        """Values of shape (n_sim, n_finalists, n_periods x n_seeds)."""
        k, p, s = self.n_finalists, self.n_periods, self.n_seeds
        effects = np.full((1, k, 1, 1), float(self.effect_sd))
        effects[0, 0] = 0.0
        periods = self.period_sd * rng.standard_normal((n_sim, 1, p, 1))
        interaction = self.interaction_sd * rng.standard_normal((n_sim, k, p, 1))
        noise = rng.standard_normal((n_sim, k, p, s))
        return (periods + effects + interaction + noise).reshape(n_sim, k, p * s)


def _simulate(
    model: _Model, n_sim: int, rng: np.random.Generator, alpha: float, test: PairedTest
) -> tuple[np.ndarray, np.ndarray]:
    """(index of the picked best, significant per finalist) per simulation; lower is better."""
    _check_alpha_and_test(alpha, test)
    if isinstance(n_sim, bool) or not isinstance(n_sim, int) or n_sim < 1:
        raise ValueError(f"n_sim={n_sim!r} is invalid; allowed: an int >= 1")
    values = model.draw(n_sim, rng)
    k = model.n_finalists
    best = np.argmin(values.mean(axis=2), axis=1)
    others = np.arange(k - 1)[None, :] + (np.arange(k - 1)[None, :] >= best[:, None])
    best_values = np.take_along_axis(values, best[:, None, None], axis=1)
    diffs = np.take_along_axis(values, others[:, :, None], axis=1) - best_values
    flat = diffs.reshape(-1, diffs.shape[2])
    p = p_values_of(flat, test).reshape(n_sim, k - 1)
    favours = favours_reference(flat, test).reshape(n_sim, k - 1)
    significant = np.zeros((n_sim, k), dtype=bool)
    np.put_along_axis(significant, others, (_holm(p) < alpha) & favours, axis=1)
    return best, significant


def p_values_of(diffs: np.ndarray, test: PairedTest) -> np.ndarray:
    """Two-sided p-value per row of paired differences; 1 when a row is all ties."""
    nonzero = np.count_nonzero(diffs, axis=-1)
    p = np.ones(diffs.shape[0])
    rows = nonzero > 0
    if not rows.any():
        return p
    d = diffs[rows]
    if test is PairedTest.SIGN:
        wins, n = np.sum(d > 0, axis=-1), nonzero[rows]
        p[rows] = np.minimum(1.0, 2.0 * _stats().binom.cdf(np.minimum(wins, n - wins), n, 0.5))
    elif test is PairedTest.WILCOXON:
        p[rows] = _stats().wilcoxon(d, axis=-1, zero_method="wilcox", method="auto").pvalue
    else:
        constant = np.ptp(d, axis=-1) == 0
        p[rows] = 0.0  # constant non-zero differences: t is infinite
        if not constant.all():
            varying = d[~constant]
            p[np.flatnonzero(rows)[~constant]] = (
                _stats().ttest_rel(varying, np.zeros_like(varying), axis=-1).pvalue
            )
    return p


def favours_reference(diffs: np.ndarray, test: PairedTest) -> np.ndarray:
    """Whether each row's test statistic leans towards the reference (positive differences)."""
    if test is PairedTest.SIGN:
        return np.sum(diffs > 0, axis=-1) > np.sum(diffs < 0, axis=-1)
    if test is PairedTest.PAIRED_T:
        return diffs.mean(axis=-1) > 0
    zeros = np.sum(diffs == 0, axis=-1, keepdims=True)
    ranks = _stats().rankdata(np.abs(diffs), axis=-1) - zeros  # ranks among non-zero differences
    return np.sum(ranks * np.sign(diffs), axis=-1) > 0


def _holm(p: np.ndarray) -> np.ndarray:
    """Holm step-down adjustment along the last axis."""
    m = p.shape[-1]
    order = np.argsort(p, axis=-1, kind="stable")
    scaled = np.take_along_axis(p, order, axis=-1) * (m - np.arange(m))
    adjusted = np.minimum(np.maximum.accumulate(scaled, axis=-1), 1.0)
    out = np.empty_like(adjusted)
    np.put_along_axis(out, order, adjusted, axis=-1)
    return out


def ranking_means(results: Mapping[str, Mapping[tuple[str, int], float]]) -> dict[str, float]:
    """Each finalist's mean over its `ranked_runs`."""
    return {
        name: float(np.mean(list(runs.values()))) for name, runs in ranked_runs(results).items()
    }


def ranked_runs(
    results: Mapping[str, Mapping[tuple[str, int], float]],
) -> dict[str, dict[tuple[str, int], float]]:
    """Each finalist's runs on the (period, seed) keys every finalist has, when they share
    at least 2; its own runs otherwise. Periods differ far more than finalists do (one
    cancer-mlp fold's loss 0.14, another's 0.026), so means over different periods (a
    failed run, a candidate without a run on the tuning period) rank by the periods."""
    if not results:
        return {}
    shared = set.intersection(*(set(runs) for runs in results.values()))
    return {
        name: {key: v for key, v in runs.items() if len(shared) < 2 or key in shared}
        for name, runs in results.items()
    }


def _paired_differences(
    results: Mapping[str, Mapping[tuple[str, int], float]], best: str, name: str, sign: float
) -> tuple[list[tuple[str, int]], np.ndarray]:
    """The shared keys of `name` and `best`, and how much better `best` is on each."""
    keys = sorted(set(results[best]) & set(results[name]))
    if len(keys) < 2:
        raise ValueError(
            f"finalist {name!r} shares {len(keys)} (period, seed) pairs with the best "
            f"finalist {best!r}; allowed: at least 2 shared pairs"
        )
    diffs = [sign * (results[name][key] - results[best][key]) for key in keys]
    return keys, np.asarray(diffs, dtype=float)


def _comparison(
    name: str,
    best: str,
    keys: list[tuple[str, int]],
    diffs: np.ndarray,
    p: float,
    p_adjusted: float,
    alpha: float,
    test: PairedTest,
    n_comparisons: int,
) -> PairedComparison:
    n = len(diffs)
    wins, losses = int(np.sum(diffs > 0)), int(np.sum(diffs < 0))
    mean, sd = float(np.mean(diffs)), float(np.std(diffs, ddof=1))
    half = float(_stats().t.ppf(1 - alpha / 2, n - 1)) * sd / math.sqrt(n)
    effect = mean / sd if sd > 0 else (math.copysign(math.inf, mean) if mean else 0.0)
    favours = bool(favours_reference(diffs[None, :], test)[0])
    significant = p_adjusted < alpha and favours
    fields = (name, best, n, wins, losses, n - wins - losses, mean, mean - half, mean + half)
    stats_ = (test, p, p_adjusted, effect, significant)
    draft = PairedComparison(*fields, *stats_, verdict="")
    return replace(draft, verdict=_verdict(draft, _unit(keys), alpha, n_comparisons, favours))


def _unit(keys: Sequence[tuple[str, int]]) -> str:
    """The unit of the pairs: periods when every period has one seed, else pairs."""
    return "periods" if len({period for period, _ in keys}) == len(keys) else "period x seed pairs"


def _verdict(
    c: PairedComparison, unit: str, alpha: float, n_comparisons: int, favours: bool
) -> str:
    if c.wins == c.losses == 0:
        equal = f"equal in all {c.n_pairs} {unit}"
        return f"{c.finalist} is not distinguishable from {c.reference}: {equal}"
    level = f"{100 * (1 - alpha):g}% CI [{c.ci_low:.3g}, {c.ci_high:.3g}]"
    sizes = f"({level}, effect size d_z={c.effect_size:.3g})"
    record = f"{_counts_text(c, unit)}; {_mean_text(c, unit, sizes)}"
    holm = f" (Holm-adjusted {c.p_adjusted:.3g})" if n_comparisons > 1 else ""
    tested = f"{TEST_LABELS[c.test]} p={c.p_value:.3g}{holm}"
    if c.significant:
        outcome = f"significant at alpha={alpha:g}"
    elif c.p_adjusted < alpha and not favours:
        outcome = f"no reliable winner (the {TEST_LABELS[c.test]} test favours {c.finalist})"
    else:
        outcome = f"not significant at alpha={alpha:g}"
    return f"{record}, {tested}: {outcome}"


def _counts_text(c: PairedComparison, unit: str) -> str:
    """Where the reference did better and worse, as counts (no verdict in them)."""
    others = (("worse in", c.losses), ("tied in", c.ties))
    return (
        f"{c.reference} is better than {c.finalist} in {c.wins} of {c.n_pairs} {unit}"
        + "".join(f", {words} {k}" for words, k in others if k)
    )


def _mean_text(c: PairedComparison, unit: str, sizes: str) -> str:
    """The mean difference in words, saying so when it disagrees with the counts: a few
    large differences can outweigh most pairs, and the reference is then better only on
    average."""
    if c.mean_difference == 0:
        return f"equal on average {sizes}"
    ahead = c.mean_difference > 0
    text = f"{'better' if ahead else 'worse'} on average by {abs(c.mean_difference):.3g} {sizes}"
    outweighed = c.losses if ahead else c.wins
    if outweighed > c.n_pairs / 2:
        verb = "it is worse in" if ahead else "it is better in"
        text += f"; a few large differences outweigh the {outweighed} {unit} {verb}"
    return text


def _too_few_pairs_warning(
    comparisons: Sequence[PairedComparison],
    paired: Sequence[tuple[list[tuple[str, int]], np.ndarray]],
    needed: int,
    alpha: float,
    n_comparisons: int,
    given: Collection[tuple[str, int]],
) -> str | None:
    """A warning when the smallest comparison cannot reach the first Holm threshold at all."""
    smallest = min(range(len(comparisons)), key=lambda i: comparisons[i].n_pairs)
    c, keys = comparisons[smallest], paired[smallest][0]
    if c.n_pairs >= needed:
        return None
    unit = _unit(keys)
    n_given = len(set(keys) & set(given))
    counted = f"{c.n_pairs} {unit}"
    advice = f"use at least {needed - n_given} periods (or seeds)"
    if n_given:  # "with 6 periods ... use at least 6 re-evaluation periods" read as a riddle
        counted += (
            f" ({c.n_pairs - n_given} re-evaluation period(s) and the tuning period, where "
            "the finalists' own runs count)"
        )
        advice = (
            f"use at least {needed - n_given} re-evaluation periods (or seeds), {needed} "
            "with the tuning period"
        )
    threshold = f"p<{alpha / n_comparisons:.3g}"
    if n_comparisons > 1:
        threshold += (
            f" (alpha={alpha:g} Holm-corrected for the first of {n_comparisons} comparisons)"
        )
    return (
        f"with {counted} the {TEST_LABELS[c.test]} test can never reach {threshold} "
        f"even if {c.reference} wins all of them; {advice}"
    )


def _rank_message(rho: float, p: float, n: int, agrees: bool, full_rank: int) -> str:
    numbers = f"Spearman rho={rho:.2g} over {n} finalists (p={p:.2g})"
    best = f"; the fast-mode best is #{full_rank} in full runs"
    if agrees:
        return f"fast-mode ranks agree with full runs: {numbers}{best}"
    return (
        f"WARNING: fast-mode ranks do not reliably agree with full runs: {numbers}{best}; "
        "fast mode may promote the wrong configurations: give it more data or epochs"
    )


def _check_direction(direction: Direction) -> None:
    if not isinstance(direction, Direction):
        raise ValueError(f"direction={direction!r} is invalid; allowed: a Direction")


def _check_alpha_and_test(alpha: float, test: PairedTest) -> None:
    if isinstance(alpha, bool) or not isinstance(alpha, int | float) or not 0 < alpha < 1:
        raise ValueError(f"alpha={alpha!r} is invalid; allowed: a float in (0, 1)")
    if not isinstance(test, PairedTest):
        raise ValueError(f"test={test!r} is invalid; allowed: a PairedTest")


def _check_results(results: Mapping[str, Mapping[tuple[str, int], float]]) -> None:
    if len(results) < 2:
        raise ValueError(
            f"results has {len(results)} finalists ({sorted(results)}); allowed: at least 2"
        )
    for name, runs in results.items():
        for key, value in runs.items():
            if not (
                isinstance(key, tuple)
                and len(key) == 2
                and isinstance(key[0], str)
                and isinstance(key[1], numbers.Integral)
            ):
                raise ValueError(
                    f"results[{name!r}] key {key!r} is invalid; allowed: (period name, seed)"
                )
            _finite(f"results[{name!r}][{key!r}]", value)


def _finite(label: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        raise ValueError(f"{label}={value!r} is invalid; allowed: a finite float")
    return float(value)
