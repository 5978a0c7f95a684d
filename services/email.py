"""Email through an outbox in MongoDB and a background sender with retries.

A request only inserts into the outbox, so sending never blocks or fails it. Any process may
deliver any message: a sender claims one with a lease, so a process dying mid-send leaves the
message to be retried by another.
"""
import asyncio
import datetime as dt
import html
import logging
import random
from email.message import EmailMessage

import aiosmtplib
from pymongo import ReturnDocument
from pymongo.errors import PyMongoError

from models import outbox as model
from models.common import utcnow
from services import metrics

log = logging.getLogger("accounts.email")

MAX_ATTEMPTS = 8
LEASE = dt.timedelta(minutes=2)
KEEP_SENT = dt.timedelta(days=7)


def backoff(attempts: int) -> dt.timedelta:
    """Wait before retry number `attempts`: 10 s doubling to one hour, with jitter."""
    seconds = min(10 * 2 ** (attempts - 1), 3600)
    return dt.timedelta(seconds=seconds * random.uniform(0.8, 1.2))


class Outbox:
    """Queue messages for delivery."""

    def __init__(self, database, settings):
        self.collection = database[model.COLLECTION]
        self.settings = settings
        self.queued = asyncio.Event()  # set when mail is queued, to wake this process's sender

    async def enqueue(self, to: str, subject: str, text: str, html_body: str, expires: dt.datetime) -> None:
        """Queue one message; it is dropped unsent once `expires` (its link's expiry) has passed."""
        now = utcnow()
        await self.collection.insert_one({
            "to": to, "subject": subject, "text": text, "html": html_body, "status": model.PENDING,
            "attempts": 0, "nextAttemptAt": now, "createdAt": now, "expiresAt": expires,
        })
        self.queued.set()

    async def verification_email(self, to: str, name: str, token: str, expires: dt.datetime) -> None:
        """Queue the verify-email message with its link."""
        link = f"{self.settings.app_url}/verify-email?token={token}"
        await self._queue_link(to, name, expires, "Verify your email address",
                               "Confirm that this is your email address:", link, "Verify email")

    async def reset_email(self, to: str, name: str, token: str, expires: dt.datetime) -> None:
        """Queue the reset-password message with its link."""
        link = f"{self.settings.app_url}/reset-password?token={token}"
        await self._queue_link(to, name, expires, "Reset your password",
                               "Someone asked to reset the password of your account. If it was you, use this link:",
                               link, "Reset password")

    async def _queue_link(self, to, name, expires, subject, intro, link, action) -> None:
        minutes = max(1, round((expires - utcnow()).total_seconds() / 60))
        text = (f"Hello {name},\n\n{intro}\n\n{link}\n\n"
                f"The link works once and expires in {minutes} minutes. If you did not ask for it, ignore this email.\n")
        page = (f"<p>Hello {html.escape(name)},</p><p>{html.escape(intro)}</p>"
                f'<p><a href="{html.escape(link)}">{html.escape(action)}</a></p>'
                f"<p>The link works once and expires in {minutes} minutes. "
                f"If you did not ask for it, ignore this email.</p>")
        await self.enqueue(to, subject, text, page, expires)


class EmailSender:
    """The background loop that delivers queued messages, over SMTP or, without SMTP_HOST, to the log."""

    def __init__(self, outbox: Outbox, settings):
        self.outbox = outbox
        self.collection = outbox.collection
        self.settings = settings

    async def run(self) -> None:
        """Deliver due messages until cancelled; poll every EMAIL_POLL_SECONDS or when woken."""
        while True:
            try:
                while await self.send_next():
                    pass
            except PyMongoError as error:
                log.warning("outbox unavailable: %s", error.__class__.__name__)
            self.outbox.queued.clear()
            # asyncio.timeout, not wait_for: on Python 3.11 wait_for swallows a cancellation that lands
            # as the wait ends, and the sender would then never stop (SIGTERM would hang the process).
            try:
                async with asyncio.timeout(self.settings.email_poll_seconds):
                    await self.outbox.queued.wait()
            except TimeoutError:
                pass

    async def send_next(self) -> bool:
        """Claim and deliver the oldest due message; False when none is due."""
        now = utcnow()
        message = await self.collection.find_one_and_update(
            {"status": model.PENDING, "nextAttemptAt": {"$lte": now}},
            {"$set": {"nextAttemptAt": now + LEASE}, "$inc": {"attempts": 1}},
            sort=[("nextAttemptAt", 1)],
            return_document=ReturnDocument.AFTER,
        )
        if message is None:
            return False
        if message["expiresAt"] <= now:
            await self.collection.delete_one({"_id": message["_id"]})
            return True
        try:
            await self._deliver(message)
        except (aiosmtplib.SMTPException, OSError, asyncio.TimeoutError) as error:
            failed = message["attempts"] >= MAX_ATTEMPTS
            (metrics.EMAIL_FAILED if failed else metrics.EMAIL_RETRIED).inc()
            log.warning("email %s to %s failed (attempt %d%s): %s", message["_id"], _mask(message["to"]),
                        message["attempts"], ", giving up" if failed else "", error.__class__.__name__)
            await self.collection.update_one({"_id": message["_id"]}, {"$set": {
                "status": model.FAILED if failed else model.PENDING,
                "nextAttemptAt": now + backoff(message["attempts"]), "lastError": str(error)[:500]}})
            return True
        # The body holds a live token: once delivered it is not kept (CWE-312).
        await self.collection.update_one({"_id": message["_id"]}, {
            "$set": {"status": model.SENT, "sentAt": utcnow(), "expiresAt": utcnow() + KEEP_SENT},
            "$unset": {"text": "", "html": ""}})
        metrics.EMAIL_SENT.inc()
        return True

    async def _deliver(self, message: dict) -> None:
        settings = self.settings
        if not settings.smtp_host:
            log.info("email (no SMTP_HOST set, not sent) to=%s subject=%s\n%s",
                     message["to"], message["subject"], message["text"])
            return
        email = EmailMessage()
        email["From"] = settings.email_from
        email["To"] = message["to"]
        email["Subject"] = message["subject"]
        email.set_content(message["text"])
        email.add_alternative(message["html"], subtype="html")
        await aiosmtplib.send(
            email,
            hostname=settings.smtp_host,
            port=settings.smtp_port,
            username=settings.smtp_username,
            password=settings.smtp_password,
            use_tls=settings.smtp_port == 465,
            start_tls=settings.smtp_starttls and settings.smtp_port != 465,
            timeout=settings.smtp_timeout_seconds,
        )


def _mask(address: str) -> str:
    local, _, domain = address.partition("@")
    return f"{local[:1]}***@{domain}"
