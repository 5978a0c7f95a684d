"""Start the accounts service: python run.py [--port N] [--processes N]; or python run.py --sync-indexes."""

import argparse
import asyncio
import errno
import logging
import os
import signal
import sys
import time

from pymongo.errors import PyMongoError
from tornado.httpserver import HTTPServer
from tornado.netutil import bind_sockets

import logconfig
import startup_summary

# services.database imports no prometheus_client; the app and services are imported in serve() (see there).
from metrics_dir import VARIABLE as METRICS_DIR_VARIABLE
from metrics_dir import MetricsDirectory
from services.database import Database, describe_error, fix_for, server_message
from settings import Settings, SettingsError, reader_of
from version import __version__

log = logging.getLogger("accounts")

MAX_WORKER_RESTARTS = 100
STOP_SIGNALS = {signal.SIGTERM, signal.SIGINT}


class OneLineParser(argparse.ArgumentParser):
    """A bad or unknown flag stops start-up with one line and exit code 2, as a bad setting does (argparse
    would print its usage block first); --help shows the usage."""

    def error(self, message):
        self.exit(2, f"error: {message} (python run.py --help lists the flags)\n")


def parser() -> argparse.ArgumentParser:
    made = OneLineParser(
        description="The accounts service (users, authentication, organisations).",
        epilog="Every other setting is an environment variable (MONGODB_URI, JWT_SECRET, APP_URL, SMTP_HOST, "
        "LOG_FORMAT, ...), checked at start-up: the table with each default and meaning is in README.md "
        "(Configuration), and `python settings.py` prints it. LOG_LEVEL (INFO) sets the log level.",
    )
    # Read as text and checked after parsing, with PORT's own rule, so a bad value is one line (not argparse's
    # usage block) and 99999 is refused instead of wrapping to another port.
    made.add_argument("--port", metavar="N", help="port to listen on, 0-65535 (default: PORT, else 8000)")
    made.add_argument(
        "--processes",
        type=int,
        default=1,
        help="worker processes sharing the port; 0 means one per core (needs MONGODB_URI)",
    )
    made.add_argument(
        "--sync-indexes",
        action="store_true",
        help="drop and rebuild the indexes that differ from the declared ones (and those this "
        "service no longer declares), create the missing ones, then exit (needs MONGODB_URI)",
    )
    made.add_argument("--version", action="version", version=f"accounts service {__version__}")
    return made


def parse_args(argv):
    return parser().parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        overrides = {"port": reader_of("port")("--port", args.port.strip())} if args.port is not None else {}
        settings = Settings.from_env(os.environ, **overrides)
        level = logconfig.parse_level(os.environ.get("LOG_LEVEL", ""))
    except (SettingsError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if args.processes < 0:
        print("error: --processes must be 0 (one per core) or more", file=sys.stderr)
        return 2
    processes = args.processes or os.cpu_count() or 1
    if processes > 1 and settings.embedded:
        print(
            "error: --processes needs MONGODB_URI: the embedded store lives inside one process, "
            "so several processes would each see different data",
            file=sys.stderr,
        )
        return 2
    # Every record as one line on stderr (the journal under systemd): JSON, or text for a terminal.
    logconfig.configure(level, form=settings.log_format)
    if args.sync_indexes:
        return sync_indexes(settings)
    try:
        metrics_dir = MetricsDirectory.prepare(os.environ)
    except OSError as error:
        print(f"error: {METRICS_DIR_VARIABLE} cannot be used: {error}", file=sys.stderr)
        return 2
    try:
        try:
            sockets = bind_sockets(settings.port)
        except OSError as error:
            print(f"error: {cannot_listen(settings.port, error)}", file=sys.stderr)
            return 2
        # The first lines a person reads: what runs, where, on what (before any worker's own lines).
        startup_summary.log_summary(log, settings, sockets[0].getsockname()[1], processes, os.getpid())
        log.info("metrics: multiprocess directory %s", metrics_dir.path)
        if processes > 1 and not fork_workers(processes, metrics_dir.worker_exited):
            return 0
        asyncio.run(serve(settings, sockets))
        return 0
    finally:
        metrics_dir.cleanup()  # in the process that made it only, not in a worker returning here


def cannot_listen(port: int, error: OSError) -> str:
    """Why the port cannot be had, in one line naming it."""
    if error.errno == errno.EADDRINUSE:
        return f"port {port} is already in use by another process; stop it, or choose another with --port or PORT"
    if error.errno == errno.EACCES:
        return f"port {port} needs privileges this process lacks (ports under 1024); choose another with --port or PORT"
    return f"cannot listen on port {port}: {error.strerror or error}"


def sync_indexes(settings: Settings) -> int:
    """python run.py --sync-indexes: one line per index dropped or created; 0 when every declared index is
    in place, 1 (with the server's reason) when MongoDB refused, 2 on the embedded store."""
    if settings.embedded:
        print(
            "error: --sync-indexes needs MONGODB_URI: the embedded store starts empty in each process and "
            "gets every declared index then",
            file=sys.stderr,
        )
        return 2

    async def sync():
        database = Database.connect(settings)
        try:
            return await database.sync_indexes(report=print)
        finally:
            database.close()

    try:
        plan = asyncio.run(sync())
    except PyMongoError as error:
        print(
            f"error: --sync-indexes failed on database {settings.mongodb_db}: {describe_error(error)}: "
            f"{server_message(error)}; fix: {fix_for(error)}",
            file=sys.stderr,
        )
        return 1
    print(
        f"indexes of database {settings.mongodb_db} match the declared ones "
        f"({len(plan.drops)} dropped, {len(plan.missing)} created)"
    )
    return 0


async def serve(settings: Settings, sockets) -> None:
    """Serve until SIGTERM or SIGINT, then drain in-flight requests and close MongoDB."""
    # Imported only now that PROMETHEUS_MULTIPROC_DIR is set: prometheus_client chooses where metric
    # values live when it is first imported.
    from handlers.routes import make_app
    from services import metrics
    from services.container import Services
    from services.database import Database

    database = Database.connect(settings)
    services = Services(settings, database)
    services.start()
    app = make_app(services, settings)
    # Slow or idle clients must not hold connections forever (CWE-400).
    server = HTTPServer(app, idle_connection_timeout=60, body_timeout=60)
    server.add_sockets(sockets)
    metrics.WORKER_PROCESSES.set(1)
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in STOP_SIGNALS:
        loop.add_signal_handler(signum, stopping.set)
    # A forked worker starts with these blocked (fork_workers): a stop sent meanwhile is delivered now.
    signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)
    log.info("ready: serving on port %d (pid %d)", sockets[0].getsockname()[1], os.getpid())
    await stopping.wait()
    log.info("shutting down: no new connections, finishing %d request(s) in flight", app.in_flight)
    server.stop()
    app.shutting_down = True
    deadline = time.monotonic() + settings.shutdown_grace_seconds
    while app.in_flight and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    await server.close_all_connections()
    await services.stop()
    # Already stopping: a repeated SIGTERM must not kill the process while asyncio.run closes the loop
    # (closing it restores the default handlers, and the exit code would be -15 instead of 0).
    for signum in STOP_SIGNALS:
        loop.remove_signal_handler(signum)
        signal.signal(signum, signal.SIG_IGN)
    log.info("stopped")


def fork_workers(count: int, reaped=lambda pid: None) -> bool:
    """Fork count workers sharing the listening sockets. True in a worker; the parent supervises and
    returns False once every worker has exited after SIGTERM/SIGINT, which it forwards to them.
    reaped(pid) is called for each worker that exits, before any replacement starts.

    Why not tornado.process.fork_processes: it installs no signal handlers, so a SIGTERM to the parent kills
    only the parent (default action) and leaves the workers running, orphaned; it has no notion of stopping, so
    any worker that ends with a signal or a non-zero code is restarted, even mid-shutdown; it forks with stop
    signals unblocked, so a stop arriving mid-start kills a half-started worker instead of letting it drain;
    past max_restarts it raises RuntimeError in the parent, abandoning the workers still alive; and when all
    workers exit it calls sys.exit(0) in the parent, so main() cannot log or choose the exit code. Here the
    parent forwards SIGTERM/SIGINT to every worker, restarts a worker that died (signal or non-zero code) only
    while not stopping, blocks the stop signals across fork(), keeps supervising the rest after
    MAX_WORKER_RESTARTS, and returns False for main() to finish. Not taken over: Tornado's task ids (workers are
    interchangeable) and its reseeding of `random` after fork (secrets come from the secrets module; `random`
    only jitters email retries, services/email.py, where workers sharing a seed matters little)."""
    children = set()
    stopping = False

    def forward(signum, _frame):
        nonlocal stopping
        stopping = True
        for pid in list(children):
            _signal(pid, signum)

    for signum in STOP_SIGNALS:
        signal.signal(signum, forward)

    def spawn() -> bool:
        # Blocked across fork(): the parent learns of a stop only once the new pid is in `children`, and
        # the worker holds it until serve() has its own handlers, then drains instead of dying half-started.
        mask = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
        pid = os.fork()
        if pid == 0:
            for signum in STOP_SIGNALS:
                signal.signal(signum, signal.SIG_DFL)  # the worker's own, not the parent's forwarding
            return True
        children.add(pid)
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        return False

    for _ in range(count):
        if stopping:
            break
        if spawn():
            return True
    log.info("supervising %d worker processes (pids %s)", len(children), ", ".join(map(str, sorted(children))))
    restarts = 0
    while children:
        pid, status = os.waitpid(-1, 0)
        children.discard(pid)
        reaped(pid)
        code = os.waitstatus_to_exitcode(status)
        if stopping or code == 0:
            continue
        if restarts >= MAX_WORKER_RESTARTS:
            log.error("worker %d died (exit code %d); too many restarts, not restarting", pid, code)
            continue
        restarts += 1
        log.warning("worker %d died (exit code %d); starting another", pid, code)
        if spawn():
            return True
    log.info("every worker has exited")
    return False


def _signal(pid: int, signum: int) -> None:
    try:
        os.kill(pid, signum)
    except ProcessLookupError:
        pass  # already exited; waitpid will collect it


if __name__ == "__main__":
    sys.exit(main())
