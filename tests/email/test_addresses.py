"""Found by the red-team pass (docs/history/attack-findings.md): crafted addresses are refused, and mail goes exactly to
the stored address.

`=?x?q?attacker=40evil.com=3e=00?=foo@corp.com` used to register, and Python's header parser decoded
the encoded word, so its verification email went to attacker@evil.com; "(x@example.com)" registered
and then killed the email sender for everyone.
"""

import pytest
from bson import ObjectId

from models import outbox as outbox_model
from tests.helpers import PASSWORD, error_fields
from tests.users_fixtures import make_admin, sign_up, stored

pytestmark = pytest.mark.gen_test

ENCODED_WORD = "=?x?q?attacker=40evil.com=3e=00?=foo@corp.com"
CRAFTED = [
    ENCODED_WORD,
    "=?utf-8?b?YXR0YWNrZXJAZXZpbC5jb20=?=@corp.com",
    "(x@example.com)",
    "x@example.com (comment)",
    "x\u0000@example.com",
    "x\u0007y@example.com",
    '"attacker@evil.com"@corp.com',
    '"quoted local"@corp.com',
    "Display Name <x@example.com>",
    "<x@example.com>",
    "x@[127.0.0.1]",
    "x y@example.com",
    "x@exa mple.com",
    "x@example.com\r\nBcc: attacker@evil.com",
    "x@example.com,attacker@evil.com",
    "x@example.com\nattacker@evil.com",
    "x@localhost",
    "@example.com",
    "x@",
    # The abuse review: routing through a relay that does the percent hack or bang paths (docs/developing/security.md).
    "attacker%evil.example@example.com",
    "evil.example!attacker@example.com",
    "a%b!c@example.com",
]


@pytest.fixture
def settings_env(smtp_env):
    return smtp_env


async def only_mail_is_for(mailbox, address):
    """Everything that arrived went to address alone, in envelope and header: a registration sent after the
    refused ones is delivered, so anything queued before it has been dealt with."""
    messages = await mailbox.wait_for(1)
    assert len(mailbox.messages) == 1
    assert mailbox.recipients == [[address]]
    assert messages[0]["To"] == address and messages[0].get_all("To") == [address]
    assert messages[0].get_all("Cc") is None and messages[0].get_all("Bcc") is None


@pytest.mark.gen_test(timeout=60)
@pytest.mark.parametrize("shape", ["name", "firstName"])
async def test_crafted_addresses_cannot_register(api, store, mailbox, shape):
    for address in CRAFTED:
        body = {
            "email": address,
            "password": PASSWORD,
            **({"name": "Eve"} if shape == "name" else {"firstName": "Eve", "lastName": "Vil"}),
        }
        response = await api.post("/auth/register", json=body)
        assert error_fields(response) == {"email": "must be a valid email address"}, (address, response)
    assert await store.users.count_documents({}) == 0
    assert await store.outbox.count_documents({}) == 0
    await api.register(email="honest@example.com")
    await only_mail_is_for(mailbox, "honest@example.com")


@pytest.mark.gen_test(timeout=60)
async def test_crafted_addresses_are_refused_by_admin_create_and_update(api, services, store, mailbox):
    admin = await make_admin(api, services)
    ada = await sign_up(api)
    for address in CRAFTED:
        created = await api.post(
            "/users", token=admin.token, json={"name": "Eve", "email": address, "password": PASSWORD}
        )
        assert error_fields(created) == {"email": "must be a valid email address"}, address
        for token in (admin.token, ada.token):
            updated = await api.patch(
                f"/users/{ada.id}", token=token, json={"email": address, "currentPassword": PASSWORD}
            )
            assert error_fields(updated) == {"email": "must be a valid email address"}, address
    assert (await stored(services, ada.id))["email"] == "ada@example.com"
    assert await store.users.count_documents({}) == 2
    # Only the two sign-ups' verification emails, each to its own address.
    await mailbox.wait_for(2)
    assert sorted(mailbox.recipients) == [["ada@example.com"], ["admin@example.com"]]
    assert sorted(m["To"] for m in mailbox.messages) == ["ada@example.com", "admin@example.com"]


async def test_addresses_are_stored_trimmed_lower_case_and_mailed_exactly_there(api, services, mailbox):
    body = await api.register(email="  Mixed.Case+Tag@Example.COM ")
    assert body["user"]["email"] == "mixed.case+tag@example.com"
    assert (await stored(services, body["user"]["id"]))["email"] == "mixed.case+tag@example.com"
    await only_mail_is_for(mailbox, "mixed.case+tag@example.com")
    await api.login(" MIXED.case+tag@example.com", PASSWORD)


@pytest.mark.gen_test(timeout=30)
async def test_a_crafted_address_stored_before_the_fix_gets_no_mail_and_blocks_nothing(api, store, mailbox):
    # An account that registered under the old, loose pattern asks for a reset link.
    eve = await sign_up(api, email="eve@example.com", name="Eve")
    await mailbox.wait_for(1)
    await store.users.update_one({"_id": ObjectId(eve.id)}, {"$set": {"email": ENCODED_WORD}})
    assert (await api.post("/auth/forgot-password", json={"email": ENCODED_WORD})).code == 204
    await api.register(email="next@example.com")
    await mailbox.wait_for(2)
    assert mailbox.recipients == [["eve@example.com"], ["next@example.com"]]
    assert all("evil" not in str(m["To"]) for m in mailbox.messages)
    poisoned = await store.outbox.find_one({"to": ENCODED_WORD})
    assert poisoned["status"] == outbox_model.FAILED and poisoned["attempts"] == 1
