"""The campaign's report in optuna-dashboard, where people look for it.

The dashboard lists studies as a grid of cards, newest first, so a campaign's latest study
is the first card of its campaign (the studies are named ``campaign/stage/round``; the
list's search box filters them by that prefix). That study's note is the whole report,
its PNGs shown as images: the dashboard renders a note's images from its own artifact
route only (``/artifacts/STUDY_ID/ARTIFACT_ID``), so each PNG is uploaded into the
artifact store as an artifact of the study its figure belongs to. Every other study of the
campaign gets a short note: what the study is, the campaign's answer, and a link to the
report. Each study shows its own figures as plotly graphs on its page.

A campaign run by ``create`` and ``worker`` is published by the worker that sees it
finished (``publish_finished_campaign``), once per finished state: the first such worker
publishes under a lock and marks the latest study; the others find the mark.
"""

from __future__ import annotations

from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass
import enum
import io
import json
import logging
from pathlib import Path
import re
import tempfile
from typing import TYPE_CHECKING
import uuid

from optuna.artifacts._protocol import ArtifactStore
import optuna_dashboard

from autotune.campaign import Campaign
from autotune.campaign import CampaignStudy
from autotune.campaign import Progress
from autotune.campaign import Stage
from autotune.report._answer import answer_lines
from autotune.storage import advisory_lock

if TYPE_CHECKING:
    from autotune.report._report import Report

_logger = logging.getLogger(__name__)

DASHBOARD_PREFIX = "/dashboard"
"""Where optuna-dashboard's pages are served (its study pages are under it)."""
STUDY_ARTIFACT_PREFIX = "artifacts:"
"""The study system attribute optuna.artifacts.upload_artifact records an artifact under."""
PUBLISHED_ATTR = "autotune_report:published"
"""Study system attribute of the latest study: the campaign state its report shows."""
PUBLISHED_FIGURES_ATTR = "autotune_report:figures"
"""Beside it: whether that note shows its figures (published with an artifact store)."""
_IMAGE_LINE = re.compile(r"^!\[(?P<caption>[^\]]*)\]\((?P<file>[^)\s]+\.png)\)$")
_FIGURE_IDS = uuid.UUID("5b0f4a52-2f3e-4c8e-9d0c-7a1e0f6b2c11")
"""Namespace of the figures' artifact ids: one id per study and figure, so publishing
again overwrites a figure rather than adding one."""


@dataclass(frozen=True)
class StudyLink:
    """A study as its notes name it: its label in the pipeline, name and dashboard id."""

    label: str
    name: str
    study_id: int

    @property
    def page(self) -> str:
        return f"{DASHBOARD_PREFIX}/studies/{self.study_id}"

    @property
    def note(self) -> str:
        return f"{self.page}/note"


def publish_to_dashboard(
    campaign: Campaign, report: Report, artifact_store: ArtifactStore | None = None
) -> None:
    """The report as the note of the campaign's latest study (its PNGs as images when there
    is an artifact store, else a line saying where the figures are), a note on every other
    study linking there, and each plotly figure on its study's page."""
    studies = {s.name: s for s in campaign.studies}
    home = campaign.current
    links = [StudyLink(s.label, s.name, s.study_id) for s in campaign.studies]
    home_link = links[-1]
    images = (
        {} if artifact_store is None else _upload_images(campaign, studies, report, artifact_store)
    )
    head = answer_lines(campaign)[:1]
    note = home_note(report.markdown, images, links)
    optuna_dashboard.save_note(campaign.optuna_study(home), note)
    for study, link in zip(campaign.studies, links, strict=True):
        if study.name != home.name:
            details = [
                *study_role(study, campaign.progress(study)),
                "",
                with_images(report.sections.get(study.name, ""), images),
            ]
            text = study_note(campaign.name, link, home_link, head, details)
            optuna_dashboard.save_note(campaign.optuna_study(study), text)
    for figure in report.figures:
        if figure.study in studies:
            optuna_dashboard.save_plotly_graph_object(
                campaign.optuna_study(studies[figure.study]),
                figure.figure,
                graph_object_id=figure.figure_id,
            )
    state = published_state(campaign)
    campaign.storage.set_study_system_attr(home.study_id, PUBLISHED_ATTR, state)
    shown = artifact_store is not None
    campaign.storage.set_study_system_attr(home.study_id, PUBLISHED_FIGURES_ATTR, shown)


class Published(enum.Enum):
    """What ``autotune report`` did to the dashboard's notes."""

    WITH_FIGURES = "with_figures"
    FIGURES_NAMED = "figures_named"  # no artifact store: the note says where the PNGs are
    LEFT_AS_IT_WAS = "left_as_it_was"


def publish_report(
    campaign: Campaign, report: Report, artifact_store: ArtifactStore | None
) -> Published:
    """Publish ``report``; without an artifact store, a note of the campaign as it is now
    (the finishing worker's, with its figures) is left as it was: replacing it with one
    that only names its figures lost them."""
    if artifact_store is None and dashboard_shows_current(campaign, with_figures=True):
        return Published.LEFT_AS_IT_WAS
    publish_to_dashboard(campaign, report, artifact_store)
    return Published.FIGURES_NAMED if artifact_store is None else Published.WITH_FIGURES


def publish_finished_campaign(
    campaign: Campaign, artifact_store: ArtifactStore | None, where: str = ""
) -> bool:
    """Publish a finished campaign's report unless it shows this state already; whether it
    published (``where``: the storage options its hints need, as for ``write_report``).
    Never raises: the worker that calls it has finished its trials, and a
    report that could not be written is logged (``autotune report`` writes it later)."""
    try:
        with advisory_lock(campaign.storage, f"report:{campaign.name}"):
            if dashboard_shows_current(campaign):
                return False
            from autotune.report._report import write_report  # matplotlib: only when needed

            with tempfile.TemporaryDirectory(prefix="autotune-report-") as directory:
                publish_to_dashboard(
                    campaign, write_report(campaign, Path(directory), where), artifact_store
                )
            _logger.info("campaign %s: report published to the dashboard", campaign.name)
            return True
    except Exception as error:  # noqa: BLE001 (a report never fails the worker)
        _logger.warning(
            "campaign %s finished, but its report could not be published to the dashboard "
            "(%s: %s); `autotune report %s` publishes it",
            campaign.name,
            type(error).__name__,
            error,
            campaign.name,
        )
        return False


def dashboard_shows_current(campaign: Campaign, with_figures: bool = False) -> bool:
    """Whether the dashboard's notes show the campaign as it is now (``with_figures``: and
    show its figures, as a finishing worker publishes them from its artifact store)."""
    attrs = campaign.storage.get_study_system_attrs(campaign.current.study_id)
    current = attrs.get(PUBLISHED_ATTR) == published_state(campaign)
    return current and (not with_figures or attrs.get(PUBLISHED_FIGURES_ATTR) is True)


def published_state(campaign: Campaign) -> str:
    """What a published report shows: the latest study and how many trials it had."""
    home = campaign.current
    return f"{home.name}: {len(campaign.trials_of(home))} trials"


def home_note(markdown: str, images: Mapping[str, str], links: Sequence[StudyLink]) -> str:
    """The report's markdown as the campaign's note (``with_images``), then every study of
    the campaign with links to its page and note."""
    lines = with_images(markdown, images).splitlines()
    lines += ["", "## Studies of this campaign", ""]
    lines += [f"- {s.label}: [{s.name}]({s.page}) ([note]({s.note}))" for s in links]
    return "\n".join(lines) + "\n"


def with_images(markdown: str, images: Mapping[str, str]) -> str:
    """Markdown whose PNG lines show from their artifact URLs (``images``: file name ->
    URL) or, without one, say where the figure is (a broken image helps nobody)."""
    lines = []
    for line in markdown.splitlines():
        match = _IMAGE_LINE.match(line.strip())
        if match is None:
            lines.append(line)
        elif match["file"] in images:
            lines.append(f"![{match['caption']}]({images[match['file']]})")
        else:
            lines.append(
                f"*Figure: {match['caption']} (a graph on the study's page; the PNG is in "
                "the report's directory).*"
            )
    return "\n".join(lines) + ("\n" if lines else "")


def study_note(
    campaign: str,
    study: StudyLink,
    home: StudyLink,
    answer: Sequence[str],
    details: Sequence[str],
) -> str:
    """A study's note: what it is in its campaign, the answer, where the report is, then
    ``details`` (what the study's runs are, its section of the report)."""
    lines = [
        f"# Campaign {campaign}: {study.label}",
        "",
        f"Campaign **{campaign}**, {study.label}. The campaign's report (its answer, the "
        f"verdicts and every figure) is the note of its latest study, [{home.name}]({home.note}).",
        "",
    ]
    if answer:
        lines += [f"Answer: **{answer[0].removeprefix('answer: ')}**", ""]
    lines += [*details]
    return "\n".join(lines).rstrip() + "\n"


def study_role(study: CampaignStudy, progress: Progress) -> list[str]:
    """What a study's runs are (their results follow in its section of the report)."""
    stage = study.stage
    if stage is Stage.BASELINE:
        return [
            "The baseline trains the task's default hyperparameters once, to check that the "
            "pipeline learns at all; it samples nothing, so its trials have no parameters "
            "(Params = []) and the dashboard's importance panel stays empty. The graph on "
            "this study's page shows its learning curve beside the tuned run's."
        ]
    if stage is Stage.STEPS_SWEEP:
        return [
            "Each trial trains one learning rate to measure how many steps fitting the "
            "training set takes: that measures max_train_steps. A rate still unfitted "
            "when another has fitted is slower, so it is pruned there."
        ]
    if stage is Stage.REEVALUATION:
        return [
            "Each trial here is one run of a finalist on one period (and seed): the "
            "finalist and its hyperparameters are the trial's user attributes `finalist` "
            "and `hparams`, not Optuna parameters, so the dashboard's Best Trial box shows "
            "Params = [] and its best is only the luckiest single run. The finalists are "
            "compared on their paired runs; the table on this study's page lists their "
            "hyperparameters."
        ]
    how = "promoted from the round before"
    if study.samples:
        how = "sampled" if progress.step_share is None else "sampled while its steps lasted"
    carried = ""
    if progress.carried:
        carried = (
            f" Its other {progress.carried} trials are the finished trials of the study it "
            "widens, carried over, not run again."
        )
    return [
        f"{progress.complete + progress.pruned + progress.failed} trials of at most "
        f"{study.max_train_steps} steps, {how}.{carried}"
    ]


def figure_artifact_id(study: str, png: str) -> str:
    """The artifact id of a study's figure: the same every time it is published."""
    return str(uuid.uuid5(_FIGURE_IDS, f"{study}/{png}"))


def _upload_images(
    campaign: Campaign,
    studies: Mapping[str, CampaignStudy],
    report: Report,
    store: ArtifactStore,
) -> dict[str, str]:
    """Upload each figure's PNG as an artifact of its study; file name -> its URL."""
    urls = {}
    for figure in report.figures:
        study = studies.get(figure.study)
        if study is None or figure.png is None:
            continue
        artifact_id = figure_artifact_id(study.name, figure.png)
        data = (report.directory / figure.png).read_bytes()
        store.write(artifact_id, io.BytesIO(data))
        meta = {
            "artifact_id": artifact_id,
            "filename": figure.png,
            "mimetype": "image/png",
            "encoding": None,
        }
        campaign.storage.set_study_system_attr(
            study.study_id, STUDY_ARTIFACT_PREFIX + artifact_id, json.dumps(meta)
        )
        urls[figure.png] = f"/artifacts/{study.study_id}/{artifact_id}"
    return urls
