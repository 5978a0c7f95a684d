"""Liveness and readiness probes."""

from handlers.base import BaseHandler
from handlers.documented import operation
from models.schemas.responses import closed
from services.errors import ApiError

HEALTH = closed({"status": {"const": "ok"}})


class HealthHandler(BaseHandler):
    """200 while the process runs, whatever the database does."""

    openapi = {
        "get": operation(
            "Liveness: 200 while the process runs",
            "operations",
            200,
            HEALTH,
            auth_needed=False,
            examples={"response": {"status": "ok"}},
        ),
    }

    public = True

    def get(self) -> None:
        self.send_json({"status": "ok"})


READY = closed({"status": {"const": "ready"}})


class ReadyHandler(BaseHandler):
    """200 when MongoDB answers a ping and the indexes are in place, else 503 (with why start-up stopped, if it did)."""

    openapi = {
        "get": operation(
            "Readiness: MongoDB answers and indexes exist",
            "operations",
            200,
            READY,
            auth_needed=False,
            examples={"response": {"status": "ready"}},
        ),
    }

    public = True

    async def get(self) -> None:
        database = self.services.database
        if database.stopped_reason:
            raise ApiError(503, database.stopped_reason)
        if not await database.ping():
            raise ApiError(503, "Database unavailable")
        if not database.indexes_ready:
            raise ApiError(503, "Database indexes are being created")
        self.send_json({"status": "ready"})
