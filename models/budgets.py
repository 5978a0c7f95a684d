"""Hourly budgets (services/budgets.py): sign-ups and invitations per client address, searches per user; one
document per (kind, key, hour), keyed by a hash; looked up by _id only."""

from pymongo import ASCENDING, IndexModel

COLLECTION = "hourly_budgets"

INDEXES = [
    # A counter goes once its hour is over.
    IndexModel([("expiresAt", ASCENDING)], expireAfterSeconds=0, name="expiry_ttl"),
]
