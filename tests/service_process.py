"""run.py as a real process for tests: a free port, output kept in files, always stopped."""

import contextlib
import json as jsonlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from types import SimpleNamespace

from tests.conftest import TEST_ENV, server_env
from tests.helpers import Response, free_port

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class ServiceProcess:
    """`python run.py --port <port> *args` with the suite's environment plus env; a free port by default."""

    def __init__(self, *args, port=None, **env):
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        # run.py removes a metrics directory it made only on SIGTERM; close() may SIGKILL it, so the
        # directory is made here (unless the test sets one) and removed by close().
        self._metrics_dir = tempfile.mkdtemp(prefix="accounts-test-metrics-")
        self.env = server_env(**{"PROMETHEUS_MULTIPROC_DIR": self._metrics_dir, **env})
        self._stdout = tempfile.TemporaryFile("w+", encoding="utf-8")
        self._stderr = tempfile.TemporaryFile("w+", encoding="utf-8")
        self.process = subprocess.Popen(
            [sys.executable, "run.py", "--port", str(self.port), *args],
            cwd=ROOT,
            env={**os.environ, **self.env},
            stdout=self._stdout,
            stderr=self._stderr,
        )

    @property
    def pid(self) -> int:
        return self.process.pid

    def wait_until_up(self) -> None:
        wait_until_answering(self.url, self.process, self.stderr)

    def request(self, method, path, json=None, **kwargs) -> Response:
        return http(method, self.url + path, json=json, **kwargs)

    def stop(self, timeout: float = 30.0) -> int:
        """SIGTERM, then the exit code; SIGKILL (and a failed test) if it does not exit in time."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise AssertionError(f"run.py ignored SIGTERM:\n{self.stderr()}") from None

    def stderr(self) -> str:
        return _read(self._stderr)

    def stdout(self) -> str:
        return _read(self._stdout)

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self._stdout.close()
        self._stderr.close()
        shutil.rmtree(self._metrics_dir, ignore_errors=True)
        _drop_test_database(self.env)


def run_py(*args, timeout=30, **env) -> subprocess.CompletedProcess:
    """`python run.py *args` to its end (a refusal, --version, --sync-indexes) with the suite's settings plus env."""
    return subprocess.run(
        [sys.executable, "run.py", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **TEST_ENV, **env},
    )


@contextlib.contextmanager
def running(*args, port=None, **env):
    """A started, answering run.py; killed at the end whatever happens."""
    service = ServiceProcess(*args, port=port, **env)
    try:
        service.wait_until_up()
        yield service
    finally:
        service.close()


def wait_until_answering(url: str, process: subprocess.Popen, output, timeout: float = 20.0) -> None:
    """Poll url/health until it answers; fail with the process's output if it exits or never answers."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, output()
        try:
            with urllib.request.urlopen(url + "/health", timeout=1):
                return
        except OSError:
            time.sleep(0.05)
    raise AssertionError(f"{url} did not answer:\n{output()}")


def http(method, url, json=None, body=None, headers=None, timeout=30) -> Response:
    """One request with urllib; error statuses are returned, not raised."""
    headers = dict(headers or {})
    if json is not None:
        body = jsonlib.dumps(json).encode()
        headers.setdefault("Content-Type", "application/json")
    request = urllib.request.Request(url, data=body, headers=headers, method=method)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as raw:
            return Response(SimpleNamespace(code=raw.status, headers=raw.headers, body=raw.read()))
    except urllib.error.HTTPError as error:
        return Response(SimpleNamespace(code=error.code, headers=error.headers, body=error.read()))


def wait_for_mail(mailbox, count: int, timeout: float = 10.0) -> list:
    """The first `count` messages the in-process SMTP server (its own thread) has received."""
    deadline = time.monotonic() + timeout
    while len(mailbox.messages) < count:
        assert time.monotonic() < deadline, f"expected {count} emails, got {len(mailbox.messages)}"
        time.sleep(0.02)
    return mailbox.messages[:count]


def _read(file) -> str:
    file.flush()
    file.seek(0)
    return file.read()


def _drop_test_database(env: dict) -> None:
    """Against the suite's real MongoDB, the database server_env made up for this process is dropped."""
    uri = os.environ.get("MONGODB_URI")
    if not uri or env.get("MONGODB_URI") != uri:
        return
    from pymongo import MongoClient

    with MongoClient(uri, serverSelectionTimeoutMS=3000) as client:
        client.drop_database(env["MONGODB_DB"])


UNREACHABLE_MONGODB = {
    "MONGODB_URI": f"mongodb://127.0.0.1:{free_port()}/",
    "MONGODB_TIMEOUT_MS": "300",
    "MONGODB_OPERATION_TIMEOUT_MS": "300",
}


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
    """predicate()'s first truthy value, polled for up to timeout seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError("condition not reached in time")
