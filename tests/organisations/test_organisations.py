"""/api/organisations: listing, reading, creating and inviting members, and who may do each.
Accepting, declining and leaving are in tests/organisations/test_invitations.py."""

import asyncio
import datetime as dt

import pytest
from bson import ObjectId

from tests.helpers import PASSWORD, Held, assert_error, close_to, error_fields, now, sign_up
from tests.organisations_fixtures import (
    INVITED,
    create_org,
    invitations,
    invite,
    is_member,
    join,
    member_count,
    org_ids,
    stored_invitations,
)

pytestmark = pytest.mark.gen_test

NAME_RULE = "must be 1-100 characters without control, invisible or reordering characters"
DESCRIPTION_RULE = "must be at most 500 characters without control, invisible or reordering characters"


@pytest.mark.parametrize("shape", ["parts", "name"])
async def test_default_organisation_is_listed_for_both_register_shapes(api, store, shape):
    fields = {"name": "Mark Essien"} if shape == "name" else {"firstName": "Mark", "lastName": "Essien"}
    token, user_id = await sign_up(api, "mark@example.com", **fields)
    response = await api.get("/api/organisations", token=token)
    assert response.code == 200, response
    stored = await store.memberships.find_one({"userId": ObjectId(user_id)})
    assert response.json == {
        "status": "success",
        "message": "Organisations retrieved successfully",
        "data": {
            "organisations": [
                {"orgId": str(stored["orgId"]), "name": "Mark's Organisation", "description": "Default organisation"}
            ]
        },
    }


async def test_create_organisation_makes_the_caller_a_member(api, store):
    token, user_id = await sign_up(api, "mark@example.com")
    response = await api.post("/api/organisations", json={"name": "  Acme  ", "description": "Widgets"}, token=token)
    assert response.code == 201, response
    org_id = response.json["data"]["orgId"]
    assert response.json == {
        "status": "success",
        "message": "Organisation created successfully",
        "data": {"orgId": org_id, "name": "Acme", "description": "Widgets"},
    }
    stored = await store.organisations.find_one({"_id": ObjectId(org_id)})
    assert stored["name"] == "Acme" and stored["createdBy"] == ObjectId(user_id)
    assert await store.memberships.count_documents({"orgId": ObjectId(org_id), "userId": ObjectId(user_id)}) == 1
    response = await api.get(f"/api/organisations/{org_id}", token=token)
    assert response.code == 200, response
    assert response.json == {
        "status": "success",
        "message": "Organisation retrieved successfully",
        "data": {"orgId": org_id, "name": "Acme", "description": "Widgets"},
    }
    # Listed after the default organisation: the order in which the caller joined.
    assert (await org_ids(api, token))[1:] == [org_id]


@pytest.mark.parametrize(
    "given, stored",
    [(None, ""), ("", ""), ("   ", ""), ("d" * 500, "d" * 500), ("Line one\n\tLine two", "Line one\n\tLine two")],
)
async def test_description_is_optional(api, given, stored):
    token, _ = await sign_up(api, "mark@example.com")
    assert (await create_org(api, token, name="Acme", description=given))["description"] == stored
    assert (await create_org(api, token, name="n" * 100))["description"] == ""


async def test_create_organisation_validation(api, store):
    token, _ = await sign_up(api, "mark@example.com")
    cases = [
        ({}, {"name": "is required"}),
        ({"description": "no name"}, {"name": "is required"}),
        ({"name": ""}, {"name": NAME_RULE}),
        ({"name": "   "}, {"name": NAME_RULE}),
        ({"name": "x" * 101}, {"name": NAME_RULE}),
        ({"name": "Bad\x00Name"}, {"name": NAME_RULE}),
        ({"name": "Bad\nName"}, {"name": NAME_RULE}),
        ({"name": {"$ne": None}}, {"name": "must be a string"}),
        ({"name": "Acme", "description": "x" * 501}, {"description": DESCRIPTION_RULE}),
        ({"name": "Acme", "description": "bell\x07"}, {"description": DESCRIPTION_RULE}),
        ({"name": "Acme", "description": 5}, {"description": "must be a string or null"}),
        ({"name": "Acme", "createdBy": "someone"}, {"createdBy": "is not allowed"}),
        ({"name": 7, "orgId": "x"}, {"name": "must be a string", "orgId": "is not allowed"}),
    ]
    for body, expected in cases:
        assert error_fields(await api.post("/api/organisations", json=body, token=token)) == expected, body
    assert await store.organisations.count_documents({}) == 1  # the default one only


async def test_malformed_requests_are_client_errors(api):
    token, _ = await sign_up(api, "mark@example.com")
    json_header = {"Content-Type": "application/json"}
    response = await api.post("/api/organisations", body=b"{bad", headers=json_header, token=token)
    assert_error(response, 400, "Malformed JSON body")
    response = await api.post(
        "/api/organisations",
        body=b"name=Acme",
        token=token,
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert_error(response, 415)
    response = await api.post("/api/organisations", body=b"[]", headers=json_header, token=token)
    assert error_fields(response) == {"body": "must be an object"}
    assert_error(await api.delete("/api/organisations", token=token), 405)
    assert_error(await api.get("/api/organisations/x/users", token=token), 405)


@pytest.mark.parametrize("org_id", ["6b0f4a14d834e48e586fb52e", "123", "not-an-id", "z" * 24, "%00", "a" * 25])
async def test_unknown_or_malformed_organisation_is_404(api, org_id):
    token, user_id = await sign_up(api, "mark@example.com")
    assert_error(await api.get(f"/api/organisations/{org_id}", token=token), 404, "Organisation not found")
    response = await invite(api, token, org_id, user_id)
    assert_error(response, 404, "Organisation not found")


async def test_non_member_can_neither_list_read_nor_invite_until_they_accept(api, services):
    owner_token, owner_id = await sign_up(api, "owner@example.com")
    outsider_token, outsider_id = await sign_up(api, "outsider@example.com", firstName="Olu", lastName="Out")
    acme = (await create_org(api, owner_token, name="Acme"))["orgId"]

    assert acme not in await org_ids(api, outsider_token)
    assert_error(await api.get(f"/api/organisations/{acme}", token=outsider_token), 403)
    for user_id in (outsider_id, owner_id, str(ObjectId())):  # themselves, a member, an unknown user: all 403
        response = await invite(api, outsider_token, acme, user_id)
        assert_error(response, 403, "You are not a member of this organisation")
    assert_error(await api.get(f"/api/users/{owner_id}", token=outsider_token), 403)
    assert await member_count(services, acme) == 1
    assert await stored_invitations(services, orgId=acme) == []

    response = await invite(api, owner_token, acme, outsider_id)
    assert response.code == 200, response
    assert response.json == INVITED
    # Invited, not yet a member: nothing is open to them until they accept.
    assert await member_count(services, acme) == 1 and not await is_member(services, acme, outsider_id)
    assert [inv["orgId"] for inv in await invitations(api, outsider_token)] == [acme]
    assert acme not in await org_ids(api, outsider_token)
    assert_error(await api.get(f"/api/organisations/{acme}", token=outsider_token), 403)
    assert_error(await api.get(f"/api/users/{owner_id}", token=outsider_token), 403)
    assert_error(await api.get(f"/api/users/{outsider_id}", token=owner_token), 403)

    assert (await api.post(f"/api/invitations/{acme}/accept", token=outsider_token)).code == 200
    assert await member_count(services, acme) == 2
    assert (await org_ids(api, outsider_token))[1:] == [acme]
    assert (await api.get(f"/api/organisations/{acme}", token=outsider_token)).code == 200
    assert (await api.get(f"/api/users/{owner_id}", token=outsider_token)).code == 200
    # The outsider's own default organisation stays theirs alone.
    outsider_default = (await org_ids(api, outsider_token))[0]
    assert_error(await api.get(f"/api/organisations/{outsider_default}", token=owner_token), 403)


async def test_a_member_who_accepted_can_invite_others_but_an_invitee_cannot(api, services):
    owner_token, owner_id = await sign_up(api, "owner@example.com")
    member_token, member_id = await sign_up(api, "member@example.com")
    third_token, third_id = await sign_up(api, "third@example.com")
    _, fourth_id = await sign_up(api, "fourth@example.com")
    acme = (await create_org(api, owner_token, name="Acme"))["orgId"]
    assert (await invite(api, owner_token, acme, third_id)).code == 200
    # A pending invitation gives no right to invite.
    assert_error(await invite(api, third_token, acme, fourth_id), 403, "You are not a member of this organisation")
    assert await stored_invitations(services, orgId=acme, userId=fourth_id) == []

    await join(api, owner_token, acme, member_id, member_token)
    response = await invite(api, member_token, acme, fourth_id)
    assert response.code == 200 and response.json == INVITED, response
    [stored] = await stored_invitations(services, orgId=acme, userId=fourth_id)
    assert stored["invitedBy"] == ObjectId(member_id)
    assert await member_count(services, acme) == 2


async def test_inviting_a_member_or_an_invitee_again_changes_nothing(api, services, store):
    token, user_id = await sign_up(api, "owner@example.com")
    other_token, other_id = await sign_up(api, "other@example.com")
    _, invitee_id = await sign_up(api, "invitee@example.com")
    acme = (await create_org(api, token, name="Acme"))["orgId"]
    await join(api, token, acme, other_id, other_token)
    assert (await invite(api, token, acme, invitee_id)).code == 200
    members_before = await store.memberships.find({"orgId": ObjectId(acme)}).sort("_id").to_list(None)
    invitations_before = await stored_invitations(services, orgId=acme)
    assert [inv["userId"] for inv in invitations_before] == [ObjectId(invitee_id)]
    for given in (other_id, user_id, other_id.upper(), invitee_id, invitee_id.upper()):
        for inviter in (token, other_token):
            response = await invite(api, inviter, acme, given)
            assert response.code == 200, response
            assert response.json == INVITED
    members_after = await store.memberships.find({"orgId": ObjectId(acme)}).sort("_id").to_list(None)
    assert members_after == members_before and len(members_after) == 2
    assert await stored_invitations(services, orgId=acme) == invitations_before  # same inviter, same time
    assert await invitations(api, other_token) == []


async def test_concurrent_invitations_of_one_user_make_one_invitation(api, services):
    token, _ = await sign_up(api, "owner@example.com")
    other_token, other_id = await sign_up(api, "other@example.com")
    acme = (await create_org(api, token, name="Acme"))["orgId"]
    responses = await asyncio.gather(*[invite(api, token, acme, other_id) for _ in range(10)])
    assert [response.code for response in responses] == [200] * 10
    assert len(await stored_invitations(services, orgId=acme, userId=other_id)) == 1
    assert len(await invitations(api, other_token)) == 1
    assert await member_count(services, acme) == 1


async def test_invite_validation_and_unknown_user(api, services, store):
    token, _ = await sign_up(api, "owner@example.com")
    acme = (await create_org(api, token, name="Acme"))["orgId"]
    path = f"/api/organisations/{acme}/users"
    id_rule = "must be an id of 24 hex characters"
    cases = [
        ({}, {"userId": "is required"}),
        ({"userId": "123"}, {"userId": id_rule}),
        ({"userId": "z" * 24}, {"userId": id_rule}),
        ({"userId": "a" * 25}, {"userId": id_rule}),
        ({"userId": None}, {"userId": "must be a string"}),
        ({"userId": {"$ne": None}}, {"userId": "must be a string"}),
        ({"userId": 5}, {"userId": "must be a string"}),
        ({"userId": str(ObjectId()), "role": "admin"}, {"role": "is not allowed"}),
    ]
    for body, expected in cases:
        assert error_fields(await api.post(path, json=body, token=token)) == expected, body
    assert_error(await api.post(path, json={"userId": str(ObjectId())}, token=token), 404, "User not found")
    assert await member_count(services, acme) == 1
    assert await store.invitations.count_documents({}) == 0


async def test_every_api_route_needs_a_token(api, store):
    _, user_id = await sign_up(api, "mark@example.com")
    org_id = str(ObjectId())
    routes = [
        ("GET", f"/api/users/{user_id}"),
        ("GET", "/api/users/bad"),
        ("GET", "/api/organisations"),
        ("POST", "/api/organisations"),
        ("GET", f"/api/organisations/{org_id}"),
        ("GET", "/api/organisations/bad"),
        ("POST", f"/api/organisations/{org_id}/users"),
        ("DELETE", f"/api/organisations/{org_id}/users/{user_id}"),
        ("GET", "/api/invitations"),
        ("POST", f"/api/invitations/{org_id}/accept"),
        ("DELETE", f"/api/invitations/{org_id}"),
    ]
    for method, path in routes:
        body = {"name": "Acme", "userId": user_id} if method == "POST" else None
        assert_error(await api.request(method, path, json=body), 401)
        assert_error(await api.request(method, path, json=body, token="not.a.jwt"), 401)
    assert await store.organisations.count_documents({}) == 1  # the default one only
    assert await store.invitations.count_documents({}) == 0


async def test_deleted_member_leaves_their_organisations_to_the_others(api, services, store):
    # The account deletion itself belongs to /users; it calls remove_user, exercised here directly.
    owner_token, owner_id = await sign_up(api, "owner@example.com")
    leaver_token, leaver_id = await sign_up(api, "leaver@example.com")
    acme = (await create_org(api, owner_token, name="Acme"))["orgId"]
    founded = (await create_org(api, leaver_token, name="Founded by the leaver"))["orgId"]
    await join(api, owner_token, acme, leaver_id, leaver_token)
    await join(api, leaver_token, founded, owner_id, owner_token)

    await services.organisations.remove_user(ObjectId(leaver_id))

    assert await store.memberships.count_documents({"userId": ObjectId(leaver_id)}) == 0
    assert (await org_ids(api, owner_token))[1:] == [acme, founded]
    response = await api.get(f"/api/organisations/{founded}", token=owner_token)
    assert response.code == 200 and response.json["data"]["name"] == "Founded by the leaver"
    assert await member_count(services, acme) == 1 and await member_count(services, founded) == 1


async def test_a_user_registered_either_way_logs_in_and_uses_the_api(api):
    await api.register(email="board@example.com", name="Ada Lovelace", username="ada")
    await api.register(email="org@example.com", firstName="Grace", lastName="Hopper")
    for email, default_name in (
        ("board@example.com", "Ada's Organisation"),
        ("org@example.com", "Grace's Organisation"),
    ):
        token = (await api.login(email, PASSWORD))["tokens"]["access"]["token"]
        response = await api.get("/api/organisations", token=token)
        assert [org["name"] for org in response.json["data"]["organisations"]] == [default_name]
        assert (await create_org(api, token, name="Shared"))["name"] == "Shared"


async def test_a_create_racing_its_creators_deletion_leaves_nothing_of_the_organisation(
    api, services, store, monkeypatch
):
    creator = await sign_up(api, "creator@example.com", firstName="Cree", lastName="Ator")
    member = await sign_up(api, "member@example.com", firstName="Mel", lastName="Member")
    guest = await sign_up(api, "guest@example.com", firstName="Gus", lastName="Guest")
    check = Held(store.users, "find")
    monkeypatch.setattr(services.organisations, "users", check)
    creating = asyncio.ensure_future(api.post("/api/organisations", json={"name": "Acme"}, token=creator[0]))
    await asyncio.wait_for(check.reached.wait(), 10)
    # Written, not yet answered: one who guessed its id joins, and invites another, before the creator's account is
    # deleted, whose cascade ran too early to see any of it (CWE-367).
    acme = str((await store.organisations.find_one({"name": "Acme"}))["_id"])
    await join(api, creator[0], acme, member[1], member[0])
    assert (await invite(api, member[0], acme, guest[1])).code == 200
    assert (await api.delete(f"/users/{creator[1]}", token=creator[0], json={"password": PASSWORD})).code == 204
    check.released.set()
    assert_error(await creating, 401)
    for collection, key in (("organisations", "_id"), ("memberships", "orgId"), ("invitations", "orgId")):
        assert await getattr(store, collection).count_documents({key: ObjectId(acme)}) == 0, collection
    assert acme not in await org_ids(api, member[0])
    assert await invitations(api, guest[0]) == []


@pytest.mark.gen_test
async def test_organisations_are_listed_in_the_order_they_were_joined(api, services, store):
    """Guard held by mutation testing: kills the list's order (joining time, then id) altered, or a deleted
    organisation listed."""
    ada = await sign_up(api)
    created = []
    for name in ("Zeta", "Alpha", "Mid"):
        response = await api.post("/api/organisations", json={"name": name}, token=ada.token)
        created.append(response.json["data"]["orgId"])
    # An organisation deleted behind its memberships' back is not listed.
    await store.organisations.delete_one({"_id": ObjectId(created[1])})
    listed = (await api.get("/api/organisations", token=ada.token)).json["data"]["organisations"]
    assert [org["name"] for org in listed] == ["Ada's Organisation", "Zeta", "Mid"]
    # The order is the joining time, not the id: joined "Mid" first, then the default, then "Zeta".
    memberships = store.memberships
    for org_id, joined in ((created[2], 1), (None, 2), (created[0], 3)):
        query = {"orgId": ObjectId(org_id)} if org_id else {"orgId": {"$nin": [ObjectId(i) for i in created]}}
        when = dt.datetime(2026, 1, joined, tzinfo=dt.UTC)
        await memberships.update_one(query, {"$set": {"createdAt": when}})
    listed = (await api.get("/api/organisations", token=ada.token)).json["data"]["organisations"]
    assert [org["name"] for org in listed] == ["Mid", "Ada's Organisation", "Zeta"]
    # Joined at the same instant: by id, whatever order the store holds them in (the default's
    # membership, the oldest id, is written back last).
    await memberships.update_many({}, {"$set": {"createdAt": dt.datetime(2026, 1, 1, tzinfo=dt.UTC)}})
    default = await memberships.find_one({"orgId": {"$nin": [ObjectId(i) for i in created]}})
    await memberships.delete_one({"_id": default["_id"]})
    await memberships.insert_one(default)
    listed = (await api.get("/api/organisations", token=ada.token)).json["data"]["organisations"]
    assert [org["name"] for org in listed] == ["Ada's Organisation", "Zeta", "Mid"]


@pytest.mark.gen_test
async def test_a_new_organisation_is_stored_with_exactly_its_fields(api, services, store):
    """Guard held by mutation testing: kills a field of the stored organisation or of its membership altered, dropped
    or added (mutmut)."""
    ada = await sign_up(api)
    response = await api.post("/api/organisations", json={"name": "Acme", "description": "Anvils"}, token=ada.token)
    org_id = ObjectId(response.json["data"]["orgId"])
    stored_org = await store.organisations.find_one({"_id": org_id})
    assert set(stored_org) == {"_id", "name", "description", "createdBy", "createdAt"}
    assert (stored_org["name"], stored_org["description"], stored_org["createdBy"]) == (
        "Acme",
        "Anvils",
        ObjectId(ada.id),
    )
    assert close_to(stored_org["createdAt"], now())
    membership = await store.memberships.find_one({"orgId": org_id})
    assert membership["userId"] == ObjectId(ada.id) and membership["createdAt"] == stored_org["createdAt"]
