"""Optuna's gRPC storage proxy in front of autotune's PostgreSQL: what works, what it gives up.

A real proxy process (``run_grpc_proxy_server`` over the test database) and real clients:
a finished campaign's studies read through it like through the database, and plain Optuna
trials run through it; but it is no heartbeat storage, and autotune's workers, which need
PostgreSQL itself (advisory locks, the rung tables), refuse it (deploy/README.md).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
import subprocess
import sys
import time

import optuna
from optuna.storages import GrpcStorageProxy
from optuna.storages._heartbeat import is_heartbeat_enabled
import pytest

from autotune.storage import engine_of
from tests.conftest import free_port
from tests.conftest import run_autotune
from tests.conftest import write_study

pytestmark = pytest.mark.e2e

PROXY = (
    "import sys; from optuna.storages import RDBStorage, run_grpc_proxy_server; "
    "run_grpc_proxy_server(RDBStorage(sys.argv[1]), host='127.0.0.1', port=int(sys.argv[2]))"
)


@pytest.fixture
def proxy(storage_url: str) -> Iterator[GrpcStorageProxy]:
    """A proxy process on the test database, and a client connected to it."""
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-c", PROXY, storage_url, str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    client = GrpcStorageProxy(host="127.0.0.1", port=port)
    deadline = time.monotonic() + 60
    while True:
        assert server.poll() is None, server.communicate()[0]
        try:
            client.get_all_studies()
            break
        except Exception:  # not serving yet
            assert time.monotonic() < deadline, "the gRPC proxy did not start in 60 s"
            time.sleep(0.3)
    try:
        yield client
    finally:
        client.close()
        server.terminate()
        server.communicate(timeout=30)


def test_studies_read_and_plain_trials_run_through_the_proxy(
    storage_url: str, tmp_path: Path, proxy: GrpcStorageProxy
) -> None:
    spec = write_study(tmp_path, "proxied", trials=3, max_train_steps=40)
    for command in (("create", str(spec)), ("worker", "proxied")):
        result = run_autotune(*command, "--storage", storage_url)
        assert result.returncode == 0, result.stdout + result.stderr

    direct = optuna.load_study(study_name="proxied/joint/1", storage=storage_url).trials
    through = optuna.load_study(study_name="proxied/joint/1", storage=proxy).trials
    assert [(t.number, t.state, t.value, t.params) for t in through] == [
        (t.number, t.state, t.value, t.params) for t in direct
    ]
    assert through[0].user_attrs["seed"] == direct[0].user_attrs["seed"]

    plain = optuna.create_study(study_name="plain", storage=proxy)
    plain.optimize(lambda trial: (trial.suggest_float("x", 0, 1) - 0.3) ** 2, n_trials=3)
    assert len(optuna.load_study(study_name="plain", storage=storage_url).trials) == 3


def test_the_proxy_has_no_heartbeat_and_autotune_workers_refuse_it(
    proxy: GrpcStorageProxy,
) -> None:
    assert not is_heartbeat_enabled(proxy)  # a dead client's trials would stay RUNNING
    with pytest.raises(TypeError, match="needs an RDBStorage on PostgreSQL"):
        engine_of(proxy)
