"""The report in optuna-dashboard: the note with its images, a note on every study, the
figures on their studies' pages, published once when a campaign finishes."""

from __future__ import annotations

import logging
from pathlib import Path
import re
from wsgiref.util import setup_testing_defaults

import optuna
from optuna.distributions import FloatDistribution
from optuna.trial import create_trial
import optuna_dashboard
import pytest

from autotune.campaign import Campaign
from autotune.campaign import advance
from autotune.campaign import create_campaign
from autotune.campaign import load_campaign
from autotune.report._plots import DASHBOARD_HEIGHT
from autotune.report._publish import PUBLISHED_ATTR
from autotune.report._publish import Published
from autotune.report._publish import StudyLink
from autotune.report._publish import figure_artifact_id
from autotune.report._publish import home_note
from autotune.report._publish import publish_finished_campaign
from autotune.report._publish import publish_report
from autotune.report._publish import study_note
from autotune.report._report import publish_to_dashboard
from autotune.report._report import write_report
from autotune.spec import load_study_spec
from autotune.storage import dashboard_app
from autotune.storage import open_artifact_store
from autotune.storage import open_storage
from autotune.worker._defaults import task_defaults
from tests.conftest import write_study

ROUND = StudyLink("round 1", "c/joint/1", 7)
BASELINE = StudyLink("baseline", "c/baseline/1", 6)


def test_the_note_shows_each_png_from_its_artifact_url_and_links_every_study() -> None:
    markdown = "# Campaign c\n\n![trial funnel](funnel.png)\n\n![curves](curves.png)\n\ntext\n"
    note = home_note(markdown, {"funnel.png": "/artifacts/7/abc"}, [BASELINE, ROUND])
    assert "![trial funnel](/artifacts/7/abc)" in note
    assert "(curves.png)" not in note  # no URL: said where it is, not a broken image
    assert "*Figure: curves (a graph on the study's page" in note
    assert "# Campaign c" in note and "\ntext\n" in note
    assert (
        "- baseline: [c/baseline/1](/dashboard/studies/6) ([note](/dashboard/studies/6/note))"
        in (note)
    )


def test_a_study_note_says_what_the_study_is_and_links_the_report() -> None:
    note = study_note("c", BASELINE, ROUND, ["answer: c/joint/1 #3, loss 0.1"], ["It ran once."])
    assert note.startswith("# Campaign c: baseline\n")
    assert "[c/joint/1](/dashboard/studies/7/note)" in note
    assert "Answer: **c/joint/1 #3, loss 0.1**" in note and note.endswith("It ran once.\n")
    assert "Answer" not in study_note("c", BASELINE, ROUND, [], [])


def test_a_figure_keeps_its_artifact_id_which_the_dashboard_route_accepts() -> None:
    first = figure_artifact_id("c/joint/1", "funnel.png")
    assert first == figure_artifact_id("c/joint/1", "funnel.png")
    assert first != figure_artifact_id("c/joint/2", "funnel.png")
    assert re.fullmatch(r"[0-9a-fA-F-]+", first)  # optuna-dashboard's /artifacts/ID route


def finished_baseline_and_round(storage_url: str, tmp_path: Path, name: str) -> Campaign:
    """A campaign whose baseline ran and whose round 1 has three complete trials."""
    spec = load_study_spec(write_study(tmp_path, name, trials=3, baseline=True))
    storage = open_storage(storage_url)
    campaign, _ = create_campaign(spec, storage, task_defaults(spec))
    campaign.optuna_study(campaign.current).add_trial(
        create_trial(
            value=0.3,
            intermediate_values={20: 0.9, 40: 0.3},
            user_attrs={"trivial_val_loss": 2.3, "seed": 1},
        )
    )
    advance(name, storage)
    campaign = load_campaign(name, storage)
    study = campaign.optuna_study(campaign.current)
    for lr, loss in ((0.01, 0.2), (0.1, 0.15), (0.001, 0.5)):
        study.add_trial(
            create_trial(
                value=loss,
                params={"learning_rate": lr},
                distributions={"learning_rate": FloatDistribution(1e-5, 1.0, log=True)},
                intermediate_values={20: 2 * loss, 40: loss},
            )
        )
    return load_campaign(name, storage)


def get(app, path: str) -> tuple[str, bytes]:  # noqa: ANN001
    environ: dict[str, object] = {"REQUEST_METHOD": "GET", "PATH_INFO": path}
    setup_testing_defaults(environ)
    status: list[str] = []
    chunks = app(environ, lambda line, headers, exc_info=None: status.append(line))
    return status[0], b"".join(chunks)


def test_the_report_note_shows_its_images_and_every_study_links_to_it(
    storage_url: str, tmp_path: Path
) -> None:
    campaign = finished_baseline_and_round(storage_url, tmp_path, "pub")
    store = open_artifact_store(str(tmp_path / "artifacts"))
    publish_to_dashboard(campaign, write_report(campaign, tmp_path / "report"), store)

    baseline, round_one = campaign.studies
    home = optuna_dashboard.get_note(campaign.optuna_study(round_one))
    assert home.startswith("# Campaign pub\n") and "## Studies of this campaign" in home
    images = re.findall(r"!\[[^\]]*\]\((/artifacts/\d+/[0-9a-f-]+)\)", home)
    assert len(images) >= 4 and ".png)" not in home  # every PNG shown from the store
    app = dashboard_app(campaign.storage, store, read_only=False)
    for url in images:
        status, body = get(app, url)
        assert status.startswith("200") and body.startswith(b"\x89PNG"), url

    pointer = optuna_dashboard.get_note(campaign.optuna_study(baseline))
    assert pointer.startswith("# Campaign pub: baseline")
    assert f"(/dashboard/studies/{round_one.study_id}/note)" in pointer
    assert "Params = []" in pointer  # why the dashboard's own panels are empty
    assert "## Baseline" in pointer and "## round 1" not in pointer  # its own section
    (curve,) = re.findall(r"!\[[^\]]*\]\((/artifacts/\d+/[0-9a-f-]+)\)", pointer)
    assert curve.startswith(f"/artifacts/{baseline.study_id}/") and curve in images

    attrs = campaign.storage.get_study_system_attrs(baseline.study_id)
    assert any(key.startswith("dashboard:plot_data:curve-baseline-1:") for key in attrs)
    for study in campaign.studies:
        system = campaign.storage.get_study_system_attrs(study.study_id)
        for figure in optuna_dashboard._custom_plot_data.get_plotly_graph_objects(system).values():
            assert '"height":' not in figure or _height(figure) <= DASHBOARD_HEIGHT


def _height(figure_json: str) -> int:
    return int(re.search(r'"height":\s*(\d+)', figure_json)[1])  # type: ignore[index]


def test_a_finished_campaign_is_published_once_and_a_failure_is_only_logged(
    storage_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    campaign = finished_baseline_and_round(storage_url, tmp_path, "once")
    broken = open_artifact_store(str(tmp_path / "artifacts"))
    (tmp_path / "artifacts").rmdir()
    (tmp_path / "artifacts").write_text("the store's directory became a file")
    with caplog.at_level(logging.WARNING):
        assert publish_finished_campaign(campaign, broken) is False
    assert "could not be published" in caplog.text and "autotune report once" in caplog.text
    home = campaign.optuna_study(campaign.current)
    assert optuna_dashboard.get_note(home) == ""  # nothing half-written

    advance("once", campaign.storage)  # round 1 done, no re-evaluation: finished
    campaign = load_campaign("once", campaign.storage)
    store = open_artifact_store(str(tmp_path / "store"))
    where = " --storage 'postgresql://u:***@db/x'"
    assert publish_finished_campaign(campaign, store, where) is True
    assert PUBLISHED_ATTR in campaign.storage.get_study_system_attrs(campaign.current.study_id)
    assert publish_finished_campaign(campaign, store) is False  # the next worker: done
    note = optuna_dashboard.get_note(home)
    assert "/artifacts/" in note
    assert f"autotune train once{where}" in note  # a worker's hint finds its database

    # `autotune report --storage URL` without --artifacts: the worker's note keeps its images.
    report = write_report(campaign, tmp_path / "again")
    assert publish_report(campaign, report, None) is Published.LEFT_AS_IT_WAS
    assert optuna_dashboard.get_note(home) == note
    assert publish_report(campaign, report, store) is Published.WITH_FIGURES


def test_without_an_artifact_store_the_note_says_where_the_figures_are(
    storage_url: str, tmp_path: Path
) -> None:
    campaign = finished_baseline_and_round(storage_url, tmp_path, "nostore")
    report = write_report(campaign, tmp_path / "report")
    assert publish_report(campaign, report, None) is Published.FIGURES_NAMED
    # published without figures: a second report without --artifacts publishes again
    assert publish_report(campaign, report, None) is Published.FIGURES_NAMED
    note = optuna_dashboard.get_note(
        optuna.load_study(study_name="nostore/joint/1", storage=storage_url)
    )
    assert "/artifacts/" not in note and "*Figure: trial funnel" in note
