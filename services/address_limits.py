"""Budgets per client address an hour (registrations, invitations), counted in MongoDB so every process
shares them: one throwaway account per request must not walk around the per-account limits."""
from models import address_limits as model
from services.counters import WindowCounter, digest
from services.errors import ApiError

HOUR = 3600


class AddressBudget:
    """At most `limit` events of one kind per client address per fixed hour; 0 turns it off."""

    def __init__(self, database, kind: str, limit: int, message: str):
        self.counter = WindowCounter(database[model.COLLECTION], HOUR)
        self.kind = kind
        self.limit = limit
        self.message = message

    async def spend(self, address: str) -> None:
        """Count one event from address; 429 with Retry-After when it is past the hour's budget."""
        if not self.limit:
            return
        # Counted first, atomically, so concurrent requests from many processes cannot all slip past (CWE-367).
        count, retry_after = await self.counter.count(digest(self.kind, address))
        if count > self.limit:
            raise ApiError(429, self.message, headers={"Retry-After": str(retry_after)})
