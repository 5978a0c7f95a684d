"""Each test gets its own application on a fresh store.

Without MONGODB_URI the store is the embedded stand-in; with it, each test uses a database of
its own on that server, dropped afterwards, so the same suite runs against real MongoDB.
"""

import asyncio
import gc
import os
import subprocess
import sys
import time
import uuid

import pytest

# pytest rewrites the asserts of every test module as it imports it, in each pytest-xdist worker; under
# PYTHONDONTWRITEBYTECODE that is redone on every run (seconds per worker), so the suite keeps its
# bytecode in the git-ignored __pycache__ directories as Python does by default.
sys.dont_write_bytecode = False

# After the line above, so that these modules' bytecode is kept too (E402 on purpose).
from tornado.httpclient import AsyncHTTPClient  # noqa: E402
from tornado.simple_httpclient import SimpleAsyncHTTPClient  # noqa: E402

from handlers.routes import make_app  # noqa: E402
from services.container import Services  # noqa: E402
from settings import Settings  # noqa: E402
from tests.helpers import TEST_AGENT, Api, Store, smtp_server  # noqa: E402
from tests.index_coverage import RECORDED, RecordingDatabase, unserved  # noqa: E402

# The tests' HTTP client (pytest-tornado's http_client, hence `api`): Tornado's libcurl one keeps a test's
# connection alive across its requests, as browsers and apps do, and costs half the CPU per request of Tornado's
# pure-Python client, which was most of the fast suite's time. python_api below has the pure-Python one.
AsyncHTTPClient.configure("tornado.curl_httpclient.CurlAsyncHTTPClient", defaults={"user_agent": TEST_AGENT})

# The `browser` fixture (headless Chromium) for the tests of pages a person sees.
pytest_plugins = ["tests.browser"]

# The collector: the modules imported by then (a quarter of a million objects) are never garbage, so they are
# frozen out of every collection (here and once the tests are collected), and young objects are collected ten
# times less often. A run spent a twentieth of its time collecting.
gc.freeze()
gc.set_threshold(7000, 10, 10)


def pytest_collection_finish(session):
    gc.freeze()


TEST_ENV = {
    "BCRYPT_ROUNDS": "4",  # the minimum: the suite tests behaviour, not bcrypt's cost
    "JWT_SECRET": "test-secret-that-is-long-enough-for-hs256-0123456789",
    # New mail wakes the sender at once; the poll finds only retries that fall due (tests of those set it
    # lower), and polling 20 times a second cost every test CPU.
    "EMAIL_POLL_SECONDS": "2",
}


@pytest.hookimpl(tryfirst=True)  # before -m deselects: a heavy test is a slow one
def pytest_collection_modifyitems(config, items):
    """Heavy tests are slow ones (pytest.ini). Under pytest-xdist (--dist loadgroup) the tests that start
    processes run one after another on one worker: their processes, browsers and nginx would otherwise
    compete for the same cores and time out. A step-down test runs only alone: it leaves the replica set
    without a primary for seconds, which would fail every test running beside it."""
    stepdowns = [item for item in items if item.get_closest_marker("stepdown")]
    if stepdowns and len(stepdowns) < len(items):
        items[:] = [item for item in items if item not in stepdowns]
        config.hook.pytest_deselected(items=stepdowns)
    for item in items:
        if item.get_closest_marker("heavy"):
            item.add_marker(pytest.mark.slow)
        elif item.get_closest_marker("slow"):
            item.add_marker(pytest.mark.xdist_group("processes"))


class _SlowGuard:
    """Fails a test that starts a process (run.py, nginx, chromedriver) without the `slow` marker, so the fast
    suite (-m "not slow") stays fast; the marker is registered in pytest.ini."""

    running_fast_test = None  # the node id of the unmarked test running now, if any
    original_init = subprocess.Popen.__init__

    @staticmethod
    def popen_init(process, *args, **kwargs):
        if _SlowGuard.running_fast_test:
            raise AssertionError(f"{_SlowGuard.running_fast_test} starts a process: mark it @pytest.mark.slow")
        _SlowGuard.original_init(process, *args, **kwargs)


subprocess.Popen.__init__ = _SlowGuard.popen_init


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item, nextitem):
    _SlowGuard.running_fast_test = None if item.get_closest_marker("slow") else item.nodeid
    try:
        return (yield)
    finally:
        _SlowGuard.running_fast_test = None


def server_env(**extra) -> dict:
    """The environment a test server runs with, on the same store the suite targets."""
    env = dict(TEST_ENV)
    if os.environ.get("MONGODB_URI"):
        env["MONGODB_URI"] = os.environ["MONGODB_URI"]
        env["MONGODB_DB"] = f"accounts_test_{uuid.uuid4().hex[:16]}"
    env.update(extra)
    return env


@pytest.fixture(autouse=True)
def queries_use_declared_indexes():
    """Fails (at teardown) the test during which the services sent a query that no index declared in models/
    serves: the stand-in has no query planner, so this is what keeps queries O(log n) on MongoDB."""
    RECORDED.clear()
    yield
    problems = unserved(RECORDED)
    RECORDED.clear()
    assert not problems, "queries no declared index serves (or that a handler sent):\n" + "\n".join(problems)


@pytest.fixture
def settings_env():
    """Extra environment for the test's server; override in a module or test to change settings."""
    return {}


@pytest.fixture
def config(settings_env):
    return Settings.from_env(server_env(**settings_env))


@pytest.fixture
def services(io_loop, config):
    # Recording collections: every query the services send is checked against the declared indexes.
    services = Services(config, RecordingDatabase.connect(config))

    async def start():
        services.start()
        # The start-up steps create the indexes in the background (as in run.py); the test begins once they
        # exist, without creating them a second time.
        deadline = time.monotonic() + 30
        while not services.database.indexes_ready:
            assert time.monotonic() < deadline, f"no indexes after 30 s: {services.database.stopped_reason}"
            await asyncio.sleep(0.001)

    io_loop.run_sync(start)
    yield services
    io_loop.run_sync(lambda: stop_services(services, config))


@pytest.fixture
def store(services):
    """The test's collections by model name (store.users, store.sessions, ...): see tests/helpers.py Store."""
    return Store(services.database)


async def stop_services(services, config) -> None:
    """Stop a test's services; on the suite's real server, drop the database made up for the test."""
    if not config.embedded:
        await services.database.client.drop_database(config.mongodb_db)
    await services.stop()


@pytest.fixture
def app(services, config):
    return make_app(services, config)


@pytest.fixture
def api(http_client, base_url, config):
    return Api(http_client, base_url, config.app_url)


@pytest.fixture
def python_api(http_server, base_url, config):
    """An Api over Tornado's pure-Python client, for what libcurl's does not send: a body streamed in chunks
    (body_producer) and a body with a GET."""
    client = SimpleAsyncHTTPClient(force_instance=True, defaults={"user_agent": TEST_AGENT})
    yield Api(client, base_url, config.app_url)
    client.close()


@pytest.fixture
def mailbox():
    """A real SMTP server (aiosmtpd) on a free local port, running in its own thread."""
    with smtp_server() as box:
        yield box


@pytest.fixture
def smtp_env(mailbox):
    """Settings that send email to the test SMTP server."""
    return {
        "SMTP_HOST": "127.0.0.1",
        "SMTP_PORT": str(mailbox.port),
        "SMTP_STARTTLS": "false",
        "EMAIL_FROM": "Accounts <accounts@example.com>",
        "APP_URL": "https://app.example.com",
    }
