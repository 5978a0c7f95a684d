"""bcrypt hashing, always off the IOLoop, with a bounded number of hashes waiting per process."""
import asyncio
import math
import os
import secrets
import time
from concurrent.futures import Executor
from typing import Optional

import bcrypt

from services.errors import ApiError
from services.validation import BCRYPT_MAX_BYTES

# A first guess at one hash's time, until one has been measured (cost 12 on one core: about a quarter second).
FIRST_GUESS_SECONDS = 0.25
# How much each measured hash moves the running average.
SMOOTHING = 0.2


class Passwords:
    """Hash and check passwords with bcrypt in a thread pool (bcrypt releases the GIL).

    At most queue_max hashes and checks are waiting or running in this process: past it the request is a 503
    with Retry-After at once, instead of waiting behind tens of seconds of others' work (BCRYPT_QUEUE_MAX)."""

    def __init__(self, rounds: int, executor: Executor, queue_max: int):
        self.rounds = rounds
        self.executor = executor
        self.queue_max = queue_max
        self.pending = 0  # hashes submitted and not finished: this process's own queue, by design per process
        self._seconds_per_hash = FIRST_GUESS_SECONDS
        self._workers = os.cpu_count() or 1
        self._dummy_hash: Optional[bytes] = None

    def require_capacity(self) -> None:
        """503 with Retry-After when the queue is full: called before any write or counted attempt, so a
        refused request changes nothing."""
        if self.pending >= self.queue_max:
            # A flood of sign-ups or logins must not make every password check wait for seconds, nor grow a
            # queue without bound (CWE-400): the excess is told when to come back.
            raise ApiError(503, "Too busy checking passwords, try again shortly",
                           headers={"Retry-After": str(self.retry_after())})

    def retry_after(self) -> int:
        """Seconds until the queue has drained, from the measured time of a hash."""
        return max(1, math.ceil(self.pending * self._seconds_per_hash / self._workers))

    async def hash(self, password: str) -> str:
        """The bcrypt hash of a password that fits in 72 bytes."""
        salt = bcrypt.gensalt(self.rounds)
        hashed = await self._run(bcrypt.hashpw, password.encode("utf-8"), salt)
        return hashed.decode("ascii")

    async def verify(self, password: str, hashed: Optional[str]) -> bool:
        """True when password matches hashed; with no hash it still spends one bcrypt check."""
        encoded = password.encode("utf-8")
        if hashed is None or len(encoded) > BCRYPT_MAX_BYTES:
            # Same work whether or not the account exists, so timing tells nothing (CWE-208).
            await self._run(bcrypt.checkpw, b"not the password", await self._dummy())
            return False
        return await self._run(bcrypt.checkpw, encoded, hashed.encode("ascii"))

    async def _dummy(self) -> bytes:
        if self._dummy_hash is None:
            self._dummy_hash = await self._run(bcrypt.hashpw, secrets.token_bytes(16), bcrypt.gensalt(self.rounds))
        return self._dummy_hash

    async def _run(self, fn, *args):
        self.require_capacity()
        self.pending += 1
        try:
            return await asyncio.get_running_loop().run_in_executor(self.executor, self._timed, fn, *args)
        finally:
            self.pending -= 1

    def _timed(self, fn, *args):
        """fn(*args) in a worker thread, its duration folded into the running average (a float store: atomic)."""
        started = time.perf_counter()
        try:
            return fn(*args)
        finally:
            elapsed = time.perf_counter() - started
            self._seconds_per_hash += SMOOTHING * (elapsed - self._seconds_per_hash)
