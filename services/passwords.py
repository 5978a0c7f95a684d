"""bcrypt hashing, always off the IOLoop, with a bounded number of hashes waiting per process."""

import asyncio
import heapq
import itertools
import math
import os
import secrets
import time
from concurrent.futures import Executor

import bcrypt

from services.errors import ApiError
from services.validation import BCRYPT_MAX_BYTES

# A first guess at one hash's time, until one has been measured (cost 12 on one core: about a quarter second).
FIRST_GUESS_SECONDS = 0.25
# How much each measured hash moves the running average.
SMOOTHING = 0.2
# Whose turn comes first when hashes wait: checking a password (a login, a re-check) before making a new hash
# (a sign-up, a password change), so a flood of sign-ups delays logins by one hash at most.
CHECK, NEW_HASH = 0, 1


class Passwords:
    """Hash and check passwords with bcrypt in a thread pool (bcrypt releases the GIL).

    At most queue_max hashes and checks are waiting or running in this process: past it the request is a 503
    with Retry-After at once, instead of waiting behind tens of seconds of others' work (BCRYPT_QUEUE_MAX).
    At most `workers` run at once; checks of a password wait ahead of new hashes."""

    def __init__(self, rounds: int, executor: Executor, queue_max: int, workers: int = None):
        self.rounds = rounds
        self.executor = executor
        self.queue_max = queue_max
        # Hashes handed to the executor at once: one a core. The others wait here, checks of a password
        # (logins, re-checks) before new hashes (sign-ups, password changes): a burst of sign-ups must not
        # make a login wait behind all of it.
        self.workers = workers or os.cpu_count() or 1
        self.pending = 0  # hashes waiting or running: this process's own queue, by design per process
        self._running = 0
        self._waiting = []  # heap of (priority, arrival, future): whose turn comes next
        self._arrivals = itertools.count()
        self._seconds_per_hash = FIRST_GUESS_SECONDS
        self._dummy_hash: bytes | None = None

    def require_capacity(self, priority: int = CHECK) -> None:
        """503 with Retry-After when the queue is full: called before any write or counted attempt, so a
        refused request changes nothing. New hashes may fill only half of it: the other half stays for
        logins, so a flood of sign-ups cannot lock everyone out."""
        if self.pending >= (self.queue_max if priority == CHECK else max(1, self.queue_max // 2)):
            # A flood of sign-ups or logins must not make every password check wait for seconds, nor grow a
            # queue without bound (CWE-400): the excess is told when to come back.
            raise ApiError(
                503, "Too busy checking passwords, try again shortly", headers={"Retry-After": str(self.retry_after())}
            )

    def retry_after(self) -> int:
        """Seconds until the queue has drained, from the measured time of a hash."""
        return max(1, math.ceil(self.pending * self._seconds_per_hash / self.workers))

    async def hash(self, password: str) -> str:
        """The bcrypt hash of a password that fits in 72 bytes."""
        salt = bcrypt.gensalt(self.rounds)
        hashed = await self._run(NEW_HASH, bcrypt.hashpw, password.encode("utf-8"), salt)
        return hashed.decode("ascii")

    async def verify(self, password: str, hashed: str | None) -> bool:
        """True when password matches hashed; with no hash it still spends one bcrypt check."""
        encoded = password.encode("utf-8")
        if hashed is None or len(encoded) > BCRYPT_MAX_BYTES:
            # Same work whether or not the account exists, so timing tells nothing (CWE-208).
            await self._run(CHECK, bcrypt.checkpw, b"not the password", await self._dummy())
            return False
        return await self._run(CHECK, bcrypt.checkpw, encoded, hashed.encode("ascii"))

    async def _dummy(self) -> bytes:
        if self._dummy_hash is None:
            self._dummy_hash = await self._run(
                CHECK, bcrypt.hashpw, secrets.token_bytes(16), bcrypt.gensalt(self.rounds)
            )
        return self._dummy_hash

    async def _run(self, priority: int, fn, *args):
        self.require_capacity(priority)
        self.pending += 1
        try:
            await self._turn(priority)
            try:
                return await asyncio.get_running_loop().run_in_executor(self.executor, self._timed, fn, *args)
            finally:
                self._running -= 1
                self._next()
        finally:
            self.pending -= 1

    async def _turn(self, priority: int) -> None:
        """Return once this hash may go to the executor: at once while a worker is free and nobody waits."""
        if self._running < self.workers and not self._waiting:
            self._running += 1
            return
        turn = asyncio.get_running_loop().create_future()
        heapq.heappush(self._waiting, (priority, next(self._arrivals), turn))
        try:
            await turn  # _next() counts this hash as running before it wakes it
        except asyncio.CancelledError:
            if turn.done() and not turn.cancelled():  # woken, then cancelled: hand the worker on
                self._running -= 1
                self._next()
            raise

    def _next(self) -> None:
        """Wake the waiting hashes a free worker can take, most urgent first (a cancelled one is skipped)."""
        while self._waiting and self._running < self.workers:
            _, _, turn = heapq.heappop(self._waiting)
            if not turn.done():
                self._running += 1
                turn.set_result(None)

    def _timed(self, fn, *args):
        """fn(*args) in a worker thread, its duration folded into the running average (a float store: atomic)."""
        started = time.perf_counter()
        try:
            return fn(*args)
        finally:
            elapsed = time.perf_counter() - started
            self._seconds_per_hash += SMOOTHING * (elapsed - self._seconds_per_hash)
