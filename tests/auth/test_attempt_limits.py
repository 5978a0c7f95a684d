"""Found by the red-team pass (docs/history/attack-findings.md): password re-checks, logins from one address and emails
to one inbox are all limited.

Before: change-password, `currentPassword` and self-delete could guess a password without limit; random
emails from one address made bcrypt work without bound; forgot-password and send-verification-email
sent 60 emails to one inbox in 10 s.
"""

import pytest

from services.counters import digest
from settings import Settings, SettingsError
from tests.account_security_fixtures import mail_to, sentinel
from tests.helpers import PASSWORD, assert_error, link_token
from tests.users_fixtures import sign_up, stored

WRONG = "not the password"


def counted_bcrypt(services) -> list:
    """Record each password check the service makes (it still makes it)."""
    calls = []
    verify = services.passwords.verify

    async def counting(password, hashed):
        calls.append(1)
        return await verify(password, hashed)

    services.passwords.verify = counting
    return calls


def assert_limited(response):
    assert_error(response, 429, "Too many login attempts, try again later")
    assert 1 <= int(response.headers["Retry-After"]) <= 900


class TestPasswordRechecks:
    @pytest.fixture
    def settings_env(self):
        return {"LOGIN_ATTEMPTS_LIMIT": "3"}

    @pytest.mark.gen_test(timeout=30)
    async def test_each_recheck_is_limited_like_a_login(self, api, services):
        ada = await sign_up(api)
        change = {"email": "ada@example.com", "password": WRONG, "newPassword": "a new password 123"}
        for _ in range(3):
            assert_error(await api.post("/auth/change-password", token=ada.token, json=change), 401)
        # Past the limit even the right password is refused, and no bcrypt work is done.
        calls = counted_bcrypt(services)
        before = await stored(services, ada.id)
        assert_limited(await api.post("/auth/change-password", token=ada.token, json={**change, "password": PASSWORD}))
        assert_limited(
            await api.put(
                f"/users/{ada.id}",
                token=ada.token,
                json={"password": "a new password 123", "currentPassword": PASSWORD},
            )
        )
        assert_limited(await api.delete(f"/users/{ada.id}", token=ada.token, json={"password": PASSWORD}))
        assert_limited(await api.post("/auth/login", json={"email": "ada@example.com", "password": PASSWORD}))
        assert calls == [] and await stored(services, ada.id) == before

    @pytest.mark.gen_test(timeout=30)
    async def test_the_three_rechecks_share_the_login_counter(self, api, services):
        ada = await sign_up(api)
        assert_error(
            await api.post(
                "/auth/change-password",
                token=ada.token,
                json={"email": "ada@example.com", "password": WRONG, "newPassword": "a new password 123"},
            ),
            401,
        )
        assert_error(
            await api.patch(
                f"/users/{ada.id}", token=ada.token, json={"email": "ada2@example.com", "currentPassword": WRONG}
            ),
            401,
        )
        assert_error(await api.post(f"/users/{ada.id}", token=ada.token, json={"password": WRONG}), 401)
        assert_limited(await api.post("/auth/login", json={"email": "ada@example.com", "password": PASSWORD}))
        assert (await stored(services, ada.id))["email"] == "ada@example.com"

    @pytest.mark.gen_test(timeout=30)
    async def test_a_right_recheck_clears_the_count_like_a_login(self, api):
        ada = await sign_up(api)
        for _ in range(2):
            assert_error(await api.post(f"/users/{ada.id}", token=ada.token, json={"password": WRONG}), 401)
        response = await api.patch(
            f"/users/{ada.id}", token=ada.token, json={"password": "a new password 123", "currentPassword": PASSWORD}
        )
        assert response.code == 200
        for _ in range(3):
            assert_error(await api.post(f"/users/{ada.id}", token=ada.token, json={"password": WRONG}), 401)


class TestPerAddress:
    @pytest.fixture
    def settings_env(self):
        return {"LOGIN_ATTEMPTS_PER_ADDRESS": "5", "LOGIN_ATTEMPTS_LIMIT": "3", "TRUST_PROXY": "true"}

    @pytest.mark.gen_test(timeout=30)
    async def test_random_emails_from_one_address_stop_before_bcrypt(self, api, services):
        await sign_up(api)
        calls = counted_bcrypt(services)
        here = {"X-Real-IP": "203.0.113.7"}
        for n in range(5):
            response = await api.post(
                "/auth/login", json={"email": f"guess{n}@example.com", "password": WRONG}, headers=here
            )
            assert_error(response, 401)
        assert len(calls) == 5
        assert_limited(
            await api.post("/auth/login", json={"email": "guess9@example.com", "password": WRONG}, headers=here)
        )
        # The right password of a real account from that address waits too; nothing was checked.
        assert_limited(
            await api.post("/auth/login", json={"email": "ada@example.com", "password": PASSWORD}, headers=here)
        )
        assert len(calls) == 5
        # Another address is not affected.
        await api.login("ada@example.com", PASSWORD, headers={"X-Real-IP": "198.51.100.1"})

    @pytest.mark.gen_test(timeout=30)
    async def test_an_email_spelled_like_a_counter_s_label_is_counted_once_per_attempt(self, api):
        # The login schema takes any string as the email. Were the keys built from the bare parts, the pair
        # ("address", A) would be address A's own counter: each attempt counted twice, the third one refused.
        here = {"X-Real-IP": "203.0.113.9"}
        for _ in range(3):
            assert_error(await api.post("/auth/login", json={"email": "address", "password": WRONG}, headers=here), 401)
        assert_limited(await api.post("/auth/login", json={"email": "address", "password": WRONG}, headers=here))

    @pytest.mark.gen_test(timeout=30)
    async def test_the_count_is_in_mongodb_with_hashed_keys_and_an_expiry(self, api, store):
        await api.post(
            "/auth/login", json={"email": "who@example.com", "password": WRONG}, headers={"X-Real-IP": "203.0.113.8"}
        )
        documents = await store.login_attempts.find({}).to_list(10)
        assert len(documents) == 2  # one for the address, one for (email, address)
        for document in documents:
            assert "203.0.113.8" not in document["_id"] and "who@" not in document["_id"]
            assert document["count"] == 1 and document["expiresAt"] is not None


class TestEmailsPerAddress:
    @pytest.fixture
    def settings_env(self, smtp_env):
        return {**smtp_env, "EMAILS_PER_ADDRESS_PER_HOUR": "3"}

    @pytest.mark.gen_test(timeout=60)
    async def test_forgot_password_floods_no_inbox(self, api, store, mailbox):
        ada = await sign_up(api)  # its verification email is the first of three this hour
        for _ in range(20):
            assert (await api.post("/auth/forgot-password", json={"email": "ada@example.com"})).code == 204
        assert (await api.post("/auth/send-verification-email", token=ada.token)).code == 204
        await sign_up(api, email="sentinel@example.com", name="Sentinel")  # delivered after all of Ada's
        await mailbox.wait_for(4)
        assert [r for r in mailbox.recipients if r == ["ada@example.com"]] == [["ada@example.com"]] * 3
        assert mailbox.recipients[-1] == ["sentinel@example.com"] and len(mailbox.messages) == 4
        assert await store.outbox.count_documents({"to": "ada@example.com"}) == 3

    @pytest.mark.gen_test(timeout=60)
    async def test_send_verification_email_is_capped_too_and_the_last_link_still_works(self, api, services, mailbox):
        ada = await sign_up(api)
        for _ in range(10):
            assert (await api.post("/auth/send-verification-email", token=ada.token)).code == 204
        await sign_up(api, email="sentinel@example.com", name="Sentinel")
        messages = await mailbox.wait_for(4)
        ada_mail = [m for m, r in zip(messages, mailbox.recipients, strict=False) if r == ["ada@example.com"]]
        assert len(ada_mail) == 3 and len(mailbox.messages) == 4
        # The refused requests issued no token, so the newest link mailed is still good.
        assert (await api.post(f"/auth/verify-email?token={link_token(ada_mail[-1], 'verify-email')}")).code == 204


def test_the_new_limits_have_defaults_and_bounds():
    defaults = Settings.from_env({})
    assert (defaults.login_attempts_per_address, defaults.emails_per_address_per_hour) == (100, 5)
    for variable in ("LOGIN_ATTEMPTS_PER_ADDRESS", "EMAILS_PER_ADDRESS_PER_HOUR"):
        for bad in ("-1", "lots", "1000001"):
            with pytest.raises(SettingsError) as caught:
                Settings.from_env({variable: bad})
            assert str(caught.value).startswith(variable)
    with pytest.raises(SettingsError) as caught:
        Settings.from_env({"ADMIN_EMAIL": "(root@example.com)", "ADMIN_PASSWORD": "long enough"})
    assert str(caught.value).startswith("ADMIN_EMAIL")


@pytest.mark.gen_test
class TestSpraying:
    @pytest.fixture
    def settings_env(self):
        return {"LOGIN_ATTEMPTS_PER_ADDRESS": "4", "LOGIN_ATTEMPTS_LIMIT": "10"}

    # services/login_attempts.py LoginAttempts.clear: also resetting the address's own count (digest(address))
    # would let one address try one password on every account for ever, logging in to its own account between
    # tries (password spraying, CWE-307).
    async def test_a_successful_login_does_not_reset_the_address_s_count(self, api, store):
        """Guard held by mutation testing: kills `spraying` in tools/guard_mutations.py."""
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


@pytest.mark.gen_test
class TestEmailBudgetKey:
    @pytest.fixture
    def settings_env(self, smtp_env):
        return {**smtp_env, "EMAILS_PER_ADDRESS_PER_HOUR": "2"}

    # services/auth.py Auth._queue_reset: `may_send(email)` (the address as the request spelled it) instead of
    # `may_send(user["email"])` gives every spelling its own budget: one inbox flooded by changing case (CWE-799).
    async def test_the_budget_keys_the_stored_address_whatever_case_the_request_used(self, api, store, mailbox):
        """Guard held by mutation testing: kills `budget-key` in tools/guard_mutations.py."""
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
