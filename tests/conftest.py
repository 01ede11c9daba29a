"""Shared fixtures: a real PostgreSQL for every test that needs one.

The server is ``AUTOTUNE_TEST_DATABASE_URL`` when set, else an embedded PostgreSQL started for
the test session. Every test gets a database of its own, dropped afterwards.
"""

from __future__ import annotations

import ast
import atexit
from collections.abc import Iterator
import os
from pathlib import Path
import shutil
import socket
import subprocess
import sys
import tempfile
import uuid

import pytest
import sqlalchemy

from autotune.cli import ARTIFACTS_ENV
from autotune.storage import embedded_url
from autotune.storage import normalize_url

REPO_ROOT = Path(__file__).resolve().parent.parent
TEST_DATABASE_ENV = "AUTOTUNE_TEST_DATABASE_URL"


@pytest.fixture(scope="session")
def server_url() -> Iterator[str]:
    """URL of a database on the test server, used to create per-test databases.

    The embedded server's data lives outside pytest's temporary directories: a concurrent
    pytest session prunes old ones, which would pull the data from under a running server.
    """
    configured = os.environ.get(TEST_DATABASE_ENV)
    if configured:
        yield normalize_url(configured)
        return
    directory = Path(tempfile.mkdtemp(prefix="autotune-test-pg-"))
    # Registered first, so it runs last: after the server's own stop at exit.
    atexit.register(shutil.rmtree, directory, ignore_errors=True)
    yield embedded_url(directory)


@pytest.fixture(scope="session", autouse=True)
def artifact_directory(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Checkpoints of every worker the tests start go to a temporary directory."""
    path = tmp_path_factory.mktemp("artifacts")
    os.environ[ARTIFACTS_ENV] = str(path)
    return path


@pytest.fixture
def storage_url(server_url: str) -> Iterator[str]:
    """A fresh, empty database for one test."""
    name = f"autotune_test_{uuid.uuid4().hex[:12]}"
    admin = sqlalchemy.create_engine(server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(sqlalchemy.text(f'CREATE DATABASE "{name}"'))
    url = sqlalchemy.engine.make_url(server_url).set(database=name)
    yield url.render_as_string(hide_password=False)
    with admin.connect() as connection:
        connection.execute(sqlalchemy.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on (closed again when returned)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def autotune_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "autotune", *args]


def run_autotune(
    *args: str, env: dict[str, str] | None = None, cwd: Path | None = None, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    """Run the real CLI in a subprocess and capture its output."""
    return subprocess.run(
        autotune_command(*args),
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        cwd=cwd or REPO_ROOT,
        timeout=timeout,
        check=False,
    )


def write_study(
    directory: Path,
    name: str,
    *,
    trials: int,
    max_train_steps: int = 120,
    eval_interval: int = 20,
    space: Path = REPO_ROOT / "search_spaces" / "mlp.yaml",
    sampler: str = "{type: tpe, n_startup_trials: 4}",
    fixed: str = "{}",
    baseline: bool = False,
    reevaluation: bool = False,
    pruner_min_steps: int | None = None,
    extra: str = "",
) -> Path:
    """A small study spec on digits-mlp (default space: search_spaces/mlp.yaml).

    The baseline run and the re-evaluation are off unless asked for, so tests count only
    their own trials; so is widening a hit bound unless ``extra`` sets ``boundary:`` (which
    worker samples what depends on timing, so a widened stage would come and go); ``extra``
    is appended as more YAML lines.
    """
    path = directory / f"{name}.yaml"
    min_steps = eval_interval if pruner_min_steps is None else pruner_min_steps
    path.write_text(
        f"name: {name}\n"
        "task: digits-mlp\n"
        f"search_space: {space}\n"
        "metric: {name: val_loss, direction: minimize}\n"
        f"max_train_steps: {max_train_steps}\n"
        f"eval_interval: {eval_interval}\n"
        "batch_size: 32\n"
        f"trials: {trials}\n"
        f"sampler: {sampler}\n"
        f"pruner: {{type: successive_halving, min_steps: {min_steps}, reduction_factor: 3}}\n"
        "seed: 1\n"
        f"fixed: {fixed}\n"
        f"baseline: {str(baseline).lower()}\n"
        f"reevaluation: {{enabled: {str(reevaluation).lower()}}}\n"
        + ("" if "boundary:" in extra else "boundary: {widen: false}\n")
        + extra,
        encoding="utf-8",
    )
    return path


def space_without_early_stopping(directory: Path) -> Path:
    """search_spaces/mlp.yaml without early stopping: every trial trains its whole budget."""
    shipped = (REPO_ROOT / "search_spaces" / "mlp.yaml").read_text(encoding="utf-8")
    path = directory / "mlp-no-early-stopping.yaml"
    path.write_text(
        "".join(line for line in shipped.splitlines(True) if "early_stopping" not in line),
        encoding="utf-8",
    )
    return path


FAST_HEARTBEAT = ("--heartbeat-interval", "1", "--grace-period", "3")


def run_workers(name: str, storage_url: str, count: int, timeout: float = 300) -> None:
    """Run ``count`` worker processes of a campaign concurrently until they all exit 0."""
    workers = [
        subprocess.Popen(
            autotune_command("worker", name, "--storage", storage_url, *FAST_HEARTBEAT),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for _ in range(count)
    ]
    outputs = [w.communicate(timeout=timeout)[0] for w in workers]
    assert [w.returncode for w in workers] == [0] * count, outputs


def imported_modules(path: Path) -> set[str]:
    """Absolute module names a Python file imports (for layering tests)."""
    modules: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            modules |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            modules.add(node.module)
    return modules
