"""The MongoDB connection (real server through Motor, or the embedded stand-in) and its indexes."""
import asyncio
import datetime as dt
import logging

from pymongo import IndexModel
from pymongo.errors import ConnectionFailure, PyMongoError

from models import login_attempts, organisations, outbox, sessions, users
from models.common import utcnow

log = logging.getLogger("accounts.database")

MAX_RETRY_SECONDS = 30.0

# Every index the service relies on, by collection. Declared here once; created at start-up.
INDEXES = {
    users.COLLECTION: users.INDEXES,
    sessions.SESSIONS: sessions.SESSION_INDEXES,
    sessions.TOKENS: sessions.TOKEN_INDEXES,
    organisations.ORGANISATIONS: organisations.ORGANISATION_INDEXES,
    organisations.MEMBERSHIPS: organisations.MEMBERSHIP_INDEXES,
    outbox.COLLECTION: outbox.INDEXES,
    outbox.SEND_COUNTS: outbox.SEND_COUNT_INDEXES,
    login_attempts.COLLECTION: login_attempts.INDEXES,
}

# Query shapes that no index can serve, each declared beside its model's indexes with why and what
# bounds its cost. The index-coverage test (tests/test_zz_index_coverage.py) fails on any other
# unserved shape the services send. fields: field -> "eq" | "range" | "regex", as
# tests/index_coverage.py classifies a filter; source: the only file allowed to send that shape.
QUERY_EXCEPTIONS = list(users.QUERY_EXCEPTIONS)


def is_unavailable(error: BaseException) -> bool:
    """True when an error means MongoDB cannot be reached right now (answered 503, not 500)."""
    return isinstance(error, ConnectionFailure) or (isinstance(error, PyMongoError) and error.timeout)


class Database:
    """One MongoDB database with the service's collections and indexes."""

    RETRY_SECONDS = 2.0  # the first wait of until_done; it doubles up to MAX_RETRY_SECONDS

    def __init__(self, client, name: str, embedded: bool):
        self.client = client
        self.db = client[name]
        self.embedded = embedded
        self.indexes_ready = False

    @classmethod
    def connect(cls, settings) -> "Database":
        """Open the client; never blocks: Motor connects lazily and each operation times out."""
        if settings.embedded:
            from mongomock_motor import AsyncMongoMockClient

            return cls(AsyncMongoMockClient(tz_aware=True), settings.mongodb_db, embedded=True)
        from motor.motor_asyncio import AsyncIOMotorClient

        timeout = settings.mongodb_timeout_ms
        client = AsyncIOMotorClient(
            settings.mongodb_uri,
            tz_aware=True,
            appname="accounts",
            # A down or unreachable server must turn into a 503 within seconds, never a hung request.
            serverSelectionTimeoutMS=timeout,
            connectTimeoutMS=timeout,
            socketTimeoutMS=max(10_000, timeout * 3),
        )
        return cls(client, settings.mongodb_db, embedded=False)

    def __getitem__(self, collection: str):
        return self.db[collection]

    async def ping(self) -> bool:
        """True when the server answers a ping."""
        try:
            await self.db.command("ping")
            return True
        except PyMongoError:
            return False

    async def ensure_indexes(self) -> None:
        """Create every declared index; creating an existing one is a no-op on the server."""
        for collection, models in INDEXES.items():
            await self.db[collection].create_indexes([self._as_created(model) for model in models])
        self.indexes_ready = True

    def _as_created(self, model: IndexModel) -> IndexModel:
        """The index as this store gets it. The stand-in would check every document's expiry on every
        access of a TTL collection; there the expiry is left to sweep_expired, run every minute like
        MongoDB's own TTL monitor."""
        spec = model.document
        if not self.embedded or "expireAfterSeconds" not in spec:
            return model
        options = {k: v for k, v in spec.items() if k not in ("key", "expireAfterSeconds")}
        return IndexModel(list(spec["key"].items()), **options)

    async def until_done(self, what: str, operation):
        """Await operation() until it succeeds, backing off while MongoDB cannot be reached; its result."""
        delay = self.RETRY_SECONDS
        while True:
            try:
                return await operation()
            except PyMongoError as error:
                log.warning("%s failed (%s); retrying in %.0fs", what, error.__class__.__name__, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, MAX_RETRY_SECONDS)

    async def sweep_expired(self) -> int:
        """Delete documents past their declared TTL, as MongoDB's TTL monitor does (embedded store only)."""
        removed = 0
        now = utcnow()
        for collection, models in INDEXES.items():
            for model in models:
                spec = model.document
                if "expireAfterSeconds" in spec:
                    (field, _direction), = spec["key"].items()
                    cutoff = now - dt.timedelta(seconds=spec["expireAfterSeconds"])
                    result = await self.db[collection].delete_many({field: {"$lt": cutoff}})
                    removed += result.deleted_count
        return removed

    def close(self) -> None:
        self.client.close()
