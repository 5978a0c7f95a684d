"""Attack findings: invitations and memberships.

- A stranger floods a user with invitations (one organisation each, unlimited) and buries the real one:
  GET /api/invitations shows only the 100 newest. The victim's id is easy to find: ObjectIds made by one
  process differ by a counter, so the ids registered around the attacker's own are a few counts apart,
  and inviting answers 404 for an id that is no user and 200 for one that is.
- An accept racing the account's deletion leaves a membership of a user that no longer exists.
"""

import asyncio
import datetime as dt

import pytest
from bson import ObjectId

from models import organisations as org_model
from models.common import utcnow
from services import organisations as organisations_service
from tests.helpers import PASSWORD, Held, assert_error, sign_up
from tests.organisations_fixtures import INVITED, accept, create_org, invitations, invite, join, member_count

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
            if refused == 3:  # stopped, and still stopped: the rest of the flood would only repeat it
                break
        else:
            assert response.code == 200, response
            assert refused == 0, "an invitation got through after a refusal"
    listed = [inv["orgId"] for inv in await invitations(api, victim[0])]
    # The real invitation is still shown, and the stranger was stopped well before 100 (what the list shows).
    assert team in listed
    assert refused == 3
    assert (
        await store.invitations.count_documents({"userId": ObjectId(victim[1]), "invitedBy": ObjectId(stranger[1])})
        == org_model.MAX_INVITATIONS_PER_HOUR
        < 100
    )


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
async def test_past_the_hourly_cap_an_invitation_is_a_429_with_retry_after_and_stores_nothing(api, store, monkeypatch):
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


@pytest.mark.parametrize("deleted", ["invitee", "inviter"])
async def test_an_invite_racing_an_account_deletion_stores_nothing(api, services, store, monkeypatch, deleted):
    inviter = await sign_up(api, "inviter@example.com", firstName="Ina", lastName="Viter")
    invitee = await sign_up(api, "invitee@example.com", firstName="Ivy", lastName="Invitee")
    colleague = await sign_up(api, "colleague@example.com", firstName="Colin", lastName="League")
    acme = (await create_org(api, inviter[0], name="Acme"))["orgId"]
    assert (await invite(api, inviter[0], acme, colleague[1])).code == 200  # stored first: an undo must spare it
    unknown_user = await invite(api, inviter[0], acme, str(ObjectId()))
    pending = Held(store.invitations, "update_one")  # the invite's upsert, after it found both accounts
    monkeypatch.setattr(services.organisations, "invitations", pending)
    inviting = asyncio.ensure_future(invite(api, inviter[0], acme, invitee[1]))
    await asyncio.wait_for(pending.reached.wait(), 10)
    # The account is deleted, its cascade run, before the invitation is written (CWE-367).
    token, user_id = inviter if deleted == "inviter" else invitee
    assert (await api.delete(f"/users/{user_id}", token=token, json={"password": PASSWORD})).code == 204
    pending.released.set()
    response = await inviting
    if deleted == "inviter":
        assert_error(response, 401)
        assert await store.invitations.count_documents({"invitedBy": ObjectId(inviter[1])}) == 0
    else:  # the answer an id that never was a user gets: nothing tells the two apart
        assert_error(response, 404, "User not found")
        assert response.json == unknown_user.json
        assert [inv["userId"] for inv in await store.invitations.find({"orgId": ObjectId(acme)}).to_list(None)] == [
            ObjectId(colleague[1])
        ]
    assert await store.invitations.count_documents({"userId": ObjectId(invitee[1])}) == 0


async def cap_of_three(api, monkeypatch):
    """The hourly cap lowered to 3, an inviter and a colleague, and four organisations of the inviter's:
    (inviter, colleague, org ids)."""
    monkeypatch.setattr(org_model, "MAX_INVITATIONS_PER_HOUR", 3)
    inviter = await sign_up(api, "inviter@example.com", firstName="Ina", lastName="Viter")
    colleague = await sign_up(api, "colleague@example.com", firstName="Colin", lastName="League")
    orgs = [(await create_org(api, inviter[0], name=f"Team {number}"))["orgId"] for number in range(4)]
    return inviter, colleague, orgs


@pytest.mark.parametrize("oldest_age, retry_after", [(1800, "1800"), (3599.5, "1")], ids=["half-hour", "half-second"])
async def test_retry_after_is_the_seconds_until_the_oldest_invitation_of_the_hour_leaves_it(
    api, store, monkeypatch, oldest_age, retry_after
):
    inviter, colleague, orgs = await cap_of_three(api, monkeypatch)
    now = utcnow()
    monkeypatch.setattr(organisations_service, "utcnow", lambda: now)  # a clock that stands still: the wait is exact
    # Stored in this order, so the oldest of the hour is neither the first nor the last written; the one sent
    # two hours ago is pending still but no longer counts, nor sets the wait.
    ages = [7200, 60, oldest_age, 600]
    await store.invitations.insert_many(
        [
            {
                "orgId": ObjectId(),
                "userId": ObjectId(colleague[1]),
                "invitedBy": ObjectId(inviter[1]),
                "createdAt": now - dt.timedelta(seconds=age),
            }
            for age in ages
        ]
    )
    before = await store.invitations.find().sort("_id").to_list(None)
    refused = await invite(api, inviter[0], orgs[0], colleague[1])
    assert_error(refused, 429, "Too many invitations, try again later")
    assert refused.headers["Retry-After"] == retry_after  # rounded up: at that second a slot is free
    assert await store.invitations.find().sort("_id").to_list(None) == before


async def test_a_refusal_whose_pending_invitations_are_all_answered_meanwhile_says_retry_at_once(
    api, services, store, monkeypatch
):
    inviter, colleague, orgs = await cap_of_three(api, monkeypatch)
    for org_id in orgs[:3]:
        assert (await invite(api, inviter[0], org_id, colleague[1])).code == 200
    undo = Held(store.invitations, "delete_one")  # the refusal undoing its own invitation, the cap counted
    monkeypatch.setattr(services.organisations, "invitations", undo)
    refusing = asyncio.ensure_future(invite(api, inviter[0], orgs[3], colleague[1]))
    await asyncio.wait_for(undo.reached.wait(), 10)
    for org_id in orgs[:3]:  # the colleague declines all three meanwhile: none is left to wait for
        assert (await api.delete(f"/api/invitations/{org_id}", token=colleague[0])).code == 204
    undo.released.set()
    refused = await refusing
    assert_error(refused, 429, "Too many invitations, try again later")
    assert refused.headers["Retry-After"] == "1"
    assert await store.invitations.count_documents({"invitedBy": ObjectId(inviter[1])}) == 0
    assert (await invite(api, inviter[0], orgs[3], colleague[1])).code == 200  # and the retry is let through


async def test_inviting_a_member_at_the_hourly_cap_changes_nothing_and_is_not_refused(
    api, services, store, monkeypatch
):
    inviter, colleague, orgs = await cap_of_three(api, monkeypatch)
    member = await sign_up(api, "member@example.com", firstName="Mel", lastName="Member")
    await join(api, inviter[0], orgs[0], member[1], member[0])  # accepted: no longer pending, so not counted
    for org_id in orgs[1:]:
        assert (await invite(api, inviter[0], org_id, colleague[1])).code == 200
    assert_error(await invite(api, inviter[0], orgs[0], colleague[1]), 429)  # the cap is reached
    before = await store.invitations.find().sort("_id").to_list(None)
    for given in (member[1], inviter[1]):
        response = await invite(api, inviter[0], orgs[0], given)
        assert response.code == 200 and response.json == INVITED, response
    assert await store.invitations.find().sort("_id").to_list(None) == before
    assert await member_count(services, orgs[0]) == 2
