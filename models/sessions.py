"""Sessions and the hashed single-use tokens (refresh, reset-password, verify-email, email-change undo)."""
import datetime as dt

from pymongo import ASCENDING, IndexModel

SESSIONS = "sessions"
TOKENS = "tokens"

REFRESH, RESET, VERIFY = "refresh", "reset", "verify"
# The link in an email-change notice that puts the old address back: usable until its validUntil, then kept
# (its TTL is expiresAt) for UNDO_KEPT more, so its page can say "expired" rather than "unknown".
UNDO = "email_change_undo"
UNDO_KEPT = dt.timedelta(days=30)

SESSION_INDEXES = [
    # Ending every session of a user (reset, deletion, change-password).
    IndexModel([("userId", ASCENDING)], name="user"),
    # Browser requests name their session by the SHA-256 of its cookie; sessions opened with cookies off have none.
    IndexModel([("cookieHash", ASCENDING)], unique=True, sparse=True, name="cookie_hash_unique"),
    # A session dies with its last refresh token.
    IndexModel([("expiresAt", ASCENDING)], expireAfterSeconds=0, name="expiry_ttl"),
]

TOKEN_INDEXES = [
    # Tokens are presented by value and looked up by their SHA-256 only.
    IndexModel([("hash", ASCENDING)], unique=True, name="hash_unique"),
    # Retiring every refresh token of a session at logout or theft detection.
    IndexModel([("sessionId", ASCENDING)], name="session"),
    # Removing a user's outstanding reset, verify or undo tokens.
    IndexModel([("userId", ASCENDING), ("type", ASCENDING)], name="user_type"),
    IndexModel([("expiresAt", ASCENDING)], expireAfterSeconds=0, name="expiry_ttl"),
]
