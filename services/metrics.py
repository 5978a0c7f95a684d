"""The service's Prometheus metrics, and the scrape that exposes them at GET /metrics.

Under run.py the values live in files in PROMETHEUS_MULTIPROC_DIR (metrics_dir.py sets it before
this module is first imported, which is when prometheus_client picks where values live), so the
worker answering a scrape sums every worker's values. Imported without it (the tests' in-process
application) they live in this process, in METRICS.

Label values are bounded: a route is its pattern in the route table, never the path a client sent,
and a method outside the HTTP verbs is "other", so no request can create a new series at will
(an unbounded label set would exhaust Prometheus's memory: CWE-400).
"""

import glob
import os
import re

import prometheus_client
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, ProcessCollector
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from pymongo.errors import ConnectionFailure, PyMongoError, ServerSelectionTimeoutError

from models import outbox as outbox_model
from version import __version__

MULTIPROCESS = bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))

# Counters carry no _created series: multiprocess mode cannot have them, and one process should
# expose what several do.
prometheus_client.disable_created_metrics()

METRICS = CollectorRegistry()

METHODS = frozenset(("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"))
OTHER_METHOD = "other"
UNMATCHED = "unmatched"  # the route of a request no pattern matched (answered 404)
# /health answers in well under a millisecond, a login at bcrypt cost 12 in a quarter of a second
# and, with 32 waiting, in seconds.
DURATION_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

HTTP_REQUESTS = Counter(
    "accounts_http_requests_total",
    "HTTP requests answered, by route pattern, method and status",
    ("route", "method", "status"),
    registry=METRICS,
)
HTTP_DURATION = Histogram(
    "accounts_http_request_duration_seconds",
    "Time from receiving a request to finishing its answer, by route pattern and method",
    ("route", "method"),
    buckets=DURATION_BUCKETS,
    registry=METRICS,
)
LOGINS = Counter(
    "accounts_logins_total",
    "POST /auth/login outcomes: success, failed (wrong email or password), "
    "limited (refused by the login-attempt limit, 429)",
    ("result",),
    registry=METRICS,
)
EMAILS = Counter(
    "accounts_emails_total",
    "Outbox delivery attempts: sent, retried (failed, will be retried), failed (given up after the last attempt)",
    ("state",),
    registry=METRICS,
)
MONGODB_ERRORS = Counter(
    "accounts_mongodb_errors_total",
    "MongoDB driver errors that reached a request handler: unavailable (no server, connection lost), timeout, other",
    ("kind",),
    registry=METRICS,
)
# livesum: the supervisor removes a dead worker's value (multiprocess.mark_process_dead), so this is
# the number of workers alive now.
WORKER_PROCESSES = Gauge(
    "accounts_worker_processes", "Worker processes serving requests", multiprocess_mode="livesum", registry=METRICS
)

# Bound once: every known label value is exported from the start (at 0), so rate() has a first point.
LOGIN_SUCCEEDED, LOGIN_FAILED, LOGIN_LIMITED = (LOGINS.labels(r) for r in ("success", "failed", "limited"))
EMAIL_SENT, EMAIL_RETRIED, EMAIL_FAILED = (EMAILS.labels(s) for s in ("sent", "retried", "failed"))
_MONGODB_ERROR_KINDS = {kind: MONGODB_ERRORS.labels(kind) for kind in ("unavailable", "timeout", "other")}

# (route, method, status) -> the bound request counter and duration histogram; bounded like the labels.
_bound_requests = {}


def record_request(route: str, method: str, status: int, seconds: float) -> None:
    """Count one answered request and its duration (called from the access log for every request)."""
    if method not in METHODS:
        method = OTHER_METHOD
    key = (route, method, status)
    bound = _bound_requests.get(key)
    if bound is None:
        bound = _bound_requests[key] = (
            HTTP_REQUESTS.labels(route, method, str(status)),
            HTTP_DURATION.labels(route, method),
        )
    bound[0].inc()
    bound[1].observe(seconds)


def mongodb_error_kind(error: BaseException) -> str | None:
    """unavailable, timeout or other for a MongoDB driver error; None for any other exception."""
    if not isinstance(error, PyMongoError):
        return None
    if isinstance(error, ServerSelectionTimeoutError):
        return "unavailable"  # no server answered within serverSelectionTimeoutMS
    if error.timeout:
        return "timeout"  # NetworkTimeout, ExecutionTimeout (maxTimeMS), WTimeoutError
    if isinstance(error, ConnectionFailure):
        return "unavailable"  # AutoReconnect: the connection was lost
    return "other"


def record_mongodb_error(error: BaseException) -> None:
    """Count a MongoDB driver error by kind; other exceptions are ignored."""
    kind = mongodb_error_kind(error)
    if kind is not None:
        _MONGODB_ERROR_KINDS[kind].inc()


async def email_queue_depth(outbox) -> int | None:  # services.email.Outbox
    """Pending messages in the outbox, counted now (the `due` index's leading key); None when MongoDB fails.

    Counted at scrape time: the queue lives in MongoDB and any process may drain it, so no process's
    own gauge could be right.
    """
    try:
        return await outbox.collection.count_documents({"status": outbox_model.PENDING})
    except PyMongoError as error:
        record_mongodb_error(error)
        return None


def live_workers(directory: str) -> list:
    """The pids of the workers alive now: each sets WORKER_PROCESSES (livesum), whose file the supervisor
    removes when it reaps the worker (multiprocess.mark_process_dead)."""
    found = (
        re.fullmatch(r"gauge_livesum_(\d+)\.db", os.path.basename(path))
        for path in glob.glob(os.path.join(directory, "gauge_livesum_*.db"))
    )
    return sorted(int(match.group(1)) for match in found if match)


def process_metrics() -> list:
    """prometheus_client's standard process metrics (memory, CPU, open and maximum file descriptors, start
    time). With several workers, the worker answering a scrape reads every live worker's /proc entry, each
    series with a `pid` label: a process collector reads only its own process, and values of different
    processes must not be summed (memory is per process; docs/operating/metrics.md). One process alone: no label."""
    if not MULTIPROCESS:
        return list(ProcessCollector(registry=None).collect())
    families = {}
    for pid in live_workers(os.environ["PROMETHEUS_MULTIPROC_DIR"]):
        # Nothing comes back for a worker that exits meanwhile (its /proc entry is gone).
        for family in ProcessCollector(pid=lambda pid=pid: pid, registry=None).collect():
            merged = families.setdefault(family.name, Metric(family.name, family.documentation, family.type))
            for sample in family.samples:
                merged.add_sample(sample.name, {**sample.labels, "pid": str(pid)}, sample.value)
    return list(families.values())


def build_info() -> GaugeMetricFamily:
    family = GaugeMetricFamily("accounts_build_info", "The running service's version (always 1)", labels=["version"])
    family.add_metric([__version__], 1)
    return family


class _Scrape:
    """What one scrape exposes: the recorded metrics (every worker's) and the values computed for it."""

    def __init__(self, queue_depth: int | None):
        self.queue_depth = queue_depth

    def collect(self):
        yield from (MultiProcessCollector(None) if MULTIPROCESS else METRICS).collect()
        yield from process_metrics()
        yield build_info()
        if self.queue_depth is not None:  # absent while MongoDB does not answer: absent() can alert on it
            yield GaugeMetricFamily(
                "accounts_email_queue_depth", "Messages in the email outbox waiting to be sent", value=self.queue_depth
            )


def exposition(encoder, queue_depth: int | None) -> bytes:
    """The scrape's body, written by a prometheus_client encoder (text format or OpenMetrics)."""
    return encoder(_Scrape(queue_depth))
