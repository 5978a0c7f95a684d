"""Found by the red-team pass (docs/history/attack-findings.md): one message that can never be sent is set aside; it
never stops everyone's email.

Before: a ValueError while composing one message killed the sender task, nothing restarted it, and no
email went out again for anyone.
"""

import asyncio
import datetime as dt
import logging

import aiosmtplib
import pytest

from models import outbox as outbox_model
from models.common import utcnow
from services import container
from tests.helpers import Store, link_token


@pytest.fixture
def settings_env(smtp_env):
    return smtp_env


async def poisoned(services, to: str) -> dict:
    """The outbox document of the message to `to`, once the sender has dealt with it."""
    store = Store(services.database)
    for _ in range(500):
        message = await store.outbox.find_one({"to": to})
        if message is not None and message["status"] != outbox_model.PENDING:
            return message
        await asyncio.sleep(0.02)
    raise AssertionError(f"the message to {to} was never dealt with")


async def next_users_mail_arrives(api, mailbox, count: int, email: str = "next@example.com"):
    await api.register(email=email)
    messages = await mailbox.wait_for(count)
    assert mailbox.recipients[-1] == [email] and messages[-1]["To"] == email
    assert link_token(messages[-1], "verify-email")


@pytest.mark.gen_test(timeout=30)
async def test_a_recipient_the_server_refuses_is_set_aside_at_once(api, services, mailbox, caplog):
    mailbox.refused.add("gone@example.com")
    await api.register(email="gone@example.com")
    message = await poisoned(services, "gone@example.com")
    # 550 means never: no retries for hours, marked failed after its one attempt.
    assert message["status"] == outbox_model.FAILED and message["attempts"] == 1
    assert message["lastError"] == "SMTPRecipientsRefused"
    await next_users_mail_arrives(api, mailbox, 1)
    assert mailbox.recipients == [["next@example.com"]]
    logged = [r.getMessage() for r in caplog.records if r.name == "accounts.email"]
    assert any("g***@example.com" in line and "giving up" in line for line in logged), logged
    assert not any("gone@example.com" in line for line in logged)  # the address is masked in the log


@pytest.mark.gen_test(timeout=30)
@pytest.mark.parametrize(
    "to, subject, text",
    [
        ("x@example.com\r\nBcc: attacker@evil.com", "Hello", "body"),  # header injection: refused to compose
        ("(x@example.com)", "Hello", "body"),  # a comment: the header would parse to another address
        ("ok@example.com", "Hello\r\nBcc: attacker@evil.com", "body"),  # ValueError from the header code
    ],
)
async def test_a_message_that_cannot_be_composed_is_failed_and_the_next_one_goes(
    api, services, mailbox, to, subject, text
):
    await services.outbox.enqueue(to, subject, text, "<p>body</p>", utcnow() + dt.timedelta(hours=1))
    message = await poisoned(services, to)
    assert message["status"] == outbox_model.FAILED and message["attempts"] == 1
    await next_users_mail_arrives(api, mailbox, 1)
    assert mailbox.recipients == [["next@example.com"]]


@pytest.mark.gen_test(timeout=30)
async def test_a_transient_failure_is_retried_not_failed(api, services, store, mailbox):
    original = services.email_sender._deliver
    failures = []

    async def greylisted_once(message):
        if not failures:
            failures.append(message["to"])
            # A 451 (greylisting) is a "try again later", as the real server would answer it.
            raise aiosmtplib.SMTPRecipientsRefused([aiosmtplib.SMTPRecipientRefused(451, "try later", message["to"])])
        return await original(message)

    services.email_sender._deliver = greylisted_once
    await api.register(email="later@example.com")
    for _ in range(500):
        message = await store.outbox.find_one({"to": "later@example.com"})
        if message["attempts"] == 1 and message["status"] == outbox_model.PENDING and "lastError" in message:
            break
        await asyncio.sleep(0.02)
    assert message["status"] == outbox_model.PENDING and message["nextAttemptAt"] > utcnow()
    await store.outbox.update_one({"_id": message["_id"]}, {"$set": {"nextAttemptAt": utcnow()}})
    services.outbox.queued.set()
    await mailbox.wait_for(1)
    assert failures == ["later@example.com"] and mailbox.recipients == [["later@example.com"]]


@pytest.mark.heavy
@pytest.mark.gen_test(timeout=30)
async def test_a_crashed_sender_is_logged_and_restarted(api, services, mailbox, caplog):
    original = services.email_sender.send_next
    crashes = []

    async def crash_once():
        if not crashes:
            crashes.append(1)
            raise RuntimeError("a bug nobody foresaw")
        return await original()

    services.email_sender.send_next = crash_once
    services.outbox.queued.set()  # wake the running sender into the crash
    await next_users_mail_arrives(api, mailbox, 1)
    assert crashes == [1]
    crashed = [r for r in caplog.records if r.name == "accounts.services" and r.levelno == logging.ERROR]
    assert crashed and "email sender crashed" in crashed[0].getMessage() and crashed[0].exc_info


@pytest.mark.gen_test(timeout=30)
async def test_supervision_restarts_after_a_crash_and_still_stops_on_cancel(monkeypatch):
    monkeypatch.setattr(container, "RESTART_SECONDS", 0.01)
    runs = []

    async def crashes_then_waits():
        runs.append(1)
        if len(runs) < 3:
            raise ValueError("crash")
        await asyncio.sleep(3600)

    task = asyncio.ensure_future(container.supervise("test task", crashes_then_waits))
    for _ in range(500):
        if len(runs) == 3:
            break
        await asyncio.sleep(0.01)
    assert len(runs) == 3 and not task.done()
    task.cancel()
    done, _ = await asyncio.wait([task], timeout=2)
    assert done and task.cancelled()
