"""Login-attempt limits per email and client address, counted in MongoDB so all processes share them."""
import datetime as dt
import hashlib
import math
import time

from pymongo import ReturnDocument
from pymongo.errors import DuplicateKeyError

from models import login_attempts as model
from models.common import utcnow
from services import metrics
from services.errors import ApiError


class LoginAttempts:
    """A fixed-window counter of login attempts for each (email, address) pair; a success clears it."""

    def __init__(self, database, limit: int, window_seconds: int):
        self.collection = database[model.COLLECTION]
        self.limit = limit
        self.window = window_seconds

    async def attempt(self, email: str, address: str) -> None:
        """Count one login attempt, before the password is checked; 429 with Retry-After past the limit."""
        if not self.limit:
            return
        key, window_end = self._key(email, address)
        update = {"$inc": {"count": 1},
                  "$setOnInsert": {"expiresAt": dt.datetime.fromtimestamp(window_end, dt.timezone.utc)}}
        # Counting first, atomically, means concurrent guesses cannot all slip past a check (CWE-367).
        try:
            doc = await self.collection.find_one_and_update({"_id": key}, update, upsert=True,
                                                            return_document=ReturnDocument.AFTER)
        except DuplicateKeyError:
            # Two first attempts raced to insert; the loser's $inc now finds the document.
            doc = await self.collection.find_one_and_update({"_id": key}, update, upsert=True,
                                                            return_document=ReturnDocument.AFTER)
        if doc["count"] > self.limit:
            retry_after = max(1, math.ceil(window_end - time.time()))
            # Slows password guessing against one account from one place (CWE-307).
            metrics.LOGIN_LIMITED.inc()
            raise ApiError(429, "Too many login attempts, try again later", headers={"Retry-After": str(retry_after)})

    async def clear(self, email: str, address: str) -> None:
        """Forget the attempts of a pair after a successful login."""
        if self.limit:
            key, _ = self._key(email, address)
            await self.collection.delete_one({"_id": key})

    def _key(self, email: str, address: str) -> tuple:
        window_start = int(utcnow().timestamp()) // self.window * self.window
        # Hashed so the collection holds no email addresses or IPs in clear.
        digest = hashlib.sha256(f"{email}\n{address}".encode("utf-8")).hexdigest()[:32]
        return f"{digest}:{window_start}", window_start + self.window
