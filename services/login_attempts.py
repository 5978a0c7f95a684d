"""Login-attempt limits per email and client address, and per client address alone, counted in MongoDB
so all processes share them."""

from models import login_attempts as model
from services import metrics
from services.counters import WindowCounter, digest
from services.errors import ApiError


class LoginAttempts:
    """Fixed-window counters of password checks: per (email, address) pair, which a success clears, and
    per address across all emails, which it does not."""

    def __init__(self, database, limit: int, window_seconds: int, per_address: int):
        self.collection = database[model.COLLECTION]
        self.counter = WindowCounter(self.collection, window_seconds)
        self.limit = limit
        self.per_address = per_address

    async def attempt(self, email: str, address: str) -> None:
        """Count one password check, before any bcrypt work; 429 with Retry-After past either limit."""
        if self.per_address:
            # Random emails from one place would otherwise make bcrypt work without bound (CWE-770).
            count, retry_after = await self.counter.count(digest(address))  # one part: never a pair's key
            if count > self.per_address:
                metrics.LOGIN_LIMITED.inc()
                raise _too_many(retry_after)
        if self.limit:
            count, retry_after = await self.counter.count(digest(email, address))
            if count > self.limit:
                # Slows password guessing against one account from one place (CWE-307).
                metrics.LOGIN_LIMITED.inc()
                raise _too_many(retry_after)

    async def clear(self, email: str, address: str) -> None:
        """Forget the attempts of a pair after a successful check (the address's own count stays)."""
        if self.limit:
            await self.counter.reset(digest(email, address))


def _too_many(retry_after: int) -> ApiError:
    return ApiError(429, "Too many login attempts, try again later", headers={"Retry-After": str(retry_after)})
