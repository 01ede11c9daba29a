"""A full or unusable artifact store: no partial checkpoint files, one warning per trial
(not one per eval), and ``status`` says recovery checkpoints are failing."""

from __future__ import annotations

import logging
from pathlib import Path
import subprocess
import sys

import pytest

from autotune.campaign import load_campaign
from autotune.campaign._trial_attrs import ATTR_RECOVERY_ERROR
from autotune.report._summary import status_lines
from autotune.storage import CheckpointStore
from autotune.storage import open_storage
from autotune.storage._artifacts import AtomicFileSystemArtifactStore
from autotune.worker._worker import Worker
from autotune.worker._worker import WorkerOptions
from tests.conftest import REPO_ROOT
from tests.conftest import run_autotune
from tests.conftest import write_study

WRITE_PAST_A_FILE_SIZE_LIMIT = """
import resource, signal, sys
from autotune.storage import CheckpointStore, open_artifact_store
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG
resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))  # a disk that fills after 4 KiB
try:
    CheckpointStore(open_artifact_store(sys.argv[1])).save_recovery(sys.argv[2])
except OSError as error:
    print("failed:", error.strerror)
"""


def test_a_checkpoint_the_disk_cannot_hold_leaves_no_partial_file(tmp_path: Path) -> None:
    source, store = tmp_path / "checkpoint.pt", tmp_path / "artifacts"
    source.write_bytes(b"x" * 20_000)
    store.mkdir()
    ran = subprocess.run(
        [sys.executable, "-c", WRITE_PAST_A_FILE_SIZE_LIMIT, str(store), str(source)],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        check=False,
    )
    assert ran.stdout.startswith("failed: File too large"), ran.stdout + ran.stderr
    assert list(store.iterdir()) == []


def test_failing_recovery_checkpoints_warn_once_per_trial_and_show_in_status(
    storage_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    spec = write_study(
        tmp_path, "nostore", trials=2, max_train_steps=200, extra="checkpoint_interval: 20\n"
    )
    assert run_autotune("create", str(spec), "--storage", storage_url).returncode == 0
    storage = open_storage(storage_url)
    unusable = CheckpointStore(AtomicFileSystemArtifactStore(tmp_path / "gone"))  # no such dir
    worker = Worker(
        load_campaign("nostore", storage), storage, WorkerOptions(worker_id="w"), unusable
    )
    with caplog.at_level(logging.WARNING, logger="autotune.worker"):
        worker.run()
    warnings = [r for r in caplog.records if "recovery checkpoint failed" in r.getMessage()]
    campaign = load_campaign("nostore", storage)
    trials = [t for s in campaign.studies for t in campaign.trials_of(s)]
    failing = [t for t in trials if ATTR_RECOVERY_ERROR in t.user_attrs]
    assert failing and len(warnings) == len(failing), [r.getMessage() for r in warnings]
    assert "FileNotFoundError" in failing[0].user_attrs[ATTR_RECOVERY_ERROR]
    status = "\n".join(status_lines(campaign))
    assert f"recovery checkpoints are failing: {len(failing)} trial(s)" in status
    assert not (tmp_path / "gone").exists()
