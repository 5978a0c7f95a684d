"""Sessions and the hashed single-use tokens (refresh, reset-password, verify-email, email-change undo)."""

import datetime as dt

from pymongo import ASCENDING, DESCENDING, IndexModel

from models.common import isoformat

SESSIONS = "sessions"
TOKENS = "tokens"

REFRESH, RESET, VERIFY = "refresh", "reset", "verify"
# The link in an email-change notice that puts the old address back: usable until its validUntil, then kept
# (its TTL is expiresAt) for UNDO_KEPT more, so its page can say "expired" rather than "unknown".
UNDO = "email_change_undo"
UNDO_KEPT = dt.timedelta(days=30)

# GET /auth/sessions lists at most this many (the newest): a person has a few devices; a script logging in
# in a loop must not make the list unbounded.
MAX_LISTED = 100

SESSION_INDEXES = [
    # Ending every session of a user (reset, deletion, change-password).
    IndexModel([("userId", ASCENDING)], name="user"),
    # GET /auth/sessions: a user's sessions, newest first (the id breaks ties within a millisecond).
    IndexModel([("userId", ASCENDING), ("createdAt", DESCENDING), ("_id", DESCENDING)], name="user_created"),
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


def public_view(session: dict, current_id) -> dict:
    """A session as GET /auth/sessions shows it: its id (never a credential, never a token's hash), when and
    from where it started, and whether the request came with it."""
    return {
        "id": str(session["_id"]),
        "createdAt": isoformat(session["createdAt"]),
        "lastUsedAt": isoformat(session.get("lastUsedAt") or session["createdAt"]),
        "expiresAt": isoformat(session["expiresAt"]),
        "userAgent": session.get("userAgent"),
        "ipAddress": session.get("ipAddress"),
        "current": session["_id"] == current_id,
    }
