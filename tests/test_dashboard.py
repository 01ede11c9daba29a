"""optuna-dashboard through a read-only database role: pages load, writes fail."""

from __future__ import annotations

from collections.abc import Iterator
import contextlib
import io
import json
from pathlib import Path
import uuid
from wsgiref.util import setup_testing_defaults

import optuna
from optuna.distributions import FloatDistribution
from optuna.trial import create_trial
import pytest
import sqlalchemy

from autotune._errors import StorageError
from autotune.campaign import create_campaign
from autotune.spec import load_study_spec
from autotune.storage import dashboard_app
from autotune.storage import open_storage
from autotune.worker._defaults import task_defaults
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
    assert [status[:3] for status, _ in writes] == ["500"] * 3, writes
    assert optuna.get_all_study_names(storage_url) == ["dash/joint/1"]
    storage.engine.dispose()


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
