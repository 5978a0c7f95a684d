"""GET /api/users/:id: the caller, or someone who shares an organisation with the caller."""

import pytest
from bson import ObjectId

from tests.helpers import PASSWORD, USER_KEYS, assert_error, sign_up
from tests.organisations_fixtures import create_org, invitations, invite, join, leave, org_ids

pytestmark = pytest.mark.gen_test


def user_body(user: dict) -> dict:
    """The success body of GET /api/users/:id for this user."""
    return {"status": "success", "message": "User retrieved successfully", "data": user, "user": user}


async def test_caller_reads_themselves_with_every_field(api):
    registered = await api.register(email="mark@example.com", phone="09001234567")
    user = registered["user"]
    response = await api.get(f"/api/users/{user['id']}", token=registered["tokens"]["access"]["token"])
    assert response.code == 200, response
    assert response.json == user_body(user)
    assert set(user) == USER_KEYS and user["phone"] == "09001234567"
    assert "passwordHash" not in response.body.decode() and "$2b$" not in response.body.decode()


async def test_both_register_shapes_read_themselves_after_login(api):
    board = (await api.register(email="ada@example.com", name="Ada King Lovelace", username="Ada.L"))["user"]
    org = (await api.register(email="grace@example.com", firstName="Grace", lastName="Hopper"))["user"]
    for user in (board, org):
        token = (await api.login(user["email"], PASSWORD))["tokens"]["access"]["token"]
        response = await api.get(f"/api/users/{user['id']}", token=token)
        assert response.code == 200, response
        assert response.json == user_body(user)
    assert (board["firstName"], board["lastName"], board["username"]) == ("Ada", "King Lovelace", "ada.l")
    assert (org["name"], org["username"]) == ("Grace Hopper", None)


async def test_members_of_one_organisation_read_each_other(api):
    owner = await api.register(email="owner@example.com")
    member = await api.register(email="member@example.com", name="Ada Lovelace")
    owner_token, member_token = owner["tokens"]["access"]["token"], member["tokens"]["access"]["token"]
    org_id = (await create_org(api, owner_token, name="Acme"))["orgId"]
    await join(api, owner_token, org_id, member["user"]["id"], member_token)
    for token, user in ((owner_token, member["user"]), (member_token, owner["user"])):
        response = await api.get(f"/api/users/{user['id']}", token=token)
        assert response.code == 200, response
        assert response.json == user_body(user)


async def test_a_stranger_inviting_someone_cannot_read_their_record(api, store):
    # A red-team finding: create an organisation, add the victim by id, read their email, phone and role.
    victim = await api.register(email="victim@example.com", phone="09001234567")
    victim_token, victim_id = victim["tokens"]["access"]["token"], victim["user"]["id"]
    stranger = await api.register(email="stranger@example.com", name="Sam Stranger")
    stranger_token = stranger["tokens"]["access"]["token"]
    victim_orgs_before = (await api.get("/api/organisations", token=victim_token)).json
    memberships_before = await store.memberships.count_documents({"userId": ObjectId(victim_id)})
    trap = (await create_org(api, stranger_token, name="Trap"))["orgId"]

    response = await invite(api, stranger_token, trap, victim_id)
    assert response.code == 200, response
    response = await api.get(f"/api/users/{victim_id}", token=stranger_token)
    assert_error(response, 403, "You do not share an organisation with this user")
    for secret in ("victim@example.com", "09001234567", '"role"'):
        assert secret not in response.body.decode()
    # The victim's organisations are as they were: only an invitation is waiting for them.
    assert (await api.get("/api/organisations", token=victim_token)).json == victim_orgs_before
    assert await store.memberships.count_documents({"userId": ObjectId(victim_id)}) == memberships_before
    assert [inv["orgId"] for inv in await invitations(api, victim_token)] == [trap]
    # Declined, it is gone, and the record stays closed.
    assert (await api.delete(f"/api/invitations/{trap}", token=victim_token)).code == 204
    assert_error(await api.get(f"/api/users/{victim_id}", token=stranger_token), 403)
    assert await invitations(api, victim_token) == []


async def test_an_invitation_never_opens_a_record_either_way(api):
    owner = await api.register(email="owner@example.com")
    invitee = await api.register(email="invitee@example.com")
    owner_token, invitee_token = owner["tokens"]["access"]["token"], invitee["tokens"]["access"]["token"]
    org_id = (await create_org(api, owner_token, name="Acme"))["orgId"]
    assert (await invite(api, owner_token, org_id, invitee["user"]["id"])).code == 200
    assert_error(await api.get(f"/api/users/{invitee['user']['id']}", token=owner_token), 403)
    assert_error(await api.get(f"/api/users/{owner['user']['id']}", token=invitee_token), 403)
    assert org_id not in await org_ids(api, invitee_token)


async def test_someone_sharing_no_organisation_is_403_and_unknown_is_404(api):
    first = await api.register(email="first@example.com")
    second = await api.register(email="second@example.com")
    token = first["tokens"]["access"]["token"]
    # Both have a default organisation, but not the same one.
    response = await api.get(f"/api/users/{second['user']['id']}", token=token)
    assert_error(response, 403, "You do not share an organisation with this user")
    assert "second@example.com" not in response.body.decode()
    for user_id in (str(ObjectId()), "123", "not-an-id", "z" * 24):
        assert_error(await api.get(f"/api/users/{user_id}", token=token), 404, "User not found")


@pytest.mark.parametrize("how", ["leaving", "account deletion"])
async def test_sharing_ends_when_the_other_user_leaves_every_shared_organisation(api, services, how):
    first = await api.register(email="first@example.com")
    second = await api.register(email="second@example.com")
    token, second_token = first["tokens"]["access"]["token"], second["tokens"]["access"]["token"]
    second_id = second["user"]["id"]
    org_id = (await create_org(api, token, name="Acme"))["orgId"]
    await join(api, token, org_id, second_id, second_token)
    assert (await api.get(f"/api/users/{second_id}", token=token)).code == 200
    assert (await api.get(f"/api/users/{first['user']['id']}", token=second_token)).code == 200
    if how == "leaving":
        assert (await leave(api, second_token, org_id, second_id)).code == 204
        assert_error(await api.get(f"/api/users/{first['user']['id']}", token=second_token), 403)
    else:
        await services.organisations.remove_user(ObjectId(second_id))  # what deleting an account does
    assert_error(await api.get(f"/api/users/{second_id}", token=token), 403)


@pytest.mark.gen_test
async def test_a_user_in_no_organisation_still_sees_themselves(api, services, store):
    """Guard held by mutation testing: kills the caller's own record readable only through a shared organisation, or
    a stranger's without one."""
    ada = await sign_up(api)
    bob = await sign_up(api, email="bob@example.com", name="Bob Marley")
    await store.memberships.delete_many({"userId": ObjectId(ada.id)})
    response = await api.get(f"/api/users/{ada.id}", token=ada.token)
    assert response.code == 200 and response.json["data"]["id"] == ada.id
    assert_error(await api.get(f"/api/users/{bob.id}", token=ada.token), 403)
    assert_error(await api.get(f"/api/users/{ada.id}", token=bob.token), 403)
