"""Helpers shared by the account-security tests (notices, the email-change undo); no tests here."""
import asyncio
import time

from tests.helpers import Account, link_token, sign_up

SUPPORT = "help@example.com"


async def mail_to(mailbox, address: str, count: int, timeout: float = 10.0) -> list:
    """The first `count` messages whose envelope went to `address` alone, waiting for them to arrive."""
    deadline = time.monotonic() + timeout
    while True:
        mine = [m for m, r in zip(list(mailbox.messages), list(mailbox.recipients)) if r == [address]]
        if len(mine) >= count:
            return mine
        assert time.monotonic() < deadline, f"expected {count} emails to {address}, got {len(mine)}"
        await asyncio.sleep(0.02)


async def verified_account(api, mailbox, email: str = "ada@example.com", **fields) -> Account:
    """Sign up and verify the address through its link, as a person does (the first email to it)."""
    account = await sign_up(api, email=email, **fields)
    (verification,) = await mail_to(mailbox, email, 1)
    response = await api.post(f"/auth/verify-email?token={link_token(verification, 'verify-email')}")
    assert response.code == 204, response
    return account


async def sentinel(api, mailbox, count: int) -> None:
    """Mail one more address and wait for it: every message queued before it has been delivered (or dropped), so
    `count` (the messages expected in all, the sentinel's included) proves that nothing else was sent."""
    await sign_up(api, email="sentinel@example.com", name="Sentinel")
    await mail_to(mailbox, "sentinel@example.com", 1)
    assert len(mailbox.messages) == count, [(m["To"], m["Subject"]) for m in mailbox.messages]
