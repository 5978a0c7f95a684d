"""Attack findings around the emails and their links.

- GET /verify-email verifies: mail scanners (Outlook Safe Links, corporate gateways) open every link in a
  message, so an account squatting someone's address is verified without its owner doing anything, and then
  shows up in getUsers as that person (which lists only verified users to stop exactly that squatting).
- The name a registrant types goes into the verification email, sent to whatever address they typed: anyone
  can make the service mail arbitrary text ("your account is locked, go to …") to any address.
- forgot-password does its database work only for an email that has an account, so its answer time tells
  which emails are registered (the 204 says nothing, the clock does).
"""

import asyncio
import time

import pytest

from tests.attack_helpers import mail_settled
from tests.helpers import Held, html_part, link_token, text_part

pytestmark = pytest.mark.gen_test


@pytest.fixture
def settings_env(smtp_env):
    return smtp_env


async def test_opening_the_verify_link_does_not_verify_by_itself(api, mailbox, services):
    await api.register(email="victim@example.com")  # registered by a squatter, mailed to the victim
    token = link_token((await mailbox.wait_for(1))[0], "verify-email")
    await mail_settled(services)
    scanned = await api.get(f"/verify-email?token={token}")  # the mail gateway fetches the link
    assert scanned.code == 200, scanned
    user = await services.users.find_by_email("victim@example.com")
    assert user["isEmailVerified"] is False
    # The page asks the person to confirm, with a form that posts back (and is xsrf-protected).
    assert b"<form" in scanned.body and b'method="post"' in scanned.body


PHISHING = "Locked. Unlock at evil.example now"


async def test_a_registrants_name_is_not_mailed_to_an_unverified_address(api, mailbox, services):
    response = await api.post(
        "/auth/register",
        json={"firstName": PHISHING, "lastName": "X", "email": "victim@example.com", "password": "password 123"},
    )
    assert response.code == 201, response
    (message,) = await mailbox.wait_for(1)
    await mail_settled(services)
    assert message["To"] == "victim@example.com"
    assert "evil.example" not in text_part(message)
    assert "evil.example" not in html_part(message)


async def test_forgot_password_answers_before_any_work_for_a_known_email(api, services, store, monkeypatch, mailbox):
    await api.register(email="mark@example.com")
    await mailbox.wait_for(1)
    # The token write a known email leads to is held open (as a slow replica set's majority write would be):
    # the answer must not wait for it, or its time would tell known emails from unknown ones (CWE-208).
    held = Held(store.tokens, "delete_many")
    monkeypatch.setattr(services.sessions, "tokens", held)
    for email in ("mark@example.com", "nobody@example.com"):
        response = await asyncio.wait_for(api.post("/auth/forgot-password", json={"email": email}), 5)
        assert response.code == 204, response
    await asyncio.wait_for(held.reached.wait(), 5)  # the known email's work did reach the write, after its answer
    held.released.set()
    reset = (await mailbox.wait_for(2))[1]
    assert reset["To"] == "mark@example.com" and reset["Subject"] == "[Accounts] Reset your password"
    await mail_settled(services)


async def test_reset_mail_greets_by_name_only_a_verified_address(api, mailbox, services):
    await api.register(email="mark@example.com", firstName="Mark", lastName="Essien")
    await mailbox.wait_for(1)
    assert (await api.post("/auth/forgot-password", json={"email": "mark@example.com"})).code == 204
    unverified = (await mailbox.wait_for(2))[1]
    assert text_part(unverified).splitlines()[0] == "Hello," and "Mark" not in text_part(unverified)
    assert "Mark" not in html_part(unverified)
    user = await services.users.find_by_email("mark@example.com")
    assert await services.users.mark_verified(user["_id"], "mark@example.com")
    assert (await api.post("/auth/forgot-password", json={"email": "mark@example.com"})).code == 204
    verified = (await mailbox.wait_for(3))[2]
    assert text_part(verified).splitlines()[0] == "Hello Mark,"
    assert "Hello Mark," in html_part(verified)
    await mail_settled(services)


async def test_forgot_password_work_that_fails_after_the_answer_is_logged(api, services, store, monkeypatch, caplog):
    await api.register(email="mark@example.com")

    async def broken(*args, **kwargs):
        raise RuntimeError("database gone")

    monkeypatch.setattr(services.sessions, "issue_single_use", broken)
    response = await api.post("/auth/forgot-password", json={"email": "mark@example.com"})
    assert response.code == 204, response  # answered before the work, which cannot fail it
    deadline = time.monotonic() + 10
    while services.auth.background:
        assert time.monotonic() < deadline
        await asyncio.sleep(0.01)
    # Operators find the failed work by this line, and its traceback says why.
    (logged,) = [record for record in caplog.records if record.name == "accounts.auth"]
    assert logged.levelname == "ERROR" and logged.getMessage() == "forgot-password failed after the answer"
    assert logged.exc_info is not None and isinstance(logged.exc_info[1], RuntimeError)
    assert await store.outbox.count_documents({"subject": {"$regex": "Reset"}}) == 0
