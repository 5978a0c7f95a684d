"""Attack findings: invitations and memberships.

- A stranger floods a user with invitations (one organisation each, unlimited) and buries the real one:
  GET /api/invitations shows only the 100 newest. The victim's id is easy to find: ObjectIds made by one
  process differ by a counter, so the ids registered around the attacker's own are a few counts apart,
  and inviting answers 404 for an id that is no user and 200 for one that is.
- An accept racing the account's deletion leaves a membership of a user that no longer exists.
"""
import asyncio

import pytest
from bson import ObjectId

from tests.helpers import assert_error, sign_up
from tests.organisations_fixtures import accept, create_org, invitations, invite
from tests.test_api_invitations import Held

pytestmark = pytest.mark.gen_test

FLOOD = 101


@pytest.mark.gen_test(timeout=120)
async def test_a_stranger_cannot_bury_a_real_invitation(api, store):
    colleague = await sign_up(api, "colleague@example.com", firstName="Colin", lastName="League")
    victim = await sign_up(api, "victim@example.com", firstName="Vic", lastName="Tim")
    stranger = await sign_up(api, "stranger@example.com", firstName="Your", lastName="Admin")
    team = (await create_org(api, colleague[0], name="Real team"))["orgId"]
    assert (await invite(api, colleague[0], team, victim[1])).code == 200
    refused = 0
    for number in range(FLOOD):
        org_id = (await create_org(api, stranger[0], name=f"Urgent: action needed {number}"))["orgId"]
        response = await invite(api, stranger[0], org_id, victim[1])
        if response.code == 429:
            refused += 1
        else:
            assert response.code == 200, response
    listed = [inv["orgId"] for inv in await invitations(api, victim[0])]
    # The real invitation is still shown, and the stranger was stopped somewhere along the way.
    assert team in listed
    assert refused > 0
    assert await store.invitations.count_documents(
        {"userId": ObjectId(victim[1]), "invitedBy": ObjectId(stranger[1])}) < FLOOD


async def test_an_accept_racing_account_deletion_leaves_no_membership(api, services, store, monkeypatch):
    owner = await sign_up(api, "owner@example.com", firstName="Olive", lastName="Owner")
    invitee = await sign_up(api, "invitee@example.com", firstName="Ivy", lastName="Invitee")
    acme = (await create_org(api, owner[0], name="Acme"))["orgId"]
    assert (await invite(api, owner[0], acme, invitee[1])).code == 200
    memberships = Held(store.memberships, "update_one")  # the accept's membership upsert
    monkeypatch.setattr(services.organisations, "memberships", memberships)
    accepting = asyncio.ensure_future(accept(api, invitee[0], acme))
    await asyncio.wait_for(memberships.reached.wait(), 10)
    # The invitation is claimed; now the invitee deletes the account, before the membership is written.
    deleted = await api.delete(f"/users/{invitee[1]}", token=invitee[0], json={"password": "correct horse battery"})
    assert deleted.code == 204, deleted
    memberships.released.set()
    await accepting
    assert await services.users.get(ObjectId(invitee[1])) is None
    # No trace of the deleted user may be left in the organisation.
    assert await store.memberships.count_documents({"userId": ObjectId(invitee[1])}) == 0
    assert_error(await api.get(f"/api/users/{invitee[1]}", token=owner[0]), 404)


@pytest.mark.gen_test(timeout=120)
async def test_past_the_hourly_cap_an_invitation_is_a_429_with_retry_after_and_stores_nothing(api, store,
                                                                                            monkeypatch):
    from models import organisations as org_model
    monkeypatch.setattr(org_model, "MAX_INVITATIONS_PER_HOUR", 3)
    inviter = await sign_up(api, "inviter@example.com", firstName="Ina", lastName="Viter")
    colleague = await sign_up(api, "colleague@example.com", firstName="Colin", lastName="League")
    orgs = [(await create_org(api, inviter[0], name=f"Team {number}"))["orgId"] for number in range(4)]
    for org_id in orgs[:3]:  # one colleague into several organisations is fine
        assert (await invite(api, inviter[0], org_id, colleague[1])).code == 200
    assert (await invite(api, inviter[0], orgs[0], colleague[1])).code == 200  # already invited: no change
    refused = await invite(api, inviter[0], orgs[3], colleague[1])
    assert_error(refused, 429)
    assert 1 <= int(refused.headers["Retry-After"]) <= 3600
    assert await store.invitations.count_documents({"invitedBy": ObjectId(inviter[1])}) == 3
    assert orgs[3] not in [inv["orgId"] for inv in await invitations(api, colleague[0])]
