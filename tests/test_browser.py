"""The dashboard in a real browser: headless Chromium renders the study list, a study page
with the report's figures, and its note.

Chromium is Debian's ``chromium`` package, which ``make test`` installs. Assertions are on
the rendered page content (the DOM after the app ran), plus a screenshot that must exist.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
import shutil
import subprocess
import time
import urllib.error
import urllib.request

import optuna
import pytest

from tests.conftest import autotune_command
from tests.conftest import free_port
from tests.conftest import run_autotune
from tests.conftest import write_study

pytestmark = pytest.mark.e2e

CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking")
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    assert path, "Chromium is missing: `make test` installs Debian's chromium package"
    return path


def wait_until_serving(url: str, process: subprocess.Popen[str], timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        assert process.poll() is None, process.communicate()[0]
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError):
            time.sleep(0.3)
    raise AssertionError(f"{url} did not answer within {timeout_s} s")


def rendered(url: str, profile: Path) -> str:
    """The page's DOM after its scripts ran (and fetched the API)."""
    result = subprocess.run(
        [
            chromium(),
            *CHROMIUM_FLAGS,
            f"--user-data-dir={profile}",
            "--virtual-time-budget=20000",
            "--dump-dom",
            url,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


def screenshot(url: str, path: Path, profile: Path) -> bytes:
    result = subprocess.run(
        [
            chromium(),
            *CHROMIUM_FLAGS,
            f"--user-data-dir={profile}",
            "--virtual-time-budget=20000",
            "--window-size=1280,900",
            f"--screenshot={path}",
            url,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return path.read_bytes()


@dataclass(frozen=True)
class Dashboard:
    base_url: str
    study_names: tuple[str, ...]
    noted_study_id: int


@pytest.fixture
def dashboard(storage_url: str, tmp_path: Path) -> Iterator[Dashboard]:
    """A finished two-round campaign with its report note, served by `autotune dashboard`."""
    spec = write_study(tmp_path, "browse", trials=4, max_train_steps=60)
    spec.write_text(spec.read_text() + "rounds:\n  - {budget_fraction: 0.5}\n  - {top_k: 2}\n")
    for command in (
        ("create", str(spec)),
        ("worker", "browse"),
        ("report", "browse", "--out", str(tmp_path / "report")),
    ):
        result = run_autotune(*command, "--storage", storage_url)
        assert result.returncode == 0, result.stdout + result.stderr
    names = tuple(s for s in optuna.get_all_study_names(storage_url) if s.startswith("browse/"))
    noted = optuna.load_study(study_name=names[-1], storage=storage_url)

    port = free_port()
    server = subprocess.Popen(
        autotune_command("dashboard", "--storage", storage_url, "--port", str(port)),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base_url = f"http://127.0.0.1:{port}"
    try:
        wait_until_serving(f"{base_url}/api/studies", server)
        yield Dashboard(base_url, names, noted._study_id)
    finally:
        server.terminate()
        server.communicate(timeout=30)


def test_chromium_renders_the_study_list_a_study_and_its_note(
    dashboard: Dashboard, tmp_path: Path
) -> None:
    listing = rendered(f"{dashboard.base_url}/dashboard", tmp_path / "profile-list")
    for name in dashboard.study_names:
        assert name in listing, f"{name} missing from the study list"

    page = f"{dashboard.base_url}/dashboard/studies/{dashboard.noted_study_id}"
    study = rendered(page, tmp_path / "profile-study")
    assert dashboard.study_names[-1] in study
    for title in ("learning curves", "trials per stage"):  # the report's figures
        assert title in study, f"figure {title!r} missing from the study page"

    note = rendered(f"{page}/note", tmp_path / "profile-note")
    for text in ("The answer", "Summary", "Pipeline"):  # headings and lines of the note
        assert text in note, f"{text!r} missing from the study's note page"

    image = screenshot(f"{page}/note", tmp_path / "note.png", tmp_path / "profile-shot")
    assert image.startswith(PNG_SIGNATURE) and len(image) > 20_000
