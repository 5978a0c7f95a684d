"""Found by the red-team pass (docs/history/attack-findings.md): (and the no-op update) a stolen access token cannot
move the account's email.

Before: PATCH /users/:id {"email": attacker} needed no password, the old address heard nothing, and
forgot-password then mailed the attacker a reset link.
"""

import pytest
from bson import ObjectId

from models import sessions as session_model
from tests.helpers import PASSWORD, Store, assert_error, error_fields, link_token, text_part
from tests.users_fixtures import make_admin, sign_up, stored

pytestmark = pytest.mark.gen_test

ATTACKER = "attacker@evil.com"


@pytest.fixture
def settings_env(smtp_env):
    return smtp_env


async def single_use_tokens(services, user_id: str) -> int:
    store = Store(services.database)
    return await store.tokens.count_documents(
        {"userId": ObjectId(user_id), "type": {"$in": [session_model.RESET, session_model.VERIFY]}}
    )


@pytest.mark.gen_test(timeout=30)
async def test_a_stolen_token_alone_cannot_change_the_email(api, services, mailbox):
    ada = await sign_up(api)
    await mailbox.wait_for(1)  # the sign-up's verification email
    before = await stored(services, ada.id)
    for method in (api.patch, api.put):
        assert error_fields(await method(f"/users/{ada.id}", token=ada.token, json={"email": ATTACKER})) == {
            "currentPassword": "is required"
        }
        assert_error(
            await method(
                f"/users/{ada.id}", token=ada.token, json={"email": ATTACKER, "currentPassword": "a guess at it"}
            ),
            401,
            "Authentication failed",
        )
    assert await stored(services, ada.id) == before
    # The attacker's next step, forgot-password for their own address, finds no account.
    assert (await api.post("/auth/forgot-password", json={"email": ATTACKER})).code == 204
    assert (await api.post("/auth/forgot-password", json={"email": "ada@example.com"})).code == 204
    await mailbox.wait_for(2)
    assert mailbox.recipients == [["ada@example.com"], ["ada@example.com"]]
    assert all(ATTACKER not in str(m) for m in mailbox.messages)


@pytest.mark.gen_test(timeout=30)
async def test_own_change_with_the_password_notifies_the_old_address_and_voids_links(api, services, mailbox):
    ada = await sign_up(api)
    assert (await api.post("/auth/forgot-password", json={"email": "ada@example.com"})).code == 204
    verify_mail, reset_mail = await mailbox.wait_for(2)
    assert await single_use_tokens(services, ada.id) == 2
    # Proven by another way (a notice goes only to an address the account verified); the verify link stays unused.
    await Store(services.database).users.update_one({"_id": ObjectId(ada.id)}, {"$set": {"isEmailVerified": True}})
    response = await api.patch(
        f"/users/{ada.id}", token=ada.token, json={"email": "Ada.New@Example.com", "currentPassword": PASSWORD}
    )
    assert response.code == 200, response
    assert response.json["email"] == "ada.new@example.com" and response.json["isEmailVerified"] is False
    notice = (await mailbox.wait_for(3))[2]
    assert mailbox.recipients[2] == ["ada@example.com"] and notice["To"] == "ada@example.com"
    assert "changed" in notice["Subject"] and "a***@example.com" in text_part(notice)
    assert "ada.new@example.com" not in text_part(notice)  # the new address is not handed to whoever reads this
    assert await single_use_tokens(services, ada.id) == 0
    # The links mailed to the old address no longer act on the account.
    assert_error(await api.post(f"/auth/verify-email?token={link_token(verify_mail, 'verify-email')}"), 401)
    assert_error(
        await api.post(
            f"/auth/reset-password?token={link_token(reset_mail, 'reset-password')}",
            json={"password": "attacker's new password"},
        ),
        401,
    )
    assert (await stored(services, ada.id))["isEmailVerified"] is False
    await api.login("ada.new@example.com", PASSWORD)


@pytest.mark.gen_test(timeout=30)
async def test_an_admin_changes_someone_elses_email_without_a_password_and_the_old_address_hears(
    api, services, mailbox
):
    ada = await sign_up(api)
    admin = await make_admin(api, services)
    await mailbox.wait_for(2)
    await Store(services.database).users.update_one({"_id": ObjectId(ada.id)}, {"$set": {"isEmailVerified": True}})
    response = await api.patch(f"/users/{ada.id}", token=admin.token, json={"email": "ada2@example.com"})
    assert response.code == 200 and response.json["email"] == "ada2@example.com"
    notice = (await mailbox.wait_for(3))[2]
    assert mailbox.recipients[2] == ["ada@example.com"] and notice["To"] == "ada@example.com"
    # An admin changing their own email is a self change: the password is needed.
    assert error_fields(
        await api.patch(f"/users/{admin.id}", token=admin.token, json={"email": "boss@example.com"})
    ) == {"currentPassword": "is required"}
    assert (await stored(services, admin.id))["email"] == "admin@example.com"


async def test_an_update_that_changes_nothing_is_422_and_checks_no_password(api, services):
    ada = await sign_up(api, username="ada")
    before = await stored(services, ada.id)
    no_change = {"body": "must change at least one field"}
    for body in (
        {"currentPassword": PASSWORD},
        {"currentPassword": "wrong"},
        {"name": "Ada Lovelace"},
        {"email": "ADA@example.com", "currentPassword": PASSWORD},
        {"username": "ADA"},
        {"phone": None},
        {"firstName": "Ada", "lastName": "Lovelace"},
    ):
        assert error_fields(await api.patch(f"/users/{ada.id}", token=ada.token, json=body)) == no_change, body
    assert await stored(services, ada.id) == before
    # A real change among unchanged fields still goes through.
    response = await api.patch(f"/users/{ada.id}", token=ada.token, json={"name": "Ada Lovelace", "phone": "0800 1234"})
    assert response.code == 200 and response.json["phone"] == "0800 1234"
