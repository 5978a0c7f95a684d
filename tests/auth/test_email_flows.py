"""Emails through a real SMTP server: verification, forgot/reset password; and change-password."""

import asyncio
import datetime as dt

import pytest
from aiosmtpd.controller import Controller
from pymongo.errors import AutoReconnect

from tests.helpers import PASSWORD, Mailbox, assert_error, error_fields, free_port, html_part, link_token, text_part

pytestmark = pytest.mark.gen_test

NEW_PASSWORD = "a brand new password"


@pytest.fixture
def settings_env(smtp_env):
    return smtp_env


async def test_registration_sends_a_verification_email(api, mailbox):
    await api.register(email="mark@example.com")
    (message,) = await mailbox.wait_for(1)
    assert message["To"] == "mark@example.com"
    assert message["From"] == "Accounts <accounts@example.com>"
    assert message["Subject"] == "[Accounts] Verify your email address"
    assert "https://app.example.com/verify-email?token=" in text_part(message)
    assert "https://app.example.com/verify-email?token=" in html_part(message)


async def test_verify_email_link_works_once(api, mailbox, store):
    body = await api.register(email="mark@example.com")
    token = link_token((await mailbox.wait_for(1))[0], "verify-email")
    response = await api.post(f"/auth/verify-email?token={token}")
    assert response.code == 204
    user = await store.users.find_one({"email": "mark@example.com"})
    assert user["isEmailVerified"] is True
    login = await api.login()
    assert login["data"]["user"]["isEmailVerified"] is True
    assert_error(await api.post(f"/auth/verify-email?token={token}"), 401)
    assert_error(await api.post("/auth/verify-email?token=nonsense"), 401)
    assert error_fields(await api.post("/auth/verify-email")) == {"token": "is required"}
    # Once verified, asking again sends nothing: no message queued, and the next email to arrive is the reset.
    queued = await store.outbox.count_documents({})
    assert (await api.post("/auth/send-verification-email", token=body["tokens"]["access"]["token"])).code == 204
    assert await store.outbox.count_documents({}) == queued
    assert (await api.post("/auth/forgot-password", json={"email": "mark@example.com"})).code == 204
    assert [m["Subject"] for m in await mailbox.wait_for(2)] == [
        "[Accounts] Verify your email address",
        "[Accounts] Reset your password",
    ]


async def test_send_verification_email_replaces_the_previous_link(api, mailbox):
    body = await api.register(email="mark@example.com")
    first = link_token((await mailbox.wait_for(1))[0], "verify-email")
    assert (await api.post("/auth/send-verification-email", token=body["tokens"]["access"]["token"])).code == 204
    second = link_token((await mailbox.wait_for(2))[1], "verify-email")
    assert first != second
    assert_error(await api.post(f"/auth/verify-email?token={first}"), 401)
    assert (await api.post(f"/auth/verify-email?token={second}")).code == 204


async def test_expired_verify_token_is_refused(api, mailbox, store):
    await api.register(email="mark@example.com")
    token = link_token((await mailbox.wait_for(1))[0], "verify-email")
    past = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
    await store.tokens.update_many({"type": "verify"}, {"$set": {"expiresAt": past}})
    assert_error(await api.post(f"/auth/verify-email?token={token}"), 401)


async def test_forgot_password_emails_a_reset_link_and_reset_ends_every_session(api, mailbox, services):
    registered = await api.register(email="mark@example.com")
    other = await api.login()
    await mailbox.wait_for(1)
    response = await api.post("/auth/forgot-password", json={"email": "MARK@example.com"})
    assert response.code == 204 and response.body == b""
    message = (await mailbox.wait_for(2))[1]
    assert message["Subject"] == "[Accounts] Reset your password"
    token = link_token(message, "reset-password")
    assert (await api.post(f"/auth/reset-password?token={token}", json={"password": NEW_PASSWORD})).code == 204
    for tokens in (registered["tokens"], other["tokens"]):
        assert_error(await api.post("/auth/send-verification-email", token=tokens["access"]["token"]), 401)
        assert_error(await api.post("/auth/refresh-tokens", json={"refreshToken": tokens["refresh"]["token"]}), 401)
    assert_error(await api.post("/auth/login", json={"email": "mark@example.com", "password": PASSWORD}), 401)
    await api.login(password=NEW_PASSWORD)
    # Single use.
    assert_error(await api.post(f"/auth/reset-password?token={token}", json={"password": "yet another one"}), 401)


async def test_forgot_password_for_unknown_email_is_204_and_sends_nothing(api, mailbox, services):
    await api.register(email="mark@example.com")
    await mailbox.wait_for(1)
    response = await api.post("/auth/forgot-password", json={"email": "nobody@example.com"})
    assert response.code == 204
    await api.post("/auth/forgot-password", json={"email": "mark@example.com"})
    await mailbox.wait_for(2)
    assert [m["To"] for m in mailbox.messages] == ["mark@example.com", "mark@example.com"]


async def test_reset_password_validates_and_rejects_bad_tokens(api, mailbox):
    await api.register(email="mark@example.com")
    await api.post("/auth/forgot-password", json={"email": "mark@example.com"})
    token = link_token((await mailbox.wait_for(2))[1], "reset-password")
    assert error_fields(await api.post(f"/auth/reset-password?token={token}", json={"password": "short"})) == {
        "password": "must be at least 8 characters"
    }
    assert_error(await api.post("/auth/reset-password?token=wrong", json={"password": NEW_PASSWORD}), 401)
    # A newer link makes the older one useless.
    await api.post("/auth/forgot-password", json={"email": "mark@example.com"})
    newer = link_token((await mailbox.wait_for(3))[2], "reset-password")
    assert_error(await api.post(f"/auth/reset-password?token={token}", json={"password": NEW_PASSWORD}), 401)
    assert (await api.post(f"/auth/reset-password?token={newer}", json={"password": NEW_PASSWORD})).code == 204


async def test_expired_reset_token_is_refused(api, mailbox, store):
    await api.register(email="mark@example.com")
    await api.post("/auth/forgot-password", json={"email": "mark@example.com"})
    token = link_token((await mailbox.wait_for(2))[1], "reset-password")
    past = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
    await store.tokens.update_many({"type": "reset"}, {"$set": {"expiresAt": past}})
    assert_error(await api.post(f"/auth/reset-password?token={token}", json={"password": NEW_PASSWORD}), 401)


async def test_delivered_emails_do_not_keep_their_token_bearing_bodies(api, mailbox, store):
    await api.register(email="mark@example.com")
    await mailbox.wait_for(1)
    for _ in range(100):
        stored = await store.outbox.find_one({})
        if stored["status"] == "sent":
            break
        await asyncio.sleep(0.02)
    assert stored["status"] == "sent" and "text" not in stored and "html" not in stored


async def test_change_password_ends_the_other_sessions(api):
    current = (await api.register(email="mark@example.com"))["tokens"]
    other = (await api.login())["tokens"]
    token = current["access"]["token"]
    body = {"email": "Mark@Example.com", "password": PASSWORD, "newPassword": NEW_PASSWORD}
    assert (await api.post("/auth/change-password", json=body, token=token)).code == 204
    assert (await api.post("/auth/send-verification-email", token=token)).code == 204
    assert_error(await api.post("/auth/send-verification-email", token=other["access"]["token"]), 401)
    assert_error(await api.post("/auth/refresh-tokens", json={"refreshToken": other["refresh"]["token"]}), 401)
    await api.login(password=NEW_PASSWORD)


async def test_change_password_checks_email_password_and_token(api):
    token = (await api.register(email="mark@example.com"))["tokens"]["access"]["token"]
    await api.register(email="other@example.com")
    wrong_password = {"email": "mark@example.com", "password": "not it at all", "newPassword": NEW_PASSWORD}
    assert_error(await api.post("/auth/change-password", json=wrong_password, token=token), 401)
    someone_else = {"email": "other@example.com", "password": PASSWORD, "newPassword": NEW_PASSWORD}
    assert_error(await api.post("/auth/change-password", json=someone_else, token=token), 401)
    valid = {"email": "mark@example.com", "password": PASSWORD, "newPassword": NEW_PASSWORD}
    assert_error(await api.post("/auth/change-password", json=valid), 401)
    fields = error_fields(await api.post("/auth/change-password", json={**valid, "newPassword": "x" * 73}, token=token))
    assert fields == {"newPassword": "must be at most 72 bytes in UTF-8"}
    await api.login(password=PASSWORD)


class TestSmtpDown:
    """A failing SMTP server neither blocks nor fails the request, and the message is retried."""

    @pytest.fixture
    def smtp_port(self):
        return free_port()

    @pytest.fixture
    def settings_env(self, smtp_port):
        return {
            "SMTP_HOST": "127.0.0.1",
            "SMTP_PORT": str(smtp_port),
            "SMTP_STARTTLS": "false",
            "SMTP_TIMEOUT_SECONDS": "1",
            "EMAIL_POLL_SECONDS": "0.05",
        }  # a retry is found by polling

    @pytest.mark.gen_test(timeout=20)
    async def test_failed_send_is_retried_with_backoff_until_delivered(self, api, store, smtp_port):
        response = await api.post(
            "/auth/register",
            json={"firstName": "Mark", "lastName": "Essien", "email": "mark@example.com", "password": PASSWORD},
        )
        assert response.code == 201
        for _ in range(200):
            message = await store.outbox.find_one({})
            if message.get("lastError"):
                break
            await asyncio.sleep(0.02)
        assert message["status"] == "pending" and message["attempts"] == 1
        wait = (message["nextAttemptAt"] - dt.datetime.now(dt.UTC)).total_seconds()
        assert 5 < wait <= 12  # about 10 s before the second attempt
        # The server comes back; once the retry is due the message goes out.
        mailbox = Mailbox()
        controller = Controller(mailbox, hostname="127.0.0.1", port=smtp_port)
        controller.start()
        try:
            await store.outbox.update_one({"_id": message["_id"]}, {"$set": {"nextAttemptAt": dt.datetime.now(dt.UTC)}})
            (delivered,) = await mailbox.wait_for(1)
            assert delivered["To"] == "mark@example.com"
        finally:
            controller.stop()


async def reset_link(api, mailbox) -> str:
    await api.register(email="mark@example.com")
    await api.post("/auth/forgot-password", json={"email": "mark@example.com"})
    return link_token((await mailbox.wait_for(2))[1], "reset-password")


async def test_reset_page_is_a_dead_link_once_the_account_has_left_the_address(api, mailbox, store):
    token = await reset_link(api, mailbox)
    assert (await api.get(f"/reset-password?token={token}")).code == 200  # the form while the address is the same
    # An email change whose voiding of the links did not happen (the process died between the two writes).
    await store.users.update_one({"email": "mark@example.com"}, {"$set": {"email": "moved@example.com"}})
    page = await api.get(f"/reset-password?token={token}")
    assert page.code == 400 and b"expired or was already used" in page.body
    assert await store.tokens.count_documents({"type": "reset", "usedAt": {"$ne": None}}) == 0  # looked, not used


async def test_reset_racing_an_email_change_sets_no_password_and_ends_no_session(
    api, mailbox, services, store, monkeypatch
):
    token = await reset_link(api, mailbox)
    hash_before = (await store.users.find_one({"email": "mark@example.com"}))["passwordHash"]
    consume = services.sessions.consume_single_use

    async def consume_then_email_changes(*args, **kwargs):
        record = await consume(*args, **kwargs)
        # A concurrent PATCH of the email lands between the token's check and the password write (CWE-640).
        await store.users.update_one({"_id": record["userId"]}, {"$set": {"email": "moved@example.com"}})
        return record

    monkeypatch.setattr(services.sessions, "consume_single_use", consume_then_email_changes)
    response = await api.post(f"/auth/reset-password?token={token}", json={"password": NEW_PASSWORD})
    # The same answer as any dead link: the race tells the caller nothing more.
    assert_error(response, 401, "Invalid or expired token")
    assert (await store.users.find_one({"email": "moved@example.com"}))["passwordHash"] == hash_before
    assert await store.sessions.count_documents({}) == 1  # the registration's session was not ended
    await api.login("moved@example.com", PASSWORD)


async def test_verify_page_is_a_dead_link_when_the_link_was_used_but_the_address_is_unverified(
    api, mailbox, services, store, monkeypatch
):
    await api.register(email="mark@example.com")
    token = link_token((await mailbox.wait_for(1))[0], "verify-email")

    async def database_gone(*args, **kwargs):
        raise AutoReconnect("connection closed")

    # The token is used up, then the write that marks the address verified fails.
    mark_verified = services.users.mark_verified
    monkeypatch.setattr(services.users, "mark_verified", database_gone)
    assert (await api.post(f"/auth/verify-email?token={token}")).code == 503
    monkeypatch.setattr(services.users, "mark_verified", mark_verified)
    assert (await store.users.find_one({"email": "mark@example.com"}))["isEmailVerified"] is False
    page = await api.get(f"/verify-email?token={token}")
    assert page.code == 400 and b"This verification link has expired or is not valid" in page.body
    assert_error(await api.post(f"/auth/verify-email?token={token}"), 401)
