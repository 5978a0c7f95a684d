"""The MongoDB connection (real server through Motor, or the embedded stand-in), the indexes declared in
models/indexes.py made real on it, and what each driver error means to a client.

Motor is imported here and nowhere else (docs/operating/mongodb.md says what moving to PyMongo's AsyncMongoClient
would change).
"""

import asyncio
import dataclasses
import datetime as dt
import logging
import os
import time

import bson
import pymongo
from bson.errors import BSONError, InvalidDocument, InvalidId, InvalidStringData
from pymongo import IndexModel
from pymongo.errors import (
    ConfigurationError,
    ConnectionFailure,
    DocumentTooLarge,
    DuplicateKeyError,
    OperationFailure,
    PyMongoError,
)

from models.common import utcnow
from models.indexes import INDEXES, RETIRED_INDEXES
from services.deadlines import Gate, GatedCollection
from services.errors import ApiError

log = logging.getLogger("accounts.database")

MAX_RETRY_SECONDS = 30.0

# What makes two indexes different to MongoDB, besides their keys (name aside); and whether the planner may use
# it: a hidden index (listIndexes says `hidden: true`) still enforces its unique constraint but serves no query,
# so it does not count as the declared one.
COMPARED_OPTIONS = ("unique", "sparse", "partialFilterExpression", "expireAfterSeconds", "collation", "hidden")
FLAGS = ("unique", "sparse", "hidden")  # absent and false are the same index
# Two indexes on the same keys may coexist when these differ (createIndexes refuses the second, code 85,
# otherwise): a different collation or a different partial filter makes another index.
DISTINGUISHING_OPTIONS = ("collation", "partialFilterExpression")
# A collation's option that every ICU locale defaults alike; listIndexes fills in all of them (and the ICU
# version), so only the declared options and this one are compared.
COLLATION_DEFAULTS = {"strength": 3}

SYNC_COMMAND = "python run.py --sync-indexes"

# Server error codes that mean "this server cannot answer right now, another try may work" (the server's
# src/mongo/base/error_codes.yml names them): a member stepping down or shutting down, the network, a replica
# set still electing or still making its keys, a lock or a write racing another, a cursor the server dropped
# (a new request opens a new one). Most reach us as pymongo's NotPrimaryError (a ConnectionFailure) or with a
# label below; listed for those that do not. A request meeting one answers 503 "Database unavailable";
# start-up retries it with a backoff. Everything else at start-up waits for a person (FIXES).
TRANSIENT_CODES = frozenset(
    {
        6,  # HostUnreachable
        7,  # HostNotFound
        24,  # LockTimeout: a lock held by another operation (an index build, a collection drop) past its wait
        43,  # CursorNotFound
        46,  # LockBusy: the same, refused at once rather than waited for
        89,  # NetworkTimeout
        91,  # ShutdownInProgress
        112,  # WriteConflict
        133,  # FailedToSatisfyReadPreference: no member of the wanted kind yet (an election under way)
        134,  # ReadConcernMajorityNotAvailableYet
        189,  # PrimarySteppedDown
        202,  # NetworkInterfaceExceededTimeLimit: a member-to-member call (a commit quorum) ran out of time
        211,  # KeyNotFound: a new replica set has not made its cluster-time signing keys yet
        262,  # ExceededTimeLimit
        276,  # IndexBuildAborted (another process's build of the same index was interrupted)
        285,  # IndexBuildAlreadyInProgress (several processes starting at once build the same index)
        9001,  # SocketException
        10058,  # LegacyNotPrimary
        10107,  # NotWritablePrimary
        11600,  # InterruptedAtShutdown
        11602,  # InterruptedDueToReplStateChange
        13435,  # NotPrimaryNoSecondaryOk
        13436,  # NotPrimaryOrSecondary
    }
)
# Labels the server or the driver puts on errors that another try may fix: the retryable-writes and
# transactions specifications' two, and pymongo 4.20's overload pair (pool_shared.py adds both when a
# server sheds load; mongo_client.py retries on them).
TRANSIENT_LABELS = ("RetryableWriteError", "TransientTransactionError", "RetryableError", "SystemOverloadedError")

# What ops should do about a start-up error that waiting will not fix, by server code.
FIXES = {
    18: "check the user name and password in MONGODB_URI (and authSource)",
    13: "grant the MONGODB_URI user the readWrite role on MONGODB_DB (it includes createIndex and dropIndex)",
    85: f"an index differs from the declared one: run `{SYNC_COMMAND}`",
    86: f"an index differs from the declared one: run `{SYNC_COMMAND}`",
    11000: "documents that break a unique index already exist: remove the duplicates "
    f"(docs/operating/mongodb.md), then run `{SYNC_COMMAND}` or restart",
}
DEFAULT_FIX = "see docs/operating/mongodb.md; restart once it is fixed"

# How often start-up says it is still retrying, or still waiting for a person; and how often an index build
# that has not finished says so.
LOG_EVERY_SECONDS = 60.0
INDEX_PROGRESS_SECONDS = 30.0

_DRIVER_DIRS = tuple(os.path.dirname(module.__file__) + os.sep for module in (bson, pymongo))


def is_unavailable(error: BaseException) -> bool:
    """True when MongoDB cannot answer right now and a later try may work (answered 503, retried at start-up)."""
    if isinstance(error, ConnectionFailure):
        return True
    if isinstance(error, ConfigurationError):
        # Bad options fail when the client is created (and MONGODB_URI is checked with the settings); at
        # operation time this is a mongodb+srv:// DNS look-up failing, which a DNS outage causes too.
        return True
    if not isinstance(error, PyMongoError):
        return False
    if error.timeout or (isinstance(error, OperationFailure) and error.code in TRANSIENT_CODES):
        return True
    return any(error.has_error_label(label) for label in TRANSIENT_LABELS)


@dataclasses.dataclass(frozen=True)
class DriverAnswer:
    """How the API answers a driver error: status, message, 422 field errors, and whether it is transient."""

    status: int
    message: str
    errors: list | None = None
    transient: bool = False


def driver_error_answer(error: BaseException) -> DriverAnswer | None:
    """The one mapping from an error the driver raised to the API's answer; None when it is not the driver's."""
    if is_unavailable(error):
        return DriverAnswer(503, "Database unavailable", transient=True)
    if isinstance(error, DocumentTooLarge):  # over MongoDB's 16 MiB document limit
        return DriverAnswer(413, "Request too large to store")
    if isinstance(error, (InvalidDocument, InvalidStringData, InvalidId)) or _bson_encoding_error(error):
        return DriverAnswer(400, "Request holds a value that cannot be stored")
    if isinstance(error, DuplicateKeyError):  # a uniqueness race the service did not expect to lose
        return DriverAnswer(422, "Validation failed", duplicate_fields(error))
    if isinstance(error, (PyMongoError, BSONError)):
        return DriverAnswer(503, "Database error")
    return None


def duplicate_fields(error: DuplicateKeyError) -> list:
    """The contract's 422 errors for a duplicate key: one per field of the unique index it broke."""
    fields = list((error.details or {}).get("keyPattern") or {}) or ["body"]
    return [{"field": field, "message": "is already taken"} for field in fields]


def _bson_encoding_error(error: BaseException) -> bool:
    """A str with a lone surrogate or an int over 64 bits, refused while the driver encoded it to BSON."""
    if not isinstance(error, (UnicodeEncodeError, OverflowError)):
        return False
    traceback = error.__traceback__
    while traceback is not None and traceback.tb_next is not None:
        traceback = traceback.tb_next
    return traceback is not None and traceback.tb_frame.f_code.co_filename.startswith(_DRIVER_DIRS)


def describe_error(error: BaseException) -> str:
    """Class, server code and code name of a driver error, for one log line (no document values)."""
    text = error.__class__.__name__
    details = getattr(error, "details", None)
    details = details if isinstance(details, dict) else {}
    code = getattr(error, "code", None)
    if code is None:
        code = details.get("code")  # NotPrimaryError (a ConnectionFailure) keeps the server's code in its details only
    if code is not None:
        name = details.get("codeName")
        text += f" code={code}" + (f" ({name})" if name else "")
    return text


def server_message(error: BaseException) -> str:
    """The server's own message for an error (errmsg), else the driver's."""
    details = getattr(error, "details", None) or {}
    return str(details.get("errmsg") or error).splitlines()[0][:500]


def fix_for(error: BaseException) -> str:
    """What ops should do about an error that waiting will not fix."""
    return FIXES.get(getattr(error, "code", None), DEFAULT_FIX)


class StartupStopped(Exception):
    """A start-up step failed in a way that waiting will not fix; the process stays up, not ready."""


@dataclasses.dataclass
class IndexPlan:
    """How the indexes on the server differ from the declared ones, per collection."""

    missing: list = dataclasses.field(default_factory=list)  # (collection, IndexModel) to create
    drops: list = dataclasses.field(default_factory=list)  # (collection, name) in the way or retired
    conflicts: list = dataclasses.field(default_factory=list)  # one text per difference, for ops

    def summary(self) -> str:
        return "; ".join(self.conflicts)


class IndexConflict(Exception):
    """Existing indexes differ from the declared ones: creating them would fail (codes 85, 86)."""

    def __init__(self, plan: IndexPlan):
        super().__init__(plan.summary())
        self.plan = plan


def index_spec(document) -> dict:
    """An index's keys and the options that make it different, from a declaration or list_indexes."""
    spec = {"key": [(field, _direction(value)) for field, value in dict(document["key"]).items()]}
    for option in COMPARED_OPTIONS:
        value = document.get(option)
        if option in FLAGS:
            if value:  # absent and false are the same index
                spec[option] = True
        elif value is not None:  # expireAfterSeconds 0 is a TTL index
            spec[option] = int(value) if option == "expireAfterSeconds" else value
    return spec


def same_index(found: dict, wanted: dict) -> bool:
    """True when an index as the server lists it (index_spec of a listIndexes document) is the declared one."""
    if found.keys() != wanted.keys():
        return False
    return all(
        _same_collation(found[option], wanted[option]) if option == "collation" else found[option] == wanted[option]
        for option in found
    )


def _same_collation(found: dict, wanted: dict) -> bool:
    """The server lists a collation expanded with every option and its ICU version ({locale: "en", caseLevel:
    false, caseFirst: "off", strength: 2, ..., version: "57.1"}): the declared options must match, and strength
    (the same default in every locale); the locale-dependent defaults (caseFirst, alternate, backwards...) are
    what the server filled in for the declared locale."""
    return all(found.get(option) == value for option, value in {**COLLATION_DEFAULTS, **wanted}.items())


def may_coexist(found: dict, wanted: dict) -> bool:
    """True when the server keeps both an index it lists (found) and a declared one (wanted) on the same keys:
    they differ in collation or partial filter."""
    for option in DISTINGUISHING_OPTIONS:
        if (option in found) != (option in wanted):
            return True
        if option in found:
            same = _same_collation if option == "collation" else (lambda a, b: a == b)
            if not same(found[option], wanted[option]):
                return True
    return False


def _direction(value):
    return int(value) if isinstance(value, (int, float)) else value


def describe_spec(spec: dict) -> str:
    """An index spec as a shell user would write it: {email: 1} unique."""
    keys = ", ".join(f"{field}: {direction}" for field, direction in spec["key"])
    options = " ".join(
        option if option in FLAGS else f"{option}={spec[option]}" for option in COMPARED_OPTIONS if option in spec
    )
    return "{" + keys + "}" + (f" {options}" if options else "")


class Database:
    """One MongoDB database with the service's collections and indexes, and the gate every call passes."""

    RETRY_SECONDS = 2.0  # the first wait of until_done; it doubles up to MAX_RETRY_SECONDS

    def __init__(
        self,
        client,
        name: str,
        embedded: bool,
        *,
        operation_timeout: float = 5.0,
        index_build_timeout: float = 3600.0,
        max_in_flight: int = 0,
    ):
        self.client = client
        self.name = name
        self.db = client[name]
        self.embedded = embedded
        self.indexes_ready = False
        # Why start-up stopped for good (index conflict, bad credentials...): /ready answers it.
        self.stopped_reason: str | None = None
        self._stop_line = ""  # the same, as logged with its fix (remind_stopped repeats it)
        self.index_build_timeout = index_build_timeout
        # Never more slots than Motor has threads: a call holding a slot then never queues for a thread, where
        # no deadline reaches it (services/deadlines.py).
        threads = motor_threads()
        self.gate = Gate(min(max_in_flight, threads) if max_in_flight else threads, operation_timeout)

    @classmethod
    def connect(cls, settings) -> "Database":
        """Open the one client of this process; never blocks: Motor connects lazily and each call times out."""
        options = dict(
            operation_timeout=settings.mongodb_operation_timeout_ms / 1000,
            index_build_timeout=settings.mongodb_index_build_timeout_ms / 1000,
            max_in_flight=settings.mongodb_max_in_flight,
        )
        if settings.embedded:
            from mongomock_motor import AsyncMongoMockClient

            return cls(AsyncMongoMockClient(tz_aware=True), settings.mongodb_db, embedded=True, **options)
        from motor.motor_asyncio import AsyncIOMotorClient

        timeout = settings.mongodb_timeout_ms
        # timeoutMS (client-side operation timeout, PyMongo 4.2+) is the bound of a call made outside any
        # pymongo.timeout block; every call of the service is made inside one (the gate's, or an index build's),
        # which overrides it. Given as a keyword it also overrides a timeoutMS in MONGODB_URI, and under it a
        # socketTimeoutMS there is ignored (pool_shared.py apply_timeout uses the remaining time instead).
        client = AsyncIOMotorClient(
            settings.mongodb_uri,
            timeoutMS=settings.mongodb_operation_timeout_ms,
            tz_aware=True,
            appname="accounts",
            serverSelectionTimeoutMS=timeout,
            connectTimeoutMS=timeout,
        )
        return cls(client, settings.mongodb_db, embedded=False, **options)

    def __getitem__(self, collection: str):
        return GatedCollection(self.db[collection], self.gate)

    async def ping(self) -> bool:
        """True when the server answers a ping (within the caller's budget, like any call)."""
        try:
            await self.gate.run(self.db.command, "ping")
            return True
        except PyMongoError:
            return False

    def require_unique_indexes(self) -> None:
        """503 until start-up has confirmed the declared indexes: a write that relies on a unique index
        (registration, an email or username change, an invitation, a membership) must not run without it."""
        if not self.indexes_ready:
            # Without the index two concurrent sign-ups could both take one email (CWE-362).
            raise ApiError(503, "Database indexes are being created", headers={"Retry-After": "5"})

    async def ensure_indexes(self) -> None:
        """Create every declared index that is missing; IndexConflict when existing ones differ."""
        plan = await self.index_plan()
        if plan.conflicts:
            raise IndexConflict(plan)
        await self._create(plan.missing)
        self.indexes_ready = True

    async def sync_indexes(self, report=print) -> IndexPlan:
        """Drop the indexes that differ from the declared ones or are retired, then create what is
        missing (python run.py --sync-indexes); report() gets one line per change."""
        plan = await self.index_plan()
        for collection, name in plan.drops:
            with pymongo.timeout(self.index_build_timeout):
                await self.db[collection].drop_index(name)
            report(f"{collection}: dropped index {name}")
        await self._create(plan.missing, report)
        self.indexes_ready = True
        return plan

    async def index_plan(self) -> IndexPlan:
        """Compare the declared indexes with the server's (list_indexes), collection by collection. Read
        within the ordinary operation timeout: an unreachable server is retried in seconds."""
        plan = IndexPlan()
        for collection, models in INDEXES.items():
            existing = {doc["name"]: doc async for doc in self[collection].list_indexes() if doc["name"] != "_id_"}
            self._plan_collection(plan, collection, [self._as_created(model) for model in models], existing)
        return plan

    @staticmethod
    def _plan_collection(plan: IndexPlan, collection: str, declared: list, existing: dict) -> None:
        declared_names = {model.document["name"] for model in declared}
        for model in declared:
            name, wanted = model.document["name"], index_spec(model.document)
            if name in existing:
                found = index_spec(existing[name])
                if not same_index(found, wanted):
                    plan.conflicts.append(
                        f"{collection}.{name} is {describe_spec(found)} on the server, declared {describe_spec(wanted)}"
                    )
                    plan.drops.append((collection, name))
                    plan.missing.append((collection, model))
                continue
            plan.missing.append((collection, model))
            for other, doc in existing.items():
                spec = index_spec(doc)
                if other not in declared_names and spec["key"] == wanted["key"] and not may_coexist(spec, wanted):
                    plan.conflicts.append(
                        f"{collection}.{other} {describe_spec(index_spec(doc))} has the keys of "
                        f"{name}, declared {describe_spec(wanted)}"
                    )
                    plan.drops.append((collection, other))
        for name in RETIRED_INDEXES.get(collection, ()):
            if name in existing and (collection, name) not in plan.drops:
                plan.conflicts.append(f"{collection}.{name} is retired (no longer declared)")
                plan.drops.append((collection, name))

    async def _create(self, missing: list, report=None) -> None:
        for collection, model in missing:
            await self._build(collection, model)
            if report:
                report(
                    f"{collection}: created index {model.document['name']} {describe_spec(index_spec(model.document))}"
                )

    async def _build(self, collection: str, model: IndexModel) -> None:
        """createIndexes for one index under its own bound (MONGODB_INDEX_BUILD_TIMEOUT_MS, not the operation
        timeout: a build interrupted by maxTimeMS is abandoned), saying every INDEX_PROGRESS_SECONDS that it
        is still running (on a replica set it waits for its commit quorum: with a voting member down, for good)."""
        name = f"{collection}.{model.document['name']}"
        started = time.monotonic()

        async def progress():
            while True:
                await asyncio.sleep(INDEX_PROGRESS_SECONDS)
                log.info(
                    "creating index %s: still building after %.0fs (bound %.0fs, "
                    "MONGODB_INDEX_BUILD_TIMEOUT_MS); on a replica set the build waits for every voting "
                    "member (its commit quorum)",
                    name,
                    time.monotonic() - started,
                    self.index_build_timeout,
                )

        reporter = asyncio.get_running_loop().create_task(progress())
        try:
            with pymongo.timeout(self.index_build_timeout):
                await self.db[collection].create_indexes([model])
        finally:
            reporter.cancel()
        elapsed = time.monotonic() - started
        if elapsed >= INDEX_PROGRESS_SECONDS:
            log.info("created index %s in %.0fs", name, elapsed)

    def _as_created(self, model: IndexModel) -> IndexModel:
        """The index as this store gets it. The stand-in would check every document's expiry on every
        access of a TTL collection; there the expiry is left to sweep_expired, run every minute like
        MongoDB's own TTL monitor. The stand-in has no partial indexes (it would index a missing field
        as null in them): there a partial index is sparse, which is the same for a service that never
        writes null."""
        spec = model.document
        if not self.embedded or not ("expireAfterSeconds" in spec or "partialFilterExpression" in spec):
            return model
        options = {k: v for k, v in spec.items() if k not in ("key", "expireAfterSeconds", "partialFilterExpression")}
        if "partialFilterExpression" in spec:
            options["sparse"] = True
        return IndexModel(list(spec["key"].items()), **options)

    async def until_done(self, what: str, operation):
        """Await operation() until it succeeds, backing off while the error is transient (is_unavailable), with
        one line a minute while it lasts; its result. An error that waiting cannot fix is logged and raises
        StartupStopped (remind_stopped then repeats it each minute)."""
        delay = self.RETRY_SECONDS
        failures, first, logged = 0, time.monotonic(), None
        while True:
            try:
                result = await operation()
                if failures:
                    log.info(
                        "%s succeeded after %d failed attempt(s) over %.0fs", what, failures, time.monotonic() - first
                    )
                return result
            except IndexConflict as conflict:
                names = ", ".join(f"{collection}.{name}" for collection, name in conflict.plan.drops)
                self._stop(
                    what,
                    f"index conflict on {names}",
                    f"index conflict: {conflict}",
                    f"run `{SYNC_COMMAND}` to drop and rebuild them, then restart",
                )
            except PyMongoError as error:
                if not is_unavailable(error):
                    self._stop(
                        what, describe_error(error), f"{describe_error(error)}: {server_message(error)}", fix_for(error)
                    )
                failures += 1
                now = time.monotonic()
                if logged is None or now - logged >= LOG_EVERY_SECONDS:
                    logged = now
                    log.warning(
                        "%s failed (%s: %s); retrying, next in %.0fs (%d attempt(s) failed over %.0fs; the "
                        "service is not ready meanwhile)",
                        what,
                        describe_error(error),
                        server_message(error),
                        delay,
                        failures,
                        now - first,
                    )
                await asyncio.sleep(delay)
                delay = min(delay * 2, MAX_RETRY_SECONDS)

    def _stop(self, what: str, cause: str, detail: str, fix: str):
        """Log the one line ops need, keep the reason for /ready, and end the start-up steps."""
        self.stopped_reason = f"{what} failed: {cause}; {fix}"
        self._stop_line = f"{detail}; fix: {fix}"
        log.error("%s failed and will not be retried (the service stays up, not ready): %s; fix: %s", what, detail, fix)
        raise StartupStopped(self.stopped_reason)

    async def remind_stopped(self) -> None:
        """Repeat, each minute, why start-up stopped and what a person must do (until the process restarts)."""
        while True:
            await asyncio.sleep(LOG_EVERY_SECONDS)
            log.error("still not ready, waiting for a person: %s", self._stop_line)

    async def sweep_expired(self) -> int:
        """Delete documents past their declared TTL, as MongoDB's TTL monitor does (embedded store only)."""
        removed = 0
        now = utcnow()
        for collection, models in INDEXES.items():
            for model in models:
                spec = model.document
                if "expireAfterSeconds" in spec:
                    ((field, _direction),) = spec["key"].items()
                    cutoff = now - dt.timedelta(seconds=spec["expireAfterSeconds"])
                    result = await self.db[collection].delete_many({field: {"$lt": cutoff}})
                    removed += result.deleted_count
        return removed

    def close(self) -> None:
        self.client.close()


def motor_threads() -> int:
    """How many threads Motor runs calls on in this process (MOTOR_MAX_WORKERS, else 5 x cores)."""
    try:
        from motor.frameworks.asyncio import max_workers
    except ImportError:  # pragma: no cover - Motor is a requirement; the embedded store alone does not need it
        return 5 * (os.cpu_count() or 1)
    return max_workers
