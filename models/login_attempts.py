"""Failed-login counters, one document per (email, client address, time window)."""
from pymongo import ASCENDING, IndexModel

COLLECTION = "login_attempts"

INDEXES = [
    IndexModel([("expiresAt", ASCENDING)], expireAfterSeconds=0, name="expiry_ttl"),
]
