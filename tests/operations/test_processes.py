"""run.py --processes N: forked workers share the port, a dead one is replaced, SIGTERM ends them all.

MongoDB is a closed local port: the workers start anyway (/health 200, /ready 503), which is all
supervising them needs.
"""

import os
import signal

import pytest

from tests.helpers import assert_error
from tests.service_process import UNREACHABLE_MONGODB, children, running, wait_for

pytestmark = pytest.mark.slow  # starts run.py --processes 2


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
