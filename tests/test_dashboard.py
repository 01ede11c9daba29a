"""optuna-dashboard through a read-only database role: pages load, writes fail."""

from __future__ import annotations

from collections.abc import Iterator
import contextlib
from dataclasses import dataclass
import io
import json
from pathlib import Path
import re
import uuid
from wsgiref.util import setup_testing_defaults

import optuna
from optuna.distributions import FloatDistribution
from optuna.trial import create_trial
import pytest
import sqlalchemy

from autotune._errors import AutotuneError
from autotune._errors import StorageError
from autotune.campaign import create_campaign
from autotune.spec import load_study_spec
from autotune.storage import ReadOnlyArtifactStore
from autotune.storage import check_exposure
from autotune.storage import dashboard_app
from autotune.storage import is_loopback
from autotune.storage import open_artifact_store
from autotune.storage import open_storage
from autotune.worker._defaults import task_defaults
from tests.conftest import free_port
from tests.conftest import run_autotune
from tests.conftest import write_study


def call(app, method: str, path: str, body: str = "") -> tuple[str, str]:  # noqa: ANN001
    """One request to a WSGI app: its status line and body."""
    environ: dict[str, object] = {
        "REQUEST_METHOD": method,
        "PATH_INFO": path,
        "CONTENT_TYPE": "application/json",
        "CONTENT_LENGTH": str(len(body.encode())),
        "wsgi.input": io.BytesIO(body.encode()),
    }
    setup_testing_defaults(environ)
    status: list[str] = []
    chunks = app(environ, lambda line, headers, exc_info=None: status.append(line))
    return status[0], b"".join(chunks).decode(errors="replace")


@contextlib.contextmanager
def read_only_role(storage_url: str) -> Iterator[str]:
    """A role that may only read the tables that exist now; its URL."""
    role = f"dashboard_{uuid.uuid4().hex[:8]}"
    url = sqlalchemy.engine.make_url(storage_url)
    admin = sqlalchemy.create_engine(storage_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        for statement in (
            f'CREATE ROLE "{role}" LOGIN',
            f'GRANT CONNECT ON DATABASE "{url.database}" TO "{role}"',
            f'GRANT USAGE ON SCHEMA public TO "{role}"',
            f'GRANT SELECT ON ALL TABLES IN SCHEMA public TO "{role}"',
        ):
            connection.execute(sqlalchemy.text(statement))
    try:
        yield url.set(username=role, password=None).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(sqlalchemy.text(f'DROP OWNED BY "{role}"'))
            connection.execute(sqlalchemy.text(f'DROP ROLE "{role}"'))
        admin.dispose()


@pytest.fixture
def read_only_url(storage_url: str, tmp_path: Path) -> Iterator[str]:
    """A campaign with one trial, and the URL of a role that may only read it."""
    spec = load_study_spec(write_study(tmp_path, "dash", trials=3))
    campaign, _ = create_campaign(spec, open_storage(storage_url), task_defaults(spec))
    campaign.optuna_study(campaign.current).add_trial(
        create_trial(
            value=0.5,
            params={"learning_rate": 0.01},
            distributions={"learning_rate": FloatDistribution(1e-4, 1.0, log=True)},
        )
    )
    with read_only_role(storage_url) as url:
        yield url


def test_read_only_role_before_any_campaign_is_a_clear_error(storage_url: str) -> None:
    with read_only_role(storage_url) as url, pytest.raises(StorageError) as raised:
        open_storage(url)
    message = str(raised.value)
    assert "cannot open the Optuna tables" in message and "autotune create" in message


def test_read_only_dashboard_loads_pages_and_refuses_writes(
    read_only_url: str, storage_url: str
) -> None:
    storage = open_storage(read_only_url)
    app = dashboard_app(storage, None, read_only=True)
    status, body = call(app, "GET", "/api/studies")
    assert status.startswith("200") and "dash/joint/1" in body
    study_id = json.loads(body)["study_summaries"][0]["study_id"]
    status, body = call(app, "GET", f"/api/studies/{study_id}")
    assert status.startswith("200") and '"trials"' in body
    assert call(app, "GET", "/dashboard")[0].startswith("200")

    create = json.dumps({"study_name": "intruder", "directions": ["minimize"]})
    note = json.dumps({"version": 1, "body": "overwritten"})
    writes = [
        call(app, "POST", "/api/studies", create),
        call(app, "PUT", f"/api/studies/{study_id}/note", note),
        call(app, "DELETE", f"/api/studies/{study_id}"),
    ]
    assert [status[:3] for status, _ in writes] == ["403"] * 3, writes
    assert all("read-only" in json.loads(body)["reason"] for _, body in writes), writes
    assert optuna.get_all_study_names(storage_url) == ["dash/joint/1"]
    storage.engine.dispose()


@dataclass(frozen=True)
class StoredArtifact:
    """A file uploaded to the campaign's study, and the store's directory."""

    directory: Path
    study_id: int
    trial_id: int
    artifact_id: str


@pytest.fixture
def stored_artifact(read_only_url: str, storage_url: str, tmp_path: Path) -> StoredArtifact:
    """A file in a directory artifact store, recorded on the campaign's study."""
    directory = tmp_path / "artifacts"
    checkpoint = tmp_path / "checkpoint.pt"
    checkpoint.write_bytes(b"weights")
    study = optuna.load_study(study_name="dash/joint/1", storage=storage_url)
    artifact_id = optuna.artifacts.upload_artifact(
        artifact_store=open_artifact_store(str(directory)),
        file_path=str(checkpoint),
        study_or_trial=study,
    )
    return StoredArtifact(directory, study._study_id, study.trials[0]._trial_id, artifact_id)


def test_read_only_dashboard_neither_writes_nor_removes_artifacts(
    read_only_url: str, stored_artifact: StoredArtifact
) -> None:
    """Issue 17: DELETE of a study removed its checkpoint files, POST of an artifact wrote one."""
    store = open_artifact_store(str(stored_artifact.directory))
    storage = open_storage(read_only_url)
    app = dashboard_app(storage, store, read_only=True)
    study, trial, artifact = (
        stored_artifact.study_id,
        stored_artifact.trial_id,
        stored_artifact.artifact_id,
    )
    before = sorted(stored_artifact.directory.iterdir())
    upload = json.dumps({"file": "data:text/plain;base64,aGVsbG8=", "filename": "x.txt"})
    attempts = [
        call(app, "DELETE", f"/api/studies/{study}", "{}"),
        call(app, "POST", f"/api/artifacts/{study}", upload),
        call(app, "POST", f"/api/artifacts/{study}/{trial}", upload),
        call(app, "DELETE", f"/api/artifacts/{study}/{artifact}"),
        call(app, "DELETE", f"/api/artifacts/{study}/{trial}/{artifact}"),
    ]
    assert [status[:3] for status, _ in attempts] == ["403"] * 5, attempts
    assert sorted(stored_artifact.directory.iterdir()) == before
    status, body = call(app, "GET", f"/artifacts/{study}/{artifact}")
    assert status.startswith("200") and body == "weights"  # reading still works
    storage.engine.dispose()


def _example_path(rule: str) -> str:
    """A concrete path for a bottle route rule: numbers and hex ids for its wildcards."""
    return re.sub(r"<[^>]*re:[^>]*>", "0a1b", re.sub(r"<[^>:]+:int>", "1", rule))


def test_every_write_route_of_the_read_only_dashboard_is_refused(read_only_url: str) -> None:
    """Each route optuna-dashboard answers with anything but GET gets 403, not its handler."""
    import optuna_dashboard

    storage = open_storage(read_only_url)
    routes = optuna_dashboard.wsgi(storage).routes
    writes = [(r.method, _example_path(r.rule)) for r in routes if r.method not in ("GET",)]
    assert len(writes) >= 15, writes  # the study, note, artifact, trial and LLM routes
    app = dashboard_app(storage, None, read_only=True)
    answers = {(method, path): call(app, method, path, "{}")[0] for method, path in writes}
    assert {status[:3] for status in answers.values()} == {"403"}, answers
    storage.engine.dispose()


def test_read_only_artifact_store_refuses_writes_and_removals(tmp_path: Path) -> None:
    store = ReadOnlyArtifactStore(open_artifact_store(str(tmp_path)))
    with pytest.raises(StorageError, match="read-only"):
        store.write("a", io.BytesIO(b"x"))
    (tmp_path / "b").write_bytes(b"kept")
    with pytest.raises(StorageError, match="read-only"):
        store.remove("b")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b"]
    assert store.open_reader("b").read() == b"kept"


def test_read_only_mode_refuses_a_role_that_can_write(storage_url: str, tmp_path: Path) -> None:
    spec = load_study_spec(write_study(tmp_path, "dash", trials=3))
    storage = open_storage(storage_url)
    create_campaign(spec, storage, task_defaults(spec))
    with pytest.raises(StorageError, match="this database role can write"):
        dashboard_app(storage, None, read_only=True)
    writable = dashboard_app(storage, None, read_only=False)
    assert call(writable, "GET", "/api/studies")[0].startswith("200")
    create = json.dumps({"study_name": "allowed", "directions": ["minimize"]})
    assert call(writable, "POST", "/api/studies", create)[0].startswith("20")  # the same write
    assert "allowed" in optuna.get_all_study_names(storage_url)


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.0.0.2", True),
        ("::1", True),
        ("localhost", True),
        ("0.0.0.0", False),
        ("::", False),
        ("192.0.2.1", False),
        ("no-such-host.invalid", False),
    ],
)
def test_loopback_hosts(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_dashboard_on_the_network_with_a_role_that_can_write_is_refused(
    storage_url: str, tmp_path: Path
) -> None:
    """Issue 17 item 4: ``--host 0.0.0.0`` with a writing role started with no warning."""
    spec = load_study_spec(write_study(tmp_path, "dash", trials=3))
    create_campaign(spec, open_storage(storage_url), task_defaults(spec))
    argv = ("dashboard", "--storage", storage_url, "--host", "0.0.0.0", "--port", str(free_port()))
    result = run_autotune(*argv, timeout=60)  # today's code serves: the timeout fails the test
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    for reason in ("no authentication", "can write", "--read-only", "--allow-writes-from-network"):
        assert reason in result.stderr, result.stderr


def test_dashboard_on_the_network_is_allowed_read_only_or_when_told(
    read_only_url: str, storage_url: str
) -> None:
    writer, reader = open_storage(storage_url), open_storage(read_only_url)
    with pytest.raises(AutotuneError, match="--allow-writes-from-network"):
        check_exposure(writer, "0.0.0.0", read_only=False, allow_writes_from_network=False)
    check_exposure(writer, "0.0.0.0", read_only=False, allow_writes_from_network=True)
    check_exposure(writer, "127.0.0.1", read_only=False, allow_writes_from_network=False)
    check_exposure(reader, "0.0.0.0", read_only=True, allow_writes_from_network=False)
    check_exposure(reader, "0.0.0.0", read_only=False, allow_writes_from_network=False)
    for storage in (writer, reader):
        storage.engine.dispose()


def test_the_dashboard_labels_the_objective_with_the_metric_name(read_only_url: str) -> None:
    """Issue 15: optuna-dashboard labelled the objective "Objective 0"."""
    storage = open_storage(read_only_url)
    app = dashboard_app(storage, None, read_only=True)
    study_id = storage.get_study_id_from_name("dash/joint/1")
    status, body = call(app, "GET", f"/api/studies/{study_id}")
    assert status.startswith("200")
    assert json.loads(body)["objective_names"] == ["val_loss"]
    assert optuna.load_study(study_name="dash/joint/1", storage=storage).metric_names == [
        "val_loss"
    ]
    storage.engine.dispose()
