"""The /auth operations: sign-up, login, sessions, password reset and change, email verification."""

import asyncio
import logging

from bson import ObjectId

from models import sessions as session_model
from models.common import utcnow
from services import deadlines, metrics
from services.errors import ApiError, authentication_failed, two_factor_required, unauthenticated
from services.passwords import NEW_HASH
from services.users import normalise_email

log = logging.getLogger("accounts.auth")

# What opening an email link found (the pages say each differently).
USABLE, DONE, ALREADY, USED, DEAD = "usable", "done", "already", "used", "dead"
# And what an email-change undo link found besides USED (by another browser): expired, unknown, the old address
# has another account now, or the account's address is no longer the one that change set.
EXPIRED, UNKNOWN, TAKEN, MOVED = "expired", "unknown", "taken", "moved"


async def _logged(what: str, work) -> None:
    """Await work; a failure is logged (never raised: its request has been answered)."""
    try:
        await work
    except Exception:  # noqa: BLE001 - logged, and nobody is waiting for it
        log.error("%s failed after the answer", what, exc_info=True)


def greeting_name(user: dict):
    """The name to greet in mail, or None: a registrant's free text is never mailed to an address nobody has
    proven to own, or anyone could make us mail their text to anyone (CWE-451)."""
    return user["firstName"] if user.get("isEmailVerified") else None


class Auth:
    """Each method is one /auth operation."""

    def __init__(self, users, *, sessions, outbox, settings, two_factor, registrations, passwords):
        self.users = users
        self.passwords = passwords
        self.registrations = registrations  # REGISTRATIONS_PER_ADDRESS_PER_HOUR
        self.sessions = sessions
        self.two_factor = two_factor
        self.outbox = outbox
        self.settings = settings
        self.background = set()  # tasks doing work after their request's answer (see _after_answer)

    async def register(self, fields: dict, device: dict) -> tuple:
        """Create an account, open its first session and queue the verification email; returns (user, pair).
        Past the client address's hourly budget a 429, before any bcrypt work or write."""
        # Each sign-up costs a bcrypt hash and mails a stranger's address: one place may not make accounts
        # without bound (CWE-770); a 503 from a full bcrypt queue comes first, so it spends no budget.
        self.passwords.require_capacity(NEW_HASH)
        await self.registrations.spend(device["ip_address"])
        user = await self.users.create(
            email=fields["email"],
            password=fields["password"],
            name=fields.get("name"),
            first_name=fields.get("firstName"),
            last_name=fields.get("lastName"),
            username=fields.get("username"),
            phone=fields.get("phone"),
        )
        pair = await self.sessions.start(user, **(device or {}))
        await self.send_verification(user)
        return user, pair

    async def login(self, email: str, password: str, address: str, user_agent: str = None, otp: str = None) -> tuple:
        """Check credentials (and, with two-factor on, the otp) and open a session; returns (user, pair). Unknown
        email and wrong password look alike."""
        email = normalise_email(email)
        user = await self.users.find_by_email(email)
        two_factor = bool(user and user.get("twoFactorEnabled"))
        # With two-factor on, the attempt stays counted until the code passes too (CWE-307).
        if not await self.users.password_matches(email, password, user, address, clear=not two_factor):
            # One answer for both cases, so it does not tell which emails have accounts (CWE-204).
            metrics.LOGIN_FAILED.inc()
            raise authentication_failed()
        if two_factor:
            # Asked for only after a right password: whether an account has two-factor on is no one else's (CWE-204).
            if otp is None:
                raise two_factor_required()
            if not await self.two_factor.check_code(user, otp):
                metrics.LOGIN_FAILED.inc()
                raise authentication_failed()  # counted: the attempt was not cleared
            await self.users.attempts_passed(email, address)
        # Counted once the session exists: a login undone by a racing password change is not a success.
        pair = await self.sessions.start(
            user, verified_hash=user["passwordHash"], user_agent=user_agent, ip_address=address
        )
        metrics.LOGIN_SUCCEEDED.inc()
        return user, pair

    async def logout(self, refresh_token: str = None, session_id: ObjectId = None) -> None:
        """End the session of a refresh token, or the caller's current session."""
        if refresh_token is not None:
            await self.sessions.end_by_refresh_token(refresh_token)
        else:
            await self.sessions.end(session_id)

    async def refresh(self, refresh_token: str) -> dict:
        """Rotate a refresh token into a new pair."""
        return await self.sessions.rotate(refresh_token)

    async def forgot_password(self, email: str) -> None:
        """Queue a reset link if the email has an account, after the answer; say nothing either way."""
        self._after_answer("forgot-password", self._queue_reset(email))

    async def _queue_reset(self, email: str) -> None:
        user = await self.users.find_by_email(email)
        # Past the hourly cap no new token either: it would void the link already mailed.
        if user is None or not await self.outbox.may_send(user["email"], "reset"):
            return
        token, expires = await self.sessions.issue_single_use(
            user, session_model.RESET, self.settings.reset_token_minutes
        )
        await self.outbox.reset_email(user["email"], greeting_name(user), token, expires)

    async def reset_password(self, token: str, password: str, used_by: str = None) -> None:
        """Set a new password with a reset token and end every session of that user."""
        self.passwords.require_capacity(NEW_HASH)  # a 503 before the single-use token is spent, never after it
        record = await self.sessions.consume_single_use(token, session_model.RESET, used_by)
        # Only while the email it was mailed to is still the user's, even if it changes meanwhile (CWE-640).
        # The same write ends every session (the epoch); removing their documents is cleanup (CWE-613).
        if await self.users.set_password(record["userId"], password, email=record["email"]) is None:
            raise unauthenticated("Invalid or expired token")
        await self.sessions.clean_up(record["userId"])
        user = await self.users.get(record["userId"])
        if user is not None:
            await self.outbox.password_changed_notice(user)

    async def change_password(
        self,
        user: dict,
        session_id: ObjectId,
        email: str,
        password: str,
        new_password: str,
        address: str,
        access_jti: str = None,
    ) -> None:
        """Change the caller's password after re-checking it; every other session, and every other pair of the
        caller's own session, ends in the same write (keep_current keeps the caller's pair)."""
        await self.users.confirm_password(user, password, "password", address)
        if normalise_email(email) != user["email"]:
            raise authentication_failed()
        epoch = await self.users.set_password(user["_id"], new_password)
        await self.sessions.keep_after_revoking(user["_id"], session_id, access_jti, epoch)
        await self.outbox.password_changed_notice(user)

    async def send_verification(self, user: dict) -> None:
        """Queue a verify-email link, unless the email is already verified."""
        if user.get("isEmailVerified") or not await self.outbox.may_send(user["email"], "verification"):
            return
        token, expires = await self.sessions.issue_single_use(
            user, session_model.VERIFY, self.settings.verify_token_minutes
        )
        await self.outbox.verification_email(user["email"], greeting_name(user), token, expires)

    async def reset_link(self, token: str, browser: str = None) -> tuple:
        """What a reset link can do, without using it, and the address it is for when USABLE: (USABLE, email),
        (DONE, None) used by this browser, (USED, None) used by another one, or (DEAD, None)."""
        record = await self.sessions.find_single_use(token, session_model.RESET)
        if record is None:
            return DEAD, None
        if record.get("usedAt") is not None:
            # Only a holder of the real, unexpired link learns it was used: whoever reads the mailbox it was
            # sent to, who may have changed the password on another device (CWE-204: nothing about others).
            return (DONE if browser is not None and record.get("usedBy") == browser else USED), None
        user = await self.users.get(record["userId"])
        if user is not None and user["email"] == record["email"]:
            return USABLE, user["email"]
        return DEAD, None

    async def reset_link_state(self, token: str, browser: str = None) -> str:
        """reset_link's state alone."""
        return (await self.reset_link(token, browser))[0]

    async def resend_verification(self, email: str) -> None:
        """Queue a new verify link for an unverified account with this email, after the answer; say nothing."""
        self._after_answer("resend-verification", self._queue_verification(email))

    async def _queue_verification(self, email: str) -> None:
        user = await self.users.find_by_email(email)
        if user is not None:
            await self.send_verification(user)

    def _after_answer(self, what: str, work) -> None:
        """Run work in a background task, so the answer takes as long whether or not the account exists (CWE-208)."""
        # Its own database budget per call, not what is left of the answered request's (services/deadlines.py).
        task = asyncio.get_running_loop().create_task(_logged(what, work), context=deadlines.detached())
        self.background.add(task)  # held until done: the event loop keeps only weak references to tasks
        task.add_done_callback(self.background.discard)

    async def open_verify_link(self, token: str) -> str:
        """Verify through the confirm form of a link's page: DONE, ALREADY (verified before) or DEAD."""
        try:
            await self.verify_email(token)
            return DONE
        except ApiError as error:
            if error.status != 401:
                raise
        return ALREADY if await self.verify_link_state(token) == ALREADY else DEAD

    async def verify_link_state(self, token: str) -> str:
        """What a verify link can do, without using it (mail scanners open links): USABLE, ALREADY or DEAD."""
        record = await self.sessions.find_single_use(token, session_model.VERIFY)
        user = await self.users.get(record["userId"]) if record is not None else None
        if user is None or user["email"] != record["email"]:
            return DEAD
        if user.get("isEmailVerified"):
            return ALREADY
        return USABLE if record.get("usedAt") is None else DEAD

    async def verify_email(self, token: str) -> None:
        """Mark the email a verify token was sent to as verified, if it is still the user's email."""
        record = await self.sessions.consume_single_use(token, session_model.VERIFY)
        result = await self.users.mark_verified(record["userId"], record["email"])
        if not result:
            raise unauthenticated("Invalid or expired token")

    async def undo_link_state(self, token: str, browser: str = None) -> str:
        """What an email-change undo link can do, without using it (mail scanners open links): USABLE, DONE (used
        by this browser), USED, EXPIRED, UNKNOWN, TAKEN or MOVED."""
        record = await self.sessions.find_undo(token)
        if record is None:
            return UNKNOWN
        if record.get("usedAt") is not None:
            return DONE if browser is not None and record.get("usedBy") == browser else USED
        if record["validUntil"] <= utcnow():
            return EXPIRED
        user = await self.users.get(record["userId"])
        if user is None or user["email"] != record["newEmail"]:
            return MOVED
        return TAKEN if await self.users.find_by_email(record["oldEmail"]) is not None else USABLE

    async def undo_email_change(self, token: str, browser: str = None) -> str:
        """Take an account back with the link of an email-change notice: the old address returns (verified), every
        session and every other link ends, nothing else changes, and a reset link goes to the old address.
        Returns DONE, or why not (as undo_link_state)."""
        record = await self.sessions.consume_undo(token, browser)
        if record is None:
            return await self.undo_link_state(token, browser)  # DONE for a second click in the same browser
        user = await self.users.restore_email(record["userId"], record["newEmail"], record["oldEmail"])
        if user is None:
            await self.sessions.release_undo(record["_id"])  # nothing was done: the link still works later
            return await self.undo_link_state(token)  # TAKEN or MOVED, as opening it now says
        # The restore's own write ended the sessions (revoke_sessions); this is the clean-up, whose failure
        # changes nothing and must not stop the links being voided or the reset link going out.
        await self.sessions.clean_up(user["_id"])
        # Whatever the thief asked for (a reset link, another undo) dies with the rest (CWE-640).
        await self.sessions.void_links(user["_id"], keep=record["_id"])
        # The thief may know the password: a reset link to the restored address, never held back by the budget.
        reset, expires = await self.sessions.issue_single_use(
            user, session_model.RESET, self.settings.reset_token_minutes
        )
        await self.outbox.reset_email(user["email"], greeting_name(user), reset, expires)
        return DONE
