"""Password-check counters, one document per (email, client address, time window) and per (client address,
time window); looked up by _id only."""

from pymongo import ASCENDING, IndexModel

COLLECTION = "login_attempts"

INDEXES = [
    IndexModel([("expiresAt", ASCENDING)], expireAfterSeconds=0, name="expiry_ttl"),
]
