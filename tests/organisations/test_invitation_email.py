"""The email an invited user gets: who invited them (when the inviter has proven an address), into which
organisation, and where to answer; within the per-address email budget; never holding up the invitation."""

import asyncio
import logging
from email.header import decode_header, make_header

import pytest
from bson import ObjectId
from pymongo.errors import AutoReconnect

from tests.helpers import html_part, link_token, sign_up
from tests.helpers import text_part as raw_text_part
from tests.organisations_fixtures import INVITED, create_org, invitations, invite

pytestmark = pytest.mark.gen_test

CLIENT_URL = "https://board.example.com"


@pytest.fixture
def settings_env(smtp_env, request):
    """Email to the test SMTP server; CLIENT_URL set unless a test parametrizes settings_env with {}."""
    return {**smtp_env, "APP_NAME": "Task Board", **getattr(request, "param", {"CLIENT_URL": CLIENT_URL})}


async def verified(api, mailbox, email, **names):
    """A user who registered and opened their verification link: (token, id)."""
    account = await sign_up(api, email, **names)
    message = await wait_for_mail_to(mailbox, email)
    response = await api.post(f"/auth/verify-email?token={link_token(message, 'verify-email')}")
    assert response.code == 204, response
    return account


async def wait_for_mail_to(mailbox, email, subject_part="", count=1, timeout=10.0):
    """The `count`-th message to this address whose subject holds subject_part, waiting for it."""
    for _ in range(int(timeout / 0.02)):
        mine = [m for m in list(mailbox.messages) if m["To"] == email and subject_part in subject(m)]
        if len(mine) >= count:
            return mine[count - 1]
        await asyncio.sleep(0.02)
    raise AssertionError(f"no email {subject_part!r} to {email}")


async def logged(caplog, message: str, timeout: float = 10.0) -> None:
    """Wait until a log record starting with this message was written (work done after the answer)."""
    for _ in range(int(timeout / 0.02)):
        if any(record.getMessage().startswith(message) for record in caplog.records):
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"never logged: {message}")


def subject(message) -> str:
    """The Subject header as a mail client shows it (RFC 2047 words decoded)."""
    return str(make_header(decode_header(message["Subject"])))


def text_part(message) -> str:
    return raw_text_part(message).replace("\r\n", "\n")


async def invited_once(api, store, owner, invitee, name="Acme Widgets"):
    org = (await create_org(api, owner[0], name=name, description="Widgets"))["orgId"]
    response = await invite(api, owner[0], org, invitee[1])
    assert response.code == 200 and response.json == INVITED, response
    assert await store.invitations.count_documents({"orgId": ObjectId(org), "userId": ObjectId(invitee[1])}) == 1
    return org


async def test_a_verified_inviter_is_named_with_the_organisation_and_a_link_to_the_app(api, mailbox, store):
    owner = await verified(api, mailbox, "olive@example.com", firstName="Olive", lastName="Owner")
    invitee = await verified(api, mailbox, "ivy@example.com", firstName="Ivy", lastName="Invitee")
    await invited_once(api, store, owner, invitee)

    message = await wait_for_mail_to(mailbox, "ivy@example.com", "invited you")
    assert subject(message) == "[Task Board] Olive Owner invited you to join “Acme Widgets”"
    text = text_part(message)
    assert text.startswith(
        "Hello Ivy,\n\nOlive Owner invited you to join “Acme Widgets” on Task Board. Open Task "
        f"Board to accept or decline the invitation:\n\n{CLIENT_URL}\n\n"
    )
    assert f'href="{CLIENT_URL}"' in html_part(message) and "Open Task Board" in html_part(message)
    stored = await store.outbox.find_one({"to": "ivy@example.com", "kind": "invitation"})
    assert stored is not None
    # Counted in the invited address's email budget (the same counter as reset and verify links).
    assert (await store.send_counts.find_one({}, sort=[("count", -1)]))["count"] >= 2


async def test_an_unverified_inviters_text_is_never_mailed(api, mailbox, store):
    owner = await sign_up(api, "olive@example.com", firstName="Olive", lastName="Owner")  # not verified
    invitee = await verified(api, mailbox, "ivy@example.com", firstName="Ivy", lastName="Invitee")
    await invited_once(api, store, owner, invitee, name="Click evil.example.net to win")

    message = await wait_for_mail_to(mailbox, "ivy@example.com", "invited you")
    assert subject(message) == "[Task Board] Someone invited you to join an organisation"
    text = text_part(message)
    assert "Someone invited you to join an organisation on Task Board." in text
    assert "Olive" not in text and "evil" not in text and "evil" not in html_part(message)
    # The invitation itself shows the name in the app, to the signed-in invitee.
    assert (await invitations(api, invitee[0]))[0]["name"] == "Click evil.example.net to win"


@pytest.mark.parametrize("settings_env", [{}], indirect=True)
async def test_without_client_url_the_email_says_to_open_the_app(api, mailbox, store):
    owner = await verified(api, mailbox, "olive@example.com", firstName="Olive", lastName="Owner")
    invitee = await verified(api, mailbox, "ivy@example.com", firstName="Ivy", lastName="Invitee")
    await invited_once(api, store, owner, invitee)

    message = await wait_for_mail_to(mailbox, "ivy@example.com", "invited you")
    text = text_part(message)
    assert "Open the Task Board app to accept or decline the invitation.\n\nNothing changes" in text
    assert "http" not in text and "href" not in html_part(message)


async def test_a_repeated_invitation_mails_once(api, mailbox, store):
    owner = await verified(api, mailbox, "olive@example.com", firstName="Olive", lastName="Owner")
    invitee = await sign_up(api, "ivy@example.com", firstName="Ivy", lastName="Invitee")
    org = await invited_once(api, store, owner, invitee)
    await wait_for_mail_to(mailbox, "ivy@example.com", "invited you")
    again = await invite(api, owner[0], org, invitee[1])
    assert again.code == 200 and again.json == INVITED
    # Another organisation's invitation, queued after the repeat: once it is here, a repeat's email would be too.
    await invited_once(api, store, owner, invitee, name="Second Org")
    await wait_for_mail_to(mailbox, "ivy@example.com", "invited you", count=2)
    assert await store.outbox.count_documents({"to": "ivy@example.com", "kind": "invitation"}) == 2
    # An unverified invitee is greeted without the name they typed.
    assert text_part(await wait_for_mail_to(mailbox, "ivy@example.com", "invited you")).startswith("Hello,\n\n")


@pytest.mark.parametrize(
    "name",
    [
        "Acme\u2028Bcc: victim@example.com",
        "Acme\u0085X-Evil: 1",
        "Acme =?utf-8?q?=0ABcc:_victim@example.com?=",
        "Acme\u2029\u2029Body",
    ],
)
async def test_crafted_organisation_names_stay_on_the_subject_line(api, mailbox, store, name):
    owner = await verified(api, mailbox, "olive@example.com", firstName="Olive", lastName="Owner")
    invitee = await verified(api, mailbox, "ivy@example.com", firstName="Ivy", lastName="Invitee")
    if any(c in name for c in "\u2028\u2029\u0085"):
        # The name rule refuses these now (422, nothing stored); a name stored before that rule may hold them.
        refused = await api.post("/api/organisations", json={"name": name}, token=owner[0])
        assert refused.code == 422 and refused.json["errors"][0]["field"] == "name"
        org = (await create_org(api, owner[0], name="Acme", description="Widgets"))["orgId"]
        await store.organisations.update_one({"_id": ObjectId(org)}, {"$set": {"name": name}})
        assert (await invite(api, owner[0], org, invitee[1])).json == INVITED
    else:
        await invited_once(api, store, owner, invitee, name=name)

    message = await wait_for_mail_to(mailbox, "ivy@example.com", "invited you")
    flat = " ".join(name.replace("\u2028", " ").replace("\u2029", " ").replace("\u0085", " ").split())
    flat = flat.replace("=?", "= ?")  # an encoded word would be decoded by the email package, newline and all
    assert subject(message) == f"[Task Board] Olive Owner invited you to join “{flat}”"
    assert message["Bcc"] is None and message["X-Evil"] is None
    assert mailbox.recipients[-1] == ["ivy@example.com"]  # the envelope: the invited user only
    assert await store.outbox.count_documents({"kind": "invitation", "status": "failed"}) == 0


async def test_the_email_budget_holds_back_an_invitation_email_not_the_invitation(api, mailbox, store, caplog):
    caplog.set_level(logging.INFO, logger="accounts.email")
    owner = await verified(api, mailbox, "olive@example.com", firstName="Olive", lastName="Owner")
    invitee = await sign_up(api, "ivy@example.com", firstName="Ivy", lastName="Invitee")  # 1 email: verification
    for _ in range(4):  # with the cap of 5, the 5th email this hour is the last one allowed
        assert (await api.post("/auth/forgot-password", json={"email": "ivy@example.com"})).code == 204
    await wait_for_mail_to(mailbox, "ivy@example.com", "Reset", count=4)
    await invited_once(api, store, owner, invitee)
    await logged(caplog, "email held back: invitation to i***@example.com")
    assert await store.outbox.count_documents({"to": "ivy@example.com", "kind": "invitation"}) == 0
    assert len(await invitations(api, invitee[0])) == 1  # the invitation stands; only its email was held back


async def test_a_failing_outbox_never_fails_the_invitation(api, mailbox, store, services, monkeypatch, caplog):
    owner = await verified(api, mailbox, "olive@example.com", firstName="Olive", lastName="Owner")
    invitee = await sign_up(api, "ivy@example.com", firstName="Ivy", lastName="Invitee")
    await mailbox.wait_for(2)
    original = services.outbox.collection.insert_one

    async def unavailable(document, *args, **kwargs):
        if document.get("kind") == "invitation":
            raise AutoReconnect("connection reset")
        return await original(document, *args, **kwargs)

    monkeypatch.setattr(services.outbox.collection, "insert_one", unavailable)
    await invited_once(api, store, owner, invitee)
    assert len(await invitations(api, invitee[0])) == 1
    await logged(caplog, "invitation email failed after the answer")
    assert await store.outbox.count_documents({"kind": "invitation"}) == 0
