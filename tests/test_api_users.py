"""GET /api/users/:id: the caller, or someone who shares an organisation with the caller."""
import pytest
from bson import ObjectId

from tests.helpers import PASSWORD, assert_error

USER_KEYS = {"id", "userId", "name", "firstName", "lastName", "email", "phone", "username", "role",
             "isEmailVerified", "profilePhotoUrl", "favoriteBoards", "createdAt", "updatedAt"}


def user_body(user: dict) -> dict:
    """The success body of GET /api/users/:id for this user."""
    return {"status": "success", "message": "User retrieved successfully", "data": user, "user": user}


@pytest.mark.gen_test
async def test_caller_reads_themselves_with_every_field(api):
    registered = await api.register(email="mark@example.com", phone="09001234567")
    user = registered["user"]
    response = await api.get(f"/api/users/{user['id']}", token=registered["tokens"]["access"]["token"])
    assert response.code == 200, response
    assert response.json == user_body(user)
    assert set(user) == USER_KEYS and user["phone"] == "09001234567"
    assert "passwordHash" not in response.body.decode() and "$2b$" not in response.body.decode()


@pytest.mark.gen_test
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


@pytest.mark.gen_test
async def test_members_of_one_organisation_read_each_other(api):
    owner = await api.register(email="owner@example.com")
    member = await api.register(email="member@example.com", name="Ada Lovelace")
    owner_token, member_token = owner["tokens"]["access"]["token"], member["tokens"]["access"]["token"]
    org_id = (await api.post("/api/organisations", json={"name": "Acme"}, token=owner_token)).json["data"]["orgId"]
    response = await api.post(f"/api/organisations/{org_id}/users", json={"userId": member["user"]["id"]},
                              token=owner_token)
    assert response.code == 200, response
    for token, user in ((owner_token, member["user"]), (member_token, owner["user"])):
        response = await api.get(f"/api/users/{user['id']}", token=token)
        assert response.code == 200, response
        assert response.json == user_body(user)


@pytest.mark.gen_test
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


@pytest.mark.gen_test
async def test_sharing_ends_when_the_other_user_leaves_every_shared_organisation(api, services):
    first = await api.register(email="first@example.com")
    second = await api.register(email="second@example.com")
    token = first["tokens"]["access"]["token"]
    org_id = (await api.post("/api/organisations", json={"name": "Acme"}, token=token)).json["data"]["orgId"]
    await api.post(f"/api/organisations/{org_id}/users", json={"userId": second["user"]["id"]}, token=token)
    assert (await api.get(f"/api/users/{second['user']['id']}", token=token)).code == 200
    await services.organisations.remove_user(ObjectId(second["user"]["id"]))  # what deleting an account does
    assert_error(await api.get(f"/api/users/{second['user']['id']}", token=token), 403)
