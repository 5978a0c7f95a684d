"""The email sender stops when cancelled, so SIGTERM's shutdown can never hang on it."""

import asyncio
import random

import pytest

pytestmark = pytest.mark.gen_test


@pytest.mark.heavy
@pytest.mark.gen_test(timeout=60)
async def test_sender_stops_when_cancelled_even_just_as_mail_wakes_it(services):
    # Python 3.11's asyncio.wait_for swallows a cancellation that lands as the wait completes;
    # a sender looping on it would never stop, and run.py would never exit after SIGTERM.
    for _ in range(300):
        task = asyncio.ensure_future(services.email_sender.run())
        await asyncio.sleep(random.random() * 0.004)
        services.outbox.queued.set()
        for _ in range(random.randint(0, 3)):
            await asyncio.sleep(0)
        task.cancel()
        done, _ = await asyncio.wait([task], timeout=2)
        assert done, "the email sender ignored its cancellation"
