"""Checkpoints in Optuna's artifact store, so any worker (and the dashboard) can find them."""

from __future__ import annotations

from dataclasses import dataclass
import logging
import os
from pathlib import Path
import shutil
from typing import Any
from typing import BinaryIO
import uuid

import optuna
from optuna.artifacts import Boto3ArtifactStore
from optuna.artifacts import FileSystemArtifactStore
from optuna.artifacts._protocol import ArtifactStore

from autotune._errors import StorageError

S3_PREFIX = "s3://"
_logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class CheckpointRef:
    """A checkpoint file in the artifact store and the step it was taken after."""

    artifact_id: str
    step: int

    def to_attr(self) -> dict[str, Any]:
        return {"artifact_id": self.artifact_id, "step": self.step}

    @classmethod
    def from_attr(cls, value: Any) -> CheckpointRef | None:
        """The reference stored in a user attribute, or None if absent or malformed."""
        if not isinstance(value, dict):
            return None
        artifact_id, step = value.get("artifact_id"), value.get("step")
        if not isinstance(artifact_id, str) or not isinstance(step, int) or step < 1:
            return None
        return cls(artifact_id, step)


def open_artifact_store(location: str) -> ArtifactStore:
    """A directory (shared by all workers, e.g. NFS) or ``s3://bucket/prefix`` (boto3)."""
    if location.startswith(S3_PREFIX):
        bucket, _, prefix = location.removeprefix(S3_PREFIX).partition("/")
        if not bucket:
            raise StorageError(f"artifact location {location!r} names no bucket: s3://BUCKET/...")
        if prefix:
            raise StorageError(
                f"artifact location {location!r}: use a bucket of its own, s3://BUCKET"
            )
        try:
            return Boto3ArtifactStore(bucket)
        except ImportError:
            raise StorageError(
                f"artifact location {location!r} needs boto3: pip install boto3"
            ) from None
    path = Path(location)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise StorageError(f"artifact directory {path} cannot be created: {error}") from None
    return AtomicFileSystemArtifactStore(path)


class AtomicFileSystemArtifactStore(FileSystemArtifactStore):
    """Optuna's directory store, writing each file whole or not at all.

    A full or failing disk left empty and partial checkpoint files behind (Optuna writes in
    place): here the bytes go to a hidden temporary file, renamed into place when complete
    and removed when not.
    """

    def write(self, artifact_id: str, content_body: BinaryIO) -> None:
        target = self._get_filepath(artifact_id)
        temporary = target.with_name(f".{target.name}.{uuid.uuid4().hex}.partial")
        try:
            with open(temporary, "wb") as file:
                shutil.copyfileobj(content_body, file)
            os.replace(temporary, target)
        except BaseException:
            temporary.unlink(missing_ok=True)
            raise


class ArtifactStoreReadOnlyError(StorageError, PermissionError):
    """A write to, or removal from, an artifact store opened read-only."""


class ReadOnlyArtifactStore:
    """An artifact store that reads through and refuses every write and removal.

    The read-only dashboard's: optuna-dashboard writes and removes artifacts before it
    touches the database, so a read-only database role alone does not protect them.
    """

    def __init__(self, store: ArtifactStore) -> None:
        self._store = store

    def open_reader(self, artifact_id: str) -> BinaryIO:
        return self._store.open_reader(artifact_id)

    def write(self, artifact_id: str, content_body: BinaryIO) -> None:
        raise ArtifactStoreReadOnlyError(f"artifact store is read-only: {artifact_id} not written")

    def remove(self, artifact_id: str) -> None:
        raise ArtifactStoreReadOnlyError(f"artifact store is read-only: {artifact_id} not removed")


class CheckpointStore:
    """Upload a trial's checkpoint file and fetch one back, through an artifact store."""

    def __init__(self, artifact_store: ArtifactStore) -> None:
        self._store = artifact_store

    @property
    def artifact_store(self) -> ArtifactStore:
        """The store itself (the report's figures are kept there too)."""
        return self._store

    def upload(self, trial: optuna.Trial, path: Path, step: int) -> CheckpointRef:
        """Store the checkpoint as an artifact of the trial (the dashboard lists it there);
        the caller records the reference where its readers look for it."""
        artifact_id = optuna.artifacts.upload_artifact(
            artifact_store=self._store, file_path=str(path), study_or_trial=trial
        )
        return CheckpointRef(artifact_id, step)

    def save_recovery(self, path: Path) -> str:
        """Store a recovery checkpoint outside Optuna's artifact records; its artifact id.

        Recovery checkpoints are superseded every few evals and removed when the trial
        ends, so they are not listed on the trial (the dashboard would show dead links).
        """
        artifact_id = f"recovery-{uuid.uuid4()}"
        with open(path, "rb") as file:
            self._store.write(artifact_id, file)
        return artifact_id

    def remove(self, artifact_id: str) -> None:
        """Delete a stored checkpoint; one already gone is fine."""
        try:
            self._store.remove(artifact_id)
        except Exception as error:  # missing, or the store is unreachable: it only costs space
            _logger.debug("checkpoint %s not removed: %s", artifact_id, error)

    def download(self, ref: CheckpointRef, directory: Path) -> Path:
        """Copy the checkpoint into ``directory``; the local file's path."""
        path = Path(directory) / f"resume-{ref.step:08d}.pt"
        optuna.artifacts.download_artifact(
            artifact_store=self._store, file_path=str(path), artifact_id=ref.artifact_id
        )
        return path
