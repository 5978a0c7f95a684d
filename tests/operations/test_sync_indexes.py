"""python run.py --sync-indexes, and a real run.py that meets conflicting indexes on a real server."""

import os
import subprocess
import sys
import time
import uuid

import pytest

from tests.conftest import server_env
from tests.helpers import assert_error, free_port
from tests.service_process import ROOT, ServiceProcess, run_py

pytestmark = pytest.mark.slow

REAL_SERVER = os.environ.get("MONGODB_URI")


def sync(**env) -> subprocess.CompletedProcess:
    return run_py("--sync-indexes", timeout=60, **env)


def test_sync_indexes_needs_a_real_server():
    env = {k: v for k, v in os.environ.items() if k != "MONGODB_URI"}
    result = subprocess.run(
        [sys.executable, "run.py", "--sync-indexes"], cwd=ROOT, capture_output=True, text=True, timeout=60, env=env
    )
    assert result.returncode == 2
    assert result.stderr.startswith("error: --sync-indexes needs MONGODB_URI")


def test_sync_indexes_fails_with_one_clear_line_when_mongodb_cannot_be_reached():
    started = time.monotonic()
    result = sync(
        MONGODB_URI=f"mongodb://127.0.0.1:{free_port()}/",
        MONGODB_TIMEOUT_MS="300",
        MONGODB_DB=f"accounts_test_{uuid.uuid4().hex[:16]}",
    )
    assert result.returncode == 1
    [line] = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert line.startswith("error: --sync-indexes failed on database accounts_test_")
    assert "ServerSelectionTimeoutError" in line
    assert time.monotonic() - started < 30


@pytest.mark.skipif(
    not REAL_SERVER, reason="needs a real MongoDB (MONGODB_URI): the embedded store lives in one process"
)
def test_conflict_keeps_run_py_not_ready_until_sync_indexes_rebuilds_it():
    from pymongo import ASCENDING, IndexModel, MongoClient

    env = server_env()
    with MongoClient(REAL_SERVER, serverSelectionTimeoutMS=5000) as client:
        users = client[env["MONGODB_DB"]]["users"]
        users.create_indexes(
            [
                IndexModel([("email", ASCENDING)], name="email_unique"),
                IndexModel([("username", ASCENDING)], unique=True, sparse=True, name="username_unique"),
            ]
        )
    service = again = None
    try:
        service = ServiceProcess(**env)
        service.wait_until_up()
        wait_for(lambda: "index conflict" in service.stderr(), service.stderr)
        ready = service.request("GET", "/ready")
        assert_error(ready, 503)
        assert "--sync-indexes" in ready.json["message"]
        assert service.request("GET", "/health").code == 200
        assert service.stop() == 0
        [line] = [line for line in service.stderr().splitlines() if "index conflict" in line]
        assert "users.email_unique" in line and "users.username_unique" in line and "--sync-indexes" in line
        result = sync(**env)
        assert result.returncode == 0, result.stderr
        assert "users: dropped index email_unique" in result.stdout
        assert "users: dropped index username_unique" in result.stdout
        assert "users: created index username_string_unique" in result.stdout
        with MongoClient(REAL_SERVER, serverSelectionTimeoutMS=5000) as client:
            info = client[env["MONGODB_DB"]]["users"].index_information()
        assert info["email_unique"]["unique"] and "username_unique" not in info
        again = ServiceProcess(**env)
        again.wait_until_up()
        wait_for(lambda: again.request("GET", "/ready").code == 200, again.stderr)
    finally:
        for process in (again, service):  # each drops the test database when closed
            if process is not None:
                process.close()


def wait_for(condition, output, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, output()
        time.sleep(0.05)
