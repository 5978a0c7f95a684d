"""Users: creation (shared by both client families and the admin bootstrap), look-ups, and the
/users operations: listing, search, update, photos, deletion."""

import datetime as dt
import logging
import re

from bson import ObjectId
from pymongo import ReturnDocument
from pymongo.errors import DuplicateKeyError

from models import organisations as org_model
from models import users as model
from models.common import ID_ONLY, utcnow
from services import deadlines, pagination
from services.email import mask_address
from services.errors import ApiError, authentication_failed, field_error, forbidden, not_found

log = logging.getLogger("accounts.users")

# ensure_admin starts again this many times when the account at ADMIN_EMAIL keeps leaving the address.
ADMIN_BOOTSTRAP_TRIES = 5


def normalise_email(email: str) -> str:
    """Emails are compared and stored trimmed and lower-case."""
    return email.strip().lower()


def contains(text: str, options: str = "i") -> dict:
    """A $regex matching text literally as a substring."""
    # Escaped, so user text is never run as a pattern: no ReDoS, no wildcard widening (CWE-1333, CWE-625).
    return {"$regex": re.escape(text), "$options": options}


class Users:
    """Create, find, change and delete users."""

    def __init__(
        self,
        database,
        passwords,
        organisations,
        *,
        sessions,
        photos,
        login_attempts,
        outbox,
        searches,
        admin_query_seconds: float = 30.0,
    ):
        self.database = database
        self.collection = database[model.COLLECTION]
        self.deletions = database[model.DELETIONS]
        self.passwords = passwords
        self.organisations = organisations
        self.sessions = sessions
        self.photos = photos
        self.login_attempts = login_attempts
        self.outbox = outbox
        self.admin_query_seconds = admin_query_seconds
        self.searches = searches  # SEARCHES_PER_USER_PER_HOUR

    async def create(
        self,
        *,
        email: str,
        password: str,
        name: str | None = None,
        first_name: str | None = None,
        last_name: str | None = None,
        username: str | None = None,
        phone: str | None = None,
        role: str = "user",
    ) -> dict:
        """Create a user and their default organisation; a taken email or username is a 422."""
        self.database.require_unique_indexes()  # email_unique, username_string_unique
        email = normalise_email(email)
        username = username.lower() if username else None
        await self._check_free(email, username)
        if name is None:
            name = model.join_name(first_name, last_name)
        else:
            first_name, last_name = consistent_parts(name, first_name, last_name)
        now = utcnow()
        user = {
            "_id": ObjectId(),
            "name": name,
            "firstName": first_name,
            "lastName": last_name or "",
            "email": email,
            "passwordHash": await self.passwords.hash(password),
            "role": role,
            "isEmailVerified": False,
            "favoriteBoards": [],
            "createdAt": now,
            "updatedAt": now,
        }
        if username:
            user["username"] = username  # absent rather than null: the partial unique index skips it
        if phone:
            user["phone"] = phone
        # The organisation goes in first, keyed by the new user's id: if the user insert then loses a
        # race for the email, the organisation is removed; if the process dies in between, what is left
        # is an organisation whose only member does not exist, invisible to everyone.
        org = await self.organisations.create(
            org_model.default_organisation_name(first_name), org_model.DEFAULT_DESCRIPTION, user["_id"]
        )
        try:
            await self.collection.insert_one(user)
        except DuplicateKeyError:
            await self.organisations.delete(org["_id"])
            await self._check_free(email, username)
            raise field_error("email", "is already taken") from None
        return user

    async def get(self, user_id: ObjectId) -> dict | None:
        """The user with this id, or None."""
        return await self.collection.find_one({"_id": user_id})

    async def require(self, user_id: ObjectId) -> dict:
        """The user with this id; 404 when there is none."""
        user = await self.get(user_id)
        if user is None:
            raise not_found("User not found")
        return user

    # Who may act on whom under /users; actor is the caller's stored user (BaseHandler.current_user).

    @staticmethod
    def require_admin(actor: dict) -> None:
        """403 "Admins only" unless the actor is an admin."""
        # Checked on the stored role of a live session, never on the token's claim (CWE-285).
        if actor["role"] != "admin":
            raise forbidden("Admins only")

    async def target_for(self, actor: dict, user_id: ObjectId) -> dict:
        """The user actor may act on: themselves, or anyone when an admin (else 403); unknown 404."""
        if user_id == actor["_id"]:
            return actor
        # Non-admins get 403 whether or not the id exists, so ids cannot be probed (CWE-639).
        self.require_admin(actor)
        return await self.require(user_id)

    async def find_by_email(self, email: str) -> dict | None:
        """The user with this email (any case), or None."""
        return await self.collection.find_one({"email": normalise_email(email)})

    async def set_password(self, user_id: ObjectId, password: str, *, email: str | None = None) -> int | None:
        """Replace a user's password hash (only while their email is `email`, when given), ending every session of
        theirs in the same write; returns their new session epoch (for keep_current), None if no such user."""
        hashed = await self.passwords.hash(password)
        query = {"_id": user_id} if email is None else {"_id": user_id, "email": email}
        updated = await self.collection.find_one_and_update(
            query,
            {"$set": {"passwordHash": hashed, "updatedAt": utcnow()}, **model.revoke_sessions()},
            projection=model.EPOCH_ONLY,
            return_document=ReturnDocument.AFTER,
        )
        return None if updated is None else model.session_epoch(updated)

    async def ensure_admin(self, email: str, password: str, name: str) -> None:
        """Make sure an admin with this email and ADMIN_PASSWORD exists: create it, or take the existing account over.

        The take-over is one conditional write on {_id, email}: if the account left the address while
        ADMIN_PASSWORD was being hashed, it is not promoted (its sessions still end: it sat on the admin's
        address), and the bootstrap starts again from the address, creating the admin anew (CWE-367)."""
        for _ in range(ADMIN_BOOTSTRAP_TRIES):
            if await self._ensure_admin_once(email, password, name):
                return
        raise RuntimeError("ADMIN_EMAIL kept changing hands during the admin bootstrap")

    async def _ensure_admin_once(self, email: str, password: str, name: str) -> bool:
        """One try of ensure_admin; False when the account found at the address left it meanwhile."""
        existing = await self.find_by_email(email)
        if existing is None:
            try:
                await self.create(email=email, password=password, name=name, role="admin")
                log.info("admin %s created", mask_address(email))
                return True
            except ApiError:  # another process (or a squatter) created it first
                return False
        if existing["role"] == "admin" and await self.passwords.verify(password, existing["passwordHash"]):
            return True  # already bootstrapped: a restart logs nobody out
        # Someone may have registered the admin's address in advance: their password and sessions go (CWE-284).
        hashed = await self.passwords.hash(password)
        # One write, only while the account still has the admin's address: the role, the password and the end
        # of its sessions together, or none of them (CWE-367, CWE-613).
        promoted = await self.collection.update_one(
            {"_id": existing["_id"], "email": email},
            {"$set": {"role": "admin", "passwordHash": hashed, "updatedAt": utcnow()}, **model.revoke_sessions()},
        )
        if promoted.matched_count != 1:
            # It moved away while the hash was computed: not the admin, and nothing it held at the address lives on.
            await self.collection.update_one({"_id": existing["_id"]}, model.revoke_sessions())
            log.warning(
                "account on %s changed its email during the admin bootstrap; not promoted, sessions ended",
                mask_address(email),
            )
            await self.sessions.clean_up(existing["_id"])
            return False
        await self.sessions.clean_up(existing["_id"])
        await self.sessions.void_single_use(existing["_id"])
        log.info("account %s made the admin with ADMIN_PASSWORD; its sessions ended", mask_address(email))
        return True

    async def _check_free(self, email: str | None, username: str | None, exclude: ObjectId = None) -> None:
        others = {"_id": {"$ne": exclude}} if exclude else {}
        if email and await self.collection.find_one({"email": email, **others}, ID_ONLY):
            raise field_error("email", "is already taken")
        # An address a thief moved an account away from stays that account's while its owner's undo link works:
        # one sign-up with it would otherwise turn the link into "belongs to another account" (CWE-640).
        if email and await self.sessions.undo_holds(email, exclude=exclude):
            raise field_error("email", "is already taken")
        if username and await self.collection.find_one({"username": username, **others}, ID_ONLY):
            raise field_error("username", "is already taken")

    async def mark_verified(self, user_id: ObjectId, email: str) -> bool:
        """Set isEmailVerified if the user still has this email; False if not."""
        result = await self.collection.update_one(
            {"_id": user_id, "email": email}, {"$set": {"isEmailVerified": True, "updatedAt": utcnow()}}
        )
        return result.matched_count == 1

    # ---- /users ----------------------------------------------------------------------------------

    async def add(self, fields: dict) -> dict:
        """Create a user from an admin's POST /users body, role included."""
        return await self.create(
            email=fields["email"],
            password=fields["password"],
            name=fields["name"],
            first_name=fields.get("firstName"),
            last_name=fields.get("lastName"),
            username=fields.get("username"),
            phone=fields.get("phone"),
            role=fields.get("role", "user"),
        )

    async def list_page(self, query: dict) -> dict:
        """One page of users matching the name / username substrings and the exact role."""
        filters = {key: contains(query[key]) for key in ("name", "username") if key in query}
        if "role" in query:
            filters["role"] = query["role"]
        page = pagination.page_request(query, model.SORT_FIELDS, model.UNIQUE_SORT_FIELDS)
        # Admins only; a filtered page and its count may read the whole collection (models/users.py _LIST_SCAN):
        # ADMIN_QUERY_TIMEOUT_MS instead of the request's budget (docs/using/users.md, "What admin queries cost").
        with deadlines.budget(self.admin_query_seconds):
            return await pagination.fetch_page(self.collection, filters, page)

    async def search_by_email(self, text: str, limit: int, searcher_id: ObjectId) -> list:
        """Up to limit users with a verified email starting with text (any case), by email; 429 past the searcher's
        hourly budget."""
        # A one-letter prefix answers 20 addresses: unbounded, a signed-in stranger would walk every verified
        # address out of the index, prefix by prefix (CWE-799, CWE-200). docs/developing/security.md says why not a
        # minimum.
        await self.searches.spend(str(searcher_id))
        # Stored emails are lower-case, so a case-sensitive prefix of the lower-cased text suffices: anchored
        # and escaped, it is one bounded range of the verified-email index, walked in order to the limit.
        query = {"email": {"$regex": "^" + re.escape(text.lower())}, "isEmailVerified": True}
        cursor = self.collection.find(query).sort([("email", 1)]).limit(limit)
        return await cursor.to_list(limit)

    async def update(
        self,
        user: dict,
        fields: dict,
        *,
        actor: dict,
        session_id: ObjectId,
        access_jti: str | None = None,
        photo: bytes | None = None,
        address: str = "",
    ) -> dict:
        """Apply a PUT / PATCH by actor to user (fields and an optional photo); returns the updated user."""
        if "role" in fields and actor["role"] != "admin":
            # Role is the authorisation itself: only an admin may grant or drop it (CWE-269).
            raise forbidden("Only an admin may change a role")
        if "twoFactorEnabled" in fields and (actor["role"] != "admin" or actor["_id"] == user["_id"]):
            # Without a code only an admin, for someone else who lost their device; one's own second factor goes
            # only through /auth/2fa/disable, with a code: a stolen session must not remove it (CWE-308).
            raise forbidden("Only an admin may turn off someone else's two-factor sign-in")
        changes, removals = field_changes(user, fields)
        if "password" not in fields and photo is None and not changes_anything(user, changes, removals):
            raise field_error("body", "must change at least one field")
        if "email" in changes or "username" in changes:
            self.database.require_unique_indexes()  # email_unique, username_string_unique
        prepared = await self.photos.prepare(photo) if photo is not None else None
        is_self = actor["_id"] == user["_id"]
        if is_self and ("password" in fields or "email" in changes):
            # A stolen access token alone must not set a password or move the account's email (CWE-620).
            await self.confirm_password(user, fields.get("currentPassword"), "currentPassword", address)
        if "password" in fields:
            changes["passwordHash"] = await self.passwords.hash(fields["password"])
        await self._check_free(changes.get("email"), changes.get("username"), exclude=user["_id"])
        if prepared is not None:
            changes["photoVersion"] = await self.photos.save(user["_id"], prepared)
        # A new password, email or role, or two-factor turned off, ends the sessions in the same write (the
        # caller's own kept) (CWE-613).
        revokes = (
            "password" in fields
            or "email" in changes
            or changes.get("role", user["role"]) != user["role"]
            or "twoFactorEnabled" in changes
        )
        try:
            updated = await self._apply(user["_id"], changes, removals, revoke=revokes)
        except ApiError as error:
            if prepared is not None and error.status == 404:
                await self.photos.delete(user["_id"])  # deleted meanwhile: leave no photo behind
            raise
        if revokes and is_self:
            await self.sessions.keep_after_revoking(user["_id"], session_id, access_jti, model.session_epoch(updated))
        elif revokes:
            await self.sessions.clean_up(user["_id"])
        if "email" in changes:
            await self.email_changed(user, updated["email"], password_changed="password" in fields)
        elif "password" in fields:
            await self.outbox.password_changed_notice(updated)
        if "twoFactorEnabled" in changes:  # an admin turned it off: the owner hears of it (CWE-778)
            await self.outbox.two_factor_notice(updated, enabled=False)
        return updated

    async def email_changed(self, user: dict, new_email: str, *, password_changed: bool) -> None:
        """After an email change: links mailed to the old address die, and the old address is told, with a link
        that puts it back (user is the account before the change)."""
        await self.sessions.void_single_use(user["_id"])
        # The undo makes the old address verified again: only an address the account had proven it owns
        # gets one, or a squatter's unverified address would come back verified (CWE-345).
        if not user.get("isEmailVerified"):
            return
        token, valid_until = await self.sessions.issue_undo(user["_id"], user["email"], new_email)
        await self.outbox.email_changed_notice(user, new_email, token, valid_until, password_changed=password_changed)

    async def restore_email(self, user_id: ObjectId, old_email: str, changed_at: dt.datetime) -> dict | None:
        """Undo one email change (made at changed_at): old_email back, verified, whatever the address is now (a
        thief who changed it again must not void the owner's link, CWE-640); every session ends in this same write
        (no failure after it can leave a thief's session alive, CWE-613), and so does a second factor turned on
        since the change: the owner never set it up, and it would lock them out of the account they took back.
        Returns the account; None when it is gone, or old_email has another account now."""
        restore = {
            "$set": {"email": old_email, "isEmailVerified": True, "updatedAt": utcnow()},
            **model.revoke_sessions(),
        }
        for _ in range(5):  # compare-and-set on the two-factor state read: a toggle meanwhile makes it read again
            state = await self.collection.find_one({"_id": user_id}, model.TWO_FACTOR_SINCE)
            if state is None:
                return None
            since = state.get("twoFactorEnabledAt")
            update = restore
            if (
                state.get("twoFactorEnabled")
                and since is not None
                and since.replace(tzinfo=dt.UTC) >= changed_at.replace(tzinfo=dt.UTC)
            ):
                # The thief's authenticator, not the owner's: it goes with the takeover (CWE-640).
                update = {
                    **restore,
                    "$set": {**restore["$set"], "twoFactorEnabled": False},
                    "$unset": model.TWO_FACTOR_STATE,
                }
            try:
                restored = await self.collection.find_one_and_update(
                    {"_id": user_id, "twoFactorEnabled": state.get("twoFactorEnabled"), "twoFactorEnabledAt": since},
                    update,
                    return_document=ReturnDocument.AFTER,
                )
            except DuplicateKeyError:  # old_email was taken meanwhile
                return None
            if restored is not None:
                return restored
        raise ApiError(503, "The account is changing, try again", headers={"Retry-After": "1"})

    async def remove_photo(self, user_id: ObjectId) -> dict:
        """Take a user's photo down: the user stops pointing at it, then its bytes go."""
        updated = await self._apply(user_id, {"updatedAt": utcnow()}, {"photoVersion": ""})
        await self.photos.delete(user_id)
        return updated

    async def deletion_target(self, actor: dict, user_id: ObjectId) -> dict:
        """target_for for a deletion, except that an admin naming an account whose deletion failed midway (the
        user document gone, its journal entry left) gets it: the admin's retry finishes the deletion."""
        try:
            return await self.target_for(actor, user_id)
        except ApiError as error:
            # Only after target_for's admin check: to anyone else the id stays a 403 (CWE-639).
            if error.status != 404 or await self.deletions.find_one({"_id": user_id}, ID_ONLY) is None:
                raise
            return {"_id": user_id}

    async def published_photo(self, user_id: ObjectId, version: str, size: int) -> dict | None:
        """The photo behind a public versioned URL, or None: also once the user is gone, even while their
        deletion is still unfinished and the photo's bytes are still stored."""
        if await self.collection.find_one({"_id": user_id}, ID_ONLY) is None:
            return None
        return await self.photos.published(user_id, version, size)

    async def delete(self, user: dict, *, actor: dict, password: str | None = None, address: str = "") -> None:
        """Delete an account: the user themselves must give their password, an admin deleting another need not."""
        if actor["_id"] == user["_id"]:
            await self.confirm_password(user, password, "password", address)
        await self.erase(user["_id"])

    async def erase(self, user_id: ObjectId) -> None:
        """Remove a user and all that is theirs; journalled, so a failure midway is finished by replay_deletions
        (the sweep every process runs each DELETION_SWEEP_SECONDS, services/container.py)."""
        # Each step is idempotent, and the journal entry goes first and last: once it is written the
        # deletion will complete, here or in the next process to start.
        await self.deletions.update_one({"_id": user_id}, {"$setOnInsert": {"at": utcnow()}}, upsert=True)
        # The user document next: without it no token of theirs authenticates any more.
        await self.collection.delete_one({"_id": user_id})
        await self.sessions.remove_user(user_id)
        await self.photos.delete(user_id)
        await self.organisations.remove_user(user_id)
        await self.deletions.delete_one({"_id": user_id})

    async def replay_deletions(self) -> int:
        """Finish every deletion left half-done (by a failure midway, here or in another process); returns how
        many there were. Idempotent: every step of erase is, so two processes sweeping at once do no harm."""
        pending = [doc["_id"] async for doc in self.deletions.find({}, ID_ONLY)]
        for user_id in pending:
            await self.erase(user_id)
        return len(pending)

    async def password_matches(
        self, email: str, password: str, user: dict | None, address: str, clear: bool = True
    ) -> bool:
        """Check a password against a user's hash (None: no such user) as one attempt on `email`; 429 past the limit,
        503 when this process's bcrypt queue is full (then nothing is counted).
        clear=False: a right password leaves the attempt counted until attempts_passed (a second factor follows)."""
        self.passwords.require_capacity()
        await self.login_attempts.attempt(email, address)
        if not await self.passwords.verify(password, user["passwordHash"] if user else None):
            return False
        if clear:
            await self.login_attempts.clear(email, address)
        return True

    async def attempts_passed(self, email: str, address: str) -> None:
        """The second factor passed too: the attempt counted by password_matches(clear=False) is a success."""
        await self.login_attempts.clear(email, address)

    async def confirm_password(
        self, user: dict, password: str | None, field: str, address: str, clear: bool = True
    ) -> None:
        """Re-check a signed-in user's password (`field` names it when missing); 401 when wrong, 429 past the limit."""
        if password is None:
            raise field_error(field, "is required")
        # Re-checked so a stolen access token alone cannot take the account over (CWE-620); counted like a
        # login, or the token would be an unlimited password oracle (CWE-307).
        if not await self.password_matches(user["email"], password, user, address, clear=clear):
            raise authentication_failed()

    async def _apply(self, user_id: ObjectId, changes: dict, removals: dict, revoke: bool = False) -> dict:
        update = {
            "$set": changes,
            **({"$unset": removals} if removals else {}),
            **(model.revoke_sessions() if revoke else {}),
        }
        try:
            updated = await self.collection.find_one_and_update(
                {"_id": user_id}, update, return_document=ReturnDocument.AFTER
            )
        except DuplicateKeyError:  # lost a race for the email or username to a concurrent request
            await self._check_free(changes.get("email"), changes.get("username"), exclude=user_id)
            raise field_error("email" if "email" in changes else "username", "is already taken") from None
        if updated is None:
            raise not_found("User not found")
        return updated


def changes_anything(user: dict, changes: dict, removals: dict) -> bool:
    """True when the ($set, $unset) of an update would change a stored value (updatedAt aside)."""
    return any(key != "updatedAt" and user.get(key) != value for key, value in changes.items()) or any(
        key in user for key in removals
    )


def consistent_parts(name: str, first_name: str | None, last_name: str | None) -> tuple:
    """(firstName, lastName) for a name sent with neither, one or both parts: a missing part comes from name,
    and the parts must join to name, else 422 on "name" (both client families must show the same person)."""
    if first_name is None and last_name is None:
        return model.split_name(name)
    if first_name is None:
        first_name = name[: -len(last_name)].strip() if name.endswith(" " + last_name) else ""
    elif last_name is None:
        last_name = name[len(first_name) :].strip() if name.startswith(first_name) else name
    if not first_name or model.join_name(first_name, last_name) != name:
        raise field_error("name", "must be firstName and lastName joined")
    return first_name, last_name


def field_changes(user: dict, fields: dict) -> tuple:
    """The ($set, $unset) of an update body: names kept consistent, email and username normalised."""
    changes, removals = {"updatedAt": utcnow()}, {}
    names = {key: fields[key] for key in ("name", "firstName", "lastName") if key in fields}
    if "name" in names:
        names["firstName"], names["lastName"] = consistent_parts(
            names["name"], names.get("firstName"), names.get("lastName")
        )
    elif names:
        first, last = names.get("firstName", user["firstName"]), names.get("lastName", user["lastName"])
        names["name"] = model.join_name(first, last)
    changes.update(names)
    if "email" in fields and normalise_email(fields["email"]) != user["email"]:
        changes.update(email=normalise_email(fields["email"]), isEmailVerified=False)
    for key in ("username", "phone"):
        if key in fields and fields[key] is None:
            removals[key] = ""  # absent, never null: the partial unique index on username skips it
        elif key in fields:
            changes[key] = fields[key].lower() if key == "username" else fields[key]
    if "role" in fields:
        changes["role"] = fields["role"]
    if "twoFactorEnabled" in fields and user.get("twoFactorEnabled"):  # the schema allows only false
        changes["twoFactorEnabled"] = False
        removals.update(model.TWO_FACTOR_STATE)
    return changes, removals
