"""Invitations: inviting makes an invitation, not a membership; the invited user lists, accepts or declines
it, and any member can leave. Races between them leave one consistent outcome."""

import asyncio
import datetime as dt

import pytest
from bson import ObjectId
from pymongo.errors import DuplicateKeyError

from models import organisations as org_model
from models.common import isoformat, parse_object_id, utcnow
from tests.helpers import Held, assert_error, sign_up
from tests.organisations_fixtures import (
    INVITED,
    accept,
    create_org,
    invitations,
    invite,
    is_member,
    join,
    leave,
    member_count,
    org_ids,
    stored_invitations,
)

pytestmark = pytest.mark.gen_test


async def org_with_invitee(api):
    """An owner with an organisation "Acme" and a user invited into it: (owner, invitee, org id), each user a
    (token, id) pair."""
    owner = await sign_up(api, "owner@example.com", firstName="Olive", lastName="Owner")
    invitee = await sign_up(api, "invitee@example.com", firstName="Ivy", lastName="Invitee")
    acme = (await create_org(api, owner[0], name="Acme", description="Widgets"))["orgId"]
    response = await invite(api, owner[0], acme, invitee[1])
    assert response.code == 200 and response.json == INVITED, response
    return owner, invitee, acme


async def assert_not_joined(api, services, owner, invitee, org_id):
    """The invitee is no member: nothing of the organisation or its members is open to them, nor they to it."""
    assert not await is_member(services, org_id, invitee[1])
    assert org_id not in await org_ids(api, invitee[0])
    assert_error(await api.get(f"/api/organisations/{org_id}", token=invitee[0]), 403)
    assert_error(await api.get(f"/api/users/{owner[1]}", token=invitee[0]), 403)
    assert_error(await api.get(f"/api/users/{invitee[1]}", token=owner[0]), 403)


async def test_invite_list_accept_makes_a_member(api, services):
    owner, invitee, acme = await org_with_invitee(api)
    [stored] = await stored_invitations(services, userId=invitee[1])
    assert (stored["orgId"], stored["invitedBy"]) == (ObjectId(acme), ObjectId(owner[1]))
    await assert_not_joined(api, services, owner, invitee, acme)

    assert await invitations(api, invitee[0]) == [
        {
            "orgId": acme,
            "name": "Acme",
            "description": "Widgets",
            "invitedBy": {"userId": owner[1], "firstName": "Olive", "lastName": "Owner"},
            "invitedAt": isoformat(stored["createdAt"]),
        }
    ]
    assert (await invitations(api, invitee[0]))[0]["invitedAt"].endswith("Z")
    assert await invitations(api, owner[0]) == []  # the inviter sees none: they are not invited

    response = await accept(api, invitee[0], acme)
    assert response.code == 200, response
    assert response.json == {
        "status": "success",
        "message": "Invitation accepted",
        "data": {"orgId": acme, "name": "Acme", "description": "Widgets"},
    }
    assert await is_member(services, acme, invitee[1]) and await member_count(services, acme) == 2
    assert await stored_invitations(services, userId=invitee[1]) == []
    assert await invitations(api, invitee[0]) == []
    assert (await org_ids(api, invitee[0]))[1:] == [acme]  # after their default organisation: join order
    assert (await api.get(f"/api/organisations/{acme}", token=invitee[0])).code == 200
    assert (await api.get(f"/api/users/{owner[1]}", token=invitee[0])).json["data"]["id"] == owner[1]
    assert (await api.get(f"/api/users/{invitee[1]}", token=owner[0])).json["data"]["id"] == invitee[1]
    # Accepting again: the invitation is used up.
    assert_error(await accept(api, invitee[0], acme), 404, "Invitation not found")
    assert await member_count(services, acme) == 2


async def test_decline_removes_the_invitation_and_joins_nothing(api, services):
    owner, invitee, acme = await org_with_invitee(api)
    response = await api.delete(f"/api/invitations/{acme}", token=invitee[0])
    assert response.code == 204 and response.body == b"", response
    assert await stored_invitations(services, orgId=acme) == []
    assert await invitations(api, invitee[0]) == []
    await assert_not_joined(api, services, owner, invitee, acme)
    assert await member_count(services, acme) == 1
    assert_error(await api.delete(f"/api/invitations/{acme}", token=invitee[0]), 404, "Invitation not found")
    assert_error(await accept(api, invitee[0], acme), 404, "Invitation not found")
    # A member may invite them again; it is a new invitation.
    assert (await invite(api, owner[0], acme, invitee[1])).code == 200
    assert [inv["orgId"] for inv in await invitations(api, invitee[0])] == [acme]


async def test_only_the_invited_user_can_accept_or_decline(api, services):
    owner, invitee, acme = await org_with_invitee(api)
    stranger = await sign_up(api, "stranger@example.com")
    before = await stored_invitations(services, orgId=acme)
    for token in (stranger[0], owner[0]):  # the owner is a member, but has no invitation
        assert_error(await accept(api, token, acme), 404, "Invitation not found")
        assert_error(await api.delete(f"/api/invitations/{acme}", token=token), 404, "Invitation not found")
    assert await stored_invitations(services, orgId=acme) == before
    assert not await is_member(services, acme, stranger[1])
    assert await member_count(services, acme) == 1


@pytest.mark.parametrize("org_id", ["6b0f4a14d834e48e586fb52e", "123", "not-an-id", "z" * 24, "%00", "a" * 25])
async def test_unknown_or_malformed_ids_are_404(api, services, org_id):
    owner, invitee, acme = await org_with_invitee(api)
    assert_error(await accept(api, invitee[0], org_id), 404, "Invitation not found")
    assert_error(await api.delete(f"/api/invitations/{org_id}", token=invitee[0]), 404, "Invitation not found")
    assert_error(await leave(api, owner[0], org_id, owner[1]), 404, "Organisation not found")
    # As a user id: a well-formed one is someone else (403), a malformed one nobody (404).
    assert_error(await leave(api, owner[0], acme, org_id), 403 if parse_object_id(org_id) else 404)
    assert await is_member(services, acme, owner[1])
    assert len(await stored_invitations(services, orgId=acme)) == 1


async def test_accept_decline_and_leave_ignore_any_body(api, services):
    owner, invitee, acme = await org_with_invitee(api)
    junk = {"body": b"\xff{not json", "headers": {"Content-Type": "text/plain"}}
    response = await api.post(f"/api/invitations/{acme}/accept", token=invitee[0], **junk)
    assert response.code == 200, response
    response = await api.delete(f"/api/organisations/{acme}/users/{invitee[1]}", token=invitee[0], **junk)
    assert response.code == 204, response
    assert (await invite(api, owner[0], acme, invitee[1])).code == 200
    response = await api.delete(f"/api/invitations/{acme}", token=invitee[0], **junk)
    assert response.code == 204, response
    assert not await is_member(services, acme, invitee[1]) and await stored_invitations(services, orgId=acme) == []


async def test_leaving_ends_membership_and_visibility(api, services):
    owner, member, acme = await org_with_invitee(api)
    assert (await accept(api, member[0], acme)).code == 200
    assert (await api.get(f"/api/users/{owner[1]}", token=member[0])).code == 200

    response = await leave(api, member[0], acme, member[1])
    assert response.code == 204 and response.body == b"", response
    await assert_not_joined(api, services, owner, member, acme)
    assert await member_count(services, acme) == 1
    assert_error(await leave(api, member[0], acme, member[1]), 404, "You are not a member of this organisation")
    # Only an invitation brings them back, and then they are last in their join order.
    later = (await create_org(api, member[0], name="Later"))["orgId"]
    await join(api, owner[0], acme, member[1], member[0])
    assert (await org_ids(api, member[0]))[1:] == [later, acme]


async def test_the_creator_may_leave_and_the_organisation_stays_with_the_others(api, services, store):
    owner, member, acme = await org_with_invitee(api)
    assert (await accept(api, member[0], acme)).code == 200
    assert (await leave(api, owner[0], acme, owner[1])).code == 204
    # "Created" does not outlast leaving: the creator no longer lists or reads it.
    assert acme not in await org_ids(api, owner[0])
    assert_error(await api.get(f"/api/organisations/{acme}", token=owner[0]), 403)
    assert_error(await invite(api, owner[0], acme, owner[1]), 403)
    stored = await store.organisations.find_one({"_id": ObjectId(acme)})
    assert stored["createdBy"] == ObjectId(owner[1])
    assert (await org_ids(api, member[0]))[1:] == [acme]
    assert (await api.get(f"/api/organisations/{acme}", token=member[0])).code == 200
    # The last member leaving leaves an organisation nobody sees.
    assert (await leave(api, member[0], acme, member[1])).code == 204
    assert await member_count(services, acme) == 0
    assert await store.organisations.count_documents({"_id": ObjectId(acme)}) == 1


async def test_nobody_removes_someone_else(api, services):
    owner, member, acme = await org_with_invitee(api)
    assert (await accept(api, member[0], acme)).code == 200
    stranger = await sign_up(api, "stranger@example.com")
    for token, target in (
        (owner[0], member[1]),
        (member[0], owner[1]),
        (stranger[0], member[1]),
        (owner[0], str(ObjectId())),
    ):
        assert_error(await leave(api, token, acme, target), 403, "You can only remove yourself from an organisation")
    assert await is_member(services, acme, member[1]) and await is_member(services, acme, owner[1])
    assert await member_count(services, acme) == 2
    # A stranger leaving an organisation they are not in.
    assert_error(await leave(api, stranger[0], acme, stranger[1]), 404, "You are not a member of this organisation")


async def test_an_invitation_outlives_its_inviter_leaving(api, services):
    owner, invitee, acme = await org_with_invitee(api)
    other = await sign_up(api, "other@example.com")
    await join(api, owner[0], acme, other[1], other[0])
    assert (await leave(api, owner[0], acme, owner[1])).code == 204
    assert [inv["invitedBy"]["userId"] for inv in await invitations(api, invitee[0])] == [owner[1]]
    assert (await accept(api, invitee[0], acme)).code == 200
    assert (await api.get(f"/api/users/{other[1]}", token=invitee[0])).code == 200


async def test_an_invitation_whose_organisation_or_inviter_is_gone_is_not_listed_nor_joined(api, services, store):
    # What a deletion in progress leaves for a moment: an inviter erased, or a registration rolled back.
    owner, invitee, acme = await org_with_invitee(api)
    gone_org, gone_user = ObjectId(), ObjectId()
    owner_default = (await org_ids(api, owner[0]))[0]
    await store.invitations.insert_many(
        [
            {"orgId": gone_org, "userId": ObjectId(invitee[1]), "invitedBy": ObjectId(owner[1]), "createdAt": utcnow()},
            {
                "orgId": ObjectId(owner_default),
                "userId": ObjectId(invitee[1]),
                "invitedBy": gone_user,
                "createdAt": utcnow(),
            },
        ]
    )
    assert [inv["orgId"] for inv in await invitations(api, invitee[0])] == [acme]
    assert_error(await accept(api, invitee[0], str(gone_org)), 404, "Organisation not found")
    assert await store.memberships.count_documents({"orgId": gone_org}) == 0
    assert await stored_invitations(services, orgId=str(gone_org)) == []
    # The organisation is real: the invitation can still be accepted.
    assert (await accept(api, invitee[0], owner_default)).code == 200
    assert await is_member(services, owner_default, invitee[1])


@pytest.mark.gen_test(timeout=60)
async def test_at_most_100_invitations_are_listed_newest_first(api, store, monkeypatch):
    # One inviter sends them all here; the hourly cap per inviter (tests/organisations/test_invitation_limits.py) is
    # lifted.
    monkeypatch.setattr(org_model, "MAX_INVITATIONS_PER_HOUR", 1000)
    inviter = await sign_up(api, "inviter@example.com", firstName="Ina", lastName="Viter")
    invitee = await sign_up(api, "invitee@example.com")
    # The first and the last through HTTP. The 103 between them are copies of the first one's documents (its
    # organisation, the creator's membership, the invitation), a millisecond apart, in one write per collection.
    orgs = [(await create_org(api, inviter[0], name="Org 000"))["orgId"]]
    assert (await invite(api, inviter[0], orgs[0], invitee[1])).code == 200
    first = ObjectId(orgs[0])
    org, membership = (
        await store.organisations.find_one({"_id": first}),
        await store.memberships.find_one({"orgId": first}),
    )
    invitation = await store.invitations.find_one({"orgId": first})
    oldest = utcnow() - dt.timedelta(seconds=1)  # all of them older than the last, however fast this runs
    await store.invitations.update_one({"_id": invitation["_id"]}, {"$set": {"createdAt": oldest}})
    copies = {"organisations": [], "memberships": [], "invitations": []}
    for number in range(1, 104):
        org_id, at = ObjectId(), oldest + dt.timedelta(milliseconds=number)
        copies["organisations"].append({**org, "_id": org_id, "name": f"Org {number:03d}", "createdAt": at})
        copies["memberships"].append({**membership, "_id": ObjectId(), "orgId": org_id, "createdAt": at})
        copies["invitations"].append({**invitation, "_id": ObjectId(), "orgId": org_id, "createdAt": at})
        orgs.append(str(org_id))
    for name, documents in copies.items():
        await getattr(store, name).insert_many(documents)
    orgs.append((await create_org(api, inviter[0], name="Org 104"))["orgId"])
    assert (await invite(api, inviter[0], orgs[-1], invitee[1])).code == 200
    assert await store.invitations.count_documents({"userId": ObjectId(invitee[1])}) == 105
    listed = await invitations(api, invitee[0])
    assert [inv["orgId"] for inv in listed] == orgs[::-1][:100]
    times = [dt.datetime.fromisoformat(inv["invitedAt"].replace("Z", "+00:00")) for inv in listed]
    assert times == sorted(times, reverse=True)
    # The older ones come into view as newer ones are answered.
    for org_id in orgs[-3:]:
        assert (await api.delete(f"/api/invitations/{org_id}", token=invitee[0])).code == 204
    assert [inv["orgId"] for inv in await invitations(api, invitee[0])] == orgs[::-1][3:103]


async def test_concurrent_accepts_make_one_membership(api, services):
    owner, invitee, acme = await org_with_invitee(api)
    responses = await asyncio.gather(*[accept(api, invitee[0], acme) for _ in range(10)])
    assert sorted(response.code for response in responses) == [200] + [404] * 9
    assert await member_count(services, acme) == 2 and await is_member(services, acme, invitee[1])
    assert await stored_invitations(services, orgId=acme) == []
    assert (await org_ids(api, invitee[0]))[1:] == [acme]


async def test_concurrent_accept_and_decline_have_one_outcome(api, services):
    owner, invitee, acme = await org_with_invitee(api)
    for _ in range(5):
        accepted, declined = await asyncio.gather(
            accept(api, invitee[0], acme), api.delete(f"/api/invitations/{acme}", token=invitee[0])
        )
        assert sorted((accepted.code, declined.code)) in ([200, 404], [204, 404]), (accepted, declined)
        assert await is_member(services, acme, invitee[1]) is (accepted.code == 200)
        assert await stored_invitations(services, orgId=acme) == []
        if accepted.code == 200:
            assert (await leave(api, invitee[0], acme, invitee[1])).code == 204
        assert (await invite(api, owner[0], acme, invitee[1])).code == 200


async def test_an_invite_between_an_accepts_claim_and_its_membership_leaves_no_invitation(
    api, services, store, monkeypatch
):
    owner, invitee, acme = await org_with_invitee(api)
    memberships = Held(store.memberships, "update_one")  # the accept's membership upsert
    monkeypatch.setattr(services.organisations, "memberships", memberships)
    accepting = asyncio.ensure_future(accept(api, invitee[0], acme))
    await asyncio.wait_for(memberships.reached.wait(), 10)
    # The invitation is claimed and the membership not yet written: a member invites them again.
    assert (await invite(api, owner[0], acme, invitee[1])).code == 200
    assert len(await stored_invitations(services, orgId=acme)) == 1
    memberships.released.set()
    assert (await accepting).code == 200
    assert await is_member(services, acme, invitee[1])
    assert await stored_invitations(services, orgId=acme) == []
    assert await invitations(api, invitee[0]) == []


async def test_an_accept_between_an_invites_check_and_its_write_leaves_no_invitation(api, services, store, monkeypatch):
    owner, invitee, acme = await org_with_invitee(api)
    pending = Held(store.invitations, "update_one")  # the second invite's upsert
    monkeypatch.setattr(services.organisations, "invitations", pending)
    inviting = asyncio.ensure_future(invite(api, owner[0], acme, invitee[1]))
    await asyncio.wait_for(pending.reached.wait(), 10)
    # The invite saw no membership; now the first invitation is accepted before it writes.
    assert (await accept(api, invitee[0], acme)).code == 200
    pending.released.set()
    assert (await inviting).code == 200
    assert await is_member(services, acme, invitee[1])
    assert await stored_invitations(services, orgId=acme) == []
    assert await invitations(api, invitee[0]) == []


class LostUpsert:
    """A collection whose update_one loses its upsert to a concurrent request, as real MongoDB reports it: the
    other request's document is written, and this one gets E11000 (DuplicateKeyError, code 11000)."""

    def __init__(self, collection):
        self.collection = collection
        self.raised = 0

    def __getattr__(self, name):
        return getattr(self.collection, name)

    async def update_one(self, filter, update, upsert=False, **kwargs):
        await self.collection.update_one(filter, update, upsert=upsert, **kwargs)
        self.raised += 1
        raise DuplicateKeyError("E11000 duplicate key error collection: accounts index: org_user_unique", 11000)


@pytest.mark.parametrize("collection", ["invitations", "memberships"])
async def test_an_upsert_lost_to_a_concurrent_request_is_the_same_outcome(api, services, monkeypatch, collection):
    owner = await sign_up(api, "owner@example.com")
    invitee = await sign_up(api, "invitee@example.com")
    acme = (await create_org(api, owner[0], name="Acme"))["orgId"]
    lost = LostUpsert(getattr(services.organisations, collection))
    monkeypatch.setattr(services.organisations, collection, lost)
    response = await invite(api, owner[0], acme, invitee[1])
    assert response.code == 200 and response.json == INVITED, response
    assert len(await stored_invitations(services, orgId=acme, userId=invitee[1])) == 1
    response = await accept(api, invitee[0], acme)
    assert response.code == 200, response
    assert lost.raised == 1
    assert await is_member(services, acme, invitee[1]) and await member_count(services, acme) == 2
    assert await stored_invitations(services, orgId=acme) == []
