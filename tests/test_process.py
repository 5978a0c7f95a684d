"""run.py as ops run it: a real process, its start-up checks, and a graceful SIGTERM."""
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.conftest import server_env
from tests.helpers import PASSWORD, free_port

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def start(port, **env):
    full_env = {**os.environ, **server_env(**env)}
    return subprocess.Popen([sys.executable, "run.py", "--port", str(port)], cwd=ROOT, env=full_env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def wait_until_up(port, process, timeout=20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, process.stdout.read()
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1) as response:
                return json.loads(response.read())
        except OSError:
            time.sleep(0.1)
    raise AssertionError("server did not come up")


def post(port, path, body):
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"}, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_run_serves_and_sigterm_drains_in_flight_requests():
    port = free_port()
    # Slow hashing keeps a registration in flight while SIGTERM arrives.
    process = start(port, BCRYPT_ROUNDS="14")
    try:
        assert wait_until_up(port, process) == {"status": "ok"}
        with ThreadPoolExecutor(1) as pool:
            pending = pool.submit(post, port, "/auth/register",
                                  {"name": "Slow Hash", "email": "slow@example.com", "password": PASSWORD})
            time.sleep(0.3)
            process.send_signal(signal.SIGTERM)
            status, body = pending.result(timeout=30)
        assert status == 201 and body["user"]["email"] == "slow@example.com"
        assert process.wait(timeout=30) == 0
        output = process.stdout.read()
        assert "embedded in-memory MongoDB stand-in" in output
        assert "stopped" in output
    finally:
        if process.poll() is None:
            process.kill()


def test_bad_setting_stops_start_up_with_one_line():
    result = subprocess.run([sys.executable, "run.py"], cwd=ROOT, capture_output=True, text=True, timeout=30,
                            env={**os.environ, "BCRYPT_ROUNDS": "forty"})
    assert result.returncode == 2
    assert result.stderr.strip() == "error: BCRYPT_ROUNDS must be a whole number, got 'forty'"


def test_processes_are_refused_on_the_embedded_store():
    env = {k: v for k, v in os.environ.items() if k != "MONGODB_URI"}
    result = subprocess.run([sys.executable, "run.py", "--processes", "2"], cwd=ROOT, capture_output=True,
                            text=True, timeout=30, env=env)
    assert result.returncode == 2
    assert "--processes needs MONGODB_URI" in result.stderr
