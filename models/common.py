"""Time and id helpers shared by every model."""

import datetime as dt
import re

from bson import ObjectId

_OBJECT_ID = re.compile(r"[0-9a-fA-F]{24}")

# The projection of a query that needs to know only whether, or which, documents match: nothing else of them
# is read from disk or crosses the wire.
ID_ONLY = {"_id": 1}


def utcnow() -> dt.datetime:
    """Now in UTC, cut to milliseconds: the precision MongoDB stores, so a value reads back equal."""
    now = dt.datetime.now(dt.UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


def isoformat(value: dt.datetime | None) -> str | None:
    """ISO 8601 in UTC with milliseconds and a trailing Z, as the contract writes times."""
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    value = value.astimezone(dt.UTC)
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


def parse_object_id(value: str) -> ObjectId | None:
    """The ObjectId written as 24 hex characters, or None for anything else (answered as 404)."""
    # fullmatch: `$` would also match before a trailing newline, and ObjectId() then raises (CWE-20).
    if isinstance(value, str) and _OBJECT_ID.fullmatch(value):
        return ObjectId(value)
    return None
