"""GET /metrics from run.py's processes: one scrape, answered by one worker, sums every worker.

Without a MongoDB server: --processes needs MONGODB_URI, so the workers get a closed local port
(as in tests/operations/test_processes.py). /health and /metrics need no database, so they still answer, and
each worker's own share of the traffic is read from its file in PROMETHEUS_MULTIPROC_DIR with
prometheus_client's reader, to show that both served some and that the scrape holds their sum.
With MONGODB_URI set, a last test logs in through two workers against that server.
"""

import json
import os
import signal
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import pytest
from prometheus_client.multiprocess import MultiProcessCollector

from tests.helpers import PASSWORD, REQUESTS, Scrape, assert_error
from tests.service_process import ROOT, UNREACHABLE_MONGODB, children, running, wait_for
from version import __version__

pytestmark = pytest.mark.slow

TOKEN = "metrics-token-0123456789abcdef"
AUTHORIZED = {"Authorization": f"Bearer {TOKEN}"}
HEALTH = {"route": "/health", "method": "GET", "status": "200"}
WORKERS = "accounts_worker_processes"


def scrape(service) -> Scrape:
    response = service.request("GET", "/metrics", headers=AUTHORIZED)
    assert response.code == 200, response
    return Scrape(response.body.decode())


def own_count(directory, pid: int, name: str, **labels) -> float:
    """One worker's own value of a counter, read from its file alone."""
    path = os.path.join(directory, f"counter_{pid}.db")
    if not os.path.exists(path):
        return 0.0
    for metric in MultiProcessCollector.merge([path]):
        for sample in metric.samples:
            if sample.name == name and sample.labels == labels:
                return sample.value
    return 0.0


def logged_directory(service) -> str:
    """The multiprocess directory run.py says it made, from its JSON log lines."""
    prefix = "metrics: multiprocess directory "
    for line in service.stderr().splitlines():
        message = json.loads(line).get("message", "")
        if message.startswith(prefix):
            return message[len(prefix) :]
    raise AssertionError(service.stderr())


def get_health(service, times: int) -> None:
    with ThreadPoolExecutor(8) as pool:  # concurrent connections, so that both workers accept some
        codes = list(pool.map(lambda _: service.request("GET", "/health").code, range(times)))
    assert codes == [200] * times


def test_one_scrape_sums_both_workers_and_a_dead_worker_leaves_only_its_counts(tmp_path):
    directory = tmp_path / "metrics"
    directory.mkdir()
    (directory / "counter_1.db").write_bytes(b"an earlier run's values")
    with running(
        "--processes", "2", METRICS_TOKEN=TOKEN, PROMETHEUS_MULTIPROC_DIR=str(directory), **UNREACHABLE_MONGODB
    ) as service:
        workers = wait_for(lambda: len(children(service.pid)) == 2 and children(service.pid))
        assert not (directory / "counter_1.db").exists()  # wiped at start-up
        before = scrape(service)
        assert before.value(WORKERS) == 2
        # Each worker's own process figures, told apart by pid: never summed (docs/operating/metrics.md).
        assert before.labels("process_resident_memory_bytes", "pid") == {str(pid) for pid in workers}
        for pid in workers:
            assert before.value("process_resident_memory_bytes", pid=str(pid)) > 10e6
            assert before.value("process_open_fds", pid=str(pid)) >= 3
        assert before.value("accounts_build_info", version=__version__) == 1
        sent = 0
        for _ in range(20):  # until each worker has answered some (the kernel picks who accepts)
            get_health(service, 50)
            sent += 50
            shares = {pid: own_count(directory, pid, REQUESTS, **HEALTH) for pid in workers}
            if all(shares.values()):
                break
        assert all(shares.values()), shares
        after = scrape(service)
        assert after.delta(before, REQUESTS, **HEALTH) == sent
        # Read again: a worker counts a request just after answering it, so the shares above may lag.
        shares = {pid: own_count(directory, pid, REQUESTS, **HEALTH) for pid in workers}
        assert after.value(REQUESTS, **HEALTH) == sum(shares.values())
        # MongoDB is a closed port: each scrape's outbox count failed, and was counted, in whichever worker.
        assert after.value("accounts_mongodb_errors_total", kind="unavailable") == 2
        assert not after.has("accounts_email_queue_depth")

        # A killed worker: the supervisor reaps it and drops its live gauge; its counts stay in the totals.
        killed = min(workers)
        os.kill(killed, signal.SIGKILL)
        wait_for(lambda: (lambda now: len(now) == 2 and killed not in now)(children(service.pid)))
        assert not list(directory.glob(f"gauge_livesum_{killed}.db"))
        assert (directory / f"counter_{killed}.db").exists()
        wait_for(lambda: scrape(service).value(WORKERS) == 2)  # the new worker has started serving
        final = scrape(service)
        assert final.value(REQUESTS, **HEALTH) == after.value(REQUESTS, **HEALTH)
        # The dead worker's process figures are gone; its replacement's are there.
        assert final.labels("process_resident_memory_bytes", "pid") == {str(pid) for pid in children(service.pid)}
        assert service.stop() == 0
    assert directory.is_dir()  # the operator's directory is left in place


def test_a_single_process_uses_a_temporary_directory_and_removes_it_at_exit():
    with running(METRICS_TOKEN=TOKEN, PROMETHEUS_MULTIPROC_DIR="") as service:
        directory = logged_directory(service)
        assert os.path.isdir(directory)
        before = scrape(service)
        get_health(service, 5)
        after = scrape(service)
        assert after.delta(before, REQUESTS, **HEALTH) == 5
        assert after.value(WORKERS) == 1 and after.value("accounts_email_queue_depth") == 0
        # run.py's one process is a worker too: its figures under its pid.
        assert after.labels("process_resident_memory_bytes", "pid") == {str(service.pid)}
        assert after.value("process_resident_memory_bytes", pid=str(service.pid)) > 10e6
        assert after.value("accounts_build_info", version=__version__) == 1
        assert os.listdir(directory)
        assert service.stop() == 0
    assert not os.path.exists(directory)


def test_metrics_is_404_without_a_token_under_run_py():
    with running(METRICS_TOKEN="") as service:
        assert_error(service.request("GET", "/metrics", headers=AUTHORIZED), 404, "Not found")


def test_an_unusable_metrics_directory_stops_start_up_with_one_line(tmp_path):
    not_a_directory = tmp_path / "file"
    not_a_directory.write_text("")
    result = subprocess.run(
        [sys.executable, "run.py"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
        env={**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(not_a_directory / "metrics")},
    )
    assert result.returncode == 2
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("error: PROMETHEUS_MULTIPROC_DIR cannot be used:"), line


@pytest.mark.skipif(not os.environ.get("MONGODB_URI"), reason="needs a MongoDB server: set MONGODB_URI")
def test_logins_through_two_workers_are_counted_in_one_scrape():
    with running("--processes", "2", METRICS_TOKEN=TOKEN) as service:
        wait_for(lambda: service.request("GET", "/ready").code == 200, timeout=30)
        assert (
            service.request(
                "POST",
                "/auth/register",
                json={"name": "Mark Essien", "email": "mark@example.com", "password": PASSWORD},
            ).code
            == 201
        )
        before = scrape(service)
        login = {"email": "mark@example.com", "password": "wrong password"}
        for _ in range(2):
            assert_error(service.request("POST", "/auth/login", json=login), 401)
        assert service.request("POST", "/auth/login", json={**login, "password": PASSWORD}).code == 200
        after = scrape(service)
        assert after.delta(before, "accounts_logins_total", result="failed") == 2
        assert after.delta(before, "accounts_logins_total", result="success") == 1
        assert after.has("accounts_email_queue_depth")  # the outbox count answered by the real server
