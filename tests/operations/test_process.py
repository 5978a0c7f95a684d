"""run.py as ops run it: a real process, its start-up checks, and a graceful SIGTERM."""

import http.client
import json
import os
import signal
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.helpers import PASSWORD
from tests.service_process import ROOT, run_py, running

pytestmark = pytest.mark.slow  # every test starts run.py


def slow_register(port: int, sent: threading.Event) -> tuple:
    """POST a registration; `sent` is set once the whole request is on the wire."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    body = json.dumps({"name": "Slow Hash", "email": "slow@example.com", "password": PASSWORD})
    connection.request("POST", "/auth/register", body=body, headers={"Content-Type": "application/json"})
    sent.set()
    response = connection.getresponse()
    return response.status, json.loads(response.read())


def test_run_serves_and_sigterm_drains_in_flight_requests():
    # Slow hashing keeps a registration in flight while SIGTERM arrives.
    with running(BCRYPT_ROUNDS="14") as service:
        sent = threading.Event()
        with ThreadPoolExecutor(1) as pool:
            pending = pool.submit(slow_register, service.port, sent)
            assert sent.wait(10)
            # A later connection answered means the server has accepted and read the earlier request,
            # which now spends about a second in bcrypt.
            assert service.request("GET", "/health").code == 200
            service.process.send_signal(signal.SIGTERM)
            status, body = pending.result(timeout=30)
        assert status == 201 and body["user"]["email"] == "slow@example.com"
        assert service.stop() == 0
        output = service.stderr()
        # The store the suite targets: ServiceProcess passes MONGODB_URI through when it is set.
        if os.environ.get("MONGODB_URI"):
            assert "using MongoDB from MONGODB_URI, database accounts_test_" in output
            assert "embedded in-memory MongoDB stand-in" not in output
        else:
            assert "embedded in-memory MongoDB stand-in" in output
        assert "stopped" in output


def test_bad_setting_stops_start_up_with_one_line():
    result = run_py(BCRYPT_ROUNDS="forty")
    assert result.returncode == 2
    assert result.stderr.strip() == "error: BCRYPT_ROUNDS must be a whole number, got 'forty'"


def test_processes_are_refused_on_the_embedded_store():
    env = {k: v for k, v in os.environ.items() if k != "MONGODB_URI"}
    result = subprocess.run(
        [sys.executable, "run.py", "--processes", "2"], cwd=ROOT, capture_output=True, text=True, timeout=30, env=env
    )
    assert result.returncode == 2
    assert "--processes needs MONGODB_URI" in result.stderr


def test_requests_cut_off_after_the_grace_period_are_never_500():
    # No grace at all: logins still hashing when SIGTERM arrives are abandoned mid-request.
    with running(BCRYPT_ROUNDS="14", SHUTDOWN_GRACE_SECONDS="0") as service:
        registered = service.request(
            "POST", "/auth/register", json={"name": "Cut Off", "email": "cut@example.com", "password": PASSWORD}
        )
        assert registered.code == 201
        sent = [threading.Event() for _ in range(4)]
        with ThreadPoolExecutor(4) as pool:
            for event in sent:
                pool.submit(_login_ignoring_errors, service.port, event)
            assert all(event.wait(10) for event in sent)
            assert service.request("GET", "/health").code == 200
            assert service.stop() == 0
        access = [json.loads(line) for line in service.stderr().splitlines() if '"accounts.access"' in line]
    statuses = [entry["status"] for entry in access if entry["path"] == "/auth/login"]
    assert 500 not in statuses, statuses


def _login_ignoring_errors(port: int, sent: threading.Event) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    body = json.dumps({"email": "cut@example.com", "password": PASSWORD})
    connection.request("POST", "/auth/login", body=body, headers={"Content-Type": "application/json"})
    sent.set()
    try:
        connection.getresponse().read()
    except (OSError, http.client.HTTPException):
        pass  # the server closed the connection while stopping: expected
