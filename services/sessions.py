"""Sessions, access JWTs, rotating refresh tokens and single-use email tokens."""
import datetime as dt
import hashlib
import re
import secrets
import uuid
from typing import Optional

import jwt
from bson import ObjectId
from pymongo import ReturnDocument

from models import sessions as model
from models.common import ID_ONLY, isoformat, parse_object_id, utcnow
from models.users import COLLECTION as USERS, PASSWORD_HASH_ONLY
from services.errors import authentication_failed, unauthenticated

# The shape of a session cookie start() issues (secrets.token_urlsafe(32)).
_COOKIE = re.compile(r"[A-Za-z0-9_-]{43}")


def hash_token(raw: str) -> str:
    """The SHA-256 under which a token is stored; the token itself never is (CWE-256)."""
    return hashlib.sha256(raw.encode()).hexdigest()


class TokenPair(dict):
    """A token pair as the API returns it; `cookie` is the session cookie issued with it (never in the JSON)."""

    cookie: Optional[str] = None


class Sessions:
    """Everything about proving who a caller is, stored so every process agrees."""

    def __init__(self, database, settings):
        self.sessions = database[model.SESSIONS]
        self.tokens = database[model.TOKENS]
        self.users = database[USERS]
        self.settings = settings

    async def start(self, user: dict, verified_hash: Optional[str] = None) -> TokenPair:
        """Open a session for user and return its first token pair, with the browser's session cookie;
        with verified_hash (the hash a password was just checked against), 401 if it changed meanwhile."""
        now = utcnow()
        session_id = ObjectId()
        expires = now + dt.timedelta(days=self.settings.refresh_token_days)
        session = {"_id": session_id, "userId": user["_id"], "createdAt": now, "expiresAt": expires}
        cookie = None
        if self.settings.session_cookie:
            # 256 random bits, kept only as a hash: the cookie names this very session (CWE-256, CWE-330).
            cookie = secrets.token_urlsafe(32)
            session["cookieHash"] = hash_token(cookie)
        await self.sessions.insert_one(session)
        if verified_hash is not None and not await self._hash_unchanged(user["_id"], verified_hash):
            # A password change or reset ran during the bcrypt check; its sweep missed this session (CWE-367).
            await self.end(session_id)
            raise authentication_failed()
        pair = await self._pair(user, session_id, now)
        pair.cookie = cookie
        return pair

    async def _hash_unchanged(self, user_id: ObjectId, password_hash: str) -> bool:
        """True while the user's stored password hash is still password_hash (one read by _id)."""
        user = await self.users.find_one({"_id": user_id}, PASSWORD_HASH_ONLY)
        return user is not None and user.get("passwordHash") == password_hash

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
        if session is None or user is None:
            raise unauthenticated("Invalid refresh token")
        await self.sessions.update_one(
            {"_id": session["_id"]},
            {"$set": {"expiresAt": now + dt.timedelta(days=self.settings.refresh_token_days)}},
        )
        return await self._pair(user, session["_id"], now)

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
        """The (user, session id) of a live session named by a session cookie, else 401."""
        if not _COOKIE.fullmatch(cookie):
            raise unauthenticated()  # not something start() issued: no lookup (CWE-20)
        session = await self.sessions.find_one({"cookieHash": hash_token(cookie)})
        return await self._live(session)

    async def _live(self, session: Optional[dict]) -> tuple:
        """(user, session id) of an unexpired session whose user still exists, else 401."""
        user = await self.users.find_one({"_id": session["userId"]}) if session else None
        if user is None or session["expiresAt"] <= utcnow():
            raise unauthenticated()
        return user, session["_id"]

    async def authenticate(self, access_token: str) -> tuple:
        """The (user, session id) behind a valid access token of a live session, else 401."""
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
        return await self._live(await self.sessions.find_one({"_id": session_id, "userId": user_id}))

    async def end(self, session_id: ObjectId) -> None:
        """End one session: its access and refresh tokens stop working."""
        await self.sessions.delete_one({"_id": session_id})
        await self.tokens.delete_many({"sessionId": session_id})

    async def end_by_refresh_token(self, refresh_token: str) -> None:
        """End the session a refresh token belongs to; an unknown token is a 401."""
        token = await self.tokens.find_one({"hash": hash_token(refresh_token), "type": model.REFRESH})
        if token is None:
            raise unauthenticated("Invalid refresh token")
        await self.end(token["sessionId"])

    async def end_all(self, user_id: ObjectId, keep: Optional[ObjectId] = None) -> None:
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
        await self.tokens.insert_one({
            "hash": hash_token(raw), "type": kind, "userId": user["_id"], "email": user["email"],
            "createdAt": now, "expiresAt": expires,
        })
        return raw, expires

    async def consume_single_use(self, raw: str, kind: str, used_by: Optional[str] = None) -> dict:
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
        if token is None or not token.get("email") or \
                await self.users.find_one({"_id": token["userId"], "email": token["email"]}, ID_ONLY) is None:
            raise unauthenticated("Invalid or expired token")
        return token

    async def find_single_use(self, raw: str, kind: str) -> Optional[dict]:
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
        await self.tokens.insert_one({
            "hash": hash_token(raw), "type": model.UNDO, "userId": user_id, "oldEmail": old_email,
            "newEmail": new_email, "createdAt": now, "validUntil": valid_until,
            "expiresAt": valid_until + model.UNDO_KEPT,
        })
        return raw, valid_until

    async def find_undo(self, raw: str) -> Optional[dict]:
        """An undo token's document, used, expired or not; None when unknown (or long gone)."""
        return await self.tokens.find_one({"hash": hash_token(raw), "type": model.UNDO})

    async def consume_undo(self, raw: str, used_by: Optional[str] = None) -> Optional[dict]:
        """Mark an unused, unexpired undo token used (by the browser `used_by` names) and return it; else None.
        One atomic step: of two clicks, only one undoes."""
        now = utcnow()
        return await self.tokens.find_one_and_update(
            {"hash": hash_token(raw), "type": model.UNDO, "usedAt": None, "validUntil": {"$gt": now}},
            {"$set": {"usedAt": now, "usedBy": used_by}})

    async def release_undo(self, token_id: ObjectId) -> None:
        """An undo that could not be done (the address was taken meanwhile) leaves its link usable."""
        await self.tokens.update_one({"_id": token_id}, {"$set": {"usedAt": None, "usedBy": None}})

    async def void_links(self, user_id: ObjectId, keep: ObjectId) -> None:
        """Every reset, verify and undo token of a user but `keep` stops working (an undo took the account back)."""
        await self.tokens.delete_many({"userId": user_id, "type": {"$in": [model.RESET, model.VERIFY, model.UNDO]},
                                       "_id": {"$ne": keep}})

    async def _pair(self, user: dict, session_id: ObjectId, now: dt.datetime) -> dict:
        access_expires = now + dt.timedelta(minutes=self.settings.access_token_minutes)
        refresh_expires = now + dt.timedelta(days=self.settings.refresh_token_days)
        user_id = str(user["_id"])
        claims = {
            "sub": user_id, "userId": user_id, "email": user["email"], "role": user["role"], "type": "access",
            "sid": str(session_id), "iat": int(now.timestamp()), "exp": int(access_expires.timestamp()),
            "jti": uuid.uuid4().hex,
        }
        access = jwt.encode(claims, self.settings.jwt_secret, algorithm="HS256")
        refresh = secrets.token_urlsafe(32)
        await self.tokens.insert_one({
            "hash": hash_token(refresh), "type": model.REFRESH, "userId": user["_id"], "sessionId": session_id,
            "usedAt": None, "createdAt": now, "expiresAt": refresh_expires,
        })
        return TokenPair({
            "access": {"token": access, "expires": isoformat(dt.datetime.fromtimestamp(claims["exp"], dt.timezone.utc))},
            "refresh": {"token": refresh, "expires": isoformat(refresh_expires)},
        })
