"""Guards that once had no test failing when they broke (found by mutation testing: docs/history/mutants.md).

Each test here was checked by breaking its guard by hand and watching it fail; docs/developing/testing.md
lists the one-line mutations. Every attack asserts the refusal AND that nothing changed.
"""

import datetime as dt
import logging
import uuid

import jwt
import pytest
from bson import ObjectId

from tests.conftest import TEST_ENV
from tests.helpers import PASSWORD, assert_error, claims, link_token
from tests.users_fixtures import sign_up, stored

SECRET = TEST_ENV["JWT_SECRET"]
PAST = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
NEW_PASSWORD = "a brand new password"
API_CSP = "default-src 'none'; frame-ancestors 'none'"


def forge(sub: str, sid: str, **extra) -> str:
    """An access token signed with the suite's real secret: only the claims are a lie."""
    now = int(dt.datetime.now(dt.UTC).timestamp())
    payload = {
        "sub": sub,
        "userId": sub,
        "email": "forged@example.com",
        "role": "user",
        "type": "access",
        "sid": sid,
        "iat": now,
        "exp": now + 600,
        "jti": uuid.uuid4().hex,
        **extra,
    }
    return jwt.encode(payload, SECRET, algorithm="HS256")


async def caller(api, token: str):
    """GET /users/user: who the server thinks the token belongs to."""
    return await api.get("/users/user", token=token)


# ---- the error envelope for the unexpected ---------------------------------------------------------


@pytest.mark.gen_test
async def test_an_unexpected_exception_is_a_500_envelope_without_a_traceback(api, services, monkeypatch):
    async def broken(email):
        raise RuntimeError("boom: internal detail that must not leak")

    monkeypatch.setattr(services.auth, "forgot_password", broken)
    response = await api.post("/auth/forgot-password", json={"email": "mark@example.com"})
    body = assert_error(response, 500, "Internal server error")
    assert body == {"status": "Error", "statusCode": 500, "code": 500, "message": "Internal server error"}
    assert response.headers["Content-Type"] == "application/json; charset=UTF-8"
    text = response.body.decode()
    assert "Traceback" not in text and "boom" not in text and "RuntimeError" not in text


@pytest.mark.gen_test
async def test_an_unexpected_exception_is_logged_once_with_its_request_and_traceback(
    api, services, monkeypatch, caplog
):
    async def broken(email):
        raise RuntimeError("boom")

    monkeypatch.setattr(services.auth, "forgot_password", broken)
    caplog.clear()
    response = await api.post("/auth/forgot-password", json={"email": "mark@example.com"})
    assert_error(response, 500, "Internal server error")
    [line] = [r for r in caplog.records if r.name == "accounts.http"]
    assert line.levelno == logging.ERROR
    assert (
        line.getMessage()
        == f"unexpected error request_id={response.headers['X-Request-ID']} POST /auth/forgot-password"
    )
    assert line.exc_info[0] is RuntimeError


@pytest.mark.gen_test
async def test_an_unexpected_exception_while_shutting_down_is_a_503(api, app, services, monkeypatch):
    async def broken(email):
        raise RuntimeError("executor closed")

    monkeypatch.setattr(services.auth, "forgot_password", broken)
    monkeypatch.setattr(app, "shutting_down", True)
    response = await api.post("/auth/forgot-password", json={"email": "mark@example.com"})
    assert_error(response, 503, "Service is shutting down")


# ---- security headers on API answers ---------------------------------------------------------------


@pytest.mark.gen_test
async def test_api_answers_carry_every_security_header_including_csp(api):
    registered = await api.post(
        "/auth/register",
        json={"firstName": "Mark", "lastName": "Essien", "email": "mark@example.com", "password": PASSWORD},
    )
    token = registered.json["tokens"]["access"]["token"]
    answers = {
        "json 201": registered,
        "json 200": await caller(api, token),
        "204": await api.post("/auth/forgot-password", json={"email": "mark@example.com"}),
        "401": await caller(api, "not.a.token"),
        "404": await api.get("/no/such/route"),
        "422": await api.post("/auth/login", json={}),
        "400": await api.post("/auth/login", body=b"{bad", headers={"Content-Type": "application/json"}),
    }
    assert [(name, r.code) for name, r in answers.items()] == [
        ("json 201", 201),
        ("json 200", 200),
        ("204", 204),
        ("401", 401),
        ("404", 404),
        ("422", 422),
        ("400", 400),
    ]
    for name, response in answers.items():
        headers = response.headers
        assert headers.get("Content-Security-Policy") == API_CSP, name
        assert headers.get("X-Content-Type-Options") == "nosniff", name
        assert headers.get("X-Frame-Options") == "DENY", name
        assert headers.get("Referrer-Policy") == "no-referrer", name
        assert headers.get("Cache-Control") == "no-store", name


# ---- access tokens: the session behind them --------------------------------------------------------


@pytest.mark.gen_test
async def test_access_token_stops_working_at_its_session_s_expiry(api, services, store):
    ada = await sign_up(api)
    assert (await caller(api, ada.token)).code == 200
    sid = ObjectId(claims(ada.token)["sid"])
    await store.sessions.update_one({"_id": sid}, {"$set": {"expiresAt": PAST}})
    assert_error(await caller(api, ada.token), 401)
    # A token forged for that expired session (right user, right secret) fares no better.
    assert_error(await caller(api, forge(ada.id, str(sid))), 401)
    assert (await stored(services, ada.id))["email"] == "ada@example.com"


@pytest.mark.gen_test
async def test_a_session_expiring_right_now_is_over(api, services, store):
    ada = await sign_up(api)
    sid = ObjectId(claims(ada.token)["sid"])
    soon = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=60)
    await store.sessions.update_one({"_id": sid}, {"$set": {"expiresAt": soon}})
    assert (await caller(api, ada.token)).code == 200  # a minute left: still valid


@pytest.mark.gen_test
async def test_one_user_s_sub_with_another_user_s_live_sid_is_refused(api, services, store):
    ada = await sign_up(api)
    bob = await sign_up(api, email="bob@example.com", name="Bob Marley")
    ada_sid, bob_sid = claims(ada.token)["sid"], claims(bob.token)["sid"]
    # Both sessions are alive, and each user's own forged-but-correct pairing works: the secret is right.
    assert (await caller(api, forge(ada.id, ada_sid))).json["id"] == ada.id
    for forged in (forge(ada.id, bob_sid), forge(bob.id, ada_sid)):
        assert_error(await caller(api, forged), 401)
    # Nothing changed: both sessions still work for their own users.
    assert (await caller(api, ada.token)).json["id"] == ada.id
    assert (await caller(api, bob.token)).json["id"] == bob.id
    assert await store.sessions.count_documents({}) == 2


@pytest.mark.gen_test
async def test_forged_tokens_with_unknown_or_malformed_ids_are_refused(api, services, store):
    ada = await sign_up(api)
    ada_sid = claims(ada.token)["sid"]
    unknown = str(ObjectId())
    for forged in (
        forge(unknown, ada_sid),
        forge(ada.id, unknown),
        forge("not-an-id", ada_sid),
        forge(ada.id, "not-an-id"),
        forge(ada.id, ada_sid, type="refresh"),
        forge(ada.id, ada_sid, type=None),
    ):
        assert_error(await caller(api, forged), 401)
    # After the user is gone their still-live-looking session document authenticates nothing.
    await store.users.delete_one({"_id": ObjectId(ada.id)})
    assert_error(await caller(api, ada.token), 401)


@pytest.mark.gen_test
async def test_every_required_claim_is_required(api):
    ada = await sign_up(api)
    good = claims(ada.token)
    for missing in ("exp", "iat", "sub", "sid", "jti", "type"):
        token = jwt.encode({k: v for k, v in good.items() if k != missing}, SECRET, algorithm="HS256")
        assert_error(await caller(api, token), 401)
    # Not a bearer scheme, or an empty one.
    for header in ("Basic " + ada.token, "Bearer ", "Bearer    ", ada.token):
        assert_error(await api.get("/users/user", headers={"Authorization": header}), 401)
    assert (await api.get("/users/user", headers={"Authorization": "bearer  " + ada.token})).code == 200


# ---- single-use tokens: kind and email ---------------------------------------------------------------


class TestSingleUseTokens:
    """Reset and verify links, read out of mail delivered to a real SMTP server."""

    @pytest.fixture
    def settings_env(self, smtp_env):
        return smtp_env

    @pytest.mark.gen_test
    async def test_a_refresh_token_is_not_a_reset_token(self, api, services, mailbox):
        ada = await sign_up(api)
        await mailbox.wait_for(1)
        response = await api.post(f"/auth/reset-password?token={ada.refresh}", json={"password": NEW_PASSWORD})
        assert_error(response, 401, "Invalid or expired token")
        # Nothing changed: the old password works, the new one does not, and the refresh token still rotates.
        await api.login(email="ada@example.com", password=PASSWORD)
        assert_error(await api.post("/auth/login", json={"email": "ada@example.com", "password": NEW_PASSWORD}), 401)
        assert (await api.post("/auth/refresh-tokens", json={"refreshToken": ada.refresh})).code == 200

    @pytest.mark.gen_test
    async def test_reset_and_verify_tokens_do_not_stand_in_for_each_other(self, api, services, store, mailbox):
        await sign_up(api)
        verify = link_token((await mailbox.wait_for(1))[0], "verify-email")
        assert (await api.post("/auth/forgot-password", json={"email": "ada@example.com"})).code == 204
        reset = link_token((await mailbox.wait_for(2))[1], "reset-password")
        assert_error(await api.post(f"/auth/reset-password?token={verify}", json={"password": NEW_PASSWORD}), 401)
        assert_error(await api.post(f"/auth/verify-email?token={reset}"), 401)
        user = await store.users.find_one({"email": "ada@example.com"})
        assert user["isEmailVerified"] is False
        await api.login(email="ada@example.com", password=PASSWORD)
        # Both links still work for what they were issued for.
        assert (await api.post(f"/auth/verify-email?token={verify}")).code == 204
        assert (await api.post(f"/auth/reset-password?token={reset}", json={"password": NEW_PASSWORD})).code == 204

    @pytest.mark.gen_test
    async def test_a_verify_link_does_not_verify_an_email_changed_after_it_was_sent(
        self, api, services, store, mailbox
    ):
        ada = await sign_up(api)
        token = link_token((await mailbox.wait_for(1))[0], "verify-email")
        # The address changes behind the link's back (written straight to the store, so this is the verify
        # step's own check and not the voiding of links on a profile update).
        await store.users.update_one({"_id": ObjectId(ada.id)}, {"$set": {"email": "new@example.com"}})
        assert_error(await api.post(f"/auth/verify-email?token={token}"), 401, "Invalid or expired token")
        assert (await stored(services, ada.id))["isEmailVerified"] is False
        assert (await caller(api, ada.token)).json["isEmailVerified"] is False

    @pytest.mark.gen_test
    async def test_an_email_change_racing_the_verify_step_verifies_nothing(
        self, api, services, store, mailbox, monkeypatch
    ):
        # The link is checked against the email when it is consumed, and again when the user is marked
        # verified: an address changed between the two steps (a concurrent update) must not be verified.
        ada = await sign_up(api)
        token = link_token((await mailbox.wait_for(1))[0], "verify-email")
        consume = services.sessions.consume_single_use

        async def consume_then_email_changes(*args, **kwargs):
            record = await consume(*args, **kwargs)
            await store.users.update_one({"_id": ObjectId(ada.id)}, {"$set": {"email": "new@example.com"}})
            return record

        monkeypatch.setattr(services.sessions, "consume_single_use", consume_then_email_changes)
        assert_error(await api.post(f"/auth/verify-email?token={token}"), 401, "Invalid or expired token")
        assert (await stored(services, ada.id))["isEmailVerified"] is False

    @pytest.mark.gen_test
    async def test_a_verify_link_sent_before_a_profile_email_change_verifies_nothing(self, api, services, mailbox):
        ada = await sign_up(api)
        token = link_token((await mailbox.wait_for(1))[0], "verify-email")
        changed = await api.put(
            f"/users/{ada.id}", token=ada.token, json={"email": "new@example.com", "currentPassword": PASSWORD}
        )
        assert changed.code == 200 and changed.json["email"] == "new@example.com", changed
        assert_error(await api.post(f"/auth/verify-email?token={token}"), 401)
        assert (await stored(services, ada.id))["isEmailVerified"] is False

    @pytest.mark.gen_test
    async def test_an_already_verified_user_is_sent_no_verification_email(self, api, services, store, mailbox):
        ada = await sign_up(api)
        token = link_token((await mailbox.wait_for(1))[0], "verify-email")
        assert (await api.post(f"/auth/verify-email?token={token}")).code == 204
        queued = await store.outbox.count_documents({})
        assert (await api.post("/auth/send-verification-email", token=ada.token)).code == 204
        # Nothing queued, no new verify token (the used one is kept, marked used, for the pages); then a
        # mail that must go out arrives alone.
        assert await store.outbox.count_documents({}) == queued
        assert await store.tokens.count_documents({"type": "verify", "usedAt": None}) == 0
        assert (await api.post("/auth/forgot-password", json={"email": "ada@example.com"})).code == 204
        messages = await mailbox.wait_for(2)
        assert [m["Subject"] for m in messages] == [
            "[Accounts] Verify your email address",
            "[Accounts] Reset your password",
        ]
        assert await store.outbox.count_documents({}) == queued + 1
