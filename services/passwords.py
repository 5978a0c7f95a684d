"""bcrypt hashing, always off the IOLoop."""
import asyncio
import secrets
from concurrent.futures import Executor
from typing import Optional

import bcrypt

from services.validation import BCRYPT_MAX_BYTES


class Passwords:
    """Hash and check passwords with bcrypt in a thread pool (bcrypt releases the GIL)."""

    def __init__(self, rounds: int, executor: Executor):
        self.rounds = rounds
        self.executor = executor
        self._dummy_hash: Optional[bytes] = None

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

    def _run(self, fn, *args):
        return asyncio.get_running_loop().run_in_executor(self.executor, fn, *args)
