"""Failed-login limits per email and client address, counted in MongoDB so all processes share them."""
import datetime as dt
import hashlib
import math
import time

from pymongo.errors import DuplicateKeyError

from models import login_attempts as model
from models.common import utcnow
from services.errors import ApiError


class LoginAttempts:
    """A fixed-window counter of failed logins for each (email, address) pair."""

    def __init__(self, database, limit: int, window_seconds: int):
        self.collection = database[model.COLLECTION]
        self.limit = limit
        self.window = window_seconds

    async def check(self, email: str, address: str) -> None:
        """Raise 429 with Retry-After when this pair has used up its failures for the window."""
        if not self.limit:
            return
        key, window_end = self._key(email, address)
        doc = await self.collection.find_one({"_id": key})
        if doc is not None and doc["count"] >= self.limit:
            retry_after = max(1, math.ceil(window_end - time.time()))
            # Slows password guessing against one account from one place (CWE-307).
            raise ApiError(429, "Too many login attempts, try again later", headers={"Retry-After": str(retry_after)})

    async def record_failure(self, email: str, address: str) -> None:
        """Count one failed login."""
        if not self.limit:
            return
        key, window_end = self._key(email, address)
        update = {"$inc": {"count": 1},
                  "$setOnInsert": {"expiresAt": dt.datetime.fromtimestamp(window_end, dt.timezone.utc)}}
        try:
            await self.collection.update_one({"_id": key}, update, upsert=True)
        except DuplicateKeyError:
            # Two first failures raced to insert; the loser's $inc now finds the document.
            await self.collection.update_one({"_id": key}, update, upsert=True)

    async def clear(self, email: str, address: str) -> None:
        """Forget the failures of a pair after a successful login."""
        if self.limit:
            key, _ = self._key(email, address)
            await self.collection.delete_one({"_id": key})

    def _key(self, email: str, address: str) -> tuple:
        window_start = int(utcnow().timestamp()) // self.window * self.window
        # Hashed so the collection holds no email addresses or IPs in clear.
        digest = hashlib.sha256(f"{email}\n{address}".encode("utf-8")).hexdigest()[:32]
        return f"{digest}:{window_start}", window_start + self.window
