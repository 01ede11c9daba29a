"""Deployment files (deploy/): the invariants that matter, checked without Docker, Kubernetes
or Slurm. Pure and fast: YAML parsed with yaml.safe_load_all, SQL and shell read as text,
every ``autotune ...`` command parsed with the real command-line parser."""

from __future__ import annotations

import argparse
from collections.abc import Iterator
import configparser
import itertools
from pathlib import Path
import re
import shlex
import shutil
import subprocess
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from autotune.cli import _parser
from autotune.report._coordination import Coordination
from autotune.report._coordination import coordination_lines
from autotune.spec import load_study_spec

REPO_ROOT = Path(__file__).resolve().parent.parent
DEPLOY = REPO_ROOT / "deploy"
COMPOSE = DEPLOY / "docker-compose.yml"
ENV_EXAMPLE = DEPLOY / ".env.example"
DOCKERFILE = DEPLOY / "Dockerfile"
K8S = DEPLOY / "kubernetes"
ROLES_SQL = DEPLOY / "postgres" / "roles.sql"
SBATCH = DEPLOY / "slurm" / "autotune-workers.sbatch"
README = DEPLOY / "README.md"
PGBOUNCER = K8S / "pgbouncer.yaml"
PGBOUNCER_NAME = "autotune-pgbouncer"

WORKER_ROLE = "autotune_worker"
DASHBOARD_ROLE = "autotune_dashboard"
SUBCOMMANDS = (
    "run|create|worker|status|best|report|delete|dashboard|tasks|probe-batch"  # autotune's
)
# Shell variables that must expand to something typed (e.g. an int) in a parsed command.
SAMPLE_VARIABLES = {"SLURM_CPUS_PER_TASK": "1", "SLURM_ARRAY_TASK_ID": "0", "SLURM_JOB_ID": "1"}
PLACEHOLDERS = ("PASSWORD", "***")  # whole values; anything containing CHANGE_ME is one too


# --- helpers ---------------------------------------------------------------------------------


def _yaml_docs(path: Path) -> list[Any]:
    return [doc for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")) if doc]


def _compose() -> dict[str, Any]:
    (compose,) = _yaml_docs(COMPOSE)
    return compose


def _service(name: str) -> dict[str, Any]:
    return _compose()["services"][name]


def _k8s_objects() -> list[dict[str, Any]]:
    return [doc for path in sorted(K8S.glob("*.yaml")) for doc in _yaml_docs(path)]


def _k8s(kind: str, name: str) -> dict[str, Any]:
    found = [o for o in _k8s_objects() if o["kind"] == kind and o["metadata"]["name"] == name]
    assert len(found) == 1, f"expected one {kind} {name!r} in {K8S}, found {len(found)}"
    return found[0]


def _autotune_workloads() -> list[dict[str, Any]]:
    """The Jobs and Deployments that run autotune (PgBouncer's Deployment does not)."""
    return [
        o
        for o in _k8s_objects()
        if o["kind"] in ("Job", "Deployment") and o["metadata"]["name"] != PGBOUNCER_NAME
    ]


def _pgbouncer_ini() -> configparser.ConfigParser:
    ini = configparser.ConfigParser(inline_comment_prefixes=(";",), comment_prefixes=(";", "#"))
    ini.read_string(_k8s("ConfigMap", PGBOUNCER_NAME)["data"]["pgbouncer.ini"])
    return ini


def _pod_spec(obj: dict[str, Any]) -> dict[str, Any]:
    return obj["spec"]["template"]["spec"]


def _containers(obj: dict[str, Any]) -> list[dict[str, Any]]:
    return _pod_spec(obj)["containers"]


def _env(container: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {item["name"]: item for item in container.get("env", [])}


def _expand(token: str) -> str:
    """Shell/Kubernetes variable references replaced by sample values (defaults win)."""
    token = re.sub(r"\$\{(\w+):-([^}]*)\}", r"\2", token)
    token = re.sub(r"\$\{(\w+):\?[^}]*\}", "x", token)
    token = re.sub(r"\$\((\w+)\)", lambda m: SAMPLE_VARIABLES.get(m[1], m[1].lower()), token)
    return re.sub(r"\$\{?(\w+)\}?", lambda m: SAMPLE_VARIABLES.get(m[1], m[1].lower()), token)


def _parse(args: list[str], source: str):  # noqa: ANN202
    """The parsed arguments; options must be spelled out (argparse would accept prefixes)."""
    expanded = [_expand(arg) for arg in args]
    parser = _parser()
    try:
        parsed = parser.parse_args(expanded)
    except SystemExit:
        pytest.fail(f"{source}: `autotune {shlex.join(args)}` does not parse with autotune's CLI")
    (commands,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    known = commands.choices[parsed.command]._option_string_actions
    for arg in expanded:
        option = arg.split("=", 1)[0]
        if option.startswith("-"):
            assert option in known, f"{source}: {option} is not an option of {parsed.command}"
    return parsed


def _shell_invocations(text: str) -> Iterator[list[str]]:
    """Argument lists after each ``autotune SUBCOMMAND`` in shell text (comments dropped)."""
    joined = re.sub(r"\\\n\s*", " ", text)
    for line in joined.splitlines():
        if line.lstrip().startswith("#"):
            continue
        for match in re.finditer(rf"(?:^|[\s/])autotune\s+((?:{SUBCOMMANDS})\b.*)$", line):
            if line[: match.start()].rstrip().endswith(("-n", "--namespace", "namespace")):
                continue  # kubectl -n autotune create ...: the namespace, not the command
            rest = re.split(r"\s(?:\||&&|;|>)\s", match[1])[0]
            yield shlex.split(rest, comments=True)


def _readme_shell_blocks() -> str:
    return "\n".join(re.findall(r"```sh\n(.*?)```", README.read_text(encoding="utf-8"), re.S))


def _is_reference_or_placeholder(value: str) -> bool:
    value = value.strip().strip("\"',")
    return (
        value.startswith("$")  # ${VAR} / $VAR / $(command): filled in at run time
        or value.startswith(":'")  # a psql variable, :'name'
        or "CHANGE_ME" in value
        or value in PLACEHOLDERS
    )


def _inline_secrets(text: str) -> list[str]:
    """Passwords written out: in URLs (user:password@) and in password keys/assignments."""
    found = []
    for match in re.finditer(r"\b[a-z][a-z0-9+.-]*://[^\s:/@]+:([^\s@/]*)@", text):
        if not _is_reference_or_placeholder(match[1]):
            found.append(match[0])
    # KEY: value / KEY=value, KEY not inside ${...}; ":'name'" is a psql variable, not a value
    pattern = r"(?i)(?<![{$])\b[\w.-]*passw(?:or)?d[\w.-]*[\"']?[ \t]*(?::(?!')|=)[ \t]*(\S+)"
    for match in re.finditer(pattern, text):
        if not _is_reference_or_placeholder(match[1]):
            found.append(match[0])
    password_literal = r"(?i)\bPASSWORD\s+'[^']*'"  # SQL: PASSWORD 'secret'
    found += [m[0] for m in re.finditer(password_literal, text)]
    return found


def _strings(node: Any) -> Iterator[str]:
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for value in node.values():
            yield from _strings(value)
    elif isinstance(node, list):
        for value in node:
            yield from _strings(value)


def _deploy_text_files() -> list[Path]:
    return sorted(p for p in DEPLOY.rglob("*") if p.is_file() and p.name != ".env")


def _sql_statements() -> list[str]:
    """roles.sql without comments and psql meta-commands, split into SQL statements."""
    lines = []
    for line in ROLES_SQL.read_text(encoding="utf-8").splitlines():
        code = line.split("--", 1)[0].strip()
        if code and not code.startswith("\\"):
            lines.append(re.sub(r"\\g(set|exec)\s*$", ";", code))
    return [" ".join(s.split()) for s in " ".join(lines).split(";") if s.strip()]


def _grants_to(role: str) -> list[str]:
    return [
        s
        for s in _sql_statements()
        if re.search(r"\bGRANT\b", s) and re.search(rf"\bTO\b[^;]*\b{role}\b", s)
    ]


# --- commands match the CLI ------------------------------------------------------------------


def test_dockerfile_runs_autotune_as_entrypoint_with_cpu_torch_first() -> None:
    text = DOCKERFILE.read_text(encoding="utf-8")
    assert re.search(r"^FROM python:3\.11-slim$", text, re.M)
    assert re.search(r'^ENTRYPOINT \["autotune"\]$', text, re.M)  # compose commands = args
    torch = text.index("pip install torch==2.13.0 --index-url")
    assert "https://download.pytorch.org/whl/cpu" in text
    autotune = re.search(r"^RUN pip install \.", text, re.M)
    assert autotune and torch < autotune.start(), "torch (CPU) must come before `pip install .`"
    assert re.search(r"^COPY search_spaces ", text, re.M), "specs look for search_spaces/"
    assert re.search(r"^USER (?!root)\w+", text, re.M), "the image must not run as root"


def test_compose_commands_parse_with_the_cli() -> None:
    expected = {"init": "create", "worker": "worker", "dashboard": "dashboard"}
    for name, service in _compose()["services"].items():
        if name == "postgres":
            continue
        command = service["command"]
        args = shlex.split(command) if isinstance(command, str) else command
        parsed = _parse(args, f"{COMPOSE.name} service {name}")
        assert parsed.command == expected[name], f"service {name} runs {parsed.command}"


def test_kubernetes_commands_parse_with_the_cli() -> None:
    commands = {}
    for obj in _autotune_workloads():
        for container in _containers(obj):
            assert container["command"] == ["autotune"], f"{obj['metadata']['name']}"
            parsed = _parse(container["args"], f"{obj['kind']} {obj['metadata']['name']}")
            commands[obj["metadata"]["name"]] = parsed.command
    assert commands == {
        "autotune-init": "create",
        "autotune-workers": "worker",
        "autotune-dashboard": "dashboard",
    }


def test_slurm_and_readme_commands_parse_with_the_cli() -> None:
    sbatch = list(_shell_invocations(SBATCH.read_text(encoding="utf-8")))
    assert [args[0] for args in sbatch] == ["worker"]
    parsed = _parse(sbatch[0], SBATCH.name)
    assert parsed.threads == 1 and parsed.worker_id == "1-0"
    readme = list(_shell_invocations(_readme_shell_blocks()))
    assert {args[0] for args in readme} >= {"create", "worker", "status", "dashboard"}
    for args in readme:
        _parse(args, README.name)


def test_readme_compose_run_commands_parse_with_the_cli() -> None:
    """`docker compose ... run --rm [options] worker ARGS`: ARGS go to the autotune entrypoint."""
    text = re.sub(r"\\\n\s*", " ", _readme_shell_blocks())
    found = 0
    for line in text.splitlines():
        tokens = shlex.split(line, comments=True)
        if "compose" not in tokens or "run" not in tokens:
            continue
        rest = tokens[tokens.index("run") + 1 :]
        service = next(i for i, t in enumerate(rest) if t in _compose()["services"])
        _parse(rest[service + 1 :], f"{README.name}: {line.strip()}")
        found += 1
    assert found >= 2


def test_workers_run_the_campaign_that_init_creates(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # docker-compose: the spec is mounted from the repository.
    init = _parse(_service("init")["command"], "compose init")
    sources = {v.split(":")[1]: v.split(":")[0] for v in _service("init")["volumes"]}
    source = sources[str(init.spec.parent)]
    spec = load_study_spec(DEPLOY / source / init.spec.name)
    assert _parse(_service("worker")["command"], "compose worker").name == spec.name
    # Kubernetes: the spec and its search space come from the ConfigMap, placed by items.
    job = _k8s("Job", "autotune-init")
    (mount,) = _containers(job)[0]["volumeMounts"]
    (volume,) = [v for v in _pod_spec(job)["volumes"] if v["name"] == mount["name"]]
    data = _k8s("ConfigMap", volume["configMap"]["name"])["data"]
    for item in volume["configMap"]["items"]:
        target = tmp_path / item["path"]
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(data[item["key"]], encoding="utf-8")
    create = _parse(_containers(job)[0]["args"], "autotune-init")
    spec_path = tmp_path / create.spec.relative_to(mount["mountPath"])
    monkeypatch.chdir(tmp_path)  # the space must come from the ConfigMap, not ./search_spaces
    k8s_spec = load_study_spec(spec_path)
    workers = _parse(_containers(_k8s("Job", "autotune-workers"))[0]["args"], "workers")
    assert workers.name == k8s_spec.name


# --- no secrets inline -----------------------------------------------------------------------


def test_secret_scanner_flags_inline_passwords() -> None:
    assert _inline_secrets("url: postgresql://bob:hunter2@db/x")
    assert _inline_secrets("POSTGRES_PASSWORD: hunter2")
    assert _inline_secrets("CREATE ROLE bob LOGIN PASSWORD 'hunter2';")
    assert _inline_secrets("db_password=hunter2")
    assert not _inline_secrets("postgresql://bob:${BOB_PASSWORD:?set it}@db/x")
    assert not _inline_secrets("POSTGRES_PASSWORD=CHANGE_ME_superuser")
    assert not _inline_secrets("ALTER ROLE bob PASSWORD :'bob_password';")


@pytest.mark.parametrize("path", _deploy_text_files(), ids=lambda p: str(p.relative_to(DEPLOY)))
def test_no_password_is_written_inline(path: Path) -> None:
    assert _inline_secrets(path.read_text(encoding="utf-8")) == []


def test_compose_takes_every_variable_from_the_env_file_or_a_default() -> None:
    text = " ".join(_strings(_compose()))  # values only: comments may show the syntax
    defined = set(re.findall(r"^(\w+)=", ENV_EXAMPLE.read_text(encoding="utf-8"), re.M))
    required = set(re.findall(r"\$\{(\w+)(?::\?[^}]*)?\}", text))
    assert required <= defined, f"missing from .env.example: {sorted(required - defined)}"
    for key, value in re.findall(r"^(\w+)=(.*)$", ENV_EXAMPLE.read_text(), re.M):
        if "PASSWORD" in key:
            assert "CHANGE_ME" in value, f"{key} in .env.example must be a CHANGE_ME placeholder"
    environments = [s.get("environment", {}) for s in _compose()["services"].values()]
    for environment in environments:
        for key, value in environment.items():
            if "PASSWORD" in key or "STORAGE" in key:
                assert "${" in value, f"{key} must come from ${{...}} interpolation"


def test_kubernetes_secrets_come_from_secret_key_refs() -> None:
    secret = _k8s("Secret", "autotune-db")
    for obj in _autotune_workloads():
        for container in _containers(obj):
            storage = _env(container)["AUTOTUNE_STORAGE"]
            assert "value" not in storage, f"{obj['metadata']['name']}: URL written inline"
            ref = storage["valueFrom"]["secretKeyRef"]
            assert ref["name"] == secret["metadata"]["name"]
            assert ref["key"] in secret["stringData"]
    for key, value in secret["stringData"].items():
        assert "CHANGE_ME" in value, f"{key}: not a placeholder"
        if "://" in value and urlsplit(value).hostname != PGBOUNCER_NAME:
            assert "sslmode=require" in value, f"{key}: leaves the cluster without TLS"


# --- the dashboard is not public and cannot write ---------------------------------------------


def test_compose_publishes_only_on_loopback_and_dashboard_is_read_only() -> None:
    for name, service in _compose()["services"].items():
        for port in service.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), f"{name} publishes {port} publicly"
    dashboard = _service("dashboard")
    parsed = _parse(dashboard["command"], "compose dashboard")
    assert dashboard["ports"] == [f"127.0.0.1:{parsed.port}:{parsed.port}"]
    assert "postgres" not in [n for n, s in _compose()["services"].items() if "ports" in s]
    storage = dashboard["environment"]["AUTOTUNE_STORAGE"]
    assert storage.startswith(f"postgresql://{DASHBOARD_ROLE}:")
    for name in ("init", "worker"):
        assert _service(name)["environment"]["AUTOTUNE_STORAGE"].startswith(
            f"postgresql://{WORKER_ROLE}:"
        )


def test_kubernetes_dashboard_is_cluster_internal_and_read_only() -> None:
    kinds = {o["kind"] for o in _k8s_objects()}
    assert "Ingress" not in kinds
    services = [o for o in _k8s_objects() if o["kind"] == "Service"]
    assert services and all(s["spec"]["type"] == "ClusterIP" for s in services)
    deployment = _k8s("Deployment", "autotune-dashboard")
    (container,) = _containers(deployment)
    parsed = _parse(container["args"], "autotune-dashboard")
    assert container["ports"][0]["containerPort"] == parsed.port
    key = _env(container)["AUTOTUNE_STORAGE"]["valueFrom"]["secretKeyRef"]["key"]
    secret = _k8s("Secret", "autotune-db")["stringData"]
    assert secret[key].startswith(f"postgresql://{DASHBOARD_ROLE}:")
    assert "kubectl -n autotune port-forward service/autotune-dashboard" in README.read_text()


# --- database roles --------------------------------------------------------------------------


def test_dashboard_role_may_select_and_nothing_else() -> None:
    grants = _grants_to(DASHBOARD_ROLE)
    assert "GRANT SELECT ON ALL TABLES IN SCHEMA public TO autotune_dashboard" in grants
    assert (
        "ALTER DEFAULT PRIVILEGES FOR ROLE autotune_worker IN SCHEMA public "
        "GRANT SELECT ON TABLES TO autotune_dashboard"
    ) in grants
    for grant in grants:
        privileges = re.search(r"\bGRANT (.+?) ON\b", grant)
        assert privileges, f"role membership granted to the dashboard: {grant}"
        assert set(re.split(r",\s*", privileges[1])) <= {"SELECT", "USAGE", "CONNECT"}, grant
        assert not re.search(r"\b(INSERT|UPDATE|DELETE|TRUNCATE|ALL PRIVILEGES|CREATE)\b", grant)
    statements = _sql_statements()
    assert "ALTER ROLE autotune_dashboard SET default_transaction_read_only = on" in statements
    assert (
        "REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON ALL TABLES IN SCHEMA public "
        "FROM autotune_dashboard"
    ) in statements


def test_worker_role_may_create_tables_and_write_but_is_no_superuser() -> None:
    grants = _grants_to(WORKER_ROLE)
    assert "GRANT USAGE, CREATE ON SCHEMA public TO autotune_worker" in grants
    assert (
        "GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO autotune_worker"
        in grants
    )
    assert (
        "GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA public TO autotune_worker"
        in grants
    )
    assert any(g.startswith("GRANT CONNECT ON DATABASE autotune TO") for g in grants)
    assert "REVOKE ALL ON DATABASE autotune FROM PUBLIC" in _sql_statements()
    for statement in _sql_statements():
        if re.search(r"\b(CREATE|ALTER) ROLE\b", statement):
            powers = re.findall(
                r"\b(NO)?(SUPERUSER|CREATEDB|CREATEROLE|REPLICATION|BYPASSRLS)\b", statement
            )
            assert all(no for no, _ in powers), statement


def test_roles_sql_reads_passwords_from_the_environment_and_comments_every_grant() -> None:
    text = ROLES_SQL.read_text(encoding="utf-8")
    assert r"\getenv worker_password AUTOTUNE_WORKER_PASSWORD" in text
    assert r"\getenv dashboard_password AUTOTUNE_DASHBOARD_PASSWORD" in text
    assert "ALTER ROLE autotune_worker LOGIN PASSWORD :'worker_password'" in text
    lines = [line.strip() for line in text.splitlines()]
    grants = 0
    for number, line in enumerate(lines):
        previous = lines[number - 1] if number else ""
        continued = previous and not previous.startswith(("--", "\\")) and previous[-1] != ";"
        if continued or not re.match(r"(GRANT|ALTER DEFAULT PRIVILEGES)\b", line):
            continue
        grants += 1
        above = [x for x in lines[:number] if not x.startswith("\\")]  # skip \if, \connect
        comments = list(itertools.takewhile(lambda x: x.startswith("--"), reversed(above)))
        assert any(c.startswith("-- Why") for c in comments), f"line {number + 1}: no reason"
    assert grants >= 10


# --- workers: resources, signals, grace --------------------------------------------------------


def test_compose_workers_are_replicated_restarted_and_share_artifacts() -> None:
    worker = _service("worker")
    assert worker["deploy"]["replicas"] >= 2
    assert worker["deploy"]["resources"]["limits"]["cpus"]
    assert worker["restart"] == "on-failure"
    artifacts = worker["environment"]["AUTOTUNE_ARTIFACTS"]
    assert any(v.split(":")[1] == artifacts for v in worker["volumes"])
    assert worker["depends_on"]["init"]["condition"] == "service_completed_successfully"
    assert _service("init")["depends_on"]["postgres"]["condition"] == "service_healthy"
    postgres = _service("postgres")
    assert postgres["image"] == "postgres:16" and postgres["healthcheck"]["test"]
    assert "${POSTGRES_PASSWORD:?" in postgres["environment"]["POSTGRES_PASSWORD"]
    mounts = dict(v.split(":")[:2] for v in postgres["volumes"])
    roles = [src for src, dst in mounts.items() if dst.startswith("/docker-entrypoint-initdb.d/")]
    assert [(DEPLOY / src).resolve() for src in roles] == [ROLES_SQL.resolve()]
    for name, service in _compose()["services"].items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("."):
                assert (DEPLOY / source).exists(), f"{name}: bind mount {source} is missing"


def test_kubernetes_workers_have_resources_grace_and_restarts() -> None:
    job = _k8s("Job", "autotune-workers")
    assert job["apiVersion"] == "batch/v1"
    assert job["spec"]["parallelism"] >= 2 and job["spec"]["completions"] >= 1
    assert job["spec"]["backoffLimit"] >= 1
    pod = _pod_spec(job)
    assert pod["restartPolicy"] == "OnFailure"
    assert pod["terminationGracePeriodSeconds"] >= 300, "SIGTERM stops at the next eval"
    (container,) = pod["containers"]
    requests = container["resources"]["requests"]
    assert requests["cpu"] and requests["memory"]
    assert container["resources"]["limits"]["memory"]
    assert _env(container)["AUTOTUNE_ARTIFACTS"]["value"] == "/artifacts"
    assert {m["mountPath"] for m in container["volumeMounts"]} == {"/artifacts"}
    assert "# nvidia.com/gpu: 1" in (K8S / "workers-job.yaml").read_text()
    claims = [v["persistentVolumeClaim"]["claimName"] for v in pod["volumes"]]
    for claim in claims:
        assert _k8s("PersistentVolumeClaim", claim)["spec"]["accessModes"] == ["ReadWriteMany"]


def test_pgbouncer_pools_transactions_and_takes_its_password_from_the_secret() -> None:
    ini = _pgbouncer_ini()
    settings = ini["pgbouncer"]
    assert settings["pool_mode"] == "transaction"
    assert int(settings["default_pool_size"]) < int(settings["max_client_conn"])
    assert settings["server_tls_sslmode"] in ("require", "verify-ca", "verify-full")
    assert not any("password" in value for value in ini["databases"].values())
    deployment = _k8s("Deployment", PGBOUNCER_NAME)
    (container,) = _containers(deployment)
    auth_file = settings["auth_file"]
    assert auth_file in " ".join(container["args"]), "the userlist is written at start"
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in _pod_spec(deployment)["volumes"]}
    assert volumes[mounts[str(Path(auth_file).parent)]]["emptyDir"]["medium"] == "Memory"
    assert volumes[mounts["/etc/pgbouncer"]]["configMap"]["name"] == PGBOUNCER_NAME
    password = _env(container)["WORKER_PASSWORD"]
    assert "value" not in password, "the password is written inline"
    ref = password["valueFrom"]["secretKeyRef"]
    assert (
        ref["name"] == "autotune-db" and ref["key"] in _k8s("Secret", "autotune-db")["stringData"]
    )
    service = _k8s("Service", PGBOUNCER_NAME)
    assert service["spec"]["type"] == "ClusterIP"
    assert service["spec"]["selector"] == deployment["spec"]["selector"]["matchLabels"]
    (port,) = service["spec"]["ports"]
    assert settings["listen_port"] == str(container["ports"][0]["containerPort"]) == "6432"
    assert port["targetPort"] == container["ports"][0]["name"]


def test_workers_connect_through_pgbouncer_and_the_dashboard_directly() -> None:
    secret = _k8s("Secret", "autotune-db")["stringData"]
    (port,) = _k8s("Service", PGBOUNCER_NAME)["spec"]["ports"]
    (database,) = _pgbouncer_ini()["databases"]
    for name, expected_host in (
        ("autotune-workers", PGBOUNCER_NAME),
        ("autotune-init", PGBOUNCER_NAME),
        ("autotune-dashboard", "db_host"),  # urlsplit lowers host names
    ):
        (obj,) = [o for o in _autotune_workloads() if o["metadata"]["name"] == name]
        key = _env(_containers(obj)[0])["AUTOTUNE_STORAGE"]["valueFrom"]["secretKeyRef"]["key"]
        url = urlsplit(secret[key])
        assert url.hostname == expected_host, f"{name} connects to {url.hostname}"
        if expected_host == PGBOUNCER_NAME:
            assert url.port == port["port"] and url.path == f"/{database}"


def test_worker_role_ends_abandoned_transactions_whatever_the_pooling() -> None:
    assert (
        f"ALTER ROLE {WORKER_ROLE} SET idle_in_transaction_session_timeout = '120s'"
        in _sql_statements()
    )


def test_readme_explains_pgbouncer_then_the_capacity_plan() -> None:
    text = README.read_text(encoding="utf-8")
    section = "## PgBouncer (more than a few dozen workers)"
    plan = "## How far one PostgreSQL goes: a plan for 1,000 GPU workers"
    assert section in text and plan in text
    assert text.index(section) < text.index(plan)
    assert "kubectl -n autotune apply -f deploy/kubernetes/pgbouncer.yaml" in text


def test_the_capacity_plan_shows_what_status_really_prints() -> None:
    """The plan's example of `autotune status` is the line the code prints for its figures."""
    found = Coordination("big/joint/1", 200, 31.0, 1092.0, 12.0, 1519.0, 60.0)
    (line,) = coordination_lines(found, 0.4)
    text = " ".join(README.read_text(encoding="utf-8").split())
    assert line in text


def test_slurm_script_points_big_arrays_at_pgbouncer() -> None:
    text = SBATCH.read_text(encoding="utf-8")
    assert "PgBouncer" in text and re.search(r"^DIRECT_WORKERS_MAX=\d+$", text, re.M)


def test_slurm_script_is_an_array_job_that_warns_workers_before_the_limit() -> None:
    text = SBATCH.read_text(encoding="utf-8")
    assert text.startswith("#!/bin/bash\n")
    assert re.search(r"^#SBATCH --array=0-\d+$", text, re.M)
    signal = re.search(r"^#SBATCH --signal=(B:)?TERM@(\d+)$", text, re.M)
    assert signal and int(signal[2]) >= 60
    # Without "B:" Slurm signals job steps only: the worker must be one (srun).
    assert signal[1] or re.search(r"^srun\b.*\\\n(?:.*\\\n)*\s*autotune worker\b", text, re.M)
    assert '--worker-id "$SLURM_JOB_ID-$SLURM_ARRAY_TASK_ID"' in text
    assert "export AUTOTUNE_ARTIFACTS=" in text
    assert "chmod 600" in text and "stat -c '%a'" in text


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_slurm_script_is_valid_bash() -> None:
    result = subprocess.run(["bash", "-n", str(SBATCH)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
