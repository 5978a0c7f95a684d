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
from email import policy
from email.headerregistry import Address, HeaderRegistry
from email.message import EmailMessage
from email.utils import formatdate, make_msgid, parseaddr

import aiosmtplib
from pymongo import ReturnDocument
from pymongo.errors import PyMongoError

from models import outbox as model
from models.common import utcnow
from services import metrics
from services.counters import WindowCounter, digest
from services.validation import is_plain_address

log = logging.getLogger("accounts.email")

MAX_ATTEMPTS = 8
LEASE = dt.timedelta(minutes=2)
KEEP_SENT = dt.timedelta(days=7)
# A notice has no link to expire; unsent after this, it is dropped.
NOTICE_LIFETIME = dt.timedelta(days=7)
HOUR = 3600


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
        self.sends = WindowCounter(database[model.SEND_COUNTS], HOUR)
        self.background = set()  # mail queued after its request was answered (later); awaited at shutdown

    def later(self, what: str, work) -> None:
        """Run work (which queues mail) after the answer: the request neither waits for nor fails with it."""
        task = asyncio.get_running_loop().create_task(_logged(what, work))
        self.background.add(task)  # held until done: the event loop keeps only weak references to tasks
        task.add_done_callback(self.background.discard)

    async def may_send(self, to: str, kind: str = "email") -> bool:
        """Count one email to this address; False past EMAILS_PER_ADDRESS_PER_HOUR this hour (0: no cap)."""
        cap = self.settings.emails_per_address_per_hour
        if not cap:
            return True
        count, _ = await self.sends.count(digest("email", to))
        # Anyone may ask for a reset link to any address: capped, so nobody can flood an inbox (CWE-799).
        if count <= cap:
            return True
        # The caller still answers as if it were sent (no probing): the log is where an operator sees why not.
        log.info(
            "email held back: %s to %s, EMAILS_PER_ADDRESS_PER_HOUR (%d) reached this hour",
            kind,
            mask_address(to),
            cap,
            extra={"fields": {"kind": kind, "to": mask_address(to)}},
        )
        return False

    async def enqueue(
        self, to: str, subject: str, text: str, html_body: str, expires: dt.datetime, kind: str = "email"
    ) -> None:
        """Queue one message of a kind (verification, reset, ...: for the log); it is dropped unsent once
        `expires` (its link's expiry) has passed."""
        now = utcnow()
        await self.collection.insert_one(
            {
                "kind": kind,
                "to": to,
                "subject": subject,
                "text": text,
                "html": html_body,
                "status": model.PENDING,
                "attempts": 0,
                "nextAttemptAt": now,
                "createdAt": now,
                "expiresAt": expires,
            }
        )
        self.queued.set()

    async def verification_email(self, to: str, name: str, token: str, expires: dt.datetime) -> None:
        """Queue the verify-email message with its link."""
        link = f"{self.settings.app_url}/verify-email?token={token}"
        await self._queue_link(
            to,
            name,
            expires,
            "Verify your email address",
            f"Confirm that this is your email address for your {self.settings.app_name} account:",
            link,
            "Verify my email address",
            "verification",
        )

    async def reset_email(self, to: str, name: str, token: str, expires: dt.datetime) -> None:
        """Queue the reset-password message with its link."""
        link = f"{self.settings.app_url}/reset-password?token={token}"
        await self._queue_link(
            to,
            name,
            expires,
            "Reset your password",
            f"Someone asked to reset the password of your {self.settings.app_name} account. "
            "If it was you, choose a new password here:",
            link,
            "Choose a new password",
            "reset",
        )

    # ---- notices: after a change to an account, to its own address (ASVS V2.2.3) ----------------------------

    async def password_changed_notice(self, user: dict) -> None:
        """Tell the account's address that its password was changed (change-password, an update, a reset)."""
        app_name = self.settings.app_name
        await self._notice(
            user,
            "Your password was changed",
            f"The password of your {app_name} account was just changed.",
            f"{self.settings.app_url}/forgot-password",
            "Choose a new password",
            "If it was you, there is nothing to do. If it was not, choose a new password at once with the link above.",
            kind="password-changed",
        )

    async def two_factor_notice(self, user: dict, enabled: bool) -> None:
        """Tell the account's address that two-factor sign-in was turned on (enabled) or off."""
        app_name = self.settings.app_name
        state = "on" if enabled else "off"
        await self._notice(
            user,
            f"Two-factor sign-in was turned {state}",
            f"Two-factor sign-in was just turned {state} for your {app_name} account.",
            f"{self.settings.app_url}/forgot-password",
            "Choose a new password",
            "If it was you, there is nothing to do. If it was not, someone else can sign in to your "
            "account: choose a new password at once with the link above.",
            kind="two-factor",
        )

    async def email_changed_notice(
        self, user: dict, new_email: str, undo_token: str, undo_until: dt.datetime, *, password_changed: bool
    ) -> None:
        """Tell the OLD address (user is the account before the change) that the account's email was changed,
        with the link that puts it back."""
        # The old owner learns of a takeover even though links now go to the new address, and can undo it (CWE-640).
        app_name = self.settings.app_name
        also = " Its password was changed too." if password_changed else ""
        link = f"{self.settings.app_url}/email-change/undo?token={undo_token}"
        lifetime = duration(max(1, round((undo_until - utcnow()).total_seconds() / 60)))
        await self._notice(
            user,
            "The email address of your account was changed",
            f"The email address of your {app_name} account was changed to {mask_address(new_email)}.{also} "
            "If you did not do this, put your address back with this link: every device signed in to the "
            "account will be signed out, and we will email you a link to choose a new password.",
            link,
            "Put my address back",
            f"The link works once and expires in {lifetime}. If it was you, there is nothing to do.",
            expires=undo_until,
            kind="email-changed",
        )

    def contact(self) -> str:
        """The sentence naming SUPPORT_EMAIL, or "" when it is not set."""
        support = self.settings.support_email
        return f" Questions? Write to {support}." if support else ""

    async def _notice(
        self,
        user: dict,
        subject: str,
        intro: str,
        link,
        action,
        closing: str,
        *,
        kind: str,
        expires: dt.datetime = None,
    ) -> None:
        # Only to an address the account has proven it owns: else anyone could make us mail any address by
        # signing up with it (CWE-451). Never counted against EMAILS_PER_ADDRESS_PER_HOUR: anyone may fill that
        # budget with forgot-password requests, and would then silence the notice of their own takeover (CWE-223).
        if not user.get("isEmailVerified"):
            return
        app_name = self.settings.app_name
        subject = f"[{app_name}] {subject}"
        closing += self.contact()
        name = user["firstName"]
        text = f"{greeting(name)}\n\n{intro}\n\n{link}\n\n{closing}\n\n-- \n{app_name}\n"
        page = link_email_html(subject, name, intro, link, action, closing, app_name)
        await self.enqueue(user["email"], subject, text, page, expires or utcnow() + NOTICE_LIFETIME, kind)

    async def invitation_email(self, to: str, name, inviter, organisation) -> None:
        """Queue the email telling a user they were invited into an organisation. inviter and organisation are
        the inviter's free text, None when the caller may not mail it (services/organisations.py says when)."""
        app_name, client_url = self.settings.app_name, self.settings.client_url
        who = one_line(inviter) if inviter else "Someone"
        where = f"“{one_line(organisation)}”" if organisation else "an organisation"
        # One line whatever the names hold: a header cannot be split, or the message could not be sent (CWE-93).
        subject = f"[{app_name}] {who} invited you to join {where}"
        invited = f"{who} invited you to join {where} on {app_name}."
        if client_url:
            intro, action = f"{invited} Open {app_name} to accept or decline the invitation:", f"Open {app_name}"
        else:
            intro, action = f"{invited} Open the {app_name} app to accept or decline the invitation.", None
        closing = "Nothing changes until you accept. If you do not know them, decline it or ignore this email."
        text = (
            f"{greeting(name)}\n\n{intro}\n\n"
            + (f"{client_url}\n\n" if client_url else "")
            + f"{closing}\n\n-- \n{app_name}\n"
        )
        page = link_email_html(subject, name, intro, client_url, action, closing, app_name)
        await self.enqueue(to, subject, text, page, utcnow() + NOTICE_LIFETIME, "invitation")

    async def _queue_link(self, to, name, expires, subject, intro, link, action, kind) -> None:
        app_name = self.settings.app_name
        subject = f"[{app_name}] {subject}"
        lifetime = duration(max(1, round((expires - utcnow()).total_seconds() / 60)))
        closing = (
            f"The link works once and expires in {lifetime}. "
            "If you did not ask for it, ignore this email: nothing changes."
        )
        text = f"{greeting(name)}\n\n{intro}\n\n{link}\n\n{closing}\n\n-- \n{app_name}\n"
        await self.enqueue(
            to, subject, text, link_email_html(subject, name, intro, link, action, closing, app_name), expires, kind
        )


async def _logged(what: str, work) -> None:
    """Await work; a failure is logged (never raised: its request has been answered)."""
    try:
        await work
    except Exception:  # noqa: BLE001 - logged, and nobody is waiting for it
        log.error("%s failed after the answer", what, exc_info=True)


def one_line(text: str, limit: int = 80) -> str:
    """Free text fit for a header or a sentence: every run of spaces and unprintable characters (line and
    paragraph separators included) one space, and no "=?" (the email package would decode an RFC 2047 encoded
    word in it, which can hold a newline), at most `limit` characters (CWE-93)."""
    flat = " ".join("".join(c if c.isprintable() else " " for c in str(text)).split()).replace("=?", "= ?")
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def greeting(name) -> str:
    """'Hello Mark,', or 'Hello,' without a name (mail to an address nobody has proven to own carries none)."""
    return f"Hello {name}," if name else "Hello,"


def plural(count: int, unit: str) -> str:
    """'1 minute', '10 minutes'."""
    return f"{count} {unit}" if count == 1 else f"{count} {unit}s"


def duration(minutes: int) -> str:
    """A link's lifetime for people: '1 minute', '45 minutes', '1 hour', '1 hour 30 minutes', '2 days'."""
    days, rest = divmod(minutes, 24 * 60)
    if days and not rest:
        return plural(days, "day")
    hours, minutes = divmod(minutes, 60)
    parts = ([plural(hours, "hour")] if hours else []) + ([plural(minutes, "minute")] if minutes else [])
    return " ".join(parts)


def link_email_html(subject, name, intro, link, action, closing, app_name) -> str:
    """A whole HTML document (mail clients and spam filters distrust fragments), the link visible as text too."""
    e = html.escape
    button = (
        ""
        if link is None
        else f"""<p><a href="{e(link)}" style="display:inline-block;padding:12px 20px;background:#2355d1;color:#ffffff;\
text-decoration:none;border-radius:6px;font-weight:bold">{e(action)}</a></p>
<p>Or copy this address into your browser:<br><a href="{e(link)}" style="color:#2355d1;word-break:break-all">\
{e(link)}</a></p>
"""
    )
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{e(subject)}</title>
</head>
<body style="margin:0;padding:16px;background:#f4f5f7;color:#1d2330;font-family:Arial,Helvetica,sans-serif;\
font-size:16px;line-height:1.5">
<div style="max-width:560px;margin:0 auto;padding:24px;background:#ffffff;border-radius:8px">
<p style="margin:0 0 16px;font-weight:bold">{e(app_name)}</p>
<p>{e(greeting(name))}</p>
<p>{e(intro)}</p>
{button}<p>{e(closing)}</p>
<p style="color:#5a6374">{e(app_name)}</p>
</div>
</body>
</html>
"""


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
        try:
            if message["expiresAt"] <= now:
                await self.collection.delete_one({"_id": message["_id"]})
                return True
            message_id = await self._deliver(message)
        except PyMongoError:
            raise  # the outbox itself is unavailable: the lease lets the message be retried
        except Exception as error:  # noqa: BLE001 - whatever one message does, the others still go
            await self._failed(message, error, now)
            return True
        # The body holds a live token: once delivered it is not kept (CWE-312).
        await self.collection.update_one(
            {"_id": message["_id"]},
            {
                "$set": {"status": model.SENT, "sentAt": utcnow(), "expiresAt": utcnow() + KEEP_SENT},
                "$unset": {"text": "", "html": ""},
            },
        )
        metrics.EMAIL_SENT.inc()
        kind, to = message.get("kind", "email"), mask_address(message["to"])
        # Masked: the log keeps who was mailed out of reach of whoever reads logs (CWE-532).
        log.info(
            "email sent: %s to %s, %s%s",
            kind,
            to,
            message_id,
            "" if self.settings.smtp_host else " (no SMTP_HOST: written to the log, not sent)",
            extra={"fields": {"kind": kind, "to": to, "messageId": message_id}},
        )
        return True

    async def _failed(self, message: dict, error: Exception, now: dt.datetime) -> None:
        """Retry a transient failure later; set aside one that can never succeed, so it cannot block the rest."""
        attempts = message.get("attempts", MAX_ATTEMPTS)
        failed = not is_transient(error) or attempts >= MAX_ATTEMPTS
        (metrics.EMAIL_FAILED if failed else metrics.EMAIL_RETRIED).inc()
        # Only the error's class and masked address are logged: its text may echo the address (CWE-532).
        log.warning(
            "email %s to %s failed (attempt %d%s): %s",
            message["_id"],
            mask_address(message.get("to")),
            attempts,
            ", giving up" if failed else "",
            error.__class__.__name__,
        )
        await self.collection.update_one(
            {"_id": message["_id"]},
            {
                "$set": {
                    "status": model.FAILED if failed else model.PENDING,
                    "nextAttemptAt": now + backoff(attempts),
                    "lastError": error.__class__.__name__,
                }
            },
        )

    async def _deliver(self, message: dict) -> str:
        """Send one message (or, without SMTP_HOST, write it to the log); its Message-ID."""
        settings = self.settings
        recipient = message["to"]
        if not is_plain_address(recipient):
            # Stored before addresses were checked, or written by hand: never guess where it would go (CWE-20).
            raise ValueError("not a plain email address")
        email = compose(settings, message)
        if not settings.smtp_host:
            # The link is what a developer needs from it; the address stays masked like every log line's.
            log.info(
                "email (no SMTP_HOST set, not sent) to=%s subject=%s\n%s",
                mask_address(recipient),
                message["subject"],
                message["text"],
            )
            return email["Message-ID"]
        if [address.addr_spec for address in email["To"].addresses] != [recipient]:
            raise ValueError("the To header would not name exactly the stored address")
        await aiosmtplib.send(
            email,
            # The envelope is given, never parsed back out of the headers (CWE-93).
            sender=email["From"].addresses[0].addr_spec,
            recipients=[recipient],
            hostname=settings.smtp_host,
            port=settings.smtp_port,
            username=settings.smtp_username,
            password=settings.smtp_password,
            use_tls=settings.smtp_port == 465,
            start_tls=settings.smtp_starttls and settings.smtp_port != 465,
            timeout=settings.smtp_timeout_seconds,
        )
        return email["Message-ID"]


class _HeaderClasses(HeaderRegistry):
    """The standard registry, making each header's class once: the standard one builds a new class on every
    header set (a sixth of composing a message)."""

    def __init__(self):
        super().__init__()
        self._made = {}

    def __getitem__(self, name):
        key = name.lower()
        if key not in self._made:
            self._made[key] = super().__getitem__(name)
        return self._made[key]


# The default policy (RFC-checked headers, CRLF on the wire by aiosmtplib), with the header classes made once.
POLICY = policy.default.clone(header_factory=_HeaderClasses())


def compose(settings, message: dict) -> EmailMessage:
    """The MIME message of an outbox entry: From with APP_NAME, Message-ID, Date, text and HTML parts."""
    _, address = parseaddr(settings.email_from)
    email = EmailMessage(policy=POLICY)
    # Built as an Address, never by pasting strings: a display name cannot inject headers (CWE-93).
    email["From"] = Address(display_name=settings.app_name, addr_spec=address)
    email["To"] = Address(addr_spec=message["to"])
    email["Subject"] = message["subject"]
    # Gmail and others reject or junk mail without these two; a relay should not have to add them.
    email["Message-ID"] = make_msgid(idstring=str(message["_id"]), domain=address.rpartition("@")[2] or None)
    email["Date"] = formatdate(localtime=False)
    # RFC 3834: no vacation responder or mailing list answers a robot (and loops with it).
    email["Auto-Submitted"] = "auto-generated"
    if settings.support_email:
        # An Address, checked as every address is (CWE-93): replies reach people, not the no-reply sender.
        email["Reply-To"] = Address(addr_spec=settings.support_email)
    email.set_content(message["text"])
    email.add_alternative(message["html"], subtype="html")
    return email


def is_transient(error: Exception) -> bool:
    """True when sending may succeed later (network, timeouts, a 4xx answer); False when it never will."""
    if isinstance(error, aiosmtplib.SMTPRecipientsRefused):
        return all(refused.code < 500 for refused in error.recipients)
    if isinstance(error, (aiosmtplib.SMTPAuthenticationError, aiosmtplib.SMTPHeloError)):
        return True  # the server's or our configuration, not this message: retried like an outage
    if isinstance(error, aiosmtplib.SMTPResponseException):
        return error.code < 500
    return isinstance(error, (OSError, asyncio.TimeoutError))


def mask_address(address) -> str:
    """An address fit for logs and notices: its first letter and its domain."""
    local, _, domain = str(address).rpartition("@")
    # Whatever is stored, a log line stays one line (CWE-117).
    return "".join(c if c.isprintable() else "?" for c in f"{local[:1]}***@{domain}")
