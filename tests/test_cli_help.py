"""What ``--help`` tells a new user (issue 15): every option explained with its default,
each command showing only the options it uses, a version, and examples."""

from __future__ import annotations

import argparse
import contextlib
import io

import pytest

from autotune import cli

READERS = ("status", "best", "report", "export", "train", "delete", "create")
TRIAL_OPTIONS = ("--heartbeat-interval", "--grace-period")


def _subparsers() -> dict[str, argparse.ArgumentParser]:
    parser = cli._parser()
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def _options(command: str) -> dict[str, argparse.Action]:
    parser = _subparsers()[command]
    return {flag: action for action in parser._actions for flag in action.option_strings}


@pytest.mark.parametrize(
    ("command", "option", "default"),
    [
        ("worker", "--heartbeat-interval", "(default 10)"),
        ("worker", "--grace-period", "(default 60)"),
        ("run", "--heartbeat-interval", "(default 10)"),
        ("worker", "--worker-id", "(default HOST-PID)"),
        ("dashboard", "--port", "(default 8080)"),
        ("probe-batch", "--max-batch-size", "(default 4096)"),
        ("probe-batch", "--steps", "(default 20)"),
    ],
)
def test_options_say_what_they_do_and_their_default(
    command: str, option: str, default: str
) -> None:
    help_text = _options(command)[option].help
    assert help_text and default in help_text, help_text


@pytest.mark.parametrize("command", [*READERS, "dashboard"])
def test_worker_options_are_not_offered_to_commands_that_run_no_trials(command: str) -> None:
    options = _options(command)
    assert not set(TRIAL_OPTIONS) & set(options), sorted(options)
    if command not in ("dashboard", "report"):  # they serve, or upload the report's figures
        assert "--artifacts" not in options


@pytest.mark.parametrize("command", ["run", "worker"])
def test_commands_that_run_trials_keep_the_worker_options(command: str) -> None:
    assert {*TRIAL_OPTIONS, "--artifacts"} <= set(_options(command))


def _main(argv: list[str]) -> tuple[int, str]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out), pytest.raises(SystemExit) as exited:
        cli.main(argv)
    return int(exited.value.code or 0), out.getvalue()


def test_version() -> None:
    code, out = _main(["--version"])
    assert code == 0 and out.startswith("autotune ") and len(out.split()) >= 2


def test_the_top_level_help_shows_examples() -> None:
    code, out = _main(["--help"])
    assert code == 0
    examples = out.split("examples:")[1]
    for line in ("autotune run studies/quickstart.yaml", "autotune status quickstart"):
        assert line in examples
