"""Start-up against indexes that differ from the declared ones, and errors that waiting cannot fix.

The conflicts are real where the store can hold them (an index of the same name with another spec is
made on the store before the service starts); the server-only failures are the real pymongo
exceptions with the server's codes and messages, raised where the server raises them.
"""

import asyncio
import logging

import pytest
from bson import ObjectId
from pymongo import ASCENDING, IndexModel
from pymongo import _csot as pymongo_csot
from pymongo.errors import AutoReconnect, DuplicateKeyError, OperationFailure

from models import users as user_model
from models.indexes import INDEXES
from services import database as database_module
from services.container import Services
from services.database import Database, describe_error
from tests.conftest import stop_services
from tests.helpers import PASSWORD, assert_error, server_error, sign_up
from tests.organisations_fixtures import invite, org_ids

ADMIN = {"ADMIN_EMAIL": "admin@example.com", "ADMIN_PASSWORD": "admin-password-123"}

# The server's own answers (MongoDB 7/8), as pymongo raises them.
SAME_NAME_OTHER_KEYS = server_error(
    OperationFailure,
    "An existing index has the same name as the requested index. When index names are not "
    "specified, they are auto generated and can cause conflicts. Please refer to our documentation. Requested "
    'index: { v: 2, key: { email: 1 }, name: "email_unique", unique: true }, existing index: { v: 2, key: '
    '{ email: 1 }, name: "email_unique" }',
    86,
    "IndexKeySpecsConflict",
)
SAME_NAME_OTHER_OPTIONS = server_error(
    OperationFailure,
    "An equivalent index already exists with a different name and options. Requested index: "
    '{ v: 2, key: { expiresAt: 1 }, name: "expiry_ttl", expireAfterSeconds: 0 }, existing index: { v: 2, key: '
    '{ expiresAt: 1 }, name: "expiry_ttl", expireAfterSeconds: 3600 }',
    85,
    "IndexOptionsConflict",
)
DUPLICATES_BLOCK_UNIQUE = server_error(
    DuplicateKeyError,
    "Index build failed: 5b6c0f7e-3c1a-4b7e-9a55-0d6e1f2a3b4c: Collection accounts.users "
    "( 1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d ) :: caused by :: E11000 duplicate key error collection: "
    'accounts.users index: email_unique dup key: { email: "twice@example.com" }',
    11000,
    "DuplicateKey",
    keyPattern={"email": 1},
    keyValue={"email": "twice@example.com"},
)
BAD_CREDENTIALS = server_error(OperationFailure, "Authentication failed.", 18, "AuthenticationFailed")


@pytest.fixture
def settings_env():
    return ADMIN


@pytest.fixture
def starter(io_loop, config):
    """starter(prepare): Services on a fresh store after prepare(database) has shaped it, started as run.py
    starts them; stopped (and a real server's test database dropped) at the end."""
    started = []

    def start(prepare=None):
        services = Services(config, Database.connect(config))

        async def go():
            if prepare:
                await prepare(services.database)
            services.start()

        io_loop.run_sync(go)
        started.append(services)
        return services

    yield start
    for services in started:
        io_loop.run_sync(lambda services=services: stop_services(services, config))


async def until(predicate, timeout=10.0):
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        assert asyncio.get_running_loop().time() < deadline, "condition not reached in time"
        await asyncio.sleep(0.002)


def database_log(caplog) -> list:
    """What accounts.database logged, start-up in the fixtures included."""
    return [r for when in ("setup", "call") for r in caplog.get_records(when) if r.name == "accounts.database"]


def stop_lines(caplog) -> list:
    return [r.getMessage() for r in database_log(caplog) if r.levelno == logging.ERROR]


def retries(caplog) -> list:
    return [r for r in database_log(caplog) if "retrying" in r.getMessage()]


class TestSameNameOtherSpec:
    """email_unique exists without unique (say, made by hand): a server refuses to create the declared one."""

    @pytest.fixture
    def services(self, starter):
        async def conflict(database):
            await database.db[user_model.COLLECTION].create_indexes(
                [IndexModel([("email", ASCENDING)], name="email_unique")]
            )

        return starter(conflict)

    @pytest.mark.gen_test(timeout=30)
    async def test_not_ready_with_one_line_naming_index_difference_and_fix(self, api, services, store, caplog):
        await until(lambda: services.database.stopped_reason)
        ready = await api.get("/ready")
        assert_error(ready, 503)
        assert "users.email_unique" in ready.json["message"] and "--sync-indexes" in ready.json["message"]
        assert (await api.get("/health")).code == 200
        [line] = stop_lines(caplog)
        assert "users.email_unique is {email: 1} on the server, declared {email: 1} unique" in line
        assert "python run.py --sync-indexes" in line
        assert not retries(caplog)
        # The later start-up steps never ran: no admin was bootstrapped over a store without unique emails.
        assert await store.users.count_documents({}) == 0
        assert not services.database.indexes_ready

    @pytest.mark.gen_test(timeout=30)
    async def test_sync_indexes_rebuilds_it_and_the_next_start_is_ready(self, services, store, io_loop):
        await until(lambda: services.database.stopped_reason)
        lines = []
        await services.database.sync_indexes(report=lines.append)
        assert lines[0] == "users: dropped index email_unique"
        assert "users: created index email_unique {email: 1} unique" in lines
        info = await store.users.index_information()
        assert info["email_unique"].get("unique") is True
        assert not (await services.database.index_plan()).conflicts


class TestRetiredAndRenamed:
    """An upgrade from the sparse username_unique, plus an index ops made on the declared keys."""

    @pytest.fixture
    def services(self, starter):
        async def old_version(database):
            collection = database.db[user_model.COLLECTION]
            await collection.create_indexes(
                [
                    IndexModel([("username", ASCENDING)], unique=True, sparse=True, name="username_unique"),
                    IndexModel([("role", ASCENDING), ("_id", ASCENDING)], name="role_1__id_1"),
                    IndexModel([("phone", ASCENDING)], name="ops_phone"),  # not ours: left alone
                ]
            )

        return starter(old_version)

    @pytest.mark.gen_test(timeout=30)
    async def test_start_up_names_both_and_sync_drops_only_those(self, api, services, store, caplog):
        await until(lambda: services.database.stopped_reason)
        assert_error(await api.get("/ready"), 503)
        [line] = stop_lines(caplog)
        assert "users.username_unique" in line and "users.role_1__id_1" in line and "ops_phone" not in line
        lines = []
        await services.database.sync_indexes(report=lines.append)
        assert "users: dropped index username_unique" in lines and "users: dropped index role_1__id_1" in lines
        info = await store.users.index_information()
        assert {"username_string_unique", "role_sort", "ops_phone"} <= set(info)
        assert not {"username_unique", "role_1__id_1"} & set(info)
        # Every declared index is in place: a second sync changes nothing.
        again = []
        await services.database.sync_indexes(report=again.append)
        assert again == []


def fail_with(monkeypatch, method: str, error: Exception) -> list:
    """Database.<method> raises error, as the server would answer it; returns the list of calls."""
    calls = []

    async def failing(self, *args, **kwargs):
        calls.append(args)
        raise error

    monkeypatch.setattr(Database, method, failing)
    monkeypatch.setattr(Database, "RETRY_SECONDS", 0.002)
    return calls


FAILURES = [
    ("_create", SAME_NAME_OTHER_KEYS, "python run.py --sync-indexes"),
    ("_create", SAME_NAME_OTHER_OPTIONS, "python run.py --sync-indexes"),
    ("_create", DUPLICATES_BLOCK_UNIQUE, "remove the duplicates"),
    ("index_plan", BAD_CREDENTIALS, "check the user name and password in MONGODB_URI"),
]


class TestErrorsWaitingCannotFix:
    """The server refuses the index step for good: logged once, not retried, /ready says why."""

    @pytest.fixture
    def failure(self, request):
        return request.param

    @pytest.fixture
    def services(self, starter, monkeypatch, failure):
        method, error, _fix = failure
        self.calls = fail_with(monkeypatch, method, error)
        return starter()

    @pytest.mark.parametrize("failure", FAILURES, indirect=True, ids=["86", "85", "11000", "18"])
    @pytest.mark.gen_test(timeout=30)
    async def test_logged_once_not_retried_and_not_ready(self, failure, api, services, store, caplog):
        _method, error, fix = failure
        await until(lambda: services.database.stopped_reason)
        await asyncio.sleep(0.01)  # five retry periods: a retry would have happened by now
        assert len(self.calls) == 1
        [line] = stop_lines(caplog)
        assert f"code={error.code} ({error.details['codeName']})" in line
        assert error.details["errmsg"][:40] in line and fix in line
        assert not retries(caplog)
        ready = await api.get("/ready")
        assert_error(ready, 503)
        assert ready.json["message"].startswith(f"creating indexes failed: {type(error).__name__} code={error.code}")
        assert fix in ready.json["message"]
        assert (await api.get("/health")).code == 200
        assert await store.users.count_documents({}) == 0  # admin bootstrap never ran


def overloaded():
    """MongoDB 8.2's ingress rate limiter shedding load, as the server answers it (labels included)."""
    return server_error(
        OperationFailure,
        "Request rejected: rate limit exceeded, possibly due to system overload. Throttling workload is recommended.",
        462,
        "IngressRequestRateLimitExceeded",
        errorLabels=["SystemOverloadedError", "RetryableError"],
    )


TRANSIENT = [
    AutoReconnect("connection closed"),
    server_error(OperationFailure, "Identical index already exists: email_unique", 285, "IndexBuildAlreadyInProgress"),
    server_error(OperationFailure, "Not primary while creating indexes in accounts.users", 10107, "NotWritablePrimary"),
    server_error(OperationFailure, "No primary exists currently", 133, "FailedToSatisfyReadPreference"),
    server_error(
        OperationFailure,
        "No keys found for HMAC that is valid for time: { ts: Timestamp(1733526000, 1) } with id: 0",
        211,
        "KeyNotFound",
    ),
    server_error(
        OperationFailure, "Unable to acquire IX lock on '{1234: Database, accounts}' within 5ms", 24, "LockTimeout"
    ),
    server_error(OperationFailure, "Failed to acquire collection lock", 46, "LockBusy"),
    overloaded(),
    server_error(
        OperationFailure,
        "Transaction with { txnNumber: 7 } has been aborted",
        251,
        "NoSuchTransaction",
        errorLabels=["TransientTransactionError"],
    ),
]
TRANSIENT_IDS = ["AutoReconnect", "285", "10107", "133", "211", "24", "46", "462 labels", "TransientTransactionError"]


class TestTransientErrors:
    """The index step fails three times in a way a later try fixes: retried with a backoff, one line a minute
    (so one here), then the later steps run."""

    @pytest.fixture
    def transient(self, request):
        return request.param

    @pytest.fixture
    def services(self, starter, monkeypatch, transient, caplog):
        caplog.set_level(logging.INFO, logger="accounts.database")
        real = Database._create
        self.failures = []

        async def flaky(database, missing, report=None):
            if len(self.failures) < 3:
                self.failures.append(1)
                raise transient
            await real(database, missing, report)

        monkeypatch.setattr(Database, "_create", flaky)
        monkeypatch.setattr(Database, "RETRY_SECONDS", 0.002)
        return starter()

    @pytest.mark.parametrize("transient", TRANSIENT, indirect=True, ids=TRANSIENT_IDS)
    @pytest.mark.gen_test(timeout=30)
    async def test_keep_being_retried(self, transient, api, services, caplog):
        await until(lambda: services.database.indexes_ready)
        assert len(self.failures) == 3 and services.database.stopped_reason is None
        [line] = [r.getMessage() for r in retries(caplog)]
        assert line.startswith(f"creating indexes failed ({describe_error(transient)}: ")
        assert "the service is not ready meanwhile" in line
        assert any(
            "creating indexes succeeded after 3 failed attempt(s)" in r.getMessage() for r in database_log(caplog)
        )
        for _ in range(500):  # then the later steps run: the admin appears
            if await services.users.find_by_email("admin@example.com"):
                break
            await asyncio.sleep(0.01)
        assert await services.users.find_by_email("admin@example.com") is not None
        assert (await api.get("/ready")).code == 200


class TestTransientErrorsSayLogLineEachMinute:
    """An outage that lasts: the retries go on, with one line each LOG_EVERY_SECONDS (shortened here)."""

    @pytest.fixture
    def services(self, starter, monkeypatch):
        self.calls = fail_with(monkeypatch, "index_plan", overloaded())
        monkeypatch.setattr(database_module, "LOG_EVERY_SECONDS", 0.05)
        monkeypatch.setattr(database_module, "MAX_RETRY_SECONDS", 0.01)
        return starter()

    @pytest.mark.gen_test(timeout=30)
    async def test_retried_with_a_line_per_interval_and_not_ready(self, api, services, store, caplog):
        await until(lambda: len(retries(caplog)) >= 3)
        assert len(self.calls) > len(retries(caplog))  # more tries than lines: the lines are per interval
        assert services.database.stopped_reason is None and not stop_lines(caplog)
        assert_error(await api.get("/ready"), 503)
        assert all("IngressRequestRateLimitExceeded" in r.getMessage() for r in retries(caplog))


class TestErrorsWaitingCannotFixSaySoEachMinute:
    @pytest.fixture
    def services(self, starter, monkeypatch):
        self.calls = fail_with(monkeypatch, "index_plan", BAD_CREDENTIALS)
        monkeypatch.setattr(database_module, "LOG_EVERY_SECONDS", 0.05)
        return starter()

    @pytest.mark.gen_test(timeout=30)
    async def test_the_stop_is_repeated_not_retried(self, api, services, caplog):
        await until(lambda: len(stop_lines(caplog)) >= 3)
        assert len(self.calls) == 1
        first, *reminders = stop_lines(caplog)
        assert "will not be retried" in first
        for line in reminders:
            assert line.startswith(
                "still not ready, waiting for a person: OperationFailure code=18 "
                "(AuthenticationFailed): Authentication failed.; fix: check the user name"
            )
        assert_error(await api.get("/ready"), 503)


def test_every_declared_index_compares_equal_to_itself_as_listed():
    # The comparison sees a declaration and the server's list_indexes document of it alike.
    from services.database import index_spec

    for models in INDEXES.values():
        for model in models:
            listed = {"v": 2, **model.document, "key": dict(model.document["key"])}
            assert index_spec(listed) == index_spec(model.document)


def test_a_ttl_of_zero_seconds_is_a_difference():
    from services.database import index_spec

    ttl = {"key": {"expiresAt": 1}, "name": "expiry_ttl", "expireAfterSeconds": 0}
    plain = {"key": {"expiresAt": 1}, "name": "expiry_ttl"}
    assert index_spec(ttl) != index_spec(plain)
    assert index_spec({**plain, "unique": False}) == index_spec(plain)
    assert index_spec({**ttl, "expireAfterSeconds": 0.0, "key": {"expiresAt": 1.0}}) == index_spec(ttl)


class HeldBuilds:
    """The database as the index step reaches it, except that createIndexes waits until released (a build
    waiting for its commit quorum); it notes the pymongo.timeout() each build ran under."""

    def __init__(self, db):
        self._db = db
        self.released = asyncio.Event()
        self.timeouts = []

    def __getitem__(self, name):
        collection = self._db[name]
        builds = self

        class Collection:
            def __getattr__(self, attribute):
                return getattr(collection, attribute)

            async def create_indexes(self, models, **kwargs):
                builds.timeouts.append(pymongo_csot.get_timeout())
                await builds.released.wait()
                return await collection.create_indexes(models, **kwargs)

        return Collection()

    def __getattr__(self, name):
        return getattr(self._db, name)


class TestSlowIndexBuild:
    """A build that does not finish: a progress line every INDEX_PROGRESS_SECONDS (shortened here), its own time
    bound, and meanwhile the writes that rely on a unique index answer 503 while reads are served."""

    @pytest.fixture
    def services(self, starter, monkeypatch, caplog, settings_env):
        caplog.set_level(logging.INFO, logger="accounts.database")
        monkeypatch.setattr(database_module, "INDEX_PROGRESS_SECONDS", 0.02)
        self.builds = None

        async def hold(database):
            self.builds = database.db = HeldBuilds(database.db)

        services = starter(hold)
        yield services
        self.builds.released.set()

    @pytest.mark.gen_test(timeout=30)
    async def test_progress_is_logged_and_unique_writes_wait(self, api, services, store, caplog, config):
        await until(lambda: len(progress(caplog)) >= 3)
        assert progress(caplog)[0].startswith("creating index users.email_unique: still building after 0s")
        assert "MONGODB_INDEX_BUILD_TIMEOUT_MS" in progress(caplog)[0]
        assert self.builds.timeouts == [config.mongodb_index_build_timeout_ms / 1000]  # not the request's 5 s
        response = await api.post(
            "/auth/register",
            json={"email": "ada@example.com", "password": "password-123", "firstName": "Ada", "lastName": "Lovelace"},
        )
        assert_error(response, 503, "Database indexes are being created")
        assert response.headers["Retry-After"] == "5"
        assert await store.users.count_documents({}) == 0 and await store.organisations.count_documents({}) == 0
        assert_error(await api.get("/ready"), 503, "Database indexes are being created")
        assert (await api.get("/health")).code == 200
        self.builds.released.set()
        await until(lambda: services.database.indexes_ready)
        assert (
            await api.post(
                "/auth/register",
                json={
                    "email": "ada@example.com",
                    "password": "password-123",
                    "firstName": "Ada",
                    "lastName": "Lovelace",
                },
            )
        ).code == 201


def progress(caplog) -> list:
    return [r.getMessage() for r in database_log(caplog) if "still building" in r.getMessage()]


class TestUniqueWritesWaitForTheIndexes:
    """Every write that relies on a unique index answers 503 while the indexes are unconfirmed (as after a
    restart whose index step is still running) and changes nothing; the rest of the API is served."""

    @pytest.mark.gen_test(timeout=30)
    async def test_each_refused_and_nothing_changes(self, api, services, store):
        ada = await sign_up(api)
        bob = await sign_up(api, email="bob@example.com", name="Bob Builder")
        bobs_org = (await org_ids(api, bob.token))[0]
        assert (await invite(api, bob.token, bobs_org, ada.id)).code == 200
        adas_org = (await org_ids(api, ada.token))[0]
        before = {
            name: await getattr(store, name).count_documents({})
            for name in ("users", "organisations", "memberships", "invitations")
        }
        services.database.indexes_ready = False  # what start-up holds until its index step has finished

        waiting = "Database indexes are being created"
        assert_error(
            await api.post(
                "/auth/register", json={"email": "cy@example.com", "password": PASSWORD, "name": "Cy Young"}
            ),
            503,
            waiting,
        )
        assert_error(
            await api.put(
                f"/users/{ada.id}", json={"email": "ada2@example.com", "currentPassword": PASSWORD}, token=ada.token
            ),
            503,
            waiting,
        )
        assert_error(await api.put(f"/users/{ada.id}", json={"username": "ada"}, token=ada.token), 503, waiting)
        assert_error(await invite(api, ada.token, adas_org, bob.id), 503, waiting)
        assert_error(await api.post(f"/api/invitations/{bobs_org}/accept", token=ada.token), 503, waiting)
        after = {name: await getattr(store, name).count_documents({}) for name in before}
        assert after == before
        user = await store.users.find_one({"_id": ObjectId(ada.id)})
        assert user["email"] == "ada@example.com" and "username" not in user
        # Writes that rely on no unique index, and reads, are served.
        assert (await api.put(f"/users/{ada.id}", json={"phone": "+44 20 7946 0000"}, token=ada.token)).code == 200
        assert (await api.get("/api/invitations", token=ada.token)).code == 200
        services.database.indexes_ready = True
        assert (await api.post(f"/api/invitations/{bobs_org}/accept", token=ada.token)).code == 200
