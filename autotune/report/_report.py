"""The campaign report: markdown + HTML with PNG plots, and the same in optuna-dashboard
(``_publish``: the report as notes, its PNGs as the note's images, its plotly figures on
the studies' pages)."""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import field
import math
from pathlib import Path

from optuna.distributions import CategoricalDistribution
from optuna.trial import FrozenTrial
from optuna.trial import TrialState
import plotly.graph_objects as go

from autotune.analysis import HIT_SHARE
from autotune.analysis import LEAN_FACTOR
from autotune.analysis import best_step_records
from autotune.analysis import grid_trends
from autotune.analysis import stable_points
from autotune.campaign import TUNING_PERIOD
from autotune.campaign import BoundaryCheck
from autotune.campaign import Campaign
from autotune.campaign import CampaignStudy
from autotune.campaign import Finalist
from autotune.campaign import Progress
from autotune.campaign import ReevaluationDesign
from autotune.campaign import Stage
from autotune.campaign import on_tuning_period
from autotune.campaign import period_names
from autotune.campaign import reevaluation_results
from autotune.campaign import trivial_values
from autotune.campaign import tuning_runs_of
from autotune.campaign import tuning_trivial
from autotune.campaign._trial_attrs import ATTR_FINALIST
from autotune.campaign._trial_attrs import ATTR_HPARAMS
from autotune.report import _plots as _plots
from autotune.report._answer import answer_lines
from autotune.report._answer import format_value
from autotune.report._html import markdown_to_html
from autotune.report._publish import publish_to_dashboard
from autotune.report._summary import agreement_line
from autotune.report._summary import baseline_at_length
from autotune.report._summary import baseline_line
from autotune.report._summary import campaign_lines
from autotune.report._summary import pipeline_text
from autotune.report._summary import steps_saved
from autotune.report._summary import study_progress
from autotune.spec._loader import AUTOMATIC_DEFAULTS

REPORT_MARKDOWN = "report.md"
REPORT_HTML = "report.html"
TUNING_NAME = "tuning period"  # a finalist's own tuning run, or the defaults' run there
__all__ = ["Report", "ReportFigure", "publish_to_dashboard", "write_report"]


@dataclass(frozen=True)
class ReportFigure:
    """A figure for the dashboard: shown on ``study``'s page, its PNG (a file next to the
    report, None for a dashboard-only figure) an image of the report's note."""

    study: str
    figure_id: str
    figure: go.Figure
    png: str | None = None


@dataclass(frozen=True)
class Report:
    """Where the report was written, its markdown, and the figures for the dashboard."""

    directory: Path
    markdown: str
    figures: tuple[ReportFigure, ...]
    sections: dict[str, str] = field(default_factory=dict)  # study name -> its section

    @property
    def markdown_path(self) -> Path:
        return self.directory / REPORT_MARKDOWN

    @property
    def html_path(self) -> Path:
        return self.directory / REPORT_HTML


class _Builder:
    """Markdown sections and their figures, written into one directory."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.lines: list[str] = []
        self.figures: list[ReportFigure] = []
        self.sections: dict[str, list[str]] = {}
        self._study: str | None = None  # whose section the lines added now are

    def add(self, *lines: str) -> None:
        self.lines.extend(lines)
        if self._study is not None:
            self.sections[self._study].extend(lines)

    def section(self, study: str | None, heading: str) -> None:
        """Start a section about ``study`` (None: the whole campaign), which its own note
        in the dashboard repeats."""
        self._study = study
        if study is not None:
            self.sections.setdefault(study, [])
        self.add(heading, "")

    def plot(
        self,
        study: str,
        name: str,
        draw: Callable[[Path], go.Figure | Sequence[go.Figure]],
        caption: str,
    ) -> None:
        """One PNG ``name``.png in the report; its plotly figure (or pages of it: ``name``,
        ``name``-2, ...: publishing again overwrites each) on ``study``'s dashboard page."""
        png = f"{name}.png"
        drawn = draw(self.directory / png)
        pages = [drawn] if isinstance(drawn, go.Figure) else list(drawn)
        for number, figure in enumerate(pages, start=1):
            figure_id = name if number == 1 else f"{name}-{number}"
            shown = png if number == 1 else None  # the PNG has every page
            self.figures.append(ReportFigure(study, figure_id, figure, shown))
        self.add(f"![{caption}]({png})", "")

    def dashboard_only(self, study: str, name: str, figure: go.Figure) -> None:
        """A figure for ``study``'s dashboard page that the report has as text (a table)."""
        self.figures.append(ReportFigure(study, name, figure))


def write_report(campaign: Campaign, directory: Path, where: str = "") -> Report:
    """Write report.md, report.html and the PNGs of a campaign into ``directory``;
    ``where``: the storage options its hints need (" --state-dir DIR" off the default)."""
    directory.mkdir(parents=True, exist_ok=True)
    builder = _Builder(directory)
    spec = campaign.spec
    pipeline = pipeline_text(spec, campaign.task_defaults.most_periods)
    builder.add(f"# Campaign {spec.name}", "", f"Task `{spec.task}`; {pipeline}.", "")
    _summary_section(builder, campaign, where)
    _pipeline_section(builder, campaign)
    _steps_section(builder, campaign)
    _baseline_section(builder, campaign)
    for study in campaign.stage_studies(Stage.JOINT):
        _round_section(builder, campaign, study)
    _finalists_section(builder, campaign)
    markdown = "\n".join(builder.lines) + "\n"
    (directory / REPORT_MARKDOWN).write_text(markdown, encoding="utf-8")
    html = markdown_to_html(markdown, f"autotune: {spec.name}")
    (directory / REPORT_HTML).write_text(html, encoding="utf-8")
    sections = {study: "\n".join(lines) + "\n" for study, lines in builder.sections.items()}
    return Report(directory, markdown, tuple(builder.figures), sections)


def _summary_section(builder: _Builder, campaign: Campaign, where: str) -> None:
    builder.section(None, "## The answer")
    answer = answer_lines(campaign, where=where)
    if answer:
        head, *details = answer
        builder.add(f"**{head.removeprefix('answer: ')}**", "")
        builder.add(*(f"- {line.strip()}" for line in details), "")
    else:
        best = campaign.best()
        shown = (
            "no trial has completed yet"
            if best is None
            else (
                f"best so far {campaign.spec.metric.name} {best.value:.6g} "
                f"({best.study} #{best.trial_number})"
            )
        )
        builder.add(f"No recommendation yet ({shown}).", "")
    builder.section(None, "## Summary")
    builder.add(*(f"- {line}" for line in campaign_lines(campaign)), "")


def _trials_run(progress: Progress) -> str:
    """The study's trials: its budget, or, sampled until a step share was spent, as many
    as ran; a widened study's carried copies after them."""
    own = progress.budget if progress.step_share is None else progress.finished
    return f"{own} +{progress.carried} carried" if progress.carried else str(own)


def _pipeline_section(builder: _Builder, campaign: Campaign) -> None:
    builder.section(None, "## Pipeline")
    builder.add(
        "| stage | steps | trials | complete | pruned | failed | best |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    )
    rows = []
    for study in campaign.studies:
        p = study_progress(campaign, study)
        best = "—" if p.best_value is None else f"{p.best_value:.5g}"
        label = study.label
        builder.add(
            f"| {label} | {study.max_train_steps} | {_trials_run(p)} | {p.complete} | "
            f"{p.pruned} | {p.failed} | {best} |"
        )
        rows.append((label, p.complete + p.pruned + p.failed, p.pruned, p.complete))
    builder.add("")
    builder.plot(
        campaign.current.name,
        "funnel",
        lambda path: _plots.funnel_plot(rows, path, "trials per stage: started, pruned, complete"),
        "trial funnel",
    )
    builder.add(batch_size_sentence(campaign.spec.batch_size, campaign.spec.task), "")


def batch_size_sentence(batch_size: int, task: str) -> str:
    """The batch size as the spec set it, or automatic mode's default (the stored spec
    cannot tell which): no campaign runs the throughput probe, so none may be said to have
    chosen it."""
    default = AUTOMATIC_DEFAULTS["batch_size"]
    source = "the spec's, or automatic mode's default" if batch_size == default else "the spec's"
    return (
        f"Batch size {batch_size} ({source}): fixed for every trial, never tuned "
        f"(`autotune probe-batch {task}` measures throughput by batch size to choose one)."
    )


def _steps_section(builder: _Builder, campaign: Campaign) -> None:
    sweeps = campaign.stage_studies(Stage.STEPS_SWEEP)
    builder.section(sweeps[-1].name if sweeps else None, "## max_train_steps")
    if not sweeps:
        builder.add(f"Fixed in the spec: {campaign.spec.max_train_steps} steps.", "")
        return
    decision = sweeps[-1].facts.sweep
    builder.add(decision.reason if decision else "The sweep has not decided yet.", "")
    points = campaign.sweep_points()
    chosen = decision.fastest_learning_rate if decision else None
    stable = {p.learning_rate for p in stable_points(points)}
    unstable = {p.learning_rate for p in points if p.steps_to_fit is not None} - stable
    builder.plot(
        sweeps[-1].name,
        "steps-sweep",
        lambda path: _plots.sweep_plot(
            [(p.learning_rate, p.steps_to_fit) for p in points if p.outpaced_at is None],
            sweeps[0].max_train_steps,
            chosen,
            path,
            outpaced=[(p.learning_rate, p.outpaced_at) for p in points if p.outpaced_at],
            unstable=unstable,
        ),
        "steps to fit the training set by learning rate",
    )
    curves = {
        f"lr {t.params['learning_rate']:.3g}": t.intermediate_values
        for study in sweeps
        for t in campaign.trials_of(study)
        if "learning_rate" in t.params
    }
    measured = next((p.steps_to_fit for p in points if p.learning_rate == chosen), None)
    runs = decision.max_train_steps if decision else None
    why = "the budget" if campaign.spec.budget else "raised to the eval grid and first rung"
    builder.plot(
        sweeps[-1].name,
        "steps-sweep-curves",
        lambda path: _plots.sweep_curves_plot(curves, measured, path, runs=runs, runs_why=why),
        "training loss of each sweep rate, the steps the fastest stable rate took to fit "
        "(solid) and, where the runs' length differs, that length (dashed)",
    )


def _baseline_section(builder: _Builder, campaign: Campaign) -> None:
    for study in campaign.stage_studies(Stage.BASELINE):
        builder.section(study.name, "## Baseline")
        outcome = study.facts.baseline
        if outcome is not None:
            builder.add(baseline_line(campaign, study, outcome), "")
        _baseline_curve(builder, campaign, study)


def _baseline_curve(builder: _Builder, campaign: Campaign, study: CampaignStudy) -> None:
    """The baseline's learning curve beside the best tuned run's: what tuning gained (the
    baseline study has no sampled parameters, so the dashboard's own panels say nothing)."""
    runs = campaign.trials_of(study, states=(TrialState.COMPLETE,))
    if not runs:
        return
    curves = {f"baseline (#{t.number})": dict(t.intermediate_values) for t in runs}
    best = campaign.best()
    if best is not None:
        tuned = campaign.trial(best.study, best.trial_number)
        curves[f"tuned: {best.study} #{best.trial_number}"] = dict(tuned.intermediate_values)
    outcome = study.facts.baseline
    trivial = None if outcome is None else outcome.trivial_value
    slug = study.name.split("/", 1)[1].replace("/", "-")
    builder.plot(
        study.name,
        f"curve-{slug}",
        lambda path: _plots.learning_curves_plot(
            curves,
            campaign.spec.metric.name,
            path,
            trivial,
            f"{study.label}: the task's defaults against the tuned run",
            "trivial predictor",
        ),
        "the baseline's learning curve and the tuned run's (dashed: the trivial predictor)",
    )


def _round_section(builder: _Builder, campaign: Campaign, study: CampaignStudy) -> None:
    label = study.label
    slug = study.name.split("/", 1)[1].replace("/", "-")
    builder.section(study.name, f"## {label}")
    check = study.facts.boundaries
    if check is not None:
        builder.add(
            "| parameter | best | side | distance | top-k near low / high | "
            "leaning low / high | hit |"
        )
        builder.add("| --- | ---: | --- | ---: | ---: | ---: | --- |")
        for f in check.findings:
            distance = "—" if f.distance is None else f"{f.distance:.3f}"
            leaning = "—" if f.lean_low is None else f"{f.lean_low} / {f.lean_high}"
            builder.add(
                f"| {f.name} | {format_value(f.best)} | {f.side.value} | {distance} | "
                f"{f.near_low} / {f.near_high} | {leaning} | {'**yes**' if f.hit else 'no'} |"
            )
        builder.add(
            "",
            f"Near: within the tolerance of the bound; leaning: within {LEAN_FACTOR:g}x it. "
            f"A hit is a best near a bound with {HIT_SHARE:.0%} of the top k leaning toward "
            "it (a categorical: that many choosing its end).",
            "",
        )
    if not study.samples and study.round_number == 1:
        _grid_section(builder, campaign, study)
    points = _param_points(campaign, study, check)
    if points:
        builder.plot(
            study.name,
            f"boundary-{slug}",
            lambda path: _plots.boundary_plot(points, campaign.spec.metric.name, label, path),
            f"{campaign.spec.metric.name} against each parameter, search bounds drawn",
        )
    records_steps = best_step_records(campaign.trials_of(study))
    fractions = [best / budget for best, budget in records_steps]
    builder.plot(
        study.name,
        f"best-steps-{slug}",
        lambda path: _plots.best_step_histogram(fractions, path, f"{label}: best step / budget"),
        "best step as a fraction of the budget",
    )
    saved = steps_saved(campaign, study)
    if saved:
        builder.add(f"{saved} training steps saved by resuming from parents' checkpoints.", "")
    if study.facts.horizon is not None:
        builder.add(f"Short vs long runs: {study.facts.horizon.message}.", "")


def _grid_section(builder: _Builder, campaign: Campaign, study: CampaignStudy) -> None:
    """A grid stage's per-value trends: median and best objective for each value."""
    metric, trials = campaign.spec.metric.name, campaign.trials_of(study)
    builder.add(
        "Grid trends:",
        "",
        f"| parameter | value | trials | median {metric} | best {metric} |",
        "| --- | --- | ---: | ---: | ---: |",
    )
    for name in study.distributions:
        for trend in grid_trends(trials, name, campaign.spec.metric.direction):
            builder.add(
                f"| {name} | {format_value(trend.value)} | {trend.trials} | {trend.median:.5g} | "
                f"{trend.best:.5g} |"
            )
    builder.add("")


def _param_points(
    campaign: Campaign, study: CampaignStudy, check: BoundaryCheck | None
) -> list[_plots.ParamPoints]:
    complete = [
        t
        for t in campaign.trials_of(study, states=(TrialState.COMPLETE,))
        if t.value is not None and math.isfinite(t.value)
    ]
    if not complete:
        return []
    best = campaign.progress(study).best_number
    best_trial = next((t for t in complete if t.number == best), None)
    findings = check.findings if check is not None else ()
    sides = {f.name: f.side.value if f.hit else "none" for f in findings}
    points = []
    for name, dist in study.distributions.items():
        having = [t for t in complete if name in t.params]
        categorical = isinstance(dist, CategoricalDistribution)
        points.append(
            _plots.ParamPoints(
                name=name,
                values=tuple(_value(t, name, categorical) for t in having),
                objectives=tuple(float(t.value) for t in having),  # type: ignore[arg-type]
                low=None if categorical else dist.low,  # type: ignore[attr-defined]
                high=None if categorical else dist.high,  # type: ignore[attr-defined]
                log=False if categorical else dist.log,  # type: ignore[attr-defined]
                best_value=_best_value(best_trial, name, categorical),
                hit_side="none" if categorical else sides.get(name, "none"),
                best_objective=None if best_trial is None else best_trial.value,
            )
        )
    return points


def _value(trial: FrozenTrial, name: str, categorical: bool) -> float | str:
    value = trial.params[name]
    return str(value) if categorical else float(value)


def _best_value(trial: FrozenTrial | None, name: str, categorical: bool) -> float | str | None:
    if trial is None or name not in trial.params:
        return None
    return _value(trial, name, categorical)


def _finalists_section(builder: _Builder, campaign: Campaign) -> None:
    rounds = campaign.stage_studies(Stage.JOINT)
    if rounds:
        last = rounds[-1]
        curves = {
            f"trial {t.number}": dict(t.intermediate_values)
            for t in campaign.trials_of(last, states=(TrialState.COMPLETE,))
        }
        finalists = {  # the round's own: the defaults' candidate is the baseline's run
            f"trial {f.trial}"
            for f in _finalists_of(campaign)
            if f.label.startswith(f"{last.name} #")
        }
        baseline = baseline_at_length(campaign, last.max_train_steps)
        reference = None if baseline is None else baseline[1]
        named = "baseline" if baseline is None else f"baseline at {baseline[0]} steps"
        builder.section(last.name, "## Finalists")
        builder.plot(
            last.name,
            "learning-curves",
            lambda path: _plots.learning_curves_plot(
                curves,
                campaign.spec.metric.name,
                path,
                reference,
                reference_name=named,
                highlight=finalists,
            ),
            "learning curves of the last round (dashed: the baseline; in colour: the "
            "re-evaluation's finalists, where many)",
        )
    for study in campaign.stage_studies(Stage.REEVALUATION):
        _reevaluation_section(builder, campaign, study)


def _finalists_of(campaign: Campaign) -> tuple[Finalist, ...]:
    designs = (s.facts.design for s in campaign.stage_studies(Stage.REEVALUATION))
    return next((d.finalists for d in designs if d is not None), ())


def _periods_origin(campaign: Campaign, design: ReevaluationDesign) -> str:
    """Where the re-evaluation's periods came from: the spec's list, or the task's seeded
    periods with a pinned or a monthly seed."""
    listed = campaign.spec.periods is not None and campaign.spec.periods.heldout is not None
    if listed:
        return "listed in the spec"
    how = "pinned in the spec" if design.periods_pinned else "rotated by calendar month"
    return f"{how}, seed {design.period_seed}"


def _reevaluation_section(builder: _Builder, campaign: Campaign, study: CampaignStudy) -> None:
    design, trials = study.facts.design, campaign.trials_of(study)
    tuning, names = tuning_runs_of(design), period_names(trials)
    builder.section(study.name, "## Re-evaluation on several periods")
    if design is not None:
        shown = ", ".join(names[i] for i in sorted(names)) or f"{design.period_count} periods"
        own = " Each finalist's own run on the tuning period counts as one more" if tuning else ""
        if own and any(on_tuning_period(t) for t in trials):
            own += " (the task's defaults ran there once more)"
        own += "." if own else ""
        builder.add(
            f"Periods ({_periods_origin(campaign, design)}): {shown}; {design.seeds} seed(s) "
            f"each.{own}",
            "",
        )
    significance = study.facts.significance
    if significance is None:
        builder.add("The re-evaluation has not finished yet.", "")
    else:
        builder.add(*(f"- {line}" for line in significance.summary), "")
    if study.facts.rank_agreement is not None:
        builder.add(agreement_line(campaign, study.facts.rank_agreement), "")
    _finalists_table(builder, campaign, study)
    metric = campaign.spec.metric.name
    results = reevaluation_results(trials, campaign.spec.metric.direction, tuning)
    by_period = {finalist: _mean_by_period(values, names) for finalist, values in results.items()}
    baselines = [s.facts.baseline for s in campaign.stage_studies(Stage.BASELINE)]
    trivial = _mean_by_period(trivial_values(trials, metric, tuning_trivial(baselines)), names)
    builder.plot(
        study.name,
        "periods",
        lambda path: _plots.period_comparison_plot(by_period, metric, path, reference=trivial),
        "finalists by period (dashed: the trivial predictor)"
        if trivial
        else "finalists by period",
    )


def _finalists_table(builder: _Builder, campaign: Campaign, study: CampaignStudy) -> None:
    """Each finalist's hyperparameters: the re-evaluation's trials carry them as user
    attributes (they are queued, not sampled), so the dashboard shows "Params = []". A
    recipe without a value (the task's defaults beside an earlier stage's choice) trains
    with the task's own default there: "default", not a dash that read as missing."""
    table = finalist_hyperparameters(campaign.trials_of(study))
    if not table:
        return
    names = sorted({name for hparams in table.values() for name in hparams})
    header = ["hyperparameter", *table]
    rows = [[n, *(format_value(h.get(n, "default")) for h in table.values())] for n in names]
    builder.add(
        "The finalists' hyperparameters (default: the task's own, where a recipe sets none):",
        "",
        "| " + " | ".join(header) + " |",
        "| --- |" + " ---: |" * len(table),
        *("| " + " | ".join(row) + " |" for row in rows),
        "",
    )
    builder.dashboard_only(
        study.name,
        "finalists",
        _plots.table_figure("finalists re-evaluated: their hyperparameters", header, rows),
    )


def finalist_hyperparameters(trials: Sequence[FrozenTrial]) -> dict[str, dict[str, object]]:
    """Finalist label -> the hyperparameters its re-evaluation runs trained, in run order."""
    table: dict[str, dict[str, object]] = {}
    for trial in trials:
        finalist = trial.user_attrs.get(ATTR_FINALIST)
        hparams = trial.user_attrs.get(ATTR_HPARAMS)
        if isinstance(finalist, str) and isinstance(hparams, dict):
            table.setdefault(finalist, dict(hparams))
    return table


def _mean_by_period(
    values: dict[tuple[str, int], float], names: dict[int, str]
) -> dict[str, float]:
    grouped: dict[str, list[float]] = {}
    for (index, _), value in values.items():
        name = TUNING_NAME if index == TUNING_PERIOD else names.get(int(index), f"period {index}")
        grouped.setdefault(name, []).append(value)
    return {period: sum(v) / len(v) for period, v in grouped.items()}
