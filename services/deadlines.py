"""One deadline for a request's database work, and a bound on the database calls in flight per process.

Motor runs every call on a pool of threads (5 x cores per process), and the driver's own clock
(`timeoutMS`) starts only once a thread picks the call up: during an outage calls queued for a thread
waited there without bound. Here each call first takes one of a fixed number of slots (never more than
Motor's threads, so a call holding a slot never queues for a thread), and the wait for the slot, the
thread and the server all count against the request's one budget, MONGODB_OPERATION_TIMEOUT_MS, handed
to the driver as `pymongo.timeout(remaining)`. Motor 3.7 copies the context variables that block sets
into its threads (motor/frameworks/asyncio: run_on_executor runs the call in `contextvars.copy_context()`),
so the driver sees the same deadline. docs/operating/mongodb.md, "Timeouts", says what counts and what does not.
"""

import asyncio
import contextlib
import contextvars
import time

import pymongo
from pymongo.errors import ExecutionTimeout, WaitQueueTimeoutError


class Clock:
    """The database time one request (or one admin report, or one background call) has left. It runs while
    at least one of its calls waits for a slot, a thread or the server, and stops in between: time on a core
    (bcrypt, image decoding) or reading a body is not database time."""

    def __init__(self, seconds: float):
        self.seconds = seconds
        self.spent = 0.0
        self.active = 0
        self.since = 0.0

    def remaining(self) -> float:
        running = time.monotonic() - self.since if self.active else 0.0
        return self.seconds - self.spent - running

    def start(self) -> None:
        if self.active == 0:
            self.since = time.monotonic()
        self.active += 1

    def stop(self) -> None:
        self.active -= 1
        if self.active == 0:
            self.spent += time.monotonic() - self.since


_CLOCK: contextvars.ContextVar = contextvars.ContextVar("accounts_database_clock", default=None)


def start_request(seconds: float) -> None:
    """Give the current task (a request's handler) its database budget; called once, as the request starts."""
    _CLOCK.set(Clock(seconds))


@contextlib.contextmanager
def budget(seconds: float):
    """The database calls inside the block share a budget of their own (an admin report's longer bound)."""
    token = _CLOCK.set(Clock(seconds))
    try:
        yield
    finally:
        _CLOCK.reset(token)


def current_budget() -> float | None:
    """The seconds of the budget the current task's database calls share, or None outside any."""
    clock = _CLOCK.get()
    return clock.seconds if clock is not None else None


def detached() -> contextvars.Context:
    """A copy of the current context without the request's budget, for work that outlives the request
    (a task started by a request): its calls get a budget each, as background calls do."""
    context = contextvars.copy_context()
    context.run(_CLOCK.set, None)
    return context


class Gate:
    """At most `slots` database calls in flight in this process; the wait for one counts against the caller's
    budget (a call outside any budget, from background work, gets `default_seconds` of its own)."""

    def __init__(self, slots: int, default_seconds: float):
        self.slots = slots
        self.default_seconds = default_seconds
        self._free = asyncio.Semaphore(slots)
        self.in_flight = 0
        self.peak = 0  # the most calls ever in flight at once: tests and benchmarks read it

    async def run(self, call, *args, **kwargs):
        """Await call(*args, **kwargs), one driver call, holding a slot, under pymongo.timeout set to what the
        caller's budget has left."""
        clock: Clock = _CLOCK.get() or Clock(self.default_seconds)
        clock.start()
        try:
            await self._acquire(clock)
            self.in_flight += 1
            self.peak = max(self.peak, self.in_flight)
            try:
                with pymongo.timeout(self._left(clock)):
                    return await call(*args, **kwargs)
            finally:
                self.in_flight -= 1
                self._free.release()
        finally:
            clock.stop()

    async def _acquire(self, clock: Clock) -> None:
        if not self._free.locked():
            await self._free.acquire()  # a free slot is taken at once, without suspending
            return
        try:
            await asyncio.wait_for(self._free.acquire(), self._left(clock))
        except TimeoutError:
            # pymongo's own error for a full connection pool, and what this is: a 503 (ConnectionFailure).
            raise WaitQueueTimeoutError(
                f"Timed out waiting for one of {self.slots} database slots of this process "
                f"(budget {clock.seconds:g}s spent)"
            ) from None

    @staticmethod
    def _left(clock: Clock) -> float:
        left = clock.remaining()
        if left <= 0.001:  # pymongo.timeout(0) would mean no timeout at all: never hand it that
            # What pymongo raises itself when the deadline has passed before a command is sent (pool_shared.py).
            message = f"operation would exceed time limit, remaining timeout:{max(left, 0.0):.5f}"
            raise ExecutionTimeout(
                message, 50, {"ok": 0, "errmsg": message, "code": 50, "codeName": "MaxTimeMSExpired"}
            )
        return left


class GatedCursor:
    """A cursor whose every fetch goes through the gate; chained options (sort, limit...) keep it gated."""

    def __init__(self, cursor, gate: Gate):
        self._cursor = cursor
        self._gate = gate

    def __getattr__(self, name):
        attribute = getattr(self._cursor, name)
        if not callable(attribute):
            return attribute

        def chained(*args, **kwargs):
            result = attribute(*args, **kwargs)
            return self if result is self._cursor else result

        return chained

    async def to_list(self, *args, **kwargs):
        return await self._gate.run(self._cursor.to_list, *args, **kwargs)

    def __aiter__(self):
        return self

    async def __anext__(self):
        return await self._gate.run(self._cursor.__anext__)


class GatedCollection:
    """A Motor collection whose calls go through the gate."""

    CURSORS = frozenset({"find", "aggregate", "list_indexes"})
    CALLS = frozenset(
        {
            "find_one",
            "find_one_and_update",
            "find_one_and_delete",
            "find_one_and_replace",
            "insert_one",
            "insert_many",
            "update_one",
            "update_many",
            "replace_one",
            "delete_one",
            "delete_many",
            "bulk_write",
            "count_documents",
            "estimated_document_count",
            "distinct",
            "create_indexes",
            "drop_index",
            "index_information",
        }
    )

    def __init__(self, collection, gate: Gate):
        self._collection = collection
        self._gate = gate

    def __getattr__(self, name):
        attribute = getattr(self._collection, name)
        if name in self.CURSORS:
            return lambda *args, **kwargs: GatedCursor(attribute(*args, **kwargs), self._gate)
        if name not in self.CALLS:
            return attribute

        return lambda *args, **kwargs: self._gate.run(attribute, *args, **kwargs)
