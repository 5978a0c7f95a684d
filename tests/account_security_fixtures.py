"""Helpers shared by the account-security tests (notices, the email-change undo); no tests here."""

import asyncio
import re
import time
from urllib.parse import urlencode

from tests.helpers import PASSWORD, Account, link_token, sign_up

SUPPORT = "help@example.com"


async def mail_to(mailbox, address: str, count: int, timeout: float = 10.0) -> list:
    """The first `count` messages whose envelope went to `address` alone, waiting for them to arrive."""
    deadline = time.monotonic() + timeout
    while True:
        mine = [m for m, r in zip(list(mailbox.messages), list(mailbox.recipients), strict=False) if r == [address]]
        if len(mine) >= count:
            return mine
        assert time.monotonic() < deadline, f"expected {count} emails to {address}, got {len(mine)}"
        await asyncio.sleep(0.002)


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


FORM = {"Content-Type": "application/x-www-form-urlencoded"}
UNDO_SUBJECT = "[Accounts] The email address of your account was changed"


class Browser:
    """One browser's cookie jar (its _xsrf cookie) over the test client; redirects are not followed."""

    def __init__(self, api):
        self.api = api
        self.cookie = None

    async def get(self, path):
        response = await self.api.get(path, headers={"Cookie": self.cookie} if self.cookie else {})
        if "Set-Cookie" in response.headers:
            self.cookie = response.headers["Set-Cookie"].split(";")[0]
        return response

    async def submit(self, page, action, fields):
        """Send the form of `page` (its _xsrf field included) with these fields."""
        xsrf = re.search(r'name="_xsrf" value="([^"]+)"', page.body.decode()).group(1)
        headers = dict(FORM, Cookie=self.cookie) if self.cookie else FORM
        return await self.api.post(
            action, body=urlencode({"_xsrf": xsrf, **fields}), headers=headers, follow_redirects=False
        )


async def taken_over(api, mailbox, account, new_email: str = "thief@example.com", password: str = PASSWORD) -> str:
    """A thief holding account's token and password moves its email to new_email; returns the undo link's token
    from the notice to the old (verified) address."""
    before = len([r for r in mailbox.recipients if r == [account.user["email"]]])
    response = await api.patch(
        f"/users/{account.id}", token=account.token, json={"email": new_email, "currentPassword": password}
    )
    assert response.code == 200, response
    notice = (await mail_to(mailbox, account.user["email"], before + 1))[before]
    assert notice["Subject"].endswith(UNDO_SUBJECT.partition(" ")[2]), notice["Subject"]
    return link_token(notice, "email-change/undo")
