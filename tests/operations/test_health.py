"""/health and /ready, with MongoDB up, unreachable, and back again."""

import time

import pytest
from pymongo.errors import ServerSelectionTimeoutError

from services.container import Services
from services.database import Database
from settings import Settings
from tests.conftest import TEST_ENV, stop_services
from tests.helpers import PASSWORD, assert_error, free_port

pytestmark = pytest.mark.gen_test


async def test_health_and_ready(api):
    response = await api.get("/health")
    assert response.code == 200 and response.json == {"status": "ok"}
    response = await api.get("/ready")
    assert response.code == 200 and response.json == {"status": "ready"}


class TestMongoUnreachable:
    """A real Motor client pointed at a port where no MongoDB listens."""

    @pytest.fixture
    def config(self):
        env = {
            **TEST_ENV,
            "MONGODB_URI": f"mongodb://127.0.0.1:{free_port()}/",
            "MONGODB_TIMEOUT_MS": "300",
            "MONGODB_OPERATION_TIMEOUT_MS": "300",
        }
        return Settings.from_env(env)

    @pytest.fixture
    def services(self, io_loop, config):
        services = Services(config, Database.connect(config))
        io_loop.run_sync(lambda: _start(services))
        yield services
        io_loop.run_sync(services.stop)

    @pytest.mark.heavy
    @pytest.mark.gen_test(timeout=30)
    async def test_process_serves_health_and_answers_503_fast(self, api):
        assert (await api.get("/health")).code == 200
        for method, path, body in (
            ("GET", "/ready", None),
            ("POST", "/auth/login", {"email": "a@b.co", "password": PASSWORD}),
            ("POST", "/auth/register", {"name": "A B", "email": "a@b.co", "password": PASSWORD}),
        ):
            started = time.monotonic()
            response = await api.request(method, path, json=body)
            assert_error(response, 503)
            assert time.monotonic() - started < 5


async def _start(services):
    services.start()


class TestIndexesRecover:
    """Index creation that fails at start-up (MongoDB down) is retried until it succeeds."""

    @pytest.fixture
    def services(self, io_loop, config, monkeypatch):
        real = Database.ensure_indexes
        failures = {"left": 3}

        async def flaky(self):
            if failures["left"]:
                failures["left"] -= 1
                raise ServerSelectionTimeoutError("no server")
            await real(self)

        monkeypatch.setattr(Database, "ensure_indexes", flaky)
        monkeypatch.setattr(Database, "RETRY_SECONDS", 0.01)
        services = Services(config, Database.connect(config))
        io_loop.run_sync(lambda: _start(services))
        yield services
        io_loop.run_sync(lambda: stop_services(services, config))

    @pytest.mark.gen_test(timeout=30)
    async def test_ready_turns_200_once_indexes_exist(self, api, store):
        import asyncio

        assert_error(await api.get("/ready"), 503)
        for _ in range(200):
            if (await api.get("/ready")).code == 200:
                break
            await asyncio.sleep(0.02)
        assert (await api.get("/ready")).code == 200
        info = await store.users.index_information()
        assert "email_unique" in info
