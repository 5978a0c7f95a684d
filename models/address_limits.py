"""Hourly budgets per client address (registrations, invitations: services/address_limits.py), one document per
(kind, client address, hour), keyed by a hash; looked up by _id only."""
from pymongo import ASCENDING, IndexModel

COLLECTION = "address_limits"

INDEXES = [
    # A counter goes once its hour is over.
    IndexModel([("expiresAt", ASCENDING)], expireAfterSeconds=0, name="expiry_ttl"),
]
