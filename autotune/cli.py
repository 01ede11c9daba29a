"""Command line: thin wrappers over the library. Environment variables are read here only."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from collections.abc import Sequence
import importlib.metadata
import json
import logging
import os
from pathlib import Path
import shutil
import signal
import sys
from typing import TYPE_CHECKING
import warnings

import optuna
import yaml

from autotune._errors import AutotuneError
from autotune.campaign import Campaign
from autotune.campaign import delete_campaign
from autotune.campaign import list_campaigns
from autotune.campaign import load_campaign
from autotune.campaign._campaign import CreateOutcome
from autotune.campaign._campaign import campaign_study_names
from autotune.campaign._campaign import create_or_extend_campaign
from autotune.campaign._trial_attrs import INHERITED_BY_RETRIES
from autotune.report._answer import answer_dict
from autotune.report._answer import recipe_dict
from autotune.report._answer import recorded_on
from autotune.report._command import runnable_command
from autotune.report._progress import LinePart
from autotune.report._progress import campaign_finished
from autotune.report._storage_text import ELSEWHERE
from autotune.report._storage_text import no_embedded_storage
from autotune.report._storage_text import storage_label
from autotune.report._storage_text import worker_hint
from autotune.report._summary import pipeline_parts
from autotune.report._summary import run_summary
from autotune.report._summary import status_lines
from autotune.report._terminal import LiveLine
from autotune.spec import study_spec_from_dict
from autotune.storage import DEFAULT_STATE_DIR
from autotune.storage import HeartbeatSettings
from autotune.storage import mask_password
from autotune.storage import open_storage
from autotune.storage import redact_password
from autotune.storage import resolve_url
from autotune.storage import round_trip_ms
from autotune.storage._open import embedded_exists
from autotune.storage._storage_key import report_subdirectory
from autotune.worker._defaults import task_defaults
from autotune.worker._launcher import STORAGE_ENV
from autotune.worker._launcher import run_local_workers

if TYPE_CHECKING:  # matplotlib and plotly load only where a report is written
    from optuna.artifacts._protocol import ArtifactStore

    from autotune.report._report import Report

EXIT_USER_ERROR = 2
EXIT_CAMPAIGN_STOPPED = 3
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE: what a shell reports for a reader that went away
ARTIFACTS_ENV = "AUTOTUNE_ARTIFACTS"
MAX_SECONDS = 7 * 24 * 3600


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``autotune`` command."""
    args = _parser().parse_args(argv)
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())  # user tasks (package.module:factory) from the cwd
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    warnings.filterwarnings("ignore", module="optuna")
    optuna.logging.set_verbosity(logging.INFO if args.verbose else logging.WARNING)
    optuna.logging.disable_default_handler()  # Optuna's records take the format above
    optuna.logging.enable_propagation()
    try:
        code = args.handler(args)
        sys.stdout.flush()  # a reader that went away shows here, not at the interpreter's exit
        return code
    except AutotuneError as error:
        message = redact_password(str(error), getattr(args, "storage", None))
        print(f"autotune: error: {message}", file=sys.stderr)
        return EXIT_USER_ERROR
    except optuna.exceptions.StorageInternalError as error:
        print(f"autotune: error: {_database_failure(error, args)}", file=sys.stderr)
        return EXIT_USER_ERROR
    except BrokenPipeError:
        return _broken_pipe()


def _database_failure(error: optuna.exceptions.StorageInternalError, args) -> str:  # noqa: ANN001
    """What the database refused (the driver's first line, password masked) instead of
    Optuna's generic "exception during the commit": a read-only or timed-out session set
    by the URL's ``options``, a role without the right."""
    cause = getattr(error.__cause__, "orig", None) or error.__cause__ or error
    lines = str(cause).strip().splitlines() or [type(cause).__name__]
    detail = redact_password(lines[0], getattr(args, "storage", None))
    return (
        f"the database refused the operation: {detail} (check the storage URL's options "
        "and the database role's rights)"
    )


def _broken_pipe() -> int:
    """The reader of our output went away (``autotune status X | head``): stop quietly.

    stdout is pointed at /dev/null so that the interpreter's last flush fails no more.
    """
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # stdout is no file (captured in tests)
        pass
    finally:
        os.close(devnull)
    return EXIT_BROKEN_PIPE


EXAMPLES = """\
examples:
  autotune run studies/quickstart.yaml     create a campaign, run it with local workers
  autotune status quickstart               its progress (no name: list the campaigns)
  autotune best quickstart                 the best configuration so far, as JSON
  autotune export quickstart               the recommended recipe, as YAML
  autotune dashboard                       optuna-dashboard on the embedded server
  autotune create studies/quickstart.yaml --storage postgresql://user@host/db
  autotune worker quickstart --storage postgresql://user@host/db   (on every machine)

COMMAND --help shows a command's options."""


def _version() -> str:
    try:
        return importlib.metadata.version("autotune")
    except importlib.metadata.PackageNotFoundError:  # a checkout that was never installed
        return "unknown version"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="autotune",
        description="Tune PyTorch training with Optuna on PostgreSQL.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"autotune {_version()}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = _command(
        commands,
        "run",
        "create a campaign and run it with local workers",
        _run,
        trials=True,
        artifacts=True,
    )
    run.add_argument("spec", type=Path, help="study spec file, e.g. studies/quickstart.yaml")
    run.add_argument("--name", help="campaign name (default: the spec's name)")
    run.add_argument("--workers", type=int, help="local worker processes (default: the spec's)")

    create = _command(commands, "create", "create a campaign for workers to run", _create)
    create.add_argument("spec", type=Path, help="study spec file")
    create.add_argument("--name", help="campaign name (default: the spec's name)")

    worker = _command(
        commands,
        "worker",
        "run trials of a campaign until its budget",
        _worker,
        trials=True,
        artifacts=True,
    )
    worker.add_argument("name", help="campaign name")
    worker.add_argument("--max-trials", type=int, help="exit after running this many trials")
    worker.add_argument(
        "--worker-id",
        default=f"{os.uname().nodename}-{os.getpid()}",
        help="this worker's name in its trials and messages (default HOST-PID)",
    )
    worker.add_argument("--threads", type=_threads, default=1, help="torch threads (default 1)")
    worker.add_argument(
        "--outage-limit",
        type=_seconds,
        default=300.0,
        metavar="SECONDS",
        help="how long to wait for an unreachable database before giving up (default 300)",
    )

    status = _command(commands, "status", "progress of a campaign (or list campaigns)", _status)
    status.add_argument("name", nargs="?", help="campaign name; omit to list campaigns")
    status.add_argument(
        "--watch",
        action="store_true",
        help="follow the campaign live until it finishes (Ctrl-C to stop watching)",
    )
    status.add_argument(
        "--interval",
        type=_seconds,
        default=2.0,
        metavar="SECONDS",
        help="how often --watch refreshes (default 2)",
    )

    report = _command(
        commands,
        "report",
        "write the campaign report (markdown, HTML, PNG)",
        _report,
        artifacts=True,
    )
    report.add_argument("name", help="campaign name")
    report.add_argument(
        "--out",
        type=Path,
        help="directory (default STATE_DIR/reports/NAME; with --storage, "
        "STATE_DIR/reports/HOST-PORT-DATABASE/NAME)",
    )
    report.add_argument(
        "--no-dashboard", action="store_true", help="do not write it into optuna-dashboard"
    )

    logs = _command(commands, "logs", "why trials failed: errors and tracebacks", _logs)
    logs.add_argument("name", help="campaign name")
    logs.add_argument(
        "--trial",
        metavar="STUDY#N",
        help="one trial's error and traceback, e.g. quickstart/joint/1#2 (default: all "
        "failures, grouped by reason)",
    )

    best = _command(commands, "best", "JSON of the best configuration so far", _best)
    best.add_argument("name", help="campaign name")

    export = _command(
        commands, "export", "print the recommended recipe (every setting to train it)", _export
    )
    export.add_argument("name", help="campaign name")
    output = export.add_mutually_exclusive_group()
    output.add_argument(
        "--format", choices=("yaml", "json"), default="yaml", help="recipe format (yaml)"
    )
    output.add_argument(
        "--csv",
        action="store_true",
        help="every trial of every study as CSV instead (params_*, user_attrs_* columns)",
    )

    train = _command(commands, "train", "train the recommended recipe and save its model", _train)
    train.add_argument("name", help="campaign name")
    train.add_argument(
        "--period",
        help="a re-evaluation period (name or index), or a date range START..END[ validate "
        "VSTART..VEND], to train on (default: the tuning data)",
    )
    train.add_argument("--out", type=Path, help="directory (default STATE_DIR/models/NAME)")
    train.add_argument("--threads", type=_threads, default=1, help="torch threads (default 1)")

    delete = _command(commands, "delete", "delete a campaign and all its trials", _delete)
    delete.add_argument("name", help="campaign name")
    delete.add_argument("--yes", action="store_true", help="really delete (required)")

    tasks = _plain_command(
        commands,
        "tasks",
        "describe the built-in tasks, or one task by name (a user task too)",
        _tasks,
    )
    tasks.add_argument("name", nargs="?", help="describe one task (also package.module:factory)")

    probe = _plain_command(
        commands, "probe-batch", "measure throughput by batch size and choose one", _probe_batch
    )
    probe.add_argument("task", help="task name (or package.module:factory)")
    probe.add_argument(
        "--hparams",
        nargs="*",
        default=[],
        metavar="KEY=VALUE",
        help="hyperparameters over the task's defaults, e.g. hidden_units=128",
    )
    probe.add_argument(
        "--max-batch-size", type=int, default=4096, help="largest batch size tried (default 4096)"
    )
    probe.add_argument("--min-gain", type=float, default=0.10, help="per doubling (default 0.10)")
    probe.add_argument(
        "--memory-cap-mib", type=_memory_mib, help="stop above this estimated memory"
    )
    probe.add_argument(
        "--steps", type=int, default=20, help="timed steps per batch size (default 20)"
    )
    probe.add_argument("--threads", type=_threads, default=1, help="torch threads (default 1)")

    dashboard = _command(
        commands, "dashboard", "open optuna-dashboard on the storage", _dashboard, artifacts=True
    )
    dashboard.add_argument("--host", default="127.0.0.1", help="bind address (default 127.0.0.1)")
    dashboard.add_argument(
        "--port", type=_int_in(1, MAX_PORT), default=8080, help="TCP port (default 8080)"
    )
    dashboard.add_argument(
        "--read-only",
        action="store_true",
        help="refuse to serve unless the database role is read-only (deploy/postgres/roles.sql)",
    )
    dashboard.add_argument(
        "--allow-writes-from-network",
        action="store_true",
        help="serve a role that can write on a --host other than the loopback (no "
        "authentication: anyone who reaches it can delete studies)",
    )
    return parser


MAX_THREADS = 1024
MAX_MEMORY_MIB = 2**30  # a petabyte
MAX_HEARTBEAT_S = 3600  # threads wait this long; far longer overflows their timeouts
MAX_GRACE_S = 7 * 24 * 3600
MAX_PORT = 65535
DEFAULT_HEARTBEAT = HeartbeatSettings()


def _int_in(low: int, high: int, unit: str = "") -> Callable[[str], int]:
    """argparse type: an int in [low, high], bounded where it is parsed."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not an int: {text!r}") from None
        if not low <= value <= high:
            suffix = f" {unit}" if unit else ""
            raise argparse.ArgumentTypeError(f"{value} is outside [{low}, {high}]{suffix}")
        return value

    return parse


def _threads(text: str) -> int:
    """argparse type: torch threads, an int in [1, MAX_THREADS]."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an int: {text!r}") from None
    if not 1 <= value <= MAX_THREADS:
        raise argparse.ArgumentTypeError(f"{value} is outside [1, {MAX_THREADS}]")
    return value


def _seconds(text: str) -> float:
    """argparse type: a duration in seconds, in (0, MAX_SECONDS]."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not 0 < value <= MAX_SECONDS:  # also rejects nan
        raise argparse.ArgumentTypeError(f"{text} is outside (0, {MAX_SECONDS}] seconds")
    return value


def _memory_mib(text: str) -> float:
    """argparse type: a memory cap in MiB, a finite number in (0, MAX_MEMORY_MIB]."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0 < value <= MAX_MEMORY_MIB:  # also rejects nan
        raise argparse.ArgumentTypeError(f"{text} is outside (0, {MAX_MEMORY_MIB}]")
    return value


def _command(  # noqa: PLR0913
    commands,  # noqa: ANN001
    name: str,
    help_text: str,
    handler,  # noqa: ANN001
    *,
    trials: bool = False,
    artifacts: bool = False,
) -> argparse.ArgumentParser:
    """A command on the storage; ``trials``: it runs trials (heartbeat options),
    ``artifacts``: it opens the checkpoint store. Readers get neither."""
    parser = _plain_command(commands, name, help_text, handler)
    parser.add_argument(
        "--storage",
        default=os.environ.get(STORAGE_ENV) or None,
        help=f"PostgreSQL URL (default: ${STORAGE_ENV}, else the embedded server)",
    )
    parser.add_argument(
        "--state-dir",
        type=Path,
        default=DEFAULT_STATE_DIR,
        help="where the embedded server keeps its data and logs (default .autotune)",
    )
    if trials:
        _trial_options(parser)
    if artifacts:
        parser.add_argument(
            "--artifacts",
            default=os.environ.get(ARTIFACTS_ENV) or None,
            metavar="DIR_OR_S3",
            help=(
                f"checkpoint store shared by all workers: a directory or s3://BUCKET "
                f"(default: ${ARTIFACTS_ENV}, else STATE_DIR/artifacts)"
            ),
        )
    return parser


def _trial_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--heartbeat-interval",
        type=_int_in(1, MAX_HEARTBEAT_S, "seconds"),
        default=DEFAULT_HEARTBEAT.interval_s,
        metavar="SECONDS",
        help="how often a worker reports that its running trial is alive (default 10)",
    )
    parser.add_argument(
        "--grace-period",
        type=_int_in(2, MAX_GRACE_S, "seconds"),
        default=DEFAULT_HEARTBEAT.grace_period_s,
        metavar="SECONDS",
        help=(
            "a running trial silent this long is taken as dead and retried; more than "
            "the heartbeat interval (default 60)"
        ),
    )


def _artifacts(args: argparse.Namespace) -> str:
    location = args.artifacts or str(args.state_dir / "artifacts")
    if not location.startswith("s3://"):
        _check_directory(Path(location), "--artifacts", " or s3://BUCKET")
    return location


def _check_directory(path: Path, what: str, also: str = "") -> None:
    """AutotuneError if ``path`` exists but is no directory (mkdir's "File exists" said
    nothing of what was wrong)."""
    try:
        exists, is_dir = path.exists(), path.is_dir()
    except (OSError, ValueError):  # an unusable path: mkdir reports it
        return
    if exists and not is_dir:
        raise AutotuneError(
            f"{what} {path} is a file, not a directory; allowed: a directory (new or "
            f"existing){also}"
        )


def _plain_command(commands, name: str, help_text: str, handler) -> argparse.ArgumentParser:  # noqa: ANN001
    parser = commands.add_parser(name, help=help_text, description=help_text)
    parser.set_defaults(handler=handler)
    parser.add_argument("-v", "--verbose", action="store_true", help="log what happens")
    return parser


def _heartbeat(args: argparse.Namespace) -> HeartbeatSettings:
    try:
        return HeartbeatSettings(
            getattr(args, "heartbeat_interval", DEFAULT_HEARTBEAT.interval_s),  # readers: none
            getattr(args, "grace_period", DEFAULT_HEARTBEAT.grace_period_s),
            retry_inherits=INHERITED_BY_RETRIES,
        )
    except ValueError as error:
        raise AutotuneError(str(error)) from None


def _load_spec(args: argparse.Namespace):  # noqa: ANN202
    from autotune.worker._task_checks import load_checked_study_spec

    spec = load_checked_study_spec(args.spec)  # create and run check the task, readers not
    if args.name:
        spec = study_spec_from_dict({**spec.to_json_dict(), "name": args.name}, str(args.spec))
    return spec


def _run(args: argparse.Namespace) -> int:
    spec = _load_spec(args)
    workers = spec.workers if args.workers is None else args.workers
    if workers < 1:
        raise AutotuneError(f"--workers must be >= 1, got {workers}")
    url = resolve_url(args.storage, args.state_dir)
    heartbeat = _heartbeat(args)
    storage = open_storage(url, heartbeat, args.state_dir)
    creation = create_or_extend_campaign(spec, storage, task_defaults(spec))
    campaign, created = creation.campaign, creation.outcome is CreateOutcome.CREATED
    if creation.outcome is CreateOutcome.EXTENDED:
        print(creation.message)
    where = storage_label(args.storage, args.state_dir)
    if not created and campaign_finished(campaign):
        print(f"campaign {spec.name!r} already finished, in {where}")
        return _print_finished(campaign, args)
    verb = "created" if created else "resuming"
    print(f"{verb} campaign {spec.name!r} in {where}")
    parts = pipeline_parts(spec, campaign.task_defaults.most_periods)
    lines = [f"task {spec.task}; {workers} local workers", *parts]
    print("\n".join(f"  {line}" for line in lines))
    _print_budget_plan(campaign)
    outcome = run_local_workers(
        campaign,
        url,
        workers,
        args.state_dir / "logs",
        heartbeat,
        sys.stdout,
        Path(_artifacts(args)),
    )
    campaign = load_campaign(campaign.name, storage)
    print(_summary(campaign, args))
    report = _write_report(campaign, _report_directory(args, campaign.name), _where(args))
    from autotune.report._report import publish_to_dashboard
    from autotune.storage import open_artifact_store

    publish_to_dashboard(campaign, report, open_artifact_store(_artifacts(args)))
    print(f"report: {report.html_path} (also in the dashboard as notes and figures)")
    failed = [
        f"{path} (exit {code})"
        for path, code in zip(outcome.log_paths, outcome.exit_codes, strict=True)
        if code not in _clean_exits(outcome.interrupted)
    ]
    if failed:
        print(f"some workers exited with an error; see {', '.join(failed)}", file=sys.stderr)
        return 1
    if campaign.stopped is not None:
        print(f"autotune: campaign stopped: {campaign.stopped}", file=sys.stderr)
        return EXIT_CAMPAIGN_STOPPED
    return 130 if outcome.interrupted else 0


def _clean_exits(interrupted: bool) -> frozenset[int]:
    """Worker exit codes that are no error: done, the campaign stopped (reported apart),
    and after Ctrl-C a death by the signal itself (a second Ctrl-C can land while a worker
    that has already stopped cleanly shuts its interpreter down, where signals kill)."""
    clean = {0, EXIT_CAMPAIGN_STOPPED}
    if interrupted:
        signals = (signal.SIGINT, signal.SIGTERM)
        clean |= {-number for number in signals} | {128 + number for number in signals}
    return frozenset(clean)


def _print_finished(campaign: Campaign, args: argparse.Namespace) -> int:
    """A finished campaign's summary (``run`` again, ``status --watch`` at its end)."""
    print(_summary(campaign, args))
    if campaign.stopped is not None:
        print(f"autotune: campaign stopped: {campaign.stopped}", file=sys.stderr)
        return EXIT_CAMPAIGN_STOPPED
    return 0


def _summary(campaign: Campaign, args: argparse.Namespace) -> str:
    lines = run_summary(campaign, _autotune(), _where(args))
    lines.append(f"dashboard: {_dashboard_command(args)}")
    return _for_terminal(lines)


def _for_terminal(lines: list[str]) -> str:
    """Prose wrapped between words on a terminal, one line per sentence when piped."""
    from autotune.report._wrap import fitted

    width = shutil.get_terminal_size().columns if sys.stdout.isatty() else None
    return "\n".join(fitted(lines, width))


def _print_budget_plan(campaign: Campaign) -> None:
    plan = campaign.budget_plan()
    if plan is not None:
        print("\n".join(plan.lines()))
    elif campaign.spec.budget is not None:
        print(f"budget {campaign.spec.budget.steps:,} steps: planned once the sweep has run")


def _dashboard_command(args: argparse.Namespace) -> str:
    if args.storage:
        url = mask_password(resolve_url(args.storage))
        return f"{_runnable('optuna-dashboard')} '{url}'"
    state = "" if args.state_dir == DEFAULT_STATE_DIR else f" --state-dir {args.state_dir}"
    return f"{_autotune()} dashboard{state}   (optuna-dashboard on the embedded server)"


def _where(args: argparse.Namespace) -> str:
    """The storage options a printed hint needs to find this campaign again: an explicit
    ``--storage`` (its password masked), or a ``--state-dir`` other than the default (a
    "train it" hint without it found no campaign)."""
    if getattr(args, "storage", None):
        return f" --storage '{mask_password(resolve_url(args.storage))}'"
    state_dir = getattr(args, "state_dir", DEFAULT_STATE_DIR)
    return "" if state_dir == DEFAULT_STATE_DIR else f" --state-dir {state_dir}"


def _autotune() -> str:
    """How to call autotune in a printed hint (`python -m autotune` without its script)."""
    return _runnable("autotune", "autotune")


def _runnable(name: str, module: str | None = None) -> str:
    """How an installed command runs from here: its bare name when on PATH, else the path
    of the script next to this interpreter (a venv nobody activated: "command not found")."""
    bin_dir = Path(sys.executable).parent.resolve()
    script = bin_dir / name
    return runnable_command(
        name,
        on_path=shutil.which(name) is not None,
        script=script if script.is_file() else None,
        cwd=Path.cwd(),
        python=bin_dir / Path(sys.executable).name,
        module=module,
    )


def _create(args: argparse.Namespace) -> int:
    spec = _load_spec(args)
    url = resolve_url(args.storage, args.state_dir)
    storage = open_storage(url, _heartbeat(args), args.state_dir)
    creation = create_or_extend_campaign(spec, storage, task_defaults(spec))
    campaign = creation.campaign
    print(creation.message)
    parts = pipeline_parts(spec, campaign.task_defaults.most_periods)
    print("\n".join(f"  {part}" for part in parts))  # a re-evaluation too small, say so now
    _print_budget_plan(campaign)
    if creation.outcome is CreateOutcome.EXISTS and campaign_finished(campaign):
        print(  # workers would find nothing to do: say where the answer is instead
            f"the campaign has finished: {_autotune()} status {campaign.name}{_where(args)} "
            "shows its answer (a spec that grows trials, budget or top_k extends it)"
        )
        return 0
    env_url = os.environ.get(STORAGE_ENV) or None
    hint = worker_hint(
        _autotune(),
        campaign.name,
        None if args.storage is None else url,
        None if env_url is None else resolve_url(env_url),
        args.state_dir,
        DEFAULT_STATE_DIR,
    )
    print(hint)
    return 0


def _worker(args: argparse.Namespace) -> int:
    import torch

    from autotune.storage import CheckpointStore
    from autotune.storage import DatabaseUnavailableError
    from autotune.storage import open_artifact_store
    from autotune.worker._display import WorkerDisplay
    from autotune.worker._display import logging_through
    from autotune.worker._task_checks import check_spec_task
    from autotune.worker._worker import Worker
    from autotune.worker._worker import WorkerOptions
    from autotune.worker._worker import open_worker_storage

    torch.set_num_threads(max(1, args.threads))
    try:  # a database that is down is waited for, as a running worker waits out an outage
        storage = open_worker_storage(
            args.storage, _heartbeat(args), args.state_dir, args.outage_limit
        )
    except DatabaseUnavailableError as error:
        print(f"autotune: error: worker {args.worker_id} gives up: {error}", file=sys.stderr)
        return 1
    campaign = load_campaign(args.name, storage)
    check_spec_task(campaign.spec, f"campaign {args.name!r}")  # the task must be here
    try:
        options = WorkerOptions(
            worker_id=args.worker_id,
            max_trials=args.max_trials,
            janitor_interval_s=max(1.0, args.heartbeat_interval),
            outage_limit_s=args.outage_limit,
            report_where=_where(args),
        )
    except ValueError as error:
        raise AutotuneError(str(error)) from None
    checkpoints = CheckpointStore(open_artifact_store(_artifacts(args)))
    line = LiveLine(sys.stdout)
    display = WorkerDisplay(
        args.worker_id, line, lambda: load_campaign(args.name, storage), campaign
    )
    worker = Worker(campaign, storage, options, checkpoints, observer=display)
    worker.install_signal_handlers()
    try:
        with line, logging_through(line), display.showing():
            summary = worker.run()
    except DatabaseUnavailableError as error:
        print(f"autotune: error: worker {args.worker_id} gives up: {error}", file=sys.stderr)
        return 1
    counts = ", ".join(f"{n} {outcome.value}" for outcome, n in summary.states.items() if n)
    print(
        f"worker {args.worker_id}: ran {summary.trials_run} trials"
        + (f" ({counts})" if counts else "")
        + (" (stopped by signal)" if summary.stopped_by_signal else "")
    )
    stopped = load_campaign(args.name, storage).stopped
    if stopped is not None and not summary.stopped_by_signal:
        print(f"autotune: campaign stopped: {stopped}", file=sys.stderr)
        return EXIT_CAMPAIGN_STOPPED
    return 0


def _status(args: argparse.Namespace) -> int:
    storage = _reader_storage(args)
    if args.name is None:
        names = list_campaigns(storage)
        print("\n".join(names) or "no campaigns")
        if not names:
            where = storage_label(args.storage, args.state_dir.resolve())
            print(f"autotune: looked in {where}; {ELSEWHERE}", file=sys.stderr)
        return 0
    if not args.watch:
        campaign = load_campaign(args.name, storage)
        rtt = round_trip_ms(storage)
        print(_for_terminal(status_lines(campaign, _autotune(), rtt, _where(args))))
        return 0
    from autotune.report._watch import watch_campaign

    finished = watch_campaign(
        lambda: load_campaign(args.name, storage),
        sys.stdout,
        args.interval,
        lambda campaign: _watch_heading(campaign, args),
    )
    if finished is not None:  # None: Ctrl-C, the watcher's to stop, not an error
        print(_for_terminal(status_lines(finished, _autotune(), None, _where(args))))
    return 0


def _watch_heading(campaign: Campaign, args: argparse.Namespace) -> list[LinePart]:
    spec = campaign.spec
    return [
        LinePart(f"campaign {spec.name}", 10),
        LinePart(f"{spec.metric.direction.value} {spec.metric.name}", 5),
        LinePart(f"in {storage_label(args.storage, args.state_dir)}", 3),
        LinePart("Ctrl-C stops watching", 1),
    ]


def _reader_storage(args: argparse.Namespace):  # noqa: ANN202
    """The storage of a command that only reads: the embedded server must exist already
    (started elsewhere, one made here would hold nothing)."""
    if args.storage is None and not embedded_exists(args.state_dir):
        raise AutotuneError(no_embedded_storage(args.state_dir))
    return open_storage(args.storage, _heartbeat(args), args.state_dir)


def _report(args: argparse.Namespace) -> int:
    if args.out is not None:
        _check_directory(args.out, "--out")
    storage = _reader_storage(args)
    campaign = load_campaign(args.name, storage)
    directory = args.out or _report_directory(args, campaign.name)
    report = _write_report(campaign, directory, _where(args))
    where = "" if args.storage is None else f" (campaign in {mask_password(args.storage)})"
    print(f"report: {report.markdown_path} and {report.html_path}{where}")
    if not args.no_dashboard:
        print(_publish_report(campaign, report, _figure_store(args)))
    return 0


def _publish_report(campaign: Campaign, report: Report, figures: ArtifactStore | None) -> str:
    """Publish the report to the dashboard; what it did, in a line."""
    from autotune.report._publish import Published
    from autotune.report._publish import publish_report

    outcome = publish_report(campaign, report, figures)
    if outcome is Published.LEFT_AS_IT_WAS:
        return (
            "dashboard: left as it was: its notes show this state of the campaign already, "
            "with its figures; pass --artifacts (the store the dashboard reads) to publish "
            "this report there"
        )
    if outcome is Published.FIGURES_NAMED:
        return (
            "dashboard: the report's note names its figures without showing them; pass "
            "--artifacts (the store the dashboard reads) to show them there"
        )
    return "dashboard: the report is in its notes, with its figures"


def _figure_store(args: argparse.Namespace):  # noqa: ANN202
    """Where the report's PNGs go for the dashboard; None for a campaign in a database of
    its own (``--storage``) without ``--artifacts``: this machine's STATE_DIR/artifacts is
    not where a dashboard elsewhere reads, so its note would show broken images."""
    from autotune.storage import open_artifact_store

    if args.storage is not None and args.artifacts is None:
        return None
    return open_artifact_store(_artifacts(args))


def _report_directory(args: argparse.Namespace, name: str) -> Path:
    """Where a campaign's report goes: campaigns of the same name in two storages must not
    overwrite each other's report."""
    return args.state_dir / "reports" / report_subdirectory(args.storage, name)


def _write_report(campaign: Campaign, directory: Path, where: str):  # noqa: ANN202
    from autotune.report._report import write_report

    try:
        return write_report(campaign, directory, where)
    except OSError as error:
        raise AutotuneError(f"cannot write the report into {directory}: {error}") from None


def _logs(args: argparse.Namespace) -> int:
    from autotune.campaign._campaign import failure_of
    from autotune.report._failures import failure_lines
    from autotune.report._failures import parse_trial_reference
    from autotune.report._failures import trial_log_lines

    campaign = load_campaign(args.name, _reader_storage(args))
    if args.trial is None:
        lines = failure_lines(campaign.name, campaign.failures(), _autotune(), _where(args))
        print("\n".join(lines) or f"no failed trials in campaign {campaign.name!r}")
        return 0
    try:
        reference = parse_trial_reference(args.trial)
        trial = campaign.trial(*reference)
    except ValueError as error:
        raise AutotuneError(str(error)) from None
    except KeyError as error:
        raise AutotuneError(error.args[0]) from None
    failed = trial.state is optuna.trial.TrialState.FAIL
    failure = failure_of(reference[0], trial) if failed else None
    logs = sorted(
        str(p)
        for p in (args.state_dir / "logs").glob("*.log")
        if p.name.startswith(f"{campaign.name}-worker-")
    )
    print("\n".join(trial_log_lines(reference, trial.state.name, failure, logs)))
    return 0


def _best(args: argparse.Namespace) -> int:
    campaign = load_campaign(args.name, _reader_storage(args))
    answer = answer_dict(campaign)
    print(json.dumps(answer, indent=2, sort_keys=True))
    if campaign.recommendation() is None and answer["best_so_far"] is None:
        print(f"autotune: campaign {args.name!r} has no completed trial yet", file=sys.stderr)
        return 1
    return 0


def _export(args: argparse.Namespace) -> int:
    storage = _reader_storage(args)
    campaign = load_campaign(args.name, storage)
    if args.csv:
        campaign.write_csv(sys.stdout)
        return 0
    answer = campaign.recommendation()
    if answer is None:
        raise AutotuneError(
            f"campaign {args.name!r} has no recommendation yet: it is chosen when the last "
            f"stage finishes (see {_autotune()} status {args.name}{_where(args)})"
        )
    recipe = recipe_dict(answer.recipe)
    if args.format == "json":
        print(json.dumps(recipe, indent=2, sort_keys=True))
    else:
        print(yaml.safe_dump(recipe, sort_keys=True), end="")
    return 0


def _train(args: argparse.Namespace) -> int:
    import torch

    from autotune.campaign import Stage
    from autotune.training import HasTrivialMetrics
    from autotune.worker import PeriodChoices
    from autotune.worker import resolve_period
    from autotune.worker import train_recipe

    campaign = load_campaign(args.name, _reader_storage(args))
    answer = campaign.recommendation()
    if answer is None:
        raise AutotuneError(
            f"campaign {args.name!r} has no recommendation yet: it is chosen when the last "
            f"stage finishes (see {_autotune()} status {args.name}{_where(args)})"
        )
    out = args.out or args.state_dir / "models" / campaign.name
    if out.exists() and not out.is_dir():
        raise AutotuneError(f"--out {out} is a file; allowed: a directory (new or existing)")
    reevaluations = campaign.stage_studies(Stage.REEVALUATION)
    design = reevaluations[0].facts.design if reevaluations else None
    choices = None if design is None else PeriodChoices(design.period_count, design.period_seed)
    task = _get_task(answer.recipe.task)
    period = resolve_period(task, args.period, choices, campaign.spec)
    torch.set_num_threads(args.threads)
    on_data = "the tuning data" if period is None else f"period {period.name}"
    print(f"training {answer.finalist} on {on_data}: {answer.recipe.stopping_rule}", flush=True)
    try:
        trained = train_recipe(answer.recipe, task, out, period=period, on_eval=_print_eval)
    except OSError as error:
        raise AutotuneError(f"cannot write the model into {out}: {error}") from None
    print(f"final (step {trained.step}): {_metrics_text(trained.metrics)}")
    if isinstance(task, HasTrivialMetrics):
        trivial = task.trivial_metrics(period)
        print(f"the trivial predictor on the same data: {_metrics_text(trivial)}")
    same = recorded_on(campaign, None if args.period is None else period.name)
    if same is not None:  # the same recipe and data: within seed noise of it
        metric = answer.recipe.metric
        seed = (
            "the same seed: the same digits on the same thread count"
            if args.period is None
            else "a re-evaluation seed, not the recipe's: they differ by seed noise"
        )
        print(f"the campaign's run of this recipe on the same data ({seed}): {metric} {same:.6g}")
    recorded = (
        f"the re-evaluation's mean over {answer.runs} runs on several periods"
        if answer.verified
        else "one run, tuning data"
    )
    print(f"recorded by the campaign: {answer.recipe.metric} {answer.value:.6g} ({recorded})")
    print(f"model: {trained.model_path}\nrecipe: {trained.recipe_path}")
    return 0


def _print_eval(evaluation) -> None:  # noqa: ANN001
    print(f"  step {evaluation.step}: {_metrics_text(evaluation.metrics)}", flush=True)


def _metrics_text(metrics) -> str:  # noqa: ANN001
    return ", ".join(f"{name} {value:.6g}" for name, value in sorted(metrics.items()))


def _delete(args: argparse.Namespace) -> int:
    storage = _reader_storage(args)
    names = ", ".join(campaign_study_names(args.name, storage))  # any version's campaign
    if not args.yes:
        print(f"autotune: would delete {names}; add --yes to delete", file=sys.stderr)
        return EXIT_USER_ERROR
    delete_campaign(args.name, storage)
    print(f"deleted {names}")
    return 0


def _tasks(args: argparse.Namespace) -> int:
    from autotune import training

    names = [args.name] if args.name else training.available_tasks()
    for name in names:
        print(_describe_task(_get_task(name).describe()) + "\n")
    if not args.name:
        print("user tasks: name one in a study spec as  task: package.module:factory")
    return 0


def _get_task(name: str):  # noqa: ANN202
    from autotune import training

    try:
        return training.get_task(name)
    except training.UnknownTaskError as error:
        raise AutotuneError(str(error)) from None


def _describe_task(info) -> str:  # noqa: ANN001
    metrics = ", ".join(f"{name} ({d.value})" for name, d in info.metrics.items())
    lines = [
        f"{info.name}: {info.summary}",
        f"  metrics: {metrics}",
        f"  model hyperparameters: {', '.join(sorted(info.model_hyperparameters))}",
    ]
    if info.span is not None:
        lines.append(f"  date span: {info.span[0].isoformat()} .. {info.span[1].isoformat()}")
    return "\n".join(lines)


def _probe_batch(args: argparse.Namespace) -> int:
    import torch

    from autotune import training

    torch.set_num_threads(max(1, args.threads))
    task = _get_task(args.task)
    hparams = {**task.default_hyperparameters(), **_parse_assignments(args.hparams)}
    cap = None if args.memory_cap_mib is None else int(args.memory_cap_mib * 2**20)
    max_batch_size, note = probe_size_cap(args.max_batch_size, len(task.data().train_x))
    try:
        result = training.probe_batch_size(
            task,
            hparams,
            max_batch_size=max_batch_size,
            steps=args.steps,
            min_gain=args.min_gain,
            memory_cap_bytes=cap,
        )
    except (ValueError, training.NoBatchSizeFitsError) as error:
        raise AutotuneError(str(error)) from None
    print(training.format_probe_table(result))
    if note:
        print(note)
    return 0


def probe_size_cap(max_batch_size: int, train_rows: int) -> tuple[int, str | None]:
    """The largest batch size worth probing, and why when it is below ``max_batch_size``:
    a batch larger than the training set repeats rows, so it is no real choice."""
    if train_rows >= max_batch_size:
        return max_batch_size, None
    return train_rows, (
        f"batch sizes capped at the {train_rows:,} training rows (--max-batch-size "
        f"{max_batch_size:,}): a larger batch would repeat rows within a step"
    )


def _parse_assignments(assignments: list[str]) -> dict[str, object]:
    """``key=value`` pairs, each value read as YAML (numbers, booleans, strings)."""
    parsed: dict[str, object] = {}
    for assignment in assignments:
        key, sep, value = assignment.partition("=")
        if not sep or not key:
            raise AutotuneError(f"--hparams expects KEY=VALUE pairs, got {assignment!r}")
        try:
            parsed[key] = yaml.safe_load(value)
        except yaml.YAMLError as error:
            raise AutotuneError(f"--hparams {assignment!r}: bad value ({error})") from None
    return parsed


def _dashboard(args: argparse.Namespace) -> int:
    from autotune.storage import sigterm_as_interrupt

    with sigterm_as_interrupt():  # SIGTERM too stops the embedded server it starts
        try:
            _serve_dashboard(args)
        except KeyboardInterrupt:
            pass
    return 0


def _serve_dashboard(args: argparse.Namespace) -> None:
    from autotune.storage import check_exposure
    from autotune.storage import dashboard_app
    from autotune.storage import open_artifact_store
    from autotune.storage import serve

    storage = open_storage(args.storage, _heartbeat(args), args.state_dir)
    check_exposure(storage, args.host, args.read_only, args.allow_writes_from_network)
    app = dashboard_app(storage, open_artifact_store(_artifacts(args)), args.read_only)
    print(f"optuna-dashboard on http://{args.host}:{args.port}/ (Ctrl-C to stop)", flush=True)
    try:
        serve(app, args.host, args.port)
    except OSError as error:
        raise AutotuneError(f"cannot serve on {args.host}:{args.port}: {error}") from None
