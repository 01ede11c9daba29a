"""Printed hints name commands that run as printed (issue 15, Getting started).

After ``make run`` nothing has activated the venv, so ``autotune`` is not on PATH and the
summary's own hint ``autotune dashboard`` failed with "command not found".
"""

from __future__ import annotations

import argparse
from pathlib import Path
from pathlib import PurePosixPath
import shlex
import subprocess
import sys

import pytest

from autotune import cli
from autotune.report._command import runnable_command
from tests.conftest import REPO_ROOT

CWD = PurePosixPath("/home/me/project")
PYTHON = CWD / ".venv" / "bin" / "python"
SCRIPT = CWD / ".venv" / "bin" / "autotune"
BIN_DIR = Path(sys.executable).parent.resolve()
WITHOUT_VENV = "/usr/bin:/bin"  # a shell's PATH with the venv not activated


def test_a_command_on_path_is_named_bare() -> None:
    shown = runnable_command("autotune", on_path=True, script=SCRIPT, cwd=CWD, python=PYTHON)
    assert shown == "autotune"


def test_off_path_the_script_is_shown_relative_to_the_directory_it_is_in() -> None:
    shown = runnable_command("autotune", on_path=False, script=SCRIPT, cwd=CWD, python=PYTHON)
    assert shown == ".venv/bin/autotune"


def test_a_script_outside_the_directory_is_shown_absolute_and_quoted() -> None:
    script = PurePosixPath("/opt/my tools/bin/autotune")
    shown = runnable_command("autotune", on_path=False, script=script, cwd=CWD, python=PYTHON)
    assert shown == "'/opt/my tools/bin/autotune'"


def test_a_script_in_the_directory_itself_keeps_a_slash() -> None:
    """A bare name would be looked up on PATH again; ``./autotune`` runs the file."""
    script = CWD / "autotune"
    shown = runnable_command("autotune", on_path=False, script=script, cwd=CWD, python=PYTHON)
    assert shown == "./autotune"


def test_without_a_script_the_module_runs_with_this_interpreter() -> None:
    shown = runnable_command(
        "autotune", on_path=False, script=None, cwd=CWD, python=PYTHON, module="autotune"
    )
    assert shown == ".venv/bin/python -m autotune"
    bare = runnable_command("optuna-dashboard", on_path=False, script=None, cwd=CWD, python=PYTHON)
    assert bare == "optuna-dashboard"  # no module to fall back on: the name, the best there is


@pytest.mark.skipif(
    not (BIN_DIR / "autotune").is_file(), reason="autotune is not installed next to python"
)
@pytest.mark.parametrize("where", ["repository", "elsewhere"])
def test_the_summary_dashboard_hint_runs_as_printed_without_the_venv(
    where: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cwd = REPO_ROOT if where == "repository" else tmp_path
    monkeypatch.setenv("PATH", WITHOUT_VENV)
    monkeypatch.chdir(cwd)
    args = argparse.Namespace(storage=None, state_dir=Path(".autotune"))
    hint = cli._dashboard_command(args)
    command = shlex.split(hint.split("   (")[0])
    assert command[1:] == ["dashboard"]
    if BIN_DIR.is_relative_to(cwd):
        assert command[0] == str((BIN_DIR / "autotune").relative_to(cwd))
    shown = subprocess.run(
        [*command, "--help"],
        cwd=cwd,
        env={"PATH": WITHOUT_VENV},
        capture_output=True,
        text=True,
        check=False,
    )
    assert shown.returncode == 0, shown.stderr
    assert "optuna-dashboard" in shown.stdout


def test_with_the_venv_activated_the_hint_is_bare(monkeypatch: pytest.MonkeyPatch) -> None:
    assert (BIN_DIR / "autotune").is_file(), "make install puts the autotune script in .venv/bin"
    monkeypatch.setenv("PATH", f"{BIN_DIR}:{WITHOUT_VENV}")
    assert cli._autotune() == "autotune"
