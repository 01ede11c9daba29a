"""Optuna's own storage contract (``StorageTestCase``) over autotune's storage.

Optuna runs this suite over every storage backend it ships; autotune's studies are ordinary
Optuna studies, so its storage must pass it too, in each way it is deployed: as
``open_storage`` opens it (write-behind), writing through (``flush_interval_s=0``), and
behind Optuna's gRPC storage proxy (for very many clients, deploy/README.md).

Each test sees an empty database and a new storage on it: one database for the module, its
tables emptied and their ids restarted before each test. (A new database per test costs
about 0.5 s of setup each, a minute and a half over the suite's ~180 tests.)
"""

from __future__ import annotations

from collections.abc import Iterator
import enum
import uuid
import warnings

import optuna
from optuna.distributions import FloatDistribution
from optuna.storages import BaseStorage
from optuna.storages import GrpcStorageProxy
from optuna.storages import RDBStorage
from optuna.storages._grpc.server import make_server
from optuna.storages._rdb import models
from optuna.study import StudyDirection
from optuna.testing.pytest_storages import StorageTestCase
from optuna.trial import TrialState
import pytest
import sqlalchemy

from autotune.storage import WriteBehindStorage
from autotune.storage import open_storage
from tests.conftest import free_port

HOUR = 3600.0  # longer than any test: every write stays buffered until something flushes it
_VERSION_TABLES = {models.VersionInfoModel.__tablename__, "alembic_version"}
_SEQUENCES = sqlalchemy.text(
    "SELECT sequencename FROM pg_sequences WHERE schemaname = current_schema()"
)


class Mode(enum.Enum):
    """How a client reaches autotune's storage."""

    WRITE_BEHIND = "write_behind"
    WRITE_THROUGH = "write_through"
    GRPC_PROXY = "grpc_proxy"  # a client of the proxy, in front of the write-behind storage


@pytest.fixture(scope="module")
def contract_url(server_url: str) -> Iterator[str]:
    """A database for the module. Commits do not wait for the disk (no test needs a commit
    to survive a crash), which halves the time of tests that write hundreds of trials."""
    name = f"autotune_contract_{uuid.uuid4().hex[:12]}"
    admin = sqlalchemy.create_engine(server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(sqlalchemy.text(f'CREATE DATABASE "{name}"'))
        connection.execute(
            sqlalchemy.text(f'ALTER DATABASE "{name}" SET synchronous_commit = off')
        )
    url = sqlalchemy.engine.make_url(server_url).set(database=name)
    yield url.render_as_string(hide_password=False)
    with admin.connect() as connection:
        connection.execute(sqlalchemy.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def _empty(engine: sqlalchemy.Engine) -> None:
    """Remove every study and trial and restart their ids: as good as a new database (and
    faster than TRUNCATE on tables this small)."""
    with engine.begin() as connection:
        for table in reversed(models.BaseModel.metadata.sorted_tables):
            if table.name not in _VERSION_TABLES:
                connection.execute(table.delete())
        for sequence in connection.execute(_SEQUENCES).scalars().all():
            connection.execute(sqlalchemy.text(f'ALTER SEQUENCE "{sequence}" RESTART'))


def _mode_params() -> list[Mode | object]:
    """Every mode; the proxy's (a gRPC server per test) in the full suite only, as the other
    servers' tests are (the fast lane keeps the same contract over the storage itself)."""
    return [
        pytest.param(mode, marks=pytest.mark.e2e) if mode is Mode.GRPC_PROXY else mode
        for mode in Mode
    ]


@pytest.fixture(params=_mode_params(), ids=lambda mode: mode.value)
def storage(request: pytest.FixtureRequest, contract_url: str) -> Iterator[BaseStorage]:
    """autotune's storage on an empty database, directly or through the gRPC proxy."""
    mode: Mode = request.param
    backend = open_storage(
        contract_url, flush_interval_s=0.0 if mode is Mode.WRITE_THROUGH else HOUR
    )
    assert isinstance(backend, WriteBehindStorage)
    _empty(backend.engine)
    try:
        if mode is Mode.GRPC_PROXY:
            yield from _proxied(backend)
        else:
            yield backend
    finally:
        backend.engine.dispose()


def _proxied(backend: BaseStorage) -> Iterator[GrpcStorageProxy]:
    """A proxy server in this process, as Optuna's own tests run it, and a client of it
    (``start`` has bound the port when it returns: the client can call at once)."""
    port = free_port()
    server = make_server(backend, "127.0.0.1", port)
    server.start()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        client = GrpcStorageProxy(host="127.0.0.1", port=port)
    try:
        yield client
    finally:
        client.close()
        server.stop(grace=None).wait()


class TestAutotuneStorage(StorageTestCase):
    """Every test of Optuna's contract, over each mode above."""

    @pytest.mark.parametrize("param_names", [["a", "b"], ["b", "a"]])
    def test_get_all_trials_params_order(
        self, storage: BaseStorage, param_names: list[str]
    ) -> None:
        """The gRPC proxy sends parameters in a protobuf map, which keeps no order (Optuna's
        own suite skips this test for the proxy, over any backend): through the proxy, the
        same parameters in any order."""
        if not isinstance(storage, GrpcStorageProxy):
            super().test_get_all_trials_params_order(storage, param_names)
            return
        study_id = storage.create_new_study(directions=[StudyDirection.MINIMIZE])
        trial_id = storage.create_new_trial(study_id)
        for name in param_names:
            storage.set_trial_param(trial_id, name, 1.0, FloatDistribution(0.0, 2.0))
        assert sorted(storage.get_all_trials(study_id)[0].params) == sorted(param_names)


# --- what the contract asks of write-behind, beyond Optuna's tests ----------------------------


@pytest.fixture
def pair(contract_url: str) -> Iterator[tuple[WriteBehindStorage, RDBStorage]]:
    """A write-behind storage and a plain one (another process) on an empty database."""
    buffered = open_storage(contract_url, flush_interval_s=HOUR)
    assert isinstance(buffered, WriteBehindStorage)
    _empty(buffered.engine)
    plain = RDBStorage(contract_url)
    yield buffered, plain
    buffered.engine.dispose()
    plain.engine.dispose()


def test_a_trial_started_here_is_written_behind_and_others_through(
    pair: tuple[WriteBehindStorage, RDBStorage],
) -> None:
    buffered, plain = pair
    study_id = buffered.create_new_study([StudyDirection.MINIMIZE])
    waiting = TrialState.WAITING
    enqueued = plain.create_new_trial(study_id, optuna.trial.create_trial(state=waiting))
    elsewhere = plain.create_new_trial(study_id)
    assert buffered.set_trial_state_values(enqueued, TrialState.RUNNING)  # started here

    buffered.set_trial_intermediate_value(enqueued, 1, 0.5)
    buffered.set_trial_intermediate_value(elsewhere, 1, 0.5)
    assert plain.get_trial(enqueued).intermediate_values == {}  # buffered
    assert plain.get_trial(elsewhere).intermediate_values == {1: 0.5}  # written through
    buffered.flush(enqueued)
    assert plain.get_trial(enqueued).intermediate_values == {1: 0.5}


def test_writes_to_trials_of_a_deleted_study_raise_at_the_call(
    pair: tuple[WriteBehindStorage, RDBStorage],
) -> None:
    buffered, plain = pair
    first, second, third = (buffered.create_new_study([StudyDirection.MINIMIZE]) for _ in "123")
    here, gone = buffered.create_new_trial(first), buffered.create_new_trial(second)
    buffered.set_trial_user_attr(gone, "k", 1)
    buffered.delete_study(second)
    with pytest.raises(KeyError):
        buffered.set_trial_user_attr(gone, "k", 2)

    buffered.set_trial_user_attr(here, "k", 1)
    plain.delete_study(first)  # by another process: its buffered write is dropped at a read
    assert buffered.get_all_trials(third) == []
    with pytest.raises(KeyError):
        buffered.set_trial_user_attr(here, "k", 2)
