"""Fixed-window counters in MongoDB: one document per key and window, counted atomically so every
process agrees, and removed by the collection's TTL index once the window is over."""

import datetime as dt
import hashlib
import json
import math
import time

from pymongo import ReturnDocument
from pymongo.errors import DuplicateKeyError

from models.common import utcnow


def digest(*parts: str) -> str:
    """A key for counted things: hashed, so no collection holds email addresses or IPs in clear."""
    # JSON, not a separator: ("a\nb", "c") and ("a", "b\nc") would share one key, and so one count (CWE-694).
    return hashlib.sha256(json.dumps(parts).encode("utf-8")).hexdigest()[:32]


class WindowCounter:
    """Counts events per key in fixed windows of window_seconds."""

    def __init__(self, collection, window_seconds: int):
        self.collection = collection
        self.window = window_seconds

    async def count(self, key: str) -> tuple:
        """Count one event for key; returns (events in this window so far, seconds until the window ends)."""
        document_id, window_end = self._document_id(key)
        update = {
            "$inc": {"count": 1},
            "$setOnInsert": {"expiresAt": dt.datetime.fromtimestamp(window_end, dt.UTC)},
        }
        # Counting first, atomically, means concurrent requests cannot all slip past a check (CWE-367).
        try:
            doc = await self.collection.find_one_and_update(
                {"_id": document_id}, update, upsert=True, return_document=ReturnDocument.AFTER
            )
        except DuplicateKeyError:
            # Two first events raced to insert; the loser's $inc now finds the document.
            doc = await self.collection.find_one_and_update(
                {"_id": document_id}, update, upsert=True, return_document=ReturnDocument.AFTER
            )
        return doc["count"], max(1, math.ceil(window_end - time.time()))

    async def reset(self, key: str) -> None:
        """Forget key's events in this window."""
        document_id, _ = self._document_id(key)
        await self.collection.delete_one({"_id": document_id})

    def _document_id(self, key: str) -> tuple:
        window_start = int(utcnow().timestamp()) // self.window * self.window
        return f"{key}:{window_start}", window_start + self.window
