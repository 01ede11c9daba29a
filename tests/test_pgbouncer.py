"""autotune through PgBouncer in transaction pooling mode (deploy/README.md, "PgBouncer").

A private pgbouncer process sits in front of the test PostgreSQL with a pool smaller than
the clients' connections, so server connections are really shared between clients. The
clients connect as a plain (non-superuser) role with the role-level
``idle_in_transaction_session_timeout`` of deploy/postgres/roles.sql; checks read the
database directly, not through pgbouncer.
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Iterator
from dataclasses import dataclass
import os
from pathlib import Path
import pwd
import subprocess
import threading
import time
import uuid

import optuna
from optuna.trial import TrialState
import psycopg2
import pytest
import sqlalchemy

import autotune
from autotune.storage import HeartbeatSettings
from autotune.storage import advisory_lock
from autotune.storage import end_abandoned_transactions
from autotune.storage import normalize_url
from autotune.storage import open_storage
from tests.conftest import FAST_HEARTBEAT
from tests.conftest import autotune_command
from tests.conftest import free_port
from tests.conftest import run_autotune
from tests.conftest import space_without_early_stopping
from tests.conftest import write_study

pytestmark = pytest.mark.e2e  # a pgbouncer process and worker processes

PGBOUNCER = Path("/usr/sbin/pgbouncer")  # Debian's package (make browser installs it)
# Server connections per (database, user): fewer than the clients' connections, yet one more
# than the advisory-lock connections the tests can hold at once (2 workers x main thread and
# janitor; 4 lock holders), so that the holder's own statements find a server connection.
# deploy/README.md, "PgBouncer", explains the rule.
POOL_SIZE = 5
ROLE_IDLE_TIMEOUT = "120s"  # deploy/postgres/roles.sql
WAIT_S = 60.0  # for conditions that normally hold within a second


@dataclass(frozen=True)
class Bouncer:
    """The test database through pgbouncer (as the worker role) and directly (as admin)."""

    url: str
    direct_url: str
    admin_dsn: str  # pgbouncer's admin console
    database: str
    role: str


def wait_until(condition: Callable[[], bool], what: str, timeout_s: float = WAIT_S) -> None:
    """Poll ``condition`` until it holds; fail naming ``what`` after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"timed out after {timeout_s} s waiting for {what}"
        time.sleep(0.05)


def console(bouncer: Bouncer, command: str) -> list[dict[str, object]]:
    """Run a command on pgbouncer's admin console; its rows as dicts."""
    connection = psycopg2.connect(bouncer.admin_dsn)
    connection.autocommit = True  # the console knows no BEGIN
    try:
        with connection.cursor() as cursor:
            cursor.execute(command)
            if cursor.description is None:
                return []
            names = [column.name for column in cursor.description]
            return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
    finally:
        connection.close()


def console_up(admin_dsn: str) -> bool:
    try:
        psycopg2.connect(admin_dsn, connect_timeout=2).close()
    except psycopg2.OperationalError:
        return False
    return True


def server_sessions(bouncer: Bouncer) -> list[int]:
    """The worker role's sessions in the test database (pids), from pg_stat_activity."""
    engine = sqlalchemy.create_engine(bouncer.direct_url)
    try:
        with engine.connect() as connection:
            rows = connection.execute(
                sqlalchemy.text(
                    "SELECT pid FROM pg_stat_activity "
                    "WHERE datname = current_database() AND usename = :role"
                ),
                {"role": bouncer.role},
            )
            return [pid for (pid,) in rows]
    finally:
        engine.dispose()


def server_connections(bouncer: Bouncer) -> int:
    return len(server_sessions(bouncer))


def client_connections(bouncer: Bouncer) -> int:
    """Clients pgbouncer holds for the test database (SHOW CLIENTS)."""
    return sum(
        1 for row in console(bouncer, "SHOW CLIENTS") if row["database"] == bouncer.database
    )


def user_for_pgbouncer(host: str) -> str:
    """Whom pgbouncer runs as when the tests run as root (it refuses root): the owner of a
    socket directory (the embedded server's is private to its user), else nobody."""
    if host.startswith("/"):
        return pwd.getpwuid(Path(host).stat().st_uid).pw_name
    return "nobody"


@pytest.fixture
def worker_role(server_url: str) -> Iterator[str]:
    """A plain login role set up like roles.sql's autotune_worker; dropped afterwards."""
    role = f"autotune_pgb_{uuid.uuid4().hex[:12]}"
    admin = sqlalchemy.create_engine(server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(sqlalchemy.text(f'CREATE ROLE "{role}" LOGIN'))
        connection.execute(
            sqlalchemy.text(
                f'ALTER ROLE "{role}" SET idle_in_transaction_session_timeout = :timeout'
            ),
            {"timeout": ROLE_IDLE_TIMEOUT},
        )
    yield role
    with admin.connect() as connection:
        connection.execute(sqlalchemy.text(f'DROP ROLE IF EXISTS "{role}"'))
    admin.dispose()


@pytest.fixture
def bouncer(worker_role: str, storage_url: str, tmp_path: Path) -> Iterator[Bouncer]:
    """pgbouncer in transaction mode in front of ``storage_url``'s server, on a free port.

    The role owns the test database (so it may create Optuna's tables); requested after
    the database, this stops before it is dropped, and the role is dropped last.
    """
    direct = sqlalchemy.engine.make_url(storage_url)
    admin = sqlalchemy.create_engine(storage_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(
            sqlalchemy.text(f'ALTER DATABASE "{direct.database}" OWNER TO "{worker_role}"')
        )
    admin.dispose()
    host = direct.host or direct.query["host"]  # the embedded server: a socket directory
    port = free_port()
    auth_file = tmp_path / "userlist.txt"
    auth_file.write_text(f'"{worker_role}" ""\n"{direct.username}" ""\n', encoding="utf-8")
    ini = tmp_path / "pgbouncer.ini"
    ini.write_text(
        "[databases]\n"
        f"{direct.database} = host={host} port={direct.port or 5432}\n"
        "[pgbouncer]\n"
        f"listen_addr = 127.0.0.1\nlisten_port = {port}\nunix_socket_dir =\n"
        f"auth_type = trust\nauth_file = {auth_file}\nadmin_users = {direct.username}\n"
        f"pool_mode = transaction\ndefault_pool_size = {POOL_SIZE}\nmax_client_conn = 1000\n",
        encoding="utf-8",
    )
    as_root = ["-u", user_for_pgbouncer(host)] if os.getuid() == 0 else []
    log = (tmp_path / "pgbouncer.log").open("wb")  # a file: a full pipe would stall it
    process = subprocess.Popen(
        [str(PGBOUNCER), *as_root, str(ini)], stdout=log, stderr=subprocess.STDOUT
    )
    admin_dsn = f"host=127.0.0.1 port={port} dbname=pgbouncer user={direct.username}"
    try:
        wait_until(lambda: process.poll() is not None or console_up(admin_dsn), "pgbouncer")
        assert process.poll() is None, (tmp_path / "pgbouncer.log").read_text()
        yield Bouncer(
            url=f"postgresql://{worker_role}@127.0.0.1:{port}/{direct.database}",
            direct_url=storage_url,
            admin_dsn=admin_dsn,
            database=direct.database,
            role=worker_role,
        )
    finally:
        process.terminate()
        process.wait(timeout=WAIT_S)
        log.close()


@dataclass(frozen=True)
class Peak:
    """The most connections seen at once while workers ran."""

    clients: int  # client connections pgbouncer held for the test database
    servers: int  # the worker role's server connections (pg_stat_activity)


def run_workers_watching(bouncer: Bouncer, name: str, count: int) -> Peak:
    """Run ``count`` workers at once through pgbouncer until they exit 0; the peak
    connection counts seen meanwhile."""
    workers = [
        subprocess.Popen(
            autotune_command("worker", name, "--storage", bouncer.url, *FAST_HEARTBEAT),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for _ in range(count)
    ]
    clients = servers = 0
    deadline = time.monotonic() + 300
    while any(worker.poll() is None for worker in workers) and time.monotonic() < deadline:
        clients = max(clients, client_connections(bouncer))
        servers = max(servers, server_connections(bouncer))
        time.sleep(0.05)  # a sample every 50 ms is plenty: the workers' clients stay connected
    outputs = [worker.communicate(timeout=WAIT_S)[0] for worker in workers]
    assert [worker.returncode for worker in workers] == [0] * count, outputs
    return Peak(clients, servers)


def test_three_workers_finish_a_two_round_campaign_through_pgbouncer(
    bouncer: Bouncer, tmp_path: Path
) -> None:
    spec = write_study(tmp_path, "bounced", trials=6, space=space_without_early_stopping(tmp_path))
    spec.write_text(spec.read_text() + "rounds:\n  - {budget_fraction: 0.5}\n  - {top_k: 2}\n")
    created = run_autotune("create", str(spec), "--storage", bouncer.url)
    assert created.returncode == 0, created.stdout + created.stderr

    peak = run_workers_watching(bouncer, "bounced", count=3)  # more clients than the pool

    # Clients outnumbered the pool; the server never had more than the pool.
    assert peak.clients > POOL_SIZE >= peak.servers, peak
    campaign = autotune.load("bounced", storage=bouncer.direct_url)
    assert [s.name for s in campaign.studies] == ["bounced/joint/1", "bounced/joint/2"]
    for study in campaign.studies:
        trials = optuna.load_study(study_name=study.name, storage=bouncer.direct_url).trials
        states = [t.state for t in trials]
        assert TrialState.RUNNING not in states and TrialState.WAITING not in states, states
        assert len({t.number for t in trials}) == len(trials)
        progress = campaign.progress(study)
        assert progress.complete + progress.pruned == study.trial_budget >= 1, progress
    status = run_autotune("status", "bounced", "--storage", bouncer.url)
    assert status.returncode == 0, status.stderr
    assert "answer: bounced/joint/2 #" in status.stdout, status.stdout


def test_advisory_locks_exclude_each_other_through_a_small_pool(bouncer: Bouncer) -> None:
    """Four holders, each with its own storage, count in a table by read-then-write under
    the lock (a lost update if two held it at once) and in this process."""
    holders, rounds = 4, 10
    storages = [open_storage(bouncer.url, HeartbeatSettings(1, 3)) for _ in range(holders)]
    with storages[0].engine.begin() as connection:
        connection.execute(sqlalchemy.text("CREATE TABLE counter (n integer NOT NULL)"))
        connection.execute(sqlalchemy.text("INSERT INTO counter VALUES (0)"))
    inside = []
    inside_lock = threading.Lock()
    overlaps = []

    def hold(storage: optuna.storages.RDBStorage) -> None:
        for _ in range(rounds):
            with advisory_lock(storage, "pgbouncer-test"):
                with inside_lock:
                    inside.append(threading.get_ident())
                    overlaps.append(len(inside))
                with storage.engine.begin() as connection:
                    n = connection.execute(sqlalchemy.text("SELECT n FROM counter")).scalar_one()
                with storage.engine.begin() as connection:
                    connection.execute(sqlalchemy.text("UPDATE counter SET n = :n"), {"n": n + 1})
                with inside_lock:
                    inside.remove(threading.get_ident())

    threads = [threading.Thread(target=hold, args=(storage,)) for storage in storages]
    for thread in threads:
        thread.start()
    wait_until(lambda: client_connections(bouncer) > POOL_SIZE, "more clients than the pool")
    for thread in threads:
        thread.join(timeout=WAIT_S)
    assert not any(thread.is_alive() for thread in threads)

    assert max(overlaps) == 1 and len(overlaps) == holders * rounds
    engine = sqlalchemy.create_engine(bouncer.direct_url)
    with engine.connect() as connection:
        assert (
            connection.execute(sqlalchemy.text("SELECT n FROM counter")).scalar_one()
            == holders * rounds
        )
    engine.dispose()
    assert server_connections(bouncer) <= POOL_SIZE
    for storage in storages:
        storage.engine.dispose()


def test_a_session_set_is_lost_but_the_role_setting_holds(bouncer: Bouncer) -> None:
    """What ``end_abandoned_transactions`` sets per session stays on the server connection
    it ran on; the client's later transactions may run on another, which has the role's."""
    engine = sqlalchemy.create_engine(normalize_url(bouncer.url), pool_size=1)
    end_abandoned_transactions(engine, timeout_s=7)
    with engine.connect() as connection:
        connection.execute(sqlalchemy.text("SELECT 1"))  # connected: the SET has run
    console(bouncer, f"RECONNECT {bouncer.database}")  # new server connections from now on
    wait_until(lambda: server_connections(bouncer) == 0, "the old server connections to close")
    with engine.connect() as connection:  # the same client connection (pool of 1)
        setting = connection.execute(
            sqlalchemy.text("SHOW idle_in_transaction_session_timeout")
        ).scalar_one()
    engine.dispose()
    assert setting == "2min"  # the role's 120 s, not the session's 7 s


def test_the_role_setting_ends_an_abandoned_transaction(bouncer: Bouncer) -> None:
    """A client that stops inside a transaction through pgbouncer has its server session
    ended by PostgreSQL (the deployment's 120 s, shortened here to 1 s)."""
    admin = sqlalchemy.create_engine(bouncer.direct_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(
            sqlalchemy.text(
                f"ALTER ROLE \"{bouncer.role}\" SET idle_in_transaction_session_timeout = '1s'"
            )
        )
    admin.dispose()
    client = psycopg2.connect(bouncer.url)
    with client.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")  # opens a transaction, then nothing
        (pid,) = cursor.fetchone()
    wait_until(lambda: pid not in server_sessions(bouncer), f"the server to end session {pid}")
    with pytest.raises(psycopg2.OperationalError), client.cursor() as cursor:
        cursor.execute("SELECT 1")
    client.close()


def test_waiters_for_a_lock_leave_the_pool_to_its_holder(bouncer: Bouncer) -> None:
    """More waiters than the pool has server connections: the holder's own statements (on
    other connections) still run, because a waiter holds no transaction between tries.
    Waiting inside ``pg_advisory_xact_lock`` would fill the pool and stall the holder until
    PgBouncer's query_wait_timeout (120 s)."""
    holder = open_storage(bouncer.url, HeartbeatSettings(1, 3))
    waiters = [open_storage(bouncer.url, HeartbeatSettings(1, 3)) for _ in range(POOL_SIZE)]
    acquired = []

    def wait_for_the_lock(storage: optuna.storages.RDBStorage) -> None:
        with advisory_lock(storage, "pgbouncer-pool"):
            acquired.append(storage)

    with advisory_lock(holder, "pgbouncer-pool"):
        threads = [threading.Thread(target=wait_for_the_lock, args=(w,)) for w in waiters]
        for thread in threads:
            thread.start()
        wait_until(lambda: client_connections(bouncer) > POOL_SIZE, "every waiter connected")
        statement = threading.Thread(target=holder.get_all_studies)
        statement.start()
        statement.join(timeout=30)
        assert not statement.is_alive(), "the holder's statement waited for a server connection"
        assert not acquired
    for thread in threads:
        thread.join(timeout=WAIT_S)
    assert len(acquired) == POOL_SIZE
    for storage in [holder, *waiters]:
        storage.engine.dispose()


def test_workers_that_start_together_do_not_stall_the_pool(bouncer: Bouncer) -> None:
    """Three times as many storages as the pool has connections, opened at once once the
    tables exist (a Kubernetes Job starting after its init Job): each checks Optuna's schema
    version one connection at a time.
    Optuna's own check holds a transaction on one connection while it opens a second, and so
    many at once would hold the whole pool waiting, until PgBouncer's query_wait_timeout."""
    open_storage(bouncer.url).engine.dispose()  # the tables, as `autotune create` makes them
    count = 3 * POOL_SIZE
    start = threading.Barrier(count)
    opened: list[optuna.storages.RDBStorage] = []

    def open_together() -> None:
        start.wait()
        opened.append(open_storage(bouncer.url, HeartbeatSettings(1, 3)))

    threads = [threading.Thread(target=open_together, daemon=True) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert len(opened) == count, f"{count - len(opened)} storages still opening after 30 s"
    for storage in opened:
        storage.engine.dispose()
