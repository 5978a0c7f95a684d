"""Membership at scale: an organisation with many members, a user in hundreds of organisations.

The bulk memberships are written straight to the store, without users behind them except where a
test signs in. They are loaded before the unique index is built, as one would import into real
MongoDB; the stand-in checks a unique index on every insert by scanning the whole collection.
"""

import datetime as dt

import pytest
from bson import ObjectId

from models import organisations as org_model
from models.common import utcnow
from tests.helpers import Store, assert_error, sign_up

# Heavy (20,000 memberships through the stand-in): out of the fast suite, still in CI's full run.
pytestmark = [pytest.mark.slow, pytest.mark.gen_test]

MEMBERS = 20_000
ORGANISATIONS = 300


async def bulk_load_memberships(services, docs: list) -> None:
    """Insert many memberships, then (re)build the membership indexes over them."""
    store = Store(services.database)
    memberships = store.memberships
    await memberships.drop_index("org_user_unique")
    await memberships.insert_many(docs)
    await services.database.ensure_indexes()  # fails on a duplicate (orgId, userId), as start-up would


async def test_membership_indexes_exist(store):
    indexes = await store.memberships.index_information()
    assert list(indexes["org_user_unique"]["key"]) == [("orgId", 1), ("userId", 1)]
    assert indexes["org_user_unique"]["unique"] is True
    assert list(indexes["user_org"]["key"]) == [("userId", 1), ("orgId", 1)]
    assert list(indexes["user_joined"]["key"]) == [("userId", 1), ("createdAt", 1), ("_id", 1)]
    indexes = await store.invitations.index_information()
    assert list(indexes["org_user_unique"]["key"]) == [("orgId", 1), ("userId", 1)]
    assert indexes["org_user_unique"]["unique"] is True
    assert list(indexes["user_invited"]["key"]) == [("userId", 1), ("createdAt", 1), ("_id", 1)]
    assert list(indexes["invited_by"]["key"]) == [("invitedBy", 1)]


@pytest.mark.gen_test(timeout=120)
async def test_membership_checks_in_an_organisation_with_many_members(api, services, store):
    owner_token, owner_id = await sign_up(api, "owner@example.com")
    deep_token, deep_id = await sign_up(api, "deep@example.com", name="Deep Member")
    outsider_token, outsider_id = await sign_up(api, "outsider@example.com")
    response = await api.post("/api/organisations", json={"name": "Big"}, token=owner_token)
    big = response.json["data"]["orgId"]
    now = utcnow()
    docs = [{"orgId": ObjectId(big), "userId": ObjectId(), "createdAt": now} for _ in range(MEMBERS)]
    docs[-2]["userId"] = ObjectId(deep_id)  # joined near the end of a long list
    await bulk_load_memberships(services, docs)
    assert await store.memberships.count_documents({"orgId": ObjectId(big)}) == MEMBERS + 1

    assert (await api.get(f"/api/organisations/{big}", token=deep_token)).code == 200
    assert (await api.get(f"/api/users/{owner_id}", token=deep_token)).code == 200
    assert (await api.get(f"/api/users/{deep_id}", token=owner_token)).code == 200
    assert_error(await api.get(f"/api/organisations/{big}", token=outsider_token), 403)
    assert_error(await api.get(f"/api/users/{deep_id}", token=outsider_token), 403)
    response = await api.post(
        f"/api/organisations/{big}/users", json={"userId": str(outsider_id)}, token=outsider_token
    )
    assert_error(response, 403)

    # A member deep in the list invites the outsider, twice: one invitation, and no membership yet.
    for _ in range(2):
        response = await api.post(
            f"/api/organisations/{big}/users", json={"userId": str(outsider_id)}, token=deep_token
        )
        assert response.code == 200, response
    assert await store.invitations.count_documents({"orgId": ObjectId(big)}) == 1
    assert await store.memberships.count_documents({"orgId": ObjectId(big)}) == MEMBERS + 1
    assert_error(await api.get(f"/api/users/{owner_id}", token=outsider_token), 403)
    # Accepted: a member.
    response = await api.post(f"/api/invitations/{big}/accept", token=outsider_token)
    assert response.code == 200, response
    assert await store.memberships.count_documents({"orgId": ObjectId(big)}) == MEMBERS + 2
    assert await store.invitations.count_documents({"orgId": ObjectId(big)}) == 0
    assert (await api.get(f"/api/organisations/{big}", token=outsider_token)).code == 200
    assert (await api.get(f"/api/users/{owner_id}", token=outsider_token)).code == 200
    assert big in [
        org["orgId"]
        for org in (await api.get("/api/organisations", token=outsider_token)).json["data"]["organisations"]
    ]
    # The deep member leaves: one membership less, and the big organisation's records close to them.
    response = await api.delete(f"/api/organisations/{big}/users/{deep_id}", token=deep_token)
    assert response.code == 204, response
    assert await store.memberships.count_documents({"orgId": ObjectId(big)}) == MEMBERS + 1
    assert_error(await api.get(f"/api/organisations/{big}", token=deep_token), 403)
    assert_error(await api.get(f"/api/users/{owner_id}", token=deep_token), 403)


@pytest.mark.gen_test(timeout=60)
async def test_user_in_hundreds_of_organisations_lists_them_in_join_order(api, services, store):
    token, user_id = await sign_up(api, "busy@example.com")
    default_org = (await api.get("/api/organisations", token=token)).json["data"]["organisations"][0]
    now = utcnow()
    orgs = [
        {
            "_id": ObjectId(),
            "name": f"Org {i:03d}",
            "description": f"number {i}",
            "createdBy": ObjectId(),
            "createdAt": now,
        }
        for i in range(ORGANISATIONS)
    ]
    await store.organisations.insert_many(orgs)
    # Joined newest organisation first, ten at a time in the same millisecond: order is by join time, then
    # by membership id, never by organisation id.
    joined = list(reversed(orgs))
    await bulk_load_memberships(
        services,
        [
            {
                "_id": ObjectId(),
                "orgId": org["_id"],
                "userId": ObjectId(user_id),
                "createdAt": now + dt.timedelta(seconds=1 + i // 10),
            }
            for i, org in enumerate(joined)
        ],
    )

    response = await api.get("/api/organisations", token=token)
    assert response.code == 200, response
    listed = response.json["data"]["organisations"]
    assert listed == [default_org] + [org_model.public_view(org) for org in joined]
    # Another user's list is untouched.
    other_token, _ = await sign_up(api, "other@example.com")
    assert len((await api.get("/api/organisations", token=other_token)).json["data"]["organisations"]) == 1


@pytest.mark.gen_test(timeout=60)
async def test_hundreds_of_invitations_neither_join_nor_flood_the_user(api, store):
    # A red-team finding: being added to 500 organisations made the victim's list 304 KB and ~1 s.
    token, user_id = await sign_up(api, "victim@example.com")
    _, inviter_id = await sign_up(api, "inviter@example.com", firstName="Ina", lastName="Viter")
    orgs_before = (await api.get("/api/organisations", token=token)).json
    now = utcnow()
    orgs = [
        {
            "_id": ObjectId(),
            "name": f"Org {i:03d}",
            "description": "",
            "createdBy": ObjectId(inviter_id),
            "createdAt": now,
        }
        for i in range(500)
    ]
    await store.organisations.insert_many(orgs)
    await store.invitations.insert_many(
        [
            {
                "orgId": org["_id"],
                "userId": ObjectId(user_id),
                "invitedBy": ObjectId(inviter_id),
                "createdAt": now + dt.timedelta(milliseconds=i),
            }
            for i, org in enumerate(orgs)
        ]
    )

    assert (await api.get("/api/organisations", token=token)).json == orgs_before
    response = await api.get("/api/invitations", token=token)
    assert response.code == 200, response
    listed = response.json["data"]["invitations"]
    assert [inv["orgId"] for inv in listed] == [str(org["_id"]) for org in reversed(orgs)][:100]
    assert {inv["invitedBy"]["userId"] for inv in listed} == {str(inviter_id)}
    assert len(response.body) < 40_000
