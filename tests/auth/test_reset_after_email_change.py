"""Found by the red-team pass (docs/history/attack-findings.md): a reset link works only while the address it was mailed
to is still the user's.

Before: verify links checked the email, reset links did not, so a reset link mailed to an address the
account had left still set its password.
"""

import pytest
from bson import ObjectId

from tests.helpers import PASSWORD, assert_error, link_token
from tests.users_fixtures import sign_up, stored

NEW_PASSWORD = "a password set by the link"


@pytest.fixture
def settings_env(smtp_env):
    return smtp_env


async def reset_link(api, mailbox, email: str, count: int) -> str:
    assert (await api.post("/auth/forgot-password", json={"email": email})).code == 204
    return link_token((await mailbox.wait_for(count))[count - 1], "reset-password")


@pytest.mark.gen_test(timeout=30)
async def test_reset_link_dies_when_the_email_changes(api, services, mailbox):
    ada = await sign_up(api)
    token = await reset_link(api, mailbox, "ada@example.com", 2)
    changed = await api.patch(
        f"/users/{ada.id}", token=ada.token, json={"email": "ada.new@example.com", "currentPassword": PASSWORD}
    )
    assert changed.code == 200
    hash_before = (await stored(services, ada.id))["passwordHash"]
    assert_error(
        await api.post(f"/auth/reset-password?token={token}", json={"password": NEW_PASSWORD}),
        401,
        "Invalid or expired token",
    )
    assert (await stored(services, ada.id))["passwordHash"] == hash_before
    assert (await api.get("/users/user", token=ada.token)).code == 200  # no session was ended either
    await api.login("ada.new@example.com", PASSWORD)


@pytest.mark.gen_test(timeout=30)
async def test_a_link_is_bound_to_its_email_even_if_it_survived_the_change(api, services, store, mailbox):
    # The email moves without the links being voided (a change racing the forgot-password request).
    ada = await sign_up(api)
    verify = link_token((await mailbox.wait_for(1))[0], "verify-email")
    reset = await reset_link(api, mailbox, "ada@example.com", 2)
    await store.users.update_one({"_id": ObjectId(ada.id)}, {"$set": {"email": "moved@example.com"}})
    before = await stored(services, ada.id)
    assert_error(await api.post(f"/auth/reset-password?token={reset}", json={"password": NEW_PASSWORD}), 401)
    assert_error(await api.post(f"/auth/verify-email?token={verify}"), 401)
    assert await stored(services, ada.id) == before
    # Neither link acted: no new password, no verification.
    assert_error(await api.post("/auth/login", json={"email": "moved@example.com", "password": NEW_PASSWORD}), 401)


@pytest.mark.gen_test(timeout=30)
async def test_a_reset_link_still_works_while_the_email_is_unchanged(api, services, mailbox):
    ada = await sign_up(api)
    await api.patch(f"/users/{ada.id}", token=ada.token, json={"name": "Ada King"})  # not an email change
    token = await reset_link(api, mailbox, "ada@example.com", 2)
    assert (await api.post(f"/auth/reset-password?token={token}", json={"password": NEW_PASSWORD})).code == 204
    await api.login("ada@example.com", NEW_PASSWORD)
