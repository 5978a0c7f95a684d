"""The email outbox: messages wait here until a sender process delivers them."""

from pymongo import ASCENDING, IndexModel

COLLECTION = "outbox"

PENDING, SENT, FAILED = "pending", "sent", "failed"

INDEXES = [
    # The sender claims the oldest due pending message; /metrics counts the pending ones (its leading key).
    IndexModel([("status", ASCENDING), ("nextAttemptAt", ASCENDING)], name="due"),
    # A message whose link has expired is worthless, and sent ones are kept only a while.
    IndexModel([("expiresAt", ASCENDING)], expireAfterSeconds=0, name="expiry_ttl"),
]

# Emails sent to one address per hour (EMAILS_PER_ADDRESS_PER_HOUR): one document per address and hour,
# looked up by _id only.
SEND_COUNTS = "email_send_counts"

SEND_COUNT_INDEXES = [
    IndexModel([("expiresAt", ASCENDING)], expireAfterSeconds=0, name="expiry_ttl"),
]
