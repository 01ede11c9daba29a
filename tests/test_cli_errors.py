"""The CLI's answer to bad input and a hostile environment: a clear error and exit 2, never
a traceback; a reader that goes away (``| head``) ends the command quietly.

Real PostgreSQL and real subprocesses: a session made read-only through the URL's
``options`` is what makes the database refuse, deterministically.
"""

from __future__ import annotations

import os
from pathlib import Path
import signal
import subprocess

import optuna
import pytest

from autotune.campaign._records import StudyKey
from autotune.cli import _clean_exits
from tests.conftest import REPO_ROOT
from tests.conftest import autotune_command
from tests.conftest import run_autotune

pytestmark = pytest.mark.e2e  # every test here runs the `autotune` command in a subprocess

QUICKSTART = str(REPO_ROOT / "studies" / "quickstart.yaml")
READ_ONLY = "options=-c default_transaction_read_only=on"


def _with_option(url: str, option: str) -> str:
    return f"{url}{'&' if '?' in url else '?'}{option}"


def _assert_clear_error(result: subprocess.CompletedProcess[str], *words: str) -> None:
    shown = result.stdout + result.stderr
    assert result.returncode == 2, shown
    assert "Traceback" not in shown, shown
    for word in words:
        assert word in result.stderr, shown


def test_a_database_that_refuses_a_write_is_a_clear_error(storage_url: str) -> None:
    """``?options=-c ...`` in the URL: Optuna's StorageInternalError became a traceback
    (issue 17 item 15); now the database's own reason, exit 2."""
    created = run_autotune("create", QUICKSTART, "--storage", storage_url)
    assert created.returncode == 0, created.stderr
    read_only = _with_option(storage_url, READ_ONLY)
    result = run_autotune("delete", "quickstart", "--yes", "--storage", read_only)
    _assert_clear_error(
        result, "the database refused the operation", "read-only transaction", "options"
    )
    assert run_autotune("status", "quickstart", "--storage", storage_url).returncode == 0


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["worker", "x", "--heartbeat-interval", "99999999999"], ["[1, 3600] seconds"]),
        (["worker", "x", "--heartbeat-interval", "0"], ["--heartbeat-interval", "[1, 3600]"]),
        (["worker", "x", "--grace-period", "1e9"], ["--grace-period: not an int: '1e9'"]),
        (["dashboard", "--port", "99999"], ["--port: 99999 is outside [1, 65535]"]),
        (["dashboard", "--port", "-1"], ["--port: -1 is outside [1, 65535]"]),
    ],
    ids=lambda v: " ".join(v) if isinstance(v, list) else None,
)
def test_numbers_out_of_range_are_refused_when_parsed(argv: list[str], words: list[str]) -> None:
    """A huge heartbeat interval overflowed the worker's thread timeouts and a port out of
    range overflowed bind() (issue 17 item 15): both are refused by the parser."""
    result = run_autotune(*argv, env={"AUTOTUNE_STORAGE": "postgresql://u@127.0.0.1:1/x"})
    _assert_clear_error(result, *words)
    assert "usage:" in result.stderr


def _run_into_closed_pipe(*args: str, cwd: Path = REPO_ROOT) -> subprocess.CompletedProcess[str]:
    """The command with its stdout a pipe whose reader has gone (what ``| head`` leaves)."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        return subprocess.run(
            autotune_command(*args),
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
            cwd=cwd,
            timeout=300,
            check=False,
        )
    finally:
        os.close(write_end)


def test_a_reader_that_goes_away_ends_tasks_quietly() -> None:
    result = _run_into_closed_pipe("tasks")
    assert result.returncode == 141, result.stderr
    assert result.stderr == ""


def test_a_reader_that_goes_away_ends_create_and_status_quietly(storage_url: str) -> None:
    """``create … | head -1`` and ``status X | head`` ended in a BrokenPipeError traceback
    (issue 17 item 15, issue 15)."""
    for argv in (["create", QUICKSTART], ["status", "quickstart"], ["status"]):
        result = _run_into_closed_pipe(*argv, "--storage", storage_url)
        assert result.returncode == 141, (argv, result.stderr)
        assert "Traceback" not in result.stderr and "BrokenPipe" not in result.stderr, argv


def test_a_campaign_stored_by_a_newer_version_can_be_deleted(storage_url: str) -> None:
    """A stored spec with a key this version does not know made even ``delete`` fail
    (issue 17 item 16): delete reads the studies' campaign attribute only."""
    assert run_autotune("create", QUICKSTART, "--storage", storage_url).returncode == 0
    storage = optuna.storages.RDBStorage(storage_url)
    spec_key = StudyKey.SPEC.value
    for study in storage.get_all_studies():
        if spec_key in study.user_attrs:
            future = {**study.user_attrs[spec_key], "future_option": True}
            storage.set_study_user_attr(study._study_id, spec_key, future)
    storage.engine.dispose()
    status = run_autotune("status", "quickstart", "--storage", storage_url)
    _assert_clear_error(status, "future_option")  # reading it still needs this version
    asked = run_autotune("delete", "quickstart", "--storage", storage_url)
    _assert_clear_error(asked, "would delete quickstart")
    deleted = run_autotune("delete", "quickstart", "--yes", "--storage", storage_url)
    assert deleted.returncode == 0, deleted.stderr
    assert deleted.stdout.startswith("deleted quickstart")
    listed = run_autotune("status", "--storage", storage_url)
    assert listed.stdout.strip() == "no campaigns", listed.stdout


FIRST_STUDY = "quickstart/baseline/1"  # the name create gives quickstart's first study


def _foreign_study(storage_url: str, direction: str, trials: int) -> None:
    study = optuna.create_study(study_name=FIRST_STUDY, storage=storage_url, direction=direction)
    for value in range(trials):
        study.add_trial(optuna.trial.create_trial(value=float(value)))


@pytest.mark.parametrize(
    ("direction", "trials", "words"),
    [
        ("maximize", 0, ["it is to maximize, the campaign to minimize"]),
        ("minimize", 2, ["it has 2 trial(s) autotune did not make"]),
    ],
    ids=["other-direction", "foreign-trials"],
)
def test_create_refuses_a_foreign_study_of_a_campaign_studys_name(
    storage_url: str, direction: str, trials: int, words: list[str]
) -> None:
    """create adopted any Optuna study of its first study's name, so the baseline check
    then passed on foreign data (issue 17 item 7)."""
    _foreign_study(storage_url, direction, trials)
    result = run_autotune("create", QUICKSTART, "--storage", storage_url)
    _assert_clear_error(result, f"an Optuna study named {FIRST_STUDY!r} exists already", *words)
    assert "no campaigns" in run_autotune("status", "--storage", storage_url).stdout


def test_create_completes_its_own_interrupted_attempt(storage_url: str) -> None:
    """An empty study of the right direction is what an interrupted create leaves."""
    _foreign_study(storage_url, "minimize", 0)
    result = run_autotune("create", QUICKSTART, "--storage", storage_url)
    assert result.returncode == 0, result.stderr
    assert "created: campaign 'quickstart'" in result.stdout


def test_campaign_not_found_names_the_closest_few(storage_url: str) -> None:
    """The error listed every campaign in the storage (issue 17 item 17)."""
    names = [f"campaign-{i:02d}" for i in range(12)] + ["quickstart"]
    for name in names:
        study = optuna.create_study(study_name=f"{name}/x", storage=storage_url)
        study.set_user_attr(StudyKey.CAMPAIGN.value, name)
    result = run_autotune("status", "quickstrat", "--storage", storage_url)
    _assert_clear_error(result, "no campaign 'quickstrat'", "13 campaigns, the closest by name:")
    closest = result.stderr.split("the closest by name: ")[1].split(" (")[0].split(", ")
    assert closest[0] == "quickstart" and len(closest) == 5, result.stderr


def test_a_file_where_a_directory_belongs_is_named(storage_url: str, tmp_path: Path) -> None:
    """--artifacts or report --out naming a regular file said only "File exists"."""
    a_file = tmp_path / "a-file"
    a_file.write_text("", encoding="utf-8")
    assert run_autotune("create", QUICKSTART, "--storage", storage_url).returncode == 0
    report = run_autotune("report", "quickstart", "--out", str(a_file), "--storage", storage_url)
    _assert_clear_error(report, f"--out {a_file} is a file, not a directory")
    worker = run_autotune(
        "worker", "quickstart", "--artifacts", str(a_file), "--storage", storage_url
    )
    _assert_clear_error(worker, f"--artifacts {a_file} is a file", "or s3://BUCKET")


def test_a_changed_spec_names_the_keys_that_changed(storage_url: str, tmp_path: Path) -> None:
    """The "spec changed" error showed two hashes (issue 15)."""
    assert run_autotune("create", QUICKSTART, "--storage", storage_url).returncode == 0
    text = Path(QUICKSTART).read_text(encoding="utf-8")
    changed = tmp_path / "quickstart.yaml"
    changed.write_text(
        text.replace("search_space: mlp ", f"search_space: {REPO_ROOT}/search_spaces/mlp.yaml ")
        .replace("trials: 60 ", "trials: 20 ")
        .replace("top_k: 4}", "top_k: 3}"),
        encoding="utf-8",
    )
    result = run_autotune("create", str(changed), "--storage", storage_url)
    words = ("exists already with a different spec", "trials: 60 -> 20", "top_k: 4 -> 3")
    _assert_clear_error(result, *words)


def test_a_budget_too_small_is_refused_from_the_file_before_any_database(tmp_path: Path) -> None:
    """It named the campaign, not the file, after starting an embedded PostgreSQL."""
    spec = tmp_path / "small.yaml"
    spec.write_text(Path(QUICKSTART).read_text() + "budget: {steps: 500}\n")
    state = tmp_path / "state"
    result = run_autotune("create", str(spec), "--state-dir", str(state))
    _assert_clear_error(result, f"invalid spec {spec}", "budget.steps (500) is too small")
    assert not state.exists()


def test_after_ctrl_c_a_worker_killed_by_the_signal_is_no_error() -> None:
    """A second Ctrl-C landed while a worker that had stopped cleanly shut its interpreter
    down: `run` said "some workers exited with an error" and exited 1."""
    assert {-signal.SIGINT, -signal.SIGTERM, 130, 143} <= _clean_exits(interrupted=True)
    assert -signal.SIGINT not in _clean_exits(interrupted=False)
    assert 1 not in _clean_exits(interrupted=True)
