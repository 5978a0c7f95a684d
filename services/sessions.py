"""Sessions, access JWTs, rotating refresh tokens and single-use email tokens.

Revocation (docs/using/two-factor.md, "Sessions"): a session is live only while its `epoch` is its user's
`sessionEpoch`. The write that changes a password, an email, a role or two-factor also increments the
user's epoch (models.users.revoke_sessions), so that one write ends every session; deleting the session
documents afterwards is cleanup. The caller of such a change may keep their own session (keep_current):
it is re-stamped with the new epoch, and its token generation `gen` moves on, so of the tokens the session
issued before, only the caller's own pair (access jti `keptJti`) still works.
"""

import datetime as dt
import hashlib
import logging
import re
import secrets
import uuid

import jwt
from bson import ObjectId
from pymongo import ReturnDocument

from models import sessions as model
from models.common import ID_ONLY, isoformat, parse_object_id, utcnow
from models.users import COLLECTION as USERS
from models.users import HASH_AND_EPOCH, session_epoch
from services.errors import authentication_failed, not_found, unauthenticated

log = logging.getLogger("accounts.sessions")

# The shape of a session cookie start() issues (secrets.token_urlsafe(32)).
_COOKIE = re.compile(r"[A-Za-z0-9_-]{43}")
# lastUsedAt moves at most this often: one conditional write a minute, never one per request.
LAST_USED_STEP = dt.timedelta(seconds=60)
# A User-Agent is kept this long at most: it is shown back, never parsed.
USER_AGENT_MAX = 256


def pair_kept(session: dict, gen: int, access_jti: str | None) -> bool:
    """True when a token of this session (its generation, and the access jti of its pair) may still be used:
    issued in the session's current generation, or the very pair its owner kept through a revoking change.
    A copy of an older pair (a refresh token reused in the grace window) dies with the rest (CWE-613)."""
    if gen == session.get("gen", 0):
        return True
    return access_jti is not None and access_jti == session.get("keptJti")


def is_current(session: dict, user: dict) -> bool:
    """True while a session carries its user's epoch: a revoking write moved the user on, ending it (CWE-613)."""
    return session.get("epoch", 0) == session_epoch(user)


def hash_token(raw: str) -> str:
    """The SHA-256 under which a token is stored; the token itself never is (CWE-256)."""
    return hashlib.sha256(raw.encode()).hexdigest()


class TokenPair(dict):
    """A token pair as the API returns it; `cookie` is the session cookie issued with it (never in the JSON)."""

    cookie: str | None = None


class Sessions:
    """Everything about proving who a caller is, stored so every process agrees."""

    def __init__(self, database, settings):
        self.sessions = database[model.SESSIONS]
        self.tokens = database[model.TOKENS]
        self.users = database[USERS]
        self.settings = settings

    async def start(
        self,
        user: dict,
        verified_hash: str | None = None,
        *,
        user_agent: str | None = None,
        ip_address: str | None = None,
    ) -> TokenPair:
        """Open a session for user and return its first token pair, with the browser's session cookie;
        with verified_hash (the hash a password was just checked against), 401 if it, or the user's session
        epoch, changed meanwhile. user_agent and ip_address are kept for the session list."""
        now = utcnow()
        session_id = ObjectId()
        expires = now + dt.timedelta(days=self.settings.refresh_token_days)
        session = {
            "_id": session_id,
            "userId": user["_id"],
            "createdAt": now,
            "expiresAt": expires,
            "epoch": session_epoch(user),
            "lastUsedAt": now,
            "userAgent": user_agent[:USER_AGENT_MAX] if user_agent else None,
            "ipAddress": ip_address,
        }
        cookie = None
        if self.settings.session_cookie:
            # 256 random bits, kept only as a hash: the cookie names this very session (CWE-256, CWE-330).
            cookie = secrets.token_urlsafe(32)
            session["cookieHash"] = hash_token(cookie)
        await self.sessions.insert_one(session)
        if verified_hash is not None and not await self._unchanged(user, verified_hash):
            # A password change, reset or other revoking change ran during the bcrypt check (CWE-367).
            await self.end(session_id)
            raise authentication_failed()
        pair = await self._pair(user, session, now)
        pair.cookie = cookie
        return pair

    async def _unchanged(self, user: dict, password_hash: str) -> bool:
        """True while the user's stored password hash is still password_hash and their session epoch the one
        read before the check (one read by _id)."""
        stored = await self.users.find_one({"_id": user["_id"]}, HASH_AND_EPOCH)
        return (
            stored is not None
            and stored.get("passwordHash") == password_hash
            and session_epoch(stored) == session_epoch(user)
        )

    async def rotate(self, refresh_token: str) -> dict:
        """Trade a refresh token for a new pair; a token presented again after the grace ends its session."""
        now = utcnow()
        digest = hash_token(refresh_token)
        # One atomic step retires the token: of two concurrent presentations only one finds it unused.
        token = await self.tokens.find_one_and_update(
            {"hash": digest, "type": model.REFRESH, "usedAt": None},
            {"$set": {"usedAt": now}},
            return_document=ReturnDocument.BEFORE,
        )
        if token is None:
            token = await self._retired_within_grace(digest, now)
        if token["expiresAt"] <= now:
            raise unauthenticated("Invalid refresh token")
        session = await self.sessions.find_one({"_id": token["sessionId"]})
        user = await self.users.find_one({"_id": token["userId"]})
        if session is None or user is None or not is_current(session, user):
            raise unauthenticated("Invalid refresh token")
        # Checked after the grace too: a copy reused in the window never outlives a revoking change (CWE-613).
        if not pair_kept(session, token.get("gen", 0), token.get("accessJti")):
            raise unauthenticated("Invalid refresh token")
        await self.sessions.update_one(
            {"_id": session["_id"]},
            {"$set": {"expiresAt": now + dt.timedelta(days=self.settings.refresh_token_days), "lastUsedAt": now}},
        )
        return await self._pair(user, session, now)

    async def _retired_within_grace(self, digest: str, now: dt.datetime) -> dict:
        """A token retired less than REFRESH_REUSE_GRACE_SECONDS ago (two tabs refreshing at once); any other
        retired token coming back means it was copied, and its whole session ends (CWE-294). Else 401."""
        retired = await self.tokens.find_one({"hash": digest, "type": model.REFRESH})
        if retired is None:
            raise unauthenticated("Invalid refresh token")
        grace = dt.timedelta(seconds=self.settings.refresh_reuse_grace_seconds)
        if retired["usedAt"] > now - grace:
            return retired
        await self.end(retired["sessionId"])
        raise unauthenticated("Invalid refresh token")

    async def authenticate_cookie(self, cookie: str) -> tuple:
        """The (user, session id, None) of a live session named by a session cookie, else 401. The cookie is the
        session as a whole: it has no access jti."""
        if not _COOKIE.fullmatch(cookie):
            raise unauthenticated()  # not something start() issued: no lookup (CWE-20)
        session = await self.sessions.find_one({"cookieHash": hash_token(cookie)})
        user = await self._live(session)
        return user, session["_id"], None

    async def _live(self, session: dict | None) -> dict:
        """The user of an unexpired session whose user still exists and has not revoked it since; else 401."""
        user = await self.users.find_one({"_id": session["userId"]}) if session else None
        now = utcnow()
        if user is None or session["expiresAt"] <= now or not is_current(session, user):
            raise unauthenticated()
        last_used = session.get("lastUsedAt")
        if last_used is None or last_used < now - LAST_USED_STEP:
            # Conditional, so of several processes and requests in the same minute only one writes.
            stale = {"$not": {"$gte": now - LAST_USED_STEP}}  # older, or none (sessions from before lastUsedAt)
            await self.sessions.update_one({"_id": session["_id"], "lastUsedAt": stale}, {"$set": {"lastUsedAt": now}})
        return user

    async def authenticate(self, access_token: str) -> tuple:
        """The (user, session id, access jti) behind a valid access token of a live session, else 401."""
        try:
            claims = jwt.decode(
                access_token,
                self.settings.jwt_secret,
                algorithms=["HS256"],  # pinned: never let the token choose "none" or RS/HS confusion (CWE-347)
                options={"require": ["exp", "iat", "sub", "sid", "jti", "type"]},
            )
        except jwt.InvalidTokenError:
            raise unauthenticated() from None
        user_id = parse_object_id(claims.get("sub"))
        session_id = parse_object_id(claims.get("sid"))
        if claims.get("type") != "access" or user_id is None or session_id is None:
            raise unauthenticated()
        # The session lookup is what makes logout and revocation take effect at once (CWE-613).
        session = await self.sessions.find_one({"_id": session_id, "userId": user_id})
        user = await self._live(session)
        gen = claims.get("gen", 0)
        if not isinstance(gen, int) or not pair_kept(session, gen, claims["jti"]):
            raise unauthenticated()  # an older pair of a session its owner kept through a revoking change
        return user, session_id, claims["jti"]

    async def keep_current(self, user_id: ObjectId, session_id: ObjectId, access_jti: str | None, epoch: int) -> bool:
        """After a revoking write that moved user_id's epoch to `epoch`, keep the caller's own session: it takes
        the new epoch, and of the tokens it issued before, only the pair of access_jti keeps working (with no
        jti, a cookie caller: the cookie alone, none of the session's token pairs). False when the session was not
        live just before that write (ended, or revoked by another change meanwhile): then it stays ended. A failure
        here leaves the caller signed out, never anyone else signed in."""
        # Only a session that carried the epoch just before this write: another revocation in between wins.
        previous = {"$in": [epoch - 1, None]} if epoch == 1 else epoch - 1
        # Every older pair of this session but the caller's ends (CWE-613); a cookie caller keeps no pair at all:
        # the tokens its login answered with are a credential of their own, whoever read that answer has them.
        update = {"$set": {"epoch": epoch, "keptAt": utcnow(), "keptJti": access_jti}, "$inc": {"gen": 1}}
        result = await self.sessions.update_one({"_id": session_id, "userId": user_id, "epoch": previous}, update)
        return result.modified_count == 1

    async def keep_after_revoking(
        self, user_id: ObjectId, session_id: ObjectId, access_jti: str | None, epoch: int | None
    ) -> None:
        """keep_current, then end the user's other session documents (cleanup: the epoch has ended them already).
        Neither step raises: the change is made, and a failure leaves only the caller signed out."""
        try:
            if epoch is not None:
                await self.keep_current(user_id, session_id, access_jti, epoch)
        except Exception:  # noqa: BLE001 - the safe direction: the caller's session stays ended
            log.error("keeping the current session after a revoking change failed", exc_info=True)
        await self.clean_up(user_id, keep=session_id)

    async def clean_up(self, user_id: ObjectId, keep: ObjectId | None = None) -> None:
        """end_all after a revoking write, whose epoch already ended those sessions: a failure is logged, and the
        change stands (the documents left are dead, and expire)."""
        try:
            await self.end_all(user_id, keep=keep)
        except Exception:  # noqa: BLE001 - correctness does not depend on it
            log.error("removing revoked sessions failed; they stay ended by the session epoch", exc_info=True)

    async def end(self, session_id: ObjectId) -> None:
        """End one session: its access and refresh tokens stop working."""
        await self.sessions.delete_one({"_id": session_id})
        await self.tokens.delete_many({"sessionId": session_id})

    async def end_mine(self, user_id: ObjectId, session_id: ObjectId) -> None:
        """End one of the user's own sessions (its access tokens, refresh tokens and cookie); another user's or
        an unknown one is a 404, alike: a session id names nothing to anyone else (CWE-639)."""
        result = await self.sessions.delete_one({"_id": session_id, "userId": user_id})
        if result.deleted_count != 1:
            raise not_found("Session not found")
        await self.tokens.delete_many({"sessionId": session_id})

    async def live_sessions(self, user: dict) -> list:
        """The user's live sessions, newest first (at most model.MAX_LISTED)."""
        query = {"userId": user["_id"], "expiresAt": {"$gt": utcnow()}}
        cursor = self.sessions.find(query).sort([("createdAt", -1), ("_id", -1)]).limit(model.MAX_LISTED)
        return [session for session in await cursor.to_list(model.MAX_LISTED) if is_current(session, user)]

    async def end_by_refresh_token(self, refresh_token: str) -> None:
        """End the session a refresh token belongs to; an unknown token is a 401."""
        token = await self.tokens.find_one({"hash": hash_token(refresh_token), "type": model.REFRESH})
        if token is None:
            raise unauthenticated("Invalid refresh token")
        await self.end(token["sessionId"])

    async def end_all(self, user_id: ObjectId, keep: ObjectId | None = None) -> None:
        """End every session of a user, except keep."""
        query = {"userId": user_id}
        if keep is not None:
            query["_id"] = {"$ne": keep}
        ended = [doc["_id"] async for doc in self.sessions.find(query, ID_ONLY)]
        if ended:
            await self.sessions.delete_many({"_id": {"$in": ended}})
            await self.tokens.delete_many({"sessionId": {"$in": ended}})

    async def remove_user(self, user_id: ObjectId) -> None:
        """End every session of a deleted user and drop every token issued to them (reset and verify too)."""
        await self.end_all(user_id)
        await self.tokens.delete_many({"userId": user_id})

    async def issue_single_use(self, user: dict, kind: str, minutes: int) -> tuple:
        """A new reset or verify token for user, bound to their email now (older ones of that kind stop
        working); returns (token, expiry)."""
        now = utcnow()
        raw = secrets.token_urlsafe(32)
        expires = now + dt.timedelta(minutes=minutes)
        await self.tokens.delete_many({"userId": user["_id"], "type": kind})
        await self.tokens.insert_one(
            {
                "hash": hash_token(raw),
                "type": kind,
                "userId": user["_id"],
                "email": user["email"],
                "createdAt": now,
                "expiresAt": expires,
            }
        )
        return raw, expires

    async def consume_single_use(self, raw: str, kind: str, used_by: str | None = None) -> dict:
        """Use up a reset or verify token and return its document; bad, used, expired, or sent to an email
        that is no longer the user's: 401.

        A used token is kept, marked usedAt (and usedBy, a hash naming the browser that used it), until
        its TTL removes it: the email pages can then tell "already done" from "unknown or expired"."""
        now = utcnow()
        token = await self.tokens.find_one_and_update(
            {"hash": hash_token(raw), "type": kind, "usedAt": None, "expiresAt": {"$gt": now}},
            {"$set": {"usedAt": now, "usedBy": used_by}},
        )
        # A link mailed to an address the account has since left must not act on the account (CWE-640).
        if (
            token is None
            or not token.get("email")
            or await self.users.find_one({"_id": token["userId"], "email": token["email"]}, ID_ONLY) is None
        ):
            raise unauthenticated("Invalid or expired token")
        return token

    async def find_single_use(self, raw: str, kind: str) -> dict | None:
        """A reset or verify token's document, used or not, while it has not expired; None otherwise."""
        return await self.tokens.find_one({"hash": hash_token(raw), "type": kind, "expiresAt": {"$gt": utcnow()}})

    async def void_single_use(self, user_id: ObjectId) -> None:
        """Every unused reset and verify token of a user stops working (their email changed)."""
        await self.tokens.delete_many({"userId": user_id, "type": {"$in": [model.RESET, model.VERIFY]}})

    async def issue_undo(self, user_id: ObjectId, old_email: str, new_email: str) -> tuple:
        """A link that undoes one email change (old_email to new_email) for EMAIL_CHANGE_UNDO_DAYS; returns
        (token, valid until). Earlier undo links stay: a second change must not void the first one's (CWE-640)."""
        now = utcnow()
        raw = secrets.token_urlsafe(32)
        valid_until = now + dt.timedelta(days=self.settings.email_change_undo_days)
        await self.tokens.insert_one(
            {
                "hash": hash_token(raw),
                "type": model.UNDO,
                "userId": user_id,
                "oldEmail": old_email,
                "newEmail": new_email,
                "createdAt": now,
                "validUntil": valid_until,
                "expiresAt": valid_until + model.UNDO_KEPT,
            }
        )
        return raw, valid_until

    async def undo_holds(self, email: str, exclude: ObjectId | None = None) -> bool:
        """True while an unused, unexpired undo link of an account (other than exclude) may put email back: the
        address is that account's to return to, so nobody else may take it meanwhile (CWE-640)."""
        query = {"oldEmail": email, "type": model.UNDO, "usedAt": None, "validUntil": {"$gt": utcnow()}}
        if exclude is not None:
            query["userId"] = {"$ne": exclude}
        return await self.tokens.find_one(query, ID_ONLY) is not None

    async def find_undo(self, raw: str) -> dict | None:
        """An undo token's document, used, expired or not; None when unknown (or long gone)."""
        return await self.tokens.find_one({"hash": hash_token(raw), "type": model.UNDO})

    async def consume_undo(self, raw: str, used_by: str | None = None) -> dict | None:
        """Mark an unused, unexpired undo token used (by the browser `used_by` names) and return it; else None.
        One atomic step: of two clicks, only one undoes."""
        now = utcnow()
        return await self.tokens.find_one_and_update(
            {"hash": hash_token(raw), "type": model.UNDO, "usedAt": None, "validUntil": {"$gt": now}},
            {"$set": {"usedAt": now, "usedBy": used_by}},
        )

    async def release_undo(self, token_id: ObjectId) -> None:
        """An undo that could not be done (the address was taken meanwhile) leaves its link usable."""
        await self.tokens.update_one({"_id": token_id}, {"$set": {"usedAt": None, "usedBy": None}})

    async def void_links(self, user_id: ObjectId, undone: dict) -> None:
        """After the undo of one email change (`undone`, its used token): every reset and verify token of the user
        stops working, and so does the undo link of every change made since (a thief's own). The links of earlier
        changes stay: the owner's link, to the address the account had first, is never voided by a thief's undo of
        a later change (CWE-640)."""
        await self.tokens.delete_many({"userId": user_id, "type": {"$in": [model.RESET, model.VERIFY]}})
        await self.tokens.delete_many(
            {
                "userId": user_id,
                "type": model.UNDO,
                "_id": {"$ne": undone["_id"]},
                "createdAt": {"$gte": undone["createdAt"]},
            }
        )

    async def _pair(self, user: dict, session: dict, now: dt.datetime) -> dict:
        """A new access and refresh token of a session, in its current generation; the refresh token's record
        names the access token issued with it (its pair, for keep_current)."""
        access_expires = now + dt.timedelta(minutes=self.settings.access_token_minutes)
        refresh_expires = now + dt.timedelta(days=self.settings.refresh_token_days)
        user_id = str(user["_id"])
        gen = session.get("gen", 0)
        claims = {
            "sub": user_id,
            "userId": user_id,
            "email": user["email"],
            "role": user["role"],
            "type": "access",
            "sid": str(session["_id"]),
            "iat": int(now.timestamp()),
            "exp": int(access_expires.timestamp()),
            "jti": uuid.uuid4().hex,
            "gen": gen,
        }
        access = jwt.encode(claims, self.settings.jwt_secret, algorithm="HS256")
        refresh = secrets.token_urlsafe(32)
        await self.tokens.insert_one(
            {
                "hash": hash_token(refresh),
                "type": model.REFRESH,
                "userId": user["_id"],
                "sessionId": session["_id"],
                "usedAt": None,
                "createdAt": now,
                "expiresAt": refresh_expires,
                "accessJti": claims["jti"],
                "gen": gen,
            }
        )
        return TokenPair(
            {
                "access": {
                    "token": access,
                    "expires": isoformat(dt.datetime.fromtimestamp(claims["exp"], dt.UTC)),
                },
                "refresh": {"token": refresh, "expires": isoformat(refresh_expires)},
            }
        )
