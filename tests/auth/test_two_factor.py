"""Two-factor sign-in (API.md "Two-factor sign-in"): TOTP with pyotp, recovery codes, login with otp.

Codes are made here as an authenticator app makes them (pyotp, from the secret setup returned). A code is
accepted once: its time step must be later than the last one used, so after enabling with the current
step's code the tests sign in with the next step's (one step of drift is allowed).
"""

import asyncio
import logging
import re
import time

import pyotp
import pytest
from bson import ObjectId

from services.two_factor import recovery_hash
from tests.account_security_fixtures import mail_to, verified_account
from tests.attack_helpers import mail_settled
from tests.helpers import PASSWORD, Held, assert_error, error_fields, link_token, sign_up, text_part
from tests.users_fixtures import make_admin

pytestmark = pytest.mark.gen_test

APP = "https://app.example.com"
NEW_PASSWORD = "a brand new password"
MFA_REQUIRED = {
    "status": "Bad request",
    "statusCode": 401,
    "code": 401,
    "message": "Two-factor code required",
    "mfaRequired": True,
}


@pytest.fixture
def settings_env():
    return {"APP_URL": APP, "APP_NAME": "Task Board", "LOGIN_ATTEMPTS_LIMIT": "4"}


# The server's codes are read off this clock, 10 s into a step: no test waits for a step to turn over, or fails
# when one does between computing a code and the server checking it. (tests/auth/test_attack_found_today.py
# signs in with codes off the real clock.)
NOW = time.time() // 30 * 30 + 10


@pytest.fixture(autouse=True)
def pinned_clock(services, monkeypatch):
    monkeypatch.setattr(services.two_factor, "clock", lambda: NOW)


def code(secret: str, steps: int = 0) -> str:
    """The code an authenticator app shows now (steps=1: the next one, within the allowed drift)."""
    return pyotp.TOTP(secret).at(NOW + steps * 30)


def wrong(right: str) -> str:
    return f"{(int(right) + 1) % 1_000_000:06d}"


async def set_up(api, token) -> str:
    response = await api.post("/auth/2fa/setup", token=token, json={"currentPassword": PASSWORD})
    assert response.code == 200, response
    return response.json["secret"]


async def turn_on(api, token) -> tuple:
    """Set up and enable; returns (secret, recovery codes)."""
    secret = await set_up(api, token)
    response = await api.post("/auth/2fa/enable", token=token, json={"code": code(secret)})
    assert response.code == 200, response
    return secret, response.json["recoveryCodes"]


async def login(api, otp=None, password=PASSWORD, email="ada@example.com"):
    body = {"email": email, "password": password, **({"otp": otp} if otp is not None else {})}
    return await api.post("/auth/login", json=body)


async def test_setup_enable_and_sign_in_with_a_code(api, store):
    ada = await sign_up(api)
    user_id = ObjectId(ada.id)
    assert_error(
        await api.post("/auth/2fa/setup", token=ada.token, json={"currentPassword": "not it at all"}),
        401,
        "Authentication failed",
    )
    assert error_fields(await api.post("/auth/2fa/setup", token=ada.token, json={})) == {
        "currentPassword": "is required"
    }
    assert "totpPending" not in await store.users.find_one({"_id": user_id})

    setup = await api.post("/auth/2fa/setup", token=ada.token, json={"currentPassword": PASSWORD})
    assert setup.code == 200, setup
    secret = setup.json["secret"]
    assert re.fullmatch(r"[A-Z2-7]{32}", secret)
    assert (
        setup.json["otpauthUrl"] == f"otpauth://totp/Task%20Board:ada%40example.com?secret={secret}&issuer=Task%20Board"
    )
    stored = await store.users.find_one({"_id": user_id})
    assert secret not in str(stored) and stored["totpPending"]  # sealed, never the base32 secret
    assert (await api.get("/users/user", token=ada.token)).json["twoFactorEnabled"] is False
    assert (await login(api)).code == 200  # pending: not on until enabled

    right = code(secret)
    assert error_fields(await api.post("/auth/2fa/enable", token=ada.token, json={"code": wrong(right)})) == {
        "code": "is not the current code"
    }
    assert error_fields(await api.post("/auth/2fa/enable", token=ada.token, json={"code": "12345"})) == {
        "code": "must be 6 digits"
    }
    assert (await store.users.find_one({"_id": user_id})) == stored  # refused: nothing changed
    enabled = await api.post("/auth/2fa/enable", token=ada.token, json={"code": right})
    assert enabled.code == 200, enabled
    codes = enabled.json["recoveryCodes"]
    assert len(codes) == len(set(codes)) == 10 and all(re.fullmatch(r"([a-z2-7]{4}-){3}[a-z2-7]{4}", c) for c in codes)
    # 16 random characters each, not 4 groups cut from fewer (overlapping groups: "abcd-bcde-cdef-defg").
    assert not all(c[1:4] == c[5:8] for c in codes)
    stored = await store.users.find_one({"_id": user_id})
    assert stored["twoFactorEnabled"] is True and "totpPending" not in stored and len(stored["recoveryCodes"]) == 10
    for text in (secret, *codes, *(c.replace("-", "") for c in codes)):
        assert text not in str(stored)
    assert (await api.get("/users/user", token=ada.token)).json["twoFactorEnabled"] is True
    assert error_fields(await api.post("/auth/2fa/enable", token=ada.token, json={"code": code(secret, 1)})) == {
        "code": "two-factor sign-in is already on"
    }
    assert error_fields(await api.post("/auth/2fa/setup", token=ada.token, json={"currentPassword": PASSWORD})) == {
        "body": "two-factor sign-in is already on"
    }
    assert (await store.users.find_one({"_id": user_id}))["totpSecret"] == stored["totpSecret"]

    # Without otp: asked for it, and nothing else: no tokens, no cookie, no session.
    sessions = await store.sessions.count_documents({})
    asked = await login(api)
    assert asked.code == 401 and asked.json == MFA_REQUIRED and not asked.headers.get_list("Set-Cookie")
    assert_error(await login(api, otp=wrong(code(secret, 1))), 401, "Authentication failed")
    # A right code with a wrong password: refused, and the code is not used up by it.
    assert_error(await login(api, otp=code(secret, 1), password="not the password"), 401, "Authentication failed")
    assert await store.sessions.count_documents({}) == sessions
    signed_in = await login(api, otp=code(secret, 1))
    assert signed_in.code == 200, signed_in
    assert signed_in.json["tokens"]["access"]["token"] and signed_in.headers.get_list("Set-Cookie")
    assert signed_in.json["data"]["user"]["twoFactorEnabled"] is True
    # The same code again, inside its window: refused.
    assert_error(await login(api, otp=code(secret, 1)), 401, "Authentication failed")
    assert_error(await login(api, otp=right), 401, "Authentication failed")  # an older step too


async def test_a_wrong_or_missing_password_never_says_whether_two_factor_is_on(api):
    ada = await sign_up(api)
    await turn_on(api, ada.token)
    for response in (await login(api, password="not the password"), await login(api, email="nobody@example.com")):
        assert_error(response, 401, "Authentication failed")
        assert "mfaRequired" not in response.json


async def test_recovery_codes_sign_in_once_each(api, store):
    ada = await sign_up(api)
    _, codes = await turn_on(api, ada.token)
    typed = codes[0].upper().replace("-", " ")  # as a person may type it
    assert (await login(api, otp=typed)).code == 200
    assert (await login(api, otp=codes[3].replace("-", ""))).code == 200  # or without the dashes
    assert_error(await login(api, otp=codes[0]), 401, "Authentication failed")
    assert len((await store.users.find_one({"_id": ObjectId(ada.id)}))["recoveryCodes"]) == 8
    assert (await login(api, otp=codes[1])).code == 200
    assert_error(await login(api, otp="aaaa-bbbb-cccc-dddd"), 401, "Authentication failed")


async def test_the_same_code_sent_twice_at_once_signs_in_once(api):
    ada = await sign_up(api)
    secret, codes = await turn_on(api, ada.token)
    for otp in (code(secret, 1), codes[2]):
        answers = await asyncio.gather(login(api, otp=otp), login(api, otp=otp))
        assert sorted(a.code for a in answers) == [200, 401]


async def test_the_login_limiter_counts_wrong_otps(api, store):
    ada = await sign_up(api)
    secret, codes = await turn_on(api, ada.token)
    for _ in range(4):  # LOGIN_ATTEMPTS_LIMIT: the right password each time, a wrong code
        assert_error(await login(api, otp=wrong(code(secret, 1))), 401, "Authentication failed")
    limited = await login(api, otp=codes[0])
    assert_error(limited, 429) and limited.headers["Retry-After"]
    # Refused before any check: the recovery code was not used up.
    assert len((await store.users.find_one({"_id": ObjectId(ada.id)}))["recoveryCodes"]) == 10


async def test_a_right_password_without_its_second_factor_is_not_a_success(api):
    """Only the second factor clears the attempts: a password guessed right cannot reset the count."""
    ada = await sign_up(api)
    secret, _ = await turn_on(api, ada.token)
    for _ in range(4):
        assert (await login(api)).json == MFA_REQUIRED
    assert_error(await login(api, otp=code(secret, 1)), 429)


async def test_the_setup_password_check_is_counted_like_a_login(api, store):
    ada = await sign_up(api)
    for _ in range(4):
        assert_error(await api.post("/auth/2fa/setup", token=ada.token, json={"currentPassword": "wrong one!"}), 401)
    assert_error(await api.post("/auth/2fa/setup", token=ada.token, json={"currentPassword": PASSWORD}), 429)
    assert "totpPending" not in await store.users.find_one({"_id": ObjectId(ada.id)})
    # The same allowance as the login form's, from this address: no fresh guesses there either.
    sessions = await store.sessions.count_documents({})
    assert_error(await login(api), 429)
    assert await store.sessions.count_documents({}) == sessions


async def test_a_new_setup_replaces_a_pending_one(api, store):
    ada = await sign_up(api)
    first = await set_up(api, ada.token)
    second = await set_up(api, ada.token)
    assert first != second
    assert error_fields(await api.post("/auth/2fa/enable", token=ada.token, json={"code": code(first)})) == {
        "code": "is not the current code"
    } or code(first) == code(second)
    assert (await api.post("/auth/2fa/enable", token=ada.token, json={"code": code(second)})).code == 200


async def test_enable_without_setup_is_a_422(api, store):
    ada = await sign_up(api)
    assert error_fields(await api.post("/auth/2fa/enable", token=ada.token, json={"code": "123456"})) == {
        "code": "set up two-factor sign-in first"
    }
    assert "twoFactorEnabled" not in await store.users.find_one({"_id": ObjectId(ada.id)})


async def test_enable_and_disable_end_the_other_sessions_and_keep_the_callers(api, store):
    ada = await sign_up(api)
    other = (await login(api)).json["tokens"]
    secret, codes = await turn_on(api, ada.token)
    assert_error(await api.get("/users/user", token=other["access"]["token"]), 401)
    assert_error(await api.post("/auth/refresh-tokens", json={"refreshToken": other["refresh"]["token"]}), 401)
    assert (await api.get("/users/user", token=ada.token)).code == 200
    assert (await api.post("/auth/refresh-tokens", json={"refreshToken": ada.refresh})).code == 200
    laptop = (await login(api, otp=codes[0])).json["tokens"]
    phone = (await login(api, otp=codes[1])).json["tokens"]

    disable = {"currentPassword": PASSWORD, "code": codes[2]}
    assert_error(
        await api.post(
            "/auth/2fa/disable", token=phone["access"]["token"], json={**disable, "currentPassword": "not the password"}
        ),
        401,
    )
    assert error_fields(
        await api.post(
            "/auth/2fa/disable", token=phone["access"]["token"], json={**disable, "code": "aaaa-bbbb-cccc-dddd"}
        )
    ) == {"code": "is not a current code or an unused recovery code"}
    assert error_fields(
        await api.post(
            "/auth/2fa/disable", token=phone["access"]["token"], json={**disable, "code": wrong(code(secret, 1))}
        )
    ) == {"code": "is not a current code or an unused recovery code"}
    stored = await store.users.find_one({"_id": ObjectId(ada.id)})
    assert stored["twoFactorEnabled"] is True and len(stored["recoveryCodes"]) == 8
    assert (await api.get("/users/user", token=laptop["access"]["token"])).code == 200  # refusals end nothing

    assert (await api.post("/auth/2fa/disable", token=phone["access"]["token"], json=disable)).code == 204
    stored = await store.users.find_one({"_id": ObjectId(ada.id)})
    assert stored["twoFactorEnabled"] is False
    assert not {"totpSecret", "totpLastStep", "recoveryCodes", "totpPending"} & set(stored)
    assert_error(await api.get("/users/user", token=laptop["access"]["token"]), 401)
    assert (await api.get("/users/user", token=phone["access"]["token"])).json["twoFactorEnabled"] is False
    assert (await login(api)).code == 200
    assert error_fields(await api.post("/auth/2fa/disable", token=phone["access"]["token"], json=disable)) == {
        "code": "two-factor sign-in is not on"
    }


async def test_disable_with_a_current_code(api, store):
    ada = await sign_up(api)
    secret, _ = await turn_on(api, ada.token)
    response = await api.post(
        "/auth/2fa/disable", token=ada.token, json={"currentPassword": PASSWORD, "code": code(secret, 1)}
    )
    assert response.code == 204, response
    assert (await store.users.find_one({"_id": ObjectId(ada.id)}))["twoFactorEnabled"] is False


async def test_wrong_codes_on_disable_are_counted_even_with_the_right_password(api, store):
    ada = await sign_up(api)
    _, codes = await turn_on(api, ada.token)
    for _ in range(4):
        response = await api.post(
            "/auth/2fa/disable", token=ada.token, json={"currentPassword": PASSWORD, "code": "aaaa-bbbb-cccc-dddd"}
        )
        assert response.code == 422
    assert_error(
        await api.post("/auth/2fa/disable", token=ada.token, json={"currentPassword": PASSWORD, "code": codes[0]}), 429
    )
    assert (await store.users.find_one({"_id": ObjectId(ada.id)}))["twoFactorEnabled"] is True


async def test_an_admin_may_turn_it_off_for_someone_else_and_nobody_may_turn_it_on(api, services, store):
    ada = await sign_up(api)
    admin = await make_admin(api, services)
    await turn_on(api, ada.token)
    before = await store.users.find_one({"_id": ObjectId(ada.id)})
    assert_error(await api.put(f"/users/{ada.id}", token=ada.token, json={"twoFactorEnabled": False}), 403)
    assert error_fields(await api.put(f"/users/{ada.id}", token=admin.token, json={"twoFactorEnabled": True})) == {
        "twoFactorEnabled": "must be false: it is turned on with /auth/2fa/setup and /auth/2fa/enable"
    }
    assert await store.users.find_one({"_id": ObjectId(ada.id)}) == before
    assert_error(await api.put(f"/users/{admin.id}", token=admin.token, json={"twoFactorEnabled": False}), 403)

    turned_off = await api.put(f"/users/{ada.id}", token=admin.token, json={"twoFactorEnabled": False})
    assert turned_off.code == 200 and turned_off.json["twoFactorEnabled"] is False
    stored = await store.users.find_one({"_id": ObjectId(ada.id)})
    assert not {"totpSecret", "totpLastStep", "recoveryCodes", "totpPending"} & set(stored)
    assert stored["sessionEpoch"] == before["sessionEpoch"] + 1
    assert_error(await api.get("/users/user", token=ada.token), 401)  # her sessions end with it
    assert (await login(api)).code == 200
    assert error_fields(await api.put(f"/users/{ada.id}", token=admin.token, json={"twoFactorEnabled": False})) == {
        "body": "must change at least one field"
    }


async def test_a_sealed_secret_copied_to_another_account_does_not_open(api, store):
    ada = await sign_up(api)
    bob = await sign_up(api, email="bob@example.com")
    secret, _ = await turn_on(api, ada.token)
    stolen = await store.users.find_one({"_id": ObjectId(ada.id)})
    await store.users.update_one(
        {"_id": ObjectId(bob.id)},
        {"$set": {"twoFactorEnabled": True, "totpSecret": stolen["totpSecret"], "recoveryCodes": []}},
    )
    assert_error(await login(api, email="bob@example.com", otp=code(secret, 1)), 401, "Authentication failed")


async def test_browsers_get_the_cookie_only_once_the_code_passed(api):
    ada = await sign_up(api)
    secret, _ = await turn_on(api, ada.token)
    headers = {"Origin": APP}
    response = await api.post("/auth/login", json={"email": "ada@example.com", "password": PASSWORD}, headers=headers)
    assert response.code == 401 and not response.headers.get_list("Set-Cookie")
    response = await api.post(
        "/auth/login", json={"email": "ada@example.com", "password": PASSWORD, "otp": code(secret, 1)}, headers=headers
    )
    assert response.code == 200 and response.headers.get_list("Set-Cookie")


class TestReset:
    @pytest.fixture
    def settings_env(self, smtp_env):
        return smtp_env

    async def test_a_password_reset_leaves_two_factor_on(self, api, services, mailbox):
        ada = await sign_up(api)
        secret, _ = await turn_on(api, ada.token)
        assert (await api.post("/auth/forgot-password", json={"email": "ada@example.com"})).code == 204
        token = link_token((await mailbox.wait_for(2))[1], "reset-password")
        assert (await api.post(f"/auth/reset-password?token={token}", json={"password": NEW_PASSWORD})).code == 204
        assert (await login(api, password=NEW_PASSWORD)).json == MFA_REQUIRED
        assert (await login(api, password=NEW_PASSWORD, otp=code(secret, 1))).code == 200
        await mail_settled(services)


async def test_turning_it_on_or_off_ends_the_other_sessions_even_when_the_cleanup_fails(api, services, monkeypatch):
    from pymongo.errors import NetworkTimeout

    def network_timeout(*args, **kwargs):
        raise NetworkTimeout("localhost:27017: timed out (configured timeouts: timeoutMS: 5000.0ms)")

    ada = await sign_up(api)
    secret = await set_up(api, ada.token)
    other = (await login(api)).json["tokens"]
    monkeypatch.setattr(services.sessions.sessions, "delete_many", network_timeout)
    assert (await api.post("/auth/2fa/enable", token=ada.token, json={"code": code(secret)})).code == 200
    assert_error(await api.get("/users/user", token=other["access"]["token"]), 401)
    assert_error(await api.post("/auth/refresh-tokens", json={"refreshToken": other["refresh"]["token"]}), 401)
    monkeypatch.undo()
    other = (await login(api, otp=code(secret, 1))).json["tokens"]
    monkeypatch.setattr(services.sessions.sessions, "delete_many", network_timeout)
    turned_off = await api.post(
        "/auth/2fa/disable", token=ada.token, json={"currentPassword": PASSWORD, "code": "aaaa-bbbb-cccc-dddd"}
    )
    assert turned_off.code == 422  # a wrong code ends nothing
    assert (await api.get("/users/user", token=other["access"]["token"])).code == 200
    codes_left = await api.post(
        "/auth/2fa/disable", token=other["access"]["token"], json={"currentPassword": PASSWORD, "code": code(secret, 1)}
    )
    assert codes_left.code == 422  # that code was used by the login: refused
    admin = await make_admin(api, services)
    assert (await api.put(f"/users/{ada.id}", token=admin.token, json={"twoFactorEnabled": False})).code == 200
    for token in (ada.token, other["access"]["token"]):
        assert_error(await api.get("/users/user", token=token), 401)


class TestNotices:
    """API.md "Notices": two-factor turned on or off is told to the account's verified address, whoever did it."""

    @pytest.fixture
    def settings_env(self, smtp_env):
        return {**smtp_env, "APP_NAME": "Task Board"}

    async def test_on_off_and_an_admins_turn_off_are_each_told_to_the_owner(self, api, services, mailbox):
        ada = await verified_account(api, mailbox)  # mail 1: the verification
        admin = await make_admin(api, services)
        secret, _ = await turn_on(api, ada.token)
        on = (await mail_to(mailbox, "ada@example.com", 2))[1]
        assert on["Subject"] == "[Task Board] Two-factor sign-in was turned on"
        assert on["Auto-Submitted"] == "auto-generated"
        response = await api.post(
            "/auth/2fa/disable", token=ada.token, json={"currentPassword": PASSWORD, "code": code(secret, 1)}
        )
        assert response.code == 204, response
        off = (await mail_to(mailbox, "ada@example.com", 3))[2]
        assert off["Subject"] == "[Task Board] Two-factor sign-in was turned off"
        await turn_on(api, ada.token)  # mail 4
        turned_off = await api.put(f"/users/{ada.id}", token=admin.token, json={"twoFactorEnabled": False})
        assert turned_off.code == 200, turned_off
        by_admin = (await mail_to(mailbox, "ada@example.com", 5))[4]
        assert by_admin["Subject"] == "[Task Board] Two-factor sign-in was turned off"
        assert "choose a new password" in text_part(by_admin)
        await mail_settled(services)


# "What single edit here would be a security bug?" (tools/guard_mutations.py names each test's mutation).


def code_at(secret: str, step: int) -> str:
    """The code of one time step, as an authenticator app shows it during that step."""
    return pyotp.TOTP(secret).generate_otp(step)


async def test_a_code_is_refused_the_second_time_and_an_older_one_after_it(api, store):
    """Replay (CWE-294): only a step later than the last one used passes, so neither the same code again nor an
    older one (seen over a shoulder a minute ago) signs in, and a refused code changes nothing."""
    ada = await sign_up(api)
    user_id = ObjectId(ada.id)
    secret = await set_up(api, ada.token)
    now = int(NOW // 30)
    assert (await api.post("/auth/2fa/enable", token=ada.token, json={"code": code_at(secret, now - 1)})).code == 200
    assert (await store.users.find_one({"_id": user_id}))["totpLastStep"] == now - 1
    assert (await login(api, otp=code_at(secret, now))).code == 200
    stored = await store.users.find_one({"_id": user_id})
    assert stored["totpLastStep"] == now
    sessions = await store.sessions.count_documents({})
    for used_or_older in (code_at(secret, now), code_at(secret, now - 1)):
        assert_error(await login(api, otp=used_or_older), 401, "Authentication failed")
    # (Each refusal counts against LOGIN_ATTEMPTS_LIMIT, 4 here: three in all.)
    disabled = await api.post(
        "/auth/2fa/disable", token=ada.token, json={"currentPassword": PASSWORD, "code": code_at(secret, now)}
    )
    assert error_fields(disabled) == {"code": "is not a current code or an unused recovery code"}
    assert await store.users.find_one({"_id": user_id}) == stored
    assert await store.sessions.count_documents({}) == sessions
    assert (await login(api, otp=code_at(secret, now + 1))).code == 200  # the next step still does
    assert (await store.users.find_one({"_id": user_id}))["totpLastStep"] == now + 1


async def test_codes_further_than_one_step_away_are_refused(api, store):
    """One step of drift either way, not more: a wider window multiplies what a guess or an old code is worth."""
    ada = await sign_up(api)
    user_id = ObjectId(ada.id)
    secret = await set_up(api, ada.token)
    now = int(NOW // 30)
    near = {code_at(secret, step) for step in (now - 1, now, now + 1)}
    far = [c for c in (code_at(secret, now - 2), code_at(secret, now + 2), code_at(secret, now + 5)) if c not in near]
    assert far  # (three codes all equal to a near one: a one in 10^12 chance)
    pending = await store.users.find_one({"_id": user_id})
    for otp in far:
        refused = await api.post("/auth/2fa/enable", token=ada.token, json={"code": otp})
        assert error_fields(refused) == {"code": "is not the current code"}
    assert await store.users.find_one({"_id": user_id}) == pending
    assert (await api.post("/auth/2fa/enable", token=ada.token, json={"code": code_at(secret, now - 1)})).code == 200
    stored = await store.users.find_one({"_id": user_id})
    sessions = await store.sessions.count_documents({})
    for otp in (c for c in (code_at(secret, now + 2), code_at(secret, now + 5)) if c not in near):
        assert_error(await login(api, otp=otp), 401, "Authentication failed")
    assert await store.users.find_one({"_id": user_id}) == stored  # no step used up
    assert await store.sessions.count_documents({}) == sessions
    assert (await login(api, otp=code_at(secret, now + 1))).code == 200  # one step ahead: a phone a little fast


async def test_a_wrong_or_missing_otp_opens_no_session(api, store):
    """Tokens only once the second factor passed: a right password alone leaves no session, token or cookie."""
    ada = await sign_up(api)
    secret, codes = await turn_on(api, ada.token)
    sessions, tokens = await store.sessions.count_documents({}), await store.tokens.count_documents({})
    before = await store.users.find_one({"_id": ObjectId(ada.id)})
    asked = await login(api)
    assert asked.json == MFA_REQUIRED and not asked.headers.get_list("Set-Cookie")
    for otp in (wrong(code(secret, 1)), "aaaa-bbbb-cccc-dddd"):  # with the MFA answer, 3 of LOGIN_ATTEMPTS_LIMIT
        refused = await login(api, otp=otp)
        assert_error(refused, 401, "Authentication failed")
        assert "tokens" not in refused.json and not refused.headers.get_list("Set-Cookie")
    assert await store.sessions.count_documents({}) == sessions
    assert await store.tokens.count_documents({}) == tokens
    assert len((await store.users.find_one({"_id": ObjectId(ada.id)}))["recoveryCodes"]) == len(before["recoveryCodes"])
    signed_in = await login(api, otp=codes[0])
    assert signed_in.code == 200 and await store.sessions.count_documents({}) == sessions + 1


async def test_nobody_turns_it_on_through_the_user_update(api, services, store):
    """An admin's PUT/PATCH may only turn it off: `true` is a 422 whether the user has it on or off, and
    changes nothing (turning it on needs the user's own authenticator, CWE-308)."""
    ada = await sign_up(api)
    bob = await sign_up(api, email="bob@example.com")
    admin = await make_admin(api, services)
    await turn_on(api, ada.token)
    message = {"twoFactorEnabled": "must be false: it is turned on with /auth/2fa/setup and /auth/2fa/enable"}
    for account in (ada, bob):
        before = await store.users.find_one({"_id": ObjectId(account.id)})
        for method in (api.put, api.patch):
            assert (
                error_fields(await method(f"/users/{account.id}", token=admin.token, json={"twoFactorEnabled": True}))
                == message
            )
        assert (
            error_fields(await api.put(f"/users/{account.id}", token=account.token, json={"twoFactorEnabled": True}))
            == message
        )
        assert await store.users.find_one({"_id": ObjectId(account.id)}) == before
    assert (await api.get("/users/user", token=ada.token)).json["twoFactorEnabled"] is True
    assert (await api.get("/users/user", token=bob.token)).json["twoFactorEnabled"] is False


async def test_an_admin_turns_off_their_own_only_with_a_code(api, services, store):
    """The admin exception is for someone else who lost their device: an admin's own second factor goes only
    through /auth/2fa/disable, so a stolen admin session cannot remove it (CWE-308)."""
    admin = await make_admin(api, services)
    user_id = ObjectId(admin.id)
    secret, codes = await turn_on(api, admin.token)
    laptop = (await login(api, email="admin@example.com", otp=codes[0])).json["tokens"]["access"]["token"]
    before = await store.users.find_one({"_id": user_id})
    for method in (api.put, api.patch):
        refused = await method(f"/users/{admin.id}", token=admin.token, json={"twoFactorEnabled": False})
        assert_error(refused, 403, "Only an admin may turn off someone else's two-factor sign-in")
    assert await store.users.find_one({"_id": user_id}) == before
    assert (await api.get("/users/user", token=laptop)).json["twoFactorEnabled"] is True  # nothing ended
    assert (await login(api, email="admin@example.com")).json == MFA_REQUIRED
    turned_off = await api.post(
        "/auth/2fa/disable", token=admin.token, json={"currentPassword": PASSWORD, "code": codes[1]}
    )
    assert turned_off.code == 204
    assert (await store.users.find_one({"_id": user_id}))["twoFactorEnabled"] is False


async def test_turning_it_on_keeps_only_the_callers_own_pair(api, store):
    """The caller keeps the very pair it enabled with; an older pair of the same session (a copy taken before
    a refresh) ends with every other session (CWE-613)."""
    ada = await sign_up(api)
    older = {"access": ada.token, "refresh": ada.refresh}
    rotated = await api.post("/auth/refresh-tokens", json={"refreshToken": ada.refresh})
    assert rotated.code == 200
    mine = {"access": rotated.json["access"]["token"], "refresh": rotated.json["refresh"]["token"]}
    assert (await api.get("/users/user", token=older["access"])).code == 200  # live until the change
    secret = await set_up(api, mine["access"])
    assert (await api.post("/auth/2fa/enable", token=mine["access"], json={"code": code(secret)})).code == 200
    assert_error(await api.get("/users/user", token=older["access"]), 401)
    assert_error(
        await api.post("/auth/refresh-tokens", json={"refreshToken": older["refresh"]}), 401, "Invalid refresh token"
    )
    assert (await api.get("/users/user", token=mine["access"])).json["twoFactorEnabled"] is True
    renewed = await api.post("/auth/refresh-tokens", json={"refreshToken": mine["refresh"]})
    assert renewed.code == 200
    assert await store.sessions.count_documents({"userId": ObjectId(ada.id)}) == 1


async def test_turning_it_off_ends_the_other_sessions_even_when_the_cleanup_fails(api, services, store, monkeypatch):
    """The epoch moves in the very write that turns it off: with the deletion of the other sessions failing,
    they are ended all the same (only the caller's own session is kept)."""
    from pymongo.errors import NetworkTimeout

    def network_timeout(*args, **kwargs):
        raise NetworkTimeout("localhost:27017: timed out (configured timeouts: timeoutMS: 5000.0ms)")

    ada = await sign_up(api)
    _, codes = await turn_on(api, ada.token)
    other = (await login(api, otp=codes[0])).json["tokens"]
    before = await store.users.find_one({"_id": ObjectId(ada.id)})
    await asyncio.sleep(0.002)  # so the write's updatedAt is a later millisecond
    monkeypatch.setattr(services.sessions.sessions, "delete_many", network_timeout)
    turned_off = await api.post(
        "/auth/2fa/disable", token=ada.token, json={"currentPassword": PASSWORD, "code": codes[1]}
    )
    assert turned_off.code == 204, turned_off
    monkeypatch.undo()
    stored = await store.users.find_one({"_id": ObjectId(ada.id)})
    assert stored["twoFactorEnabled"] is False and stored["sessionEpoch"] == before["sessionEpoch"] + 1
    assert stored["updatedAt"] > before["updatedAt"]
    assert await store.sessions.count_documents({"userId": ObjectId(ada.id)}) == 2  # the cleanup did fail
    assert_error(await api.get("/users/user", token=other["access"]["token"]), 401)
    assert_error(await api.post("/auth/refresh-tokens", json={"refreshToken": other["refresh"]["token"]}), 401)
    assert (await api.get("/users/user", token=ada.token)).json["twoFactorEnabled"] is False
    assert (await api.post("/auth/refresh-tokens", json={"refreshToken": ada.refresh})).code == 200


async def test_turning_it_off_keeps_only_the_callers_own_pair(api, store):
    """As turning it on: the pair that turned it off is kept, an older pair of the same session ends."""
    ada = await sign_up(api)
    _, codes = await turn_on(api, ada.token)
    older = {"access": ada.token, "refresh": ada.refresh}
    rotated = await api.post("/auth/refresh-tokens", json={"refreshToken": ada.refresh})
    assert rotated.code == 200
    mine = {"access": rotated.json["access"]["token"], "refresh": rotated.json["refresh"]["token"]}
    assert (await api.get("/users/user", token=older["access"])).code == 200  # live until the change
    turned_off = await api.post(
        "/auth/2fa/disable", token=mine["access"], json={"currentPassword": PASSWORD, "code": codes[0]}
    )
    assert turned_off.code == 204, turned_off
    assert_error(await api.get("/users/user", token=older["access"]), 401)
    assert (await api.get("/users/user", token=mine["access"])).json["twoFactorEnabled"] is False
    assert (await api.post("/auth/refresh-tokens", json={"refreshToken": mine["refresh"]})).code == 200
    assert await store.sessions.count_documents({"userId": ObjectId(ada.id)}) == 1


async def test_wrong_codes_on_disable_count_against_logins_from_that_address(api, store):
    """The disable check is a login attempt of this account from this client address: guesses there use up
    the same allowance as guesses at the login form (CWE-307)."""
    ada = await sign_up(api)
    secret, codes = await turn_on(api, ada.token)
    for _ in range(4):  # LOGIN_ATTEMPTS_LIMIT
        response = await api.post(
            "/auth/2fa/disable", token=ada.token, json={"currentPassword": PASSWORD, "code": "aaaa-bbbb-cccc-dddd"}
        )
        assert error_fields(response) == {"code": "is not a current code or an unused recovery code"}
    sessions = await store.sessions.count_documents({})
    limited = await login(api, otp=codes[0])
    assert_error(limited, 429) and limited.headers["Retry-After"]
    assert await store.sessions.count_documents({}) == sessions
    assert len((await store.users.find_one({"_id": ObjectId(ada.id)}))["recoveryCodes"]) == 10


async def test_each_step_moves_updated_at(api, store):
    ada = await sign_up(api)
    user_id = ObjectId(ada.id)
    seen = [(await store.users.find_one({"_id": user_id}))["updatedAt"]]

    async def moved():
        now = (await store.users.find_one({"_id": user_id}))["updatedAt"]
        assert now > seen[-1]
        seen.append(now)
        await asyncio.sleep(0.002)  # the next write is a later millisecond

    await asyncio.sleep(0.002)
    secret = await set_up(api, ada.token)
    await moved()
    enabled = await api.post("/auth/2fa/enable", token=ada.token, json={"code": code(secret)})
    assert enabled.code == 200
    await moved()
    assert (
        await api.post(
            "/auth/2fa/disable",
            token=ada.token,
            json={"currentPassword": PASSWORD, "code": enabled.json["recoveryCodes"][0]},
        )
    ).code == 204
    await moved()


async def test_it_can_be_turned_on_again_after_being_turned_off(api, services, store):
    """Turned off by its owner or by an admin (the stored flag is then false, not absent): set up again, enabled
    again, and the login asks for the new secret's codes."""
    ada = await sign_up(api)
    admin = await make_admin(api, services)
    _, codes = await turn_on(api, ada.token)
    assert (
        await api.post("/auth/2fa/disable", token=ada.token, json={"currentPassword": PASSWORD, "code": codes[0]})
    ).code == 204
    assert (await store.users.find_one({"_id": ObjectId(ada.id)}))["twoFactorEnabled"] is False
    secret, _ = await turn_on(api, ada.token)
    assert (await login(api)).json == MFA_REQUIRED
    assert (await api.put(f"/users/{ada.id}", token=admin.token, json={"twoFactorEnabled": False})).code == 200
    mine = (await login(api)).json["tokens"]["access"]["token"]  # (her sessions ended with the admin's change)
    secret, codes = await turn_on(api, mine)
    stored = await store.users.find_one({"email": "ada@example.com"})
    assert stored["twoFactorEnabled"] is True and len(stored["recoveryCodes"]) == 10
    assert (await login(api, otp=code(secret, 1))).code == 200


async def test_two_enables_at_once_turn_it_on_once(api, services, store):
    """Of two enables of the same pending secret, the second write finds it gone: one set of recovery codes
    is stored, the one that was shown."""
    ada = await sign_up(api)
    secret = await set_up(api, ada.token)
    held = Held(services.two_factor.collection, "find_one_and_update")
    services.two_factor.collection = held
    try:
        first = asyncio.ensure_future(api.post("/auth/2fa/enable", token=ada.token, json={"code": code(secret)}))
        await asyncio.wait_for(held.reached.wait(), 10)
        second = await api.post("/auth/2fa/enable", token=ada.token, json={"code": code(secret)})
        held.released.set()
        first = await first
    finally:
        services.two_factor.collection = held.collection
    assert second.code == 200, second
    assert error_fields(first) == {"code": "set up two-factor sign-in first"}
    stored = await store.users.find_one({"_id": ObjectId(ada.id)})
    assert stored["twoFactorEnabled"] is True and stored["sessionEpoch"] == 1
    assert sorted(stored["recoveryCodes"]) == sorted(recovery_hash(c) for c in second.json["recoveryCodes"])


async def test_the_access_log_names_the_user_once_the_code_passed(api, caplog):
    caplog.set_level(logging.INFO, logger="accounts.access")
    ada = await sign_up(api)
    secret, _ = await turn_on(api, ada.token)
    caplog.clear()
    assert (await login(api)).json == MFA_REQUIRED
    assert (await login(api, otp=code(secret, 1))).code == 200
    logins = [r.fields for r in caplog.records if r.name == "accounts.access" and r.fields["path"] == "/auth/login"]
    assert [(f["status"], f["userId"]) for f in logins] == [(401, None), (200, ada.id)]


async def test_the_secret_is_stored_in_the_documented_format(api, services, store):
    """The format at rest (docs/using/two-factor.md) is a contract with every secret already stored: AES-256-GCM under
    HKDF-SHA256 of the key material with its own `info` (never the JWT key itself, CWE-323), a 12-byte nonce
    first, the user id as associated data. Opened here with the library directly, not through the service."""
    import base64

    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    ada = await sign_up(api)
    secret = await set_up(api, ada.token)
    material = (services.settings.totp_encryption_key or services.settings.jwt_secret).encode()
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"accounts/two-factor-secret/v1").derive(material)
    raw = base64.urlsafe_b64decode((await store.users.find_one({"_id": ObjectId(ada.id)}))["totpPending"])
    assert AESGCM(key).decrypt(raw[:12], raw[12:], ObjectId(ada.id).binary).decode() == secret


async def test_recovery_codes_are_stored_in_the_documented_format(api, store):
    """Also a contract with the codes already stored (docs/using/two-factor.md): the SHA-256 hex digest of the code in
    lower case without its dashes. Another form would void every code users keep on paper."""
    import hashlib

    ada = await sign_up(api)
    _, codes = await turn_on(api, ada.token)
    stored = (await store.users.find_one({"_id": ObjectId(ada.id)}))["recoveryCodes"]
    assert stored == [hashlib.sha256(c.replace("-", "").lower().encode()).hexdigest() for c in codes]
