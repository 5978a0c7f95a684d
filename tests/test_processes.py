"""run.py --processes N: forked workers share the port, a dead one is replaced, SIGTERM ends them all.

MongoDB is a closed local port: the workers start anyway (/health 200, /ready 503), which is all
supervising them needs.
"""
import os
import signal
import time

import pytest

from tests.helpers import assert_error, free_port
from tests.service_process import running

pytestmark = pytest.mark.slow  # run.py with forked workers

UNREACHABLE_MONGODB = {"MONGODB_URI": f"mongodb://127.0.0.1:{free_port()}/", "MONGODB_TIMEOUT_MS": "300"}


def children(pid: int) -> set:
    """Pids of the live processes whose parent is pid, read from /proc."""
    found = set()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as stat:
                    fields = stat.read().rsplit(")", 1)[1].split()
            except OSError:
                continue  # exited while we looked
            if int(fields[1]) == pid and fields[0] != "Z":
                found.add(int(entry))
    return found


def wait_for(predicate, timeout: float = 15.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError("condition not reached in time")


def test_workers_serve_are_replaced_and_stop_on_sigterm():
    with running("--processes", "2", **UNREACHABLE_MONGODB) as service:
        workers = wait_for(lambda: len(children(service.pid)) == 2 and children(service.pid))
        for _ in range(4):  # whichever worker accepts answers
            assert service.request("GET", "/health").code == 200
        assert_error(service.request("GET", "/ready"), 503)
        # A worker that dies is replaced by a new one.
        killed = min(workers)
        os.kill(killed, signal.SIGKILL)
        replaced = wait_for(lambda: (lambda now: len(now) == 2 and killed not in now and now)(children(service.pid)))
        assert replaced - workers and service.request("GET", "/health").code == 200
        assert service.stop() == 0
        assert not [pid for pid in workers | replaced if os.path.exists(f"/proc/{pid}")]  # none orphaned
        log = service.stderr()
    assert "supervising 2 worker processes" in log
    assert f"worker {killed} died (exit code -9); starting another" in log
    assert log.count('"message": "stopped"') == 2  # both workers drained and closed MongoDB
    assert "every worker has exited" in log
