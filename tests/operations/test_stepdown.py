"""A replica set's primary steps down while requests run: no 500, and every acknowledged write is kept.

Runs only when MONGODB_URI points at a replica set whose user may run replSetStepDown (CI's replica-set jobs:
.ci/mongodb-replica-set); skipped otherwise. Run alone (`python -m pytest tests/operations/test_stepdown.py -n 0`):
beside other tests it is deselected (tests/conftest.py), since the set has no primary for STEP_DOWN_SECONDS. The
service under test connects as MONGODB_SERVICE_URI when set (a user with only the documented `readWrite` role on its
database), else as MONGODB_URI on a database of its own.
"""

import asyncio
import collections
import os
import time
import uuid

import pytest
from pymongo import ReadPreference
from pymongo.errors import PyMongoError

from services.container import Services
from services.database import Database
from settings import Settings
from tests.conftest import TEST_ENV
from tests.helpers import assert_error

pytestmark = [pytest.mark.heavy, pytest.mark.stepdown]

STEP_DOWN_SECONDS = 10  # no primary for this long: twice the requests' 5 s deadline


@pytest.fixture
def admin_client(io_loop):
    if not os.environ.get("MONGODB_URI"):
        pytest.skip("needs MONGODB_URI pointing at a replica set")
    from motor.motor_asyncio import AsyncIOMotorClient

    client = AsyncIOMotorClient(os.environ["MONGODB_URI"], tz_aware=True, serverSelectionTimeoutMS=60000)
    hello = io_loop.run_sync(lambda: client.admin.command("hello"))
    if "setName" not in hello:
        client.close()
        pytest.skip("MONGODB_URI is not a replica set")
    yield client
    client.close()


@pytest.fixture
def config(admin_client):
    if os.environ.get("MONGODB_SERVICE_URI"):
        env = {
            "MONGODB_URI": os.environ["MONGODB_SERVICE_URI"],
            "MONGODB_DB": os.environ.get("MONGODB_SERVICE_DB", "accounts"),
        }
    else:
        env = {"MONGODB_URI": os.environ["MONGODB_URI"], "MONGODB_DB": f"accounts_test_{uuid.uuid4().hex[:16]}"}
    return Settings.from_env({**TEST_ENV, **env})


@pytest.fixture
def services(io_loop, config):
    services = Services(config, Database.connect(config))

    async def start():
        services.start()
        deadline = time.monotonic() + 60
        while not services.database.indexes_ready:
            assert time.monotonic() < deadline, services.database.stopped_reason
            await asyncio.sleep(0.05)

    io_loop.run_sync(start)
    yield services

    async def clean():
        # Collection by collection: the readWrite role may drop collections, not the database.
        for name in await services.database.db.list_collection_names():
            await services.database.db.drop_collection(name)
        await services.stop()

    io_loop.run_sync(clean)


async def wait_for_primary(client, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            hello = await client.admin.command("hello", read_preference=ReadPreference.PRIMARY_PREFERRED)
            if hello.get("isWritablePrimary"):
                return
        except PyMongoError:
            pass
        await asyncio.sleep(0.5)
    raise AssertionError("no primary again")


@pytest.mark.gen_test(timeout=240)
async def test_a_step_down_while_requests_run_gives_no_500_and_keeps_every_acknowledged_write(
    api, services, admin_client
):
    stop = asyncio.Event()
    answers = []  # (email, response)

    async def register(worker: int) -> None:
        for number in range(10**6):
            if stop.is_set():
                return
            email = f"w{worker}-{number}@example.com"
            response = await api.post(
                "/auth/register",
                json={"email": email, "password": "password-123", "firstName": "Step", "lastName": "Down"},
            )
            answers.append((email, response))
            await asyncio.sleep(0.05)

    writers = [asyncio.ensure_future(register(worker)) for worker in range(4)]
    await asyncio.sleep(2)
    try:
        await admin_client.admin.command(
            {"replSetStepDown": STEP_DOWN_SECONDS, "secondaryCatchUpPeriodSecs": 2, "force": True}
        )
    except PyMongoError:
        pass  # the primary may close this connection as it steps down
    await wait_for_primary(admin_client)
    await asyncio.sleep(3)  # and requests served by the primary again
    stop.set()
    await asyncio.gather(*writers)

    statuses = collections.Counter(response.code for _, response in answers)
    assert set(statuses) <= {201, 503}, statuses  # never a 500
    assert statuses[503] and statuses[201], statuses  # the step-down was met, and writes went on after it
    for _, response in answers:
        if response.code == 503:
            assert_error(response, 503)
    acknowledged = [email for email, response in answers if response.code == 201]
    users = services.database["users"]
    kept = {doc["email"] async for doc in users.find({"email": {"$in": acknowledged}}, {"email": 1})}
    assert kept == set(acknowledged)
    # A registration answered 201 after the step-down works: its user can log in.
    response = await api.post("/auth/login", json={"email": acknowledged[-1], "password": "password-123"})
    assert response.code == 200
