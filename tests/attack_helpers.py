"""Helpers for the attack-finding tests."""

import asyncio
import time

from models import outbox as outbox_model
from tests.helpers import Store


async def mail_settled(services, timeout: float = 15.0) -> None:
    """Wait until no queued email is still pending, so none is mid-send when the test ends.

    A stop that lands during an SMTP send can hang Services.stop (tests/operations/test_shutdown_during_send.py);
    until that is fixed, tests that send real mail end only once the sender is idle.
    """
    store = Store(services.database)
    deadline = time.monotonic() + timeout
    while await store.outbox.count_documents({"status": outbox_model.PENDING}):
        assert time.monotonic() < deadline, "emails still pending"
        await asyncio.sleep(0.005)
