"""Five guards that no test held, found by hand-made semantic mutations: each edit named below is a
real security bug the whole suite let through. Each test here fails when its guard is broken that way (checked
by making the edit, running the test, and restoring the code)."""

import pytest
from bson import ObjectId

from services.counters import digest
from tests.account_security_fixtures import mail_to, sentinel
from tests.helpers import PASSWORD, assert_error, error_fields, sign_up
from tests.users_fixtures import make_admin, stored

pytestmark = pytest.mark.gen_test

ACCESS_CONTROL = "access-control-"


# services/users.py Users.delete: `if actor["_id"] == user["_id"] and actor["role"] != "admin"` (an admin's own
# deletion waved through) would let a stolen admin token alone erase the admin account (CWE-620).
async def test_an_admin_deleting_their_own_account_needs_their_password(api, services, store):
    admin = await make_admin(api, services)
    ada = await sign_up(api)
    before = await stored(services, admin.id)
    for method in (api.post, api.delete):
        assert error_fields(await method(f"/users/{admin.id}", token=admin.token, json={})) == {
            "password": "is required"
        }
        assert_error(
            await method(f"/users/{admin.id}", token=admin.token, json={"password": "a guess at it"}),
            401,
            "Authentication failed",
        )
    assert await stored(services, admin.id) == before
    assert await store.sessions.count_documents({"userId": ObjectId(admin.id)}) == 1
    # Deleting someone else needs none (the contract), and their own with the password works.
    assert (await api.delete(f"/users/{ada.id}", token=admin.token)).code == 204
    assert (await api.delete(f"/users/{admin.id}", token=admin.token, json={"password": PASSWORD})).code == 204
    assert await stored(services, admin.id) is None


class TestSpraying:
    @pytest.fixture
    def settings_env(self):
        return {"LOGIN_ATTEMPTS_PER_ADDRESS": "4", "LOGIN_ATTEMPTS_LIMIT": "10"}

    # services/login_attempts.py LoginAttempts.clear: also resetting the address's own count (digest(address))
    # would let one address try one password on every account for ever, logging in to its own account between
    # tries (password spraying, CWE-307).
    async def test_a_successful_login_does_not_reset_the_address_s_count(self, api, store):
        await sign_up(api, email="sprayer@example.com")
        for victim in ("v1@example.com", "v2@example.com"):
            assert_error(await api.post("/auth/login", json={"email": victim, "password": "Summer2026!"}), 401)
            await api.login("sprayer@example.com", PASSWORD)  # a success, from the same address
        # Four checks from this address this window (two of them successes): the fifth is refused unchecked.
        refused = await api.post("/auth/login", json={"email": "v3@example.com", "password": "Summer2026!"})
        assert_error(refused, 429)
        assert int(refused.headers["Retry-After"]) > 0
        assert_error(await api.post("/auth/login", json={"email": "sprayer@example.com", "password": PASSWORD}), 429)
        (address,) = [
            doc async for doc in store.login_attempts.find({}) if doc["_id"].startswith(digest("127.0.0.1") + ":")
        ]
        assert address["count"] == 6


class TestEmailBudgetKey:
    @pytest.fixture
    def settings_env(self, smtp_env):
        return {**smtp_env, "EMAILS_PER_ADDRESS_PER_HOUR": "2"}

    # services/auth.py Auth._queue_reset: `may_send(email)` (the address as the request spelled it) instead of
    # `may_send(user["email"])` gives every spelling its own budget: one inbox flooded by changing case (CWE-799).
    async def test_the_budget_keys_the_stored_address_whatever_case_the_request_used(self, api, store, mailbox):
        await sign_up(api)  # its verification email: 1 of 2 this hour
        spellings = ("ADA@example.com", "Ada@Example.COM", "  ada@EXAMPLE.com ", "aDa@example.CoM", "ada@example.com")
        for spelling in spellings:
            assert (await api.post("/auth/forgot-password", json={"email": spelling})).code == 204
        await mail_to(mailbox, "ada@example.com", 2)
        await sentinel(api, mailbox, 3)  # Ada's verification and one reset, and the sentinel's: no more
        counts = [doc async for doc in store.send_counts.find({})]
        assert sorted(doc["_id"].split(":")[0] for doc in counts) == sorted(
            [digest("email", "ada@example.com"), digest("email", "sentinel@example.com")]
        )


class TestCorsExactOrigin:
    @pytest.fixture
    def settings_env(self):
        return {"CORS_ORIGINS": "https://app.example.com"}

    # handlers/base.py BaseHandler.cors_allowed: a prefix, suffix, substring or host-only match (say
    # `origin.startswith(listed)`, or CORS_ORIGINS kept as its raw string) would hand the signed-in user's
    # data to pages on other origins (CWE-942).
    @pytest.mark.parametrize(
        "origin",
        [
            "https://app.example.com.evil.net",
            "https://app.example.com:8443",
            "http://app.example.com",
            "https://app.example.co",
            "https://evil.app.example.com",
            "https://app.example.com/",
            "https://APP.example.com.evil.net",
        ],
    )
    async def test_only_the_listed_origin_itself_gets_cors_headers(self, api, origin):
        listed = await api.get("/health", headers={"Origin": "https://app.example.com"})
        assert listed.headers["Access-Control-Allow-Origin"] == "https://app.example.com"  # the control
        answers = [
            await api.get("/users/user", headers={"Origin": origin}),
            await api.request(
                "OPTIONS",
                "/auth/login",
                headers={
                    "Origin": origin,
                    "Access-Control-Request-Method": "POST",
                    "Access-Control-Request-Headers": "content-type",
                },
            ),
        ]
        for answer in answers:
            assert not [name for name in answer.headers if name.lower().startswith(ACCESS_CONTROL)], answer.headers


# services/users.py Users.ensure_admin: returning when the account is already an admin without checking
# ADMIN_PASSWORD against its hash (or not ending its sessions) would keep a leaked admin password, and the
# sessions opened with it, working after the operator changed it and restarted (CWE-262, CWE-613).
async def test_a_new_admin_password_at_restart_retires_the_old_one_and_its_sessions(api, services):
    email, name = "root@example.com", "Site Admin"
    # The start-up bootstrap (services/container.py runs exactly this), over the one store, three start-ups.
    await services.users.ensure_admin(email, "admin password 1", name)
    old = await api.login(email, "admin password 1")
    old_access, old_refresh = old["tokens"]["access"]["token"], old["tokens"]["refresh"]["token"]
    await services.users.ensure_admin(email, "admin password 1", name)  # restarted, same password: nothing changes
    assert (await api.get("/users/user", token=old_access)).code == 200
    await services.users.ensure_admin(email, "admin password 2", name)  # restarted with the new password
    assert_error(await api.post("/auth/login", json={"email": email, "password": "admin password 1"}), 401)
    assert_error(await api.get("/users/user", token=old_access), 401)
    assert_error(await api.post("/auth/refresh-tokens", json={"refreshToken": old_refresh}), 401)
    new = await api.login(email, "admin password 2")
    assert new["data"]["user"]["role"] == "admin"
