"""Hourly budgets counted in MongoDB so every process shares them: sign-ups and invitations per client address
(one throwaway account per request must not walk around the per-account limits), searches per user."""

from models import budgets as model
from services.counters import WindowCounter, digest
from services.errors import ApiError

HOUR = 3600


class HourlyBudget:
    """At most `limit` events of one kind per key (a client address, a user id) per fixed hour; 0 turns it off."""

    def __init__(self, database, kind: str, limit: int, message: str):
        self.counter = WindowCounter(database[model.COLLECTION], HOUR)
        self.kind = kind
        self.limit = limit
        self.message = message

    async def spend(self, key: str) -> None:
        """Count one event for key; 429 with Retry-After when it is past the hour's budget."""
        if not self.limit:
            return
        # Counted first, atomically, so concurrent requests from many processes cannot all slip past (CWE-367).
        count, retry_after = await self.counter.count(digest(self.kind, key))
        if count > self.limit:
            raise ApiError(429, self.message, headers={"Retry-After": str(retry_after)})
