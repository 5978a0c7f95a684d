"""Driver errors the embedded store never raises, each answered in the envelope (never a 500) and logged once.

Each is the real pymongo or bson exception with the server's code and message, raised where the driver
raises it: out of the collection call of a request (PUT /users/addToFav). The encoding errors are not
imitations: bson.encode itself refuses the value.
"""

import logging
import time

import bson
import pytest
from bson.errors import InvalidBSON
from pymongo.errors import (
    AutoReconnect,
    ConfigurationError,
    CursorNotFound,
    DocumentTooLarge,
    DuplicateKeyError,
    ExecutionTimeout,
    NetworkTimeout,
    NotPrimaryError,
    OperationFailure,
    ServerSelectionTimeoutError,
    WriteConcernError,
    WTimeoutError,
)

from services.container import Services
from services.database import Database, driver_error_answer
from settings import Settings
from tests.conftest import TEST_ENV
from tests.helpers import assert_error, free_port, server_error


def encoding(value):
    """The error bson itself raises when asked to encode value."""

    def raise_it():
        bson.encode({"boardId": value})

    return raise_it


def raising(error):
    def raise_it():
        raise error

    return raise_it


UNAVAILABLE = ("Database unavailable", 503)
DATABASE_ERROR = ("Database error", 503)

CASES = [
    ("AutoReconnect", raising(AutoReconnect("connection closed")), UNAVAILABLE),
    (
        "NetworkTimeout",
        raising(NetworkTimeout("localhost:27017: timed out (configured timeouts: timeoutMS: 5000.0ms)")),
        UNAVAILABLE,
    ),
    (
        "ServerSelectionTimeoutError",
        raising(ServerSelectionTimeoutError("No servers found yet, Timeout: 5.0s")),
        UNAVAILABLE,
    ),
    (
        "ConfigurationError (SRV look-up)",
        raising(ConfigurationError("The DNS operation timed out after 5.0 seconds")),
        UNAVAILABLE,
    ),
    (
        "NotPrimaryError",
        raising(NotPrimaryError("not primary", {"code": 10107, "codeName": "NotWritablePrimary"})),
        UNAVAILABLE,
    ),
    (
        "ExecutionTimeout code=50",
        raising(server_error(ExecutionTimeout, "operation exceeded time limit", 50, "MaxTimeMSExpired")),
        UNAVAILABLE,
    ),
    (
        "WTimeoutError code=64",
        raising(
            server_error(
                WTimeoutError, "waiting for replication timed out", 64, "WriteConcernFailed", errInfo={"wtimeout": True}
            )
        ),
        UNAVAILABLE,
    ),
    (
        "WriteConcernError code=64",
        raising(server_error(WriteConcernError, "waiting for replication timed out", 64, "WriteConcernFailed")),
        DATABASE_ERROR,
    ),
    (
        "WriteConcernError code=100",
        raising(server_error(WriteConcernError, "Not enough data-bearing nodes", 100, "UnsatisfiableWriteConcern")),
        DATABASE_ERROR,
    ),
    (
        "CursorNotFound code=43",
        raising(server_error(CursorNotFound, "cursor id 7386151418467305562 not found", 43, "CursorNotFound")),
        UNAVAILABLE,
    ),
    (
        "PrimarySteppedDown code=189",
        raising(server_error(OperationFailure, "operation was interrupted", 189, "PrimarySteppedDown")),
        UNAVAILABLE,
    ),
    (
        "Unauthorized code=13",
        raising(
            server_error(
                OperationFailure,
                'not authorized on accounts to execute command { findAndModify: "users" }',
                13,
                "Unauthorized",
            )
        ),
        DATABASE_ERROR,
    ),
    ("InvalidBSON", raising(InvalidBSON("invalid length or type code")), DATABASE_ERROR),
    (
        "DuplicateKeyError code=11000",
        raising(
            server_error(
                DuplicateKeyError,
                "E11000 duplicate key error collection: accounts.users index: username_string_unique "
                'dup key: { username: "mark" }',
                11000,
                "DuplicateKey",
                keyPattern={"username": 1},
                keyValue={"username": "mark"},
            )
        ),
        ("Validation failed", 422),
    ),
    (
        "DocumentTooLarge",
        raising(
            DocumentTooLarge(
                "BSON document too large (16793600 bytes) - the connected server supports BSON document sizes up to "
                "16777216 bytes."
            )
        ),
        ("Request too large to store", 413),
    ),
    ("InvalidDocument (NUL in a key)", encoding({"a\x00b": 1}), ("Request holds a value that cannot be stored", 400)),
    ("UnicodeEncodeError (lone surrogate)", encoding("\ud800"), ("Request holds a value that cannot be stored", 400)),
    ("OverflowError (int over 64 bits)", encoding(2**70), ("Request holds a value that cannot be stored", 400)),
]


class FailingCollection:
    """The users collection, except that find_one_and_update fails as the driver would."""

    def __init__(self, real, fail):
        self._real = real
        self._fail = fail
        self.calls = 0

    async def find_one_and_update(self, *args, **kwargs):
        self.calls += 1
        self._fail()

    def __getattr__(self, name):
        return getattr(self._real, name)


@pytest.mark.parametrize("name, fail, expected", CASES, ids=[case[0] for case in CASES])
@pytest.mark.gen_test
async def test_driver_error_is_answered_in_the_envelope_and_logged_once(
    name, fail, expected, api, services, store, monkeypatch, caplog
):
    message, status = expected
    token = (await api.register())["tokens"]["access"]["token"]
    failing = FailingCollection(store.users, fail)
    monkeypatch.setattr(services.favourites, "collection", failing)
    caplog.clear()
    response = await api.put("/users/addToFav", json={"boardId": "board-1"}, token=token)
    assert_error(response, status, message)
    assert "Traceback" not in response.body.decode()
    if status == 422:
        assert response.json["errors"] == [{"field": "username", "message": "is already taken"}]
    assert failing.calls == 1
    # Nothing was stored.
    user = await services.users.find_by_email("mark@example.com")
    assert user["favoriteBoards"] == []
    [line] = [r for r in caplog.records if r.name == "accounts.http"]  # logged once, without a traceback
    assert line.exc_info is None
    error = _raised(fail)
    # What operators grep for: "database unavailable" (transient, retry) or "database error", and the request id.
    kind = "unavailable" if message == "Database unavailable" else "error"
    assert line.getMessage().startswith(f"database {kind} request_id={response.headers['X-Request-ID']} ")
    assert f"status={status} error={type(error).__name__}" in line.getMessage()
    if getattr(error, "code", None) is not None:
        assert f"code={error.code}" in line.getMessage()
    assert line.levelno == (logging.ERROR if message == "Database error" else logging.WARNING)


def _raised(fail):
    try:
        fail()
    except Exception as error:  # the same error the request met
        return error
    raise AssertionError("nothing raised")


def test_errors_that_are_not_the_drivers_are_left_to_the_500_path():
    assert driver_error_answer(ValueError("a bug")) is None
    assert driver_error_answer(UnicodeEncodeError("utf-8", "\ud800", 0, 1, "surrogates not allowed")) is None
    assert driver_error_answer(None) is None


def test_the_client_has_an_operation_timeout():
    config = Settings.from_env({**TEST_ENV, "MONGODB_URI": "mongodb://127.0.0.1:27017/"})
    database = Database.connect(config)
    try:
        assert database.client.options.timeout == 5.0  # MONGODB_OPERATION_TIMEOUT_MS's default, in seconds
    finally:
        database.close()
    config = Settings.from_env(
        {**TEST_ENV, "MONGODB_URI": "mongodb://127.0.0.1:27017/", "MONGODB_OPERATION_TIMEOUT_MS": "750"}
    )
    database = Database.connect(config)
    try:
        assert database.client.options.timeout == 0.75
    finally:
        database.close()


def test_one_client_whose_timeouts_come_from_the_settings_not_the_uri():
    # A timeoutMS in MONGODB_URI would otherwise bound every call, index builds included; the keyword wins.
    config = Settings.from_env(
        {
            **TEST_ENV,
            "MONGODB_URI": "mongodb://127.0.0.1:27017/?timeoutMS=100&socketTimeoutMS=100",
            "MONGODB_INDEX_BUILD_TIMEOUT_MS": "7200000",
            "MONGODB_MAX_IN_FLIGHT": "3",
        }
    )
    database = Database.connect(config)
    try:
        assert database.client.options.timeout == 5.0
        assert database.index_build_timeout == 7200.0
        assert database.gate.slots == 3
        # One client per process: every collection the services get is on it.
        assert database["users"].database.client is database.client
    finally:
        database.close()
    # The slots never outnumber Motor's threads, where no deadline reaches a queued call.
    from motor.frameworks.asyncio import max_workers

    database = Database.connect(
        Settings.from_env({**TEST_ENV, "MONGODB_URI": "mongodb://127.0.0.1:27017/", "MONGODB_MAX_IN_FLIGHT": "10000"})
    )
    try:
        assert database.gate.slots == max_workers
    finally:
        database.close()


class TestOperationTimeout:
    """Server selection allows 20 s, the operation timeout 600 ms: the request ends after the latter."""

    @pytest.fixture
    def config(self):
        return Settings.from_env(
            {
                **TEST_ENV,
                "MONGODB_URI": f"mongodb://127.0.0.1:{free_port()}/",
                "MONGODB_TIMEOUT_MS": "20000",
                "MONGODB_OPERATION_TIMEOUT_MS": "600",
            }
        )

    @pytest.fixture
    def services(self, io_loop, config):
        services = Services(config, Database.connect(config))
        yield services
        io_loop.run_sync(services.stop)

    @pytest.mark.heavy
    @pytest.mark.gen_test(timeout=30)
    async def test_a_timed_out_operation_is_a_503_within_the_operation_timeout(self, api, caplog):
        started = time.monotonic()
        response = await api.post("/auth/login", json={"email": "a@example.com", "password": "password-123"})
        elapsed = time.monotonic() - started
        assert_error(response, 503, "Database unavailable")
        assert elapsed < 5, elapsed
        assert any(
            "database unavailable" in r.getMessage() and "ServerSelectionTimeoutError" in r.getMessage()
            for r in caplog.records
            if r.name == "accounts.http" and r.levelno == logging.WARNING
        )
