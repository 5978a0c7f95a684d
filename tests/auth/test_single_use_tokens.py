"""Single-use tokens, the reset and verify links: each is good only for its own kind, for the user it was
issued to while they exist, and for the address it was mailed to.

Guards found by mutation testing (docs/history/mutants.md, docs/history/mutation-testing.md): no test failed
when they broke. Each test was checked by breaking its guard and watching it fail (tools/guard_mutations.py
re-checks the hand-made mutations); every attack asserts the refusal AND that nothing changed.
"""

import datetime as dt

import pytest
from bson import ObjectId

from tests.helpers import PASSWORD, assert_error, caller, close_to, link_token, now, sign_up
from tests.users_fixtures import stored

NEW_PASSWORD = "a brand new password"


@pytest.mark.gen_test
async def test_reset_token_of_a_deleted_user_is_401(api, services, store):
    """Guard held by mutation testing: kills issue_single_use's stored fields altered, and a deleted user's reset
    token taken (mutmut)."""
    await sign_up(api)
    user = await services.users.find_by_email("ada@example.com")
    raw, _ = await services.sessions.issue_single_use(user, "reset", 10)
    stored = await store.tokens.find_one({"type": "reset"})
    assert stored["email"] == "ada@example.com" and stored["userId"] == user["_id"]
    assert close_to(stored["createdAt"], now()) and close_to(stored["expiresAt"], now() + dt.timedelta(minutes=10))
    await store.users.delete_one({"_id": user["_id"]})
    response = await api.post(f"/auth/reset-password?token={raw}", json={"password": "a brand new password"})
    assert_error(response, 401, "Invalid or expired token")


class TestSingleUseTokens:
    """Reset and verify links, read out of mail delivered to a real SMTP server."""

    @pytest.fixture
    def settings_env(self, smtp_env):
        return smtp_env

    @pytest.mark.gen_test
    async def test_a_refresh_token_is_not_a_reset_token(self, api, services, mailbox):
        """Guard held by mutation testing: `single-use-type` in tools/guard_mutations.py (a token of any kind taken);
        by design the email binding, which a refresh token lacks, refuses it as well, so this test alone does not
        kill it."""
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
        """Guard held by mutation testing: kills `single-use-type` in tools/guard_mutations.py (a token of any kind
        taken)."""
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
        """Guard held by mutation testing: kills the verify step no longer checking that the link's address is still
        the user's."""
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
        """Guard held by mutation testing: kills `verify-email-bound` in tools/guard_mutations.py (mark_verified
        filtered on _id alone)."""
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
        """Guard held by mutation testing: kills a verify link outliving a profile email change (its voiding, with
        the address binding)."""
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
        """Guard held by mutation testing: kills `verified-no-mail` in tools/guard_mutations.py (a verified user
        mailed another link)."""
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
