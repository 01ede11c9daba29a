"""URLs shown to people who use plain Optuna or optuna-dashboard work there as printed.

Issue 17 item 18: SQLAlchemy 2.1 reads a bare ``postgresql://`` as psycopg 3, which is not
installed, so plain Optuna fails on it; the psycopg2 form works.
"""

from __future__ import annotations

import re

import optuna
import sqlalchemy

from autotune import cli
from tests.conftest import REPO_ROOT

OPTUNA_USES = ("optuna.load_study", "optuna-dashboard '", "RDBStorage(", 'storage="')
URL = re.compile(r"[a-z][a-z0-9+]*://[^\s'\")`]+")


def _urls_for_plain_optuna(text: str) -> list[str]:
    """The URLs on lines (or in the statement right after a line) that hand one to Optuna
    or optuna-dashboard directly, not to autotune."""
    lines = text.splitlines()
    found = []
    for index, line in enumerate(lines):
        if any(use in line for use in OPTUNA_USES) and "autotune." not in line:
            statement = " ".join(lines[index : index + 3])
            found += [url for url in URL.findall(statement) if url.startswith("postgres")]
    return found


def test_readme_shows_optuna_the_psycopg2_form() -> None:
    urls = _urls_for_plain_optuna((REPO_ROOT / "README.md").read_text(encoding="utf-8"))
    assert urls, "README shows no URL for plain Optuna or optuna-dashboard"
    assert all(url.startswith("postgresql+psycopg2://") for url in urls), urls


def test_the_run_summary_prints_a_dashboard_url_plain_optuna_opens(storage_url: str) -> None:
    bare = sqlalchemy.engine.make_url(storage_url).set(drivername="postgresql")
    optuna.create_study(study_name="printed", storage=storage_url)
    args = cli._parser().parse_args(
        ["run", "x.yaml", "--storage", bare.render_as_string(hide_password=False)]
    )
    line = cli._dashboard_command(args)
    assert "optuna-dashboard 'postgresql+psycopg2://" in line, line  # .venv/bin/ off PATH
    printed = line.split("'")[1]
    assert optuna.get_all_study_names(printed) == ["printed"]  # as printed, by plain Optuna
