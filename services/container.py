"""Builds every service once per process and runs the background work they need."""

import asyncio
import logging
import os
import time
from concurrent.futures import ThreadPoolExecutor

from pymongo.errors import PyMongoError

from services.auth import Auth
from services.budgets import HourlyBudget
from services.database import StartupStopped, describe_error
from services.email import EmailSender, Outbox
from services.favourites import Favourites
from services.login_attempts import LoginAttempts
from services.organisations import Organisations
from services.passwords import Passwords
from services.photos import Photos
from services.sessions import Sessions
from services.signups import Signups
from services.two_factor import TwoFactor
from services.users import Users

log = logging.getLogger("accounts.services")

TTL_SWEEP_SECONDS = 60
# How often every process finishes the account deletions a failure left half-done (docs/using/users.md).
DELETION_SWEEP_SECONDS = 60
# A crashed background task is restarted after this, doubling up to RESTART_MAX_SECONDS while it keeps crashing.
RESTART_SECONDS = 0.5
RESTART_MAX_SECONDS = 30.0
# Services.stop lets work left by answered requests finish for this long, then cancels every background task,
# re-cancelling this often (a cancel can be swallowed) and giving up on them after the deadline.
STOP_GRACE_SECONDS = 0.5
STOP_RECANCEL_SECONDS = 0.05
STOP_DEADLINE_SECONDS = 10


class Services:
    """The service objects the handlers call, wired to one database."""

    def __init__(self, settings, database):
        self.settings = settings
        self.database = database
        # bcrypt and image decoding each hold a core for their whole run; one thread per core is all that helps.
        self.executor = ThreadPoolExecutor(max_workers=os.cpu_count() or 1, thread_name_prefix="cpu")
        self.passwords = Passwords(settings.bcrypt_rounds, self.executor, settings.bcrypt_queue_max)
        self.outbox = Outbox(database, settings)
        self.organisations = Organisations(
            database,
            self.outbox,
            settings.max_organisations_per_user,
            HourlyBudget(
                database,
                "invitations",
                settings.invitations_per_address_per_hour,
                "Too many invitations from this address, try again later",
            ),
        )
        self.sessions = Sessions(database, settings)
        self.photos = Photos(
            database,
            settings.max_photo_bytes,
            settings.max_photo_pixels,
            self.executor,
            settings.max_photo_decode_bytes,
        )
        self.login_attempts = LoginAttempts(
            database,
            settings.login_attempts_limit,
            settings.login_attempts_window_seconds,
            settings.login_attempts_per_address,
        )
        searches = HourlyBudget(
            database, "searches", settings.searches_per_user_per_hour, "Too many searches, try again later"
        )
        self.users = Users(
            database,
            self.passwords,
            self.organisations,
            sessions=self.sessions,
            photos=self.photos,
            login_attempts=self.login_attempts,
            outbox=self.outbox,
            searches=searches,
            admin_query_seconds=settings.admin_query_timeout_ms / 1000,
        )
        self.favourites = Favourites(database)
        self.signups = Signups(database, settings.admin_query_timeout_ms / 1000)
        self.email_sender = EmailSender(self.outbox, settings)
        self.two_factor = TwoFactor(database, settings, users=self.users, sessions=self.sessions, outbox=self.outbox)
        registrations = HourlyBudget(
            database,
            "registrations",
            settings.registrations_per_address_per_hour,
            "Too many registrations from this address, try again later",
        )
        self.auth = Auth(
            self.users,
            sessions=self.sessions,
            outbox=self.outbox,
            settings=settings,
            two_factor=self.two_factor,
            registrations=registrations,
            passwords=self.passwords,
        )
        self._tasks = []

    def start(self) -> None:
        """Start the background work: indexes (retried until MongoDB answers), admin bootstrap, email."""
        self._spawn("database preparation", self._prepare_database)
        self._spawn("email sender", self.email_sender.run)
        self._spawn("deletion sweep", self._sweep_deletions)
        if self.database.embedded:
            self._spawn("expiry sweep", self._sweep_expired)

    async def stop(self) -> None:
        """Cancel the background work and close the database."""
        # A cancel can be swallowed inside a library (Python 3.11 wait_for in aiosmtplib): cancel again until
        # every task is done, and never wait past STOP_DEADLINE_SECONDS (SIGTERM must end the process, CWE-835).
        answered = self.auth.background | self.outbox.background
        if answered:  # work left by answered requests (forgot-password, an invitation's email) may finish first
            await asyncio.wait(set(answered), timeout=STOP_GRACE_SECONDS)
        pending = set(self._tasks) | self.auth.background | self.outbox.background
        deadline = asyncio.get_running_loop().time() + STOP_DEADLINE_SECONDS
        while pending:
            for task in pending:
                task.cancel()
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0:
                log.error("%d background task(s) did not stop within %s s", len(pending), STOP_DEADLINE_SECONDS)
                break
            _, pending = await asyncio.wait(pending, timeout=min(STOP_RECANCEL_SECONDS, remaining))
        self._tasks.clear()
        self.executor.shutdown(wait=False)
        self.database.close()

    async def _prepare_database(self) -> None:
        """Indexes, then unfinished account deletions, then the admin: each retried while MongoDB cannot be
        reached; an error waiting cannot fix (index conflict, bad credentials) ends them, logged once."""
        try:
            await self._prepare_steps()
        except StartupStopped:
            # Logged by until_done; /ready answers 503 with the reason; the log repeats it each minute.
            await self.database.remind_stopped()

    async def _prepare_steps(self) -> None:
        database, settings = self.database, self.settings
        await database.until_done("creating indexes", database.ensure_indexes)
        log.info("indexes ensured")
        finished = await database.until_done("replaying account deletions", self.users.replay_deletions)
        if finished:
            log.info("finished %d interrupted account deletion(s)", finished)
        if settings.admin_email:
            await database.until_done(
                "admin bootstrap",
                lambda: self.users.ensure_admin(settings.admin_email, settings.admin_password, settings.admin_name),
            )

    async def _sweep_deletions(self) -> None:
        """Finish, every DELETION_SWEEP_SECONDS, the account deletions a failure left half-done (here or in
        another process), once start-up has confirmed the indexes; a transient error waits for the next round."""
        while True:
            await asyncio.sleep(DELETION_SWEEP_SECONDS)
            if not self.database.indexes_ready:
                continue
            try:
                finished = await self.users.replay_deletions()
            except PyMongoError as error:
                log.warning("deletion sweep failed (%s); next in %ss", describe_error(error), DELETION_SWEEP_SECONDS)
                continue
            if finished:
                log.info("finished %d interrupted account deletion(s)", finished)

    async def _sweep_expired(self) -> None:
        while True:
            await asyncio.sleep(TTL_SWEEP_SECONDS)
            await self.database.sweep_expired()

    def _spawn(self, name: str, work) -> None:
        """Run work() in the background under supervise(); stop() cancels it."""
        self._tasks.append(asyncio.get_running_loop().create_task(supervise(name, work)))


async def supervise(name: str, work) -> None:
    """Await work() until it returns; a crash is logged and work() started again after a growing pause."""
    # One unexpected error must not stop email (or index creation) for good, in this process (CWE-248).
    delay = RESTART_SECONDS
    while True:
        started = time.monotonic()
        try:
            return await work()
        except Exception:  # noqa: BLE001 - CancelledError is not an Exception: stop() still ends it
            if time.monotonic() - started > RESTART_MAX_SECONDS:
                delay = RESTART_SECONDS  # it ran well for a while: a new crash is not part of a crash loop
            log.error("background task %s crashed; restarting in %.1fs", name, delay, exc_info=True)
        await asyncio.sleep(delay)
        delay = min(delay * 2, RESTART_MAX_SECONDS)
