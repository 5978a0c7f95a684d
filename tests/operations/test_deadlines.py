"""One database deadline per request, queueing included, and a bound on database calls in flight per process.

The outage is real: a real Motor client pointed at a port nothing listens on, so every call meets pymongo's own
ServerSelectionTimeoutError, after the time pymongo.timeout() handed to Motor's thread. The slot bound is
exercised on the embedded store by holding the process's slots with calls of the test's own. Speed is measured
in bench/outage.py (docs/operating/benchmarks.md), never asserted here.
"""

import asyncio
import logging

import pytest
from motor.motor_asyncio import AsyncIOMotorClient
from pymongo.errors import ServerSelectionTimeoutError
from tornado.httpclient import AsyncHTTPClient

from services import deadlines
from services.container import Services
from services.database import Database
from settings import Settings
from tests.conftest import TEST_ENV
from tests.helpers import assert_error, free_port

BUDGET_MS = 300
SLOTS = 4
REQUESTS = 50


class TestOutage:
    """Server selection and the client's timeoutMS allow 20 s; the request's budget is 300 ms and the process
    has 4 slots: 50 concurrent logins all answer 503, and never more than 4 calls were in flight."""

    @pytest.fixture
    def config(self):
        return Settings.from_env(
            {
                **TEST_ENV,
                "MONGODB_URI": f"mongodb://127.0.0.1:{free_port()}/",
                "MONGODB_TIMEOUT_MS": "20000",
                "MONGODB_OPERATION_TIMEOUT_MS": str(BUDGET_MS),
                "MONGODB_MAX_IN_FLIGHT": str(SLOTS),
            }
        )

    @pytest.fixture
    def services(self, io_loop, config):
        services = Services(config, Database.connect(config))
        yield services
        io_loop.run_sync(services.stop)

    @pytest.fixture
    def http_client(self, http_server):
        # Tornado's client sends 10 requests at a time by default and queues the rest in the test: the 50 must
        # reach the server together, or the last answers come seconds late and the slots are never contended.
        client = AsyncHTTPClient(force_instance=True, max_clients=REQUESTS)
        yield client
        client.close()

    @pytest.mark.heavy  # the 300 ms budget waited out, twice over for some
    @pytest.mark.gen_test(timeout=60)
    async def test_fifty_concurrent_requests_all_answer_503_and_the_bound_holds(self, api, services, caplog):
        body = {"email": "a@example.com", "password": "password-123"}
        responses = await asyncio.gather(*(api.post("/auth/login", json=body) for _ in range(REQUESTS)))
        for response in responses:
            assert_error(response, 503, "Database unavailable")
        gate = services.database.gate
        assert gate.slots == SLOTS and gate.peak == SLOTS and gate.in_flight == 0
        errors = {
            record.getMessage().split("error=")[1].split()[0]
            for record in caplog.records
            if record.name == "accounts.http" and "database unavailable" in record.getMessage()
        }
        # Some met the server's absence, the others ran out of budget waiting for a slot: both are the deadline.
        assert "ServerSelectionTimeoutError" in errors
        assert errors <= {"ServerSelectionTimeoutError", "WaitQueueTimeoutError", "ExecutionTimeout"}
        assert not [r for r in caplog.records if r.name == "accounts.http" and r.levelno >= logging.ERROR]


@pytest.mark.heavy  # pymongo's server selection waits out half a second before it gives up
@pytest.mark.gen_test(timeout=30)
async def test_the_budget_reaches_motors_thread():
    # Motor runs the call on its thread pool with the context copied (motor/frameworks/asyncio run_on_executor):
    # pymongo's error names the budget's remaining time, not the client's 20 s.
    client = AsyncIOMotorClient(f"mongodb://127.0.0.1:{free_port()}/", timeoutMS=20000, serverSelectionTimeoutMS=20000)
    try:
        gate = deadlines.Gate(2, 20.0)
        with deadlines.budget(0.25), pytest.raises(ServerSelectionTimeoutError) as caught:
            await gate.run(client.accounts.users.find_one, {})
        timeout = float(str(caught.value).split("Timeout: ")[1].split("s,")[0])
        assert timeout <= 0.25  # what was left of the budget when the thread ran, never the 20 s
    finally:
        client.close()


class TestSlots:
    """On the embedded store, with one slot per process held by a call that does not end."""

    @pytest.fixture
    def settings_env(self):
        return {"MONGODB_MAX_IN_FLIGHT": "1", "MONGODB_OPERATION_TIMEOUT_MS": "200"}

    @pytest.fixture
    def hold(self, io_loop, services):
        """await hold(): the process's only slot is taken until `await release()` (or the test's end); the
        store's own reads go through the same gate, so a test releases it before reading."""
        released = asyncio.Event()
        tasks = []
        gate = services.database.gate

        async def release():
            released.set()
            await tasks[0]

        async def hold():
            tasks.append(asyncio.get_running_loop().create_task(gate.run(released.wait)))
            while gate.in_flight < 1:
                await asyncio.sleep(0)
            return release

        yield hold
        released.set()
        if tasks and not tasks[0].done():
            io_loop.run_sync(lambda: tasks[0])

    @pytest.mark.gen_test(timeout=30)
    async def test_waiting_for_a_slot_is_a_503_within_the_budget_and_nothing_is_written(self, api, store, hold, caplog):
        release = await hold()
        response = await api.post(
            "/auth/register",
            json={"email": "ada@example.com", "password": "password-123", "firstName": "Ada", "lastName": "Lovelace"},
        )
        assert_error(response, 503, "Database unavailable")
        await release()
        assert await store.users.count_documents({}) == 0
        assert await store.organisations.count_documents({}) == 0
        assert any("error=WaitQueueTimeoutError" in r.getMessage() for r in caplog.records if r.name == "accounts.http")

    @pytest.mark.gen_test(timeout=30)
    async def test_ready_answers_503_while_the_slots_are_taken(self, api, hold):
        await hold()
        assert_error(await api.get("/ready"), 503, "Database unavailable")

    @pytest.mark.gen_test(timeout=30)
    async def test_a_slot_freed_within_the_budget_serves_the_request(self, api, hold):
        release = await hold()
        pending = asyncio.ensure_future(api.get("/ready"))
        await asyncio.sleep(0.02)
        await release()
        assert (await pending).code == 200


def test_a_clock_counts_only_the_time_calls_are_in_flight():
    clock = deadlines.Clock(5.0)
    assert clock.remaining() == 5.0
    clock.start()
    clock.start()  # two calls of one request at once count once
    clock.stop()
    assert clock.remaining() < 5.0
    clock.stop()
    spent = clock.spent
    assert clock.remaining() == 5.0 - spent  # stopped: time between calls (bcrypt, a body) does not count


@pytest.mark.gen_test(timeout=30)
async def test_work_a_request_leaves_behind_has_no_share_of_its_budget(api, services, monkeypatch):
    # forgot-password answers at once and looks the account up afterwards: that look-up must not spend (or be
    # cut short by) what is left of the answered request's budget; it gets a budget per call, as background work.
    seen = []
    real = services.users.find_by_email

    async def noting(email):
        seen.append(deadlines.current_budget())
        return await real(email)

    monkeypatch.setattr(services.users, "find_by_email", noting)
    assert (await api.post("/auth/forgot-password", json={"email": "nobody@example.com"})).code == 204
    while not seen:
        await asyncio.sleep(0.01)
    assert seen == [None]
    # Within a request, the request's budget.
    seen.clear()
    assert (await api.post("/auth/login", json={"email": "nobody@example.com", "password": "password-123"})).code == 401
    assert seen == [5.0]
