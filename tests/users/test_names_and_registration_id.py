"""Attack findings in the user record: names that disagree with each other, and the registration userId."""

import pytest

from tests.helpers import PASSWORD

pytestmark = pytest.mark.gen_test


async def test_an_update_keeps_name_equal_to_first_and_last_name(api, services):
    body = await api.register(email="mark@example.com", firstName="Mark", lastName="Essien")
    token, user_id = body["tokens"]["access"]["token"], body["user"]["id"]
    response = await api.put(f"/users/{user_id}", token=token, json={"name": "Bill Gates", "firstName": "Steve"})
    if response.code == 200:
        user = response.json
        assert user["name"] == f"{user['firstName']} {user['lastName']}".strip(), user
    else:
        assert response.code == 422, response  # refusing the contradiction is as good
    stored = await services.users.find_by_email("mark@example.com")
    assert stored["name"] == " ".join(p for p in (stored["firstName"], stored["lastName"]) if p), stored


async def test_an_admin_created_user_has_a_consistent_name(api, services):
    await services.users.ensure_admin("admin@example.com", "admin password 1", "Admin")
    token = (await api.login("admin@example.com", "admin password 1"))["tokens"]["access"]["token"]
    response = await api.post(
        "/users",
        token=token,
        json={"name": "Ada Lovelace", "lastName": "Byron", "email": "ada@example.com", "password": PASSWORD},
    )
    if response.code == 201:
        user = response.json
        assert user["name"] == f"{user['firstName']} {user['lastName']}".strip(), user
    else:
        assert response.code == 422, response
        assert await services.users.find_by_email("ada@example.com") is None


@pytest.mark.parametrize("shape", [{"firstName": "Mark", "lastName": "Essien"}, {"name": "Mark Essien"}])
async def test_a_registration_userid_is_ignored(api, services, shape):
    sent_id = "0123456789abcdef01234567"
    response = await api.post(
        "/auth/register", json={**shape, "email": "mark@example.com", "password": PASSWORD, "userId": sent_id}
    )
    assert response.code == 201, response
    assert response.json["user"]["id"] != sent_id  # ignored: never used as the new id
    stored = await services.users.find_by_email("mark@example.com")
    assert "userId" not in stored and str(stored["_id"]) != sent_id


@pytest.mark.parametrize(
    "sent,stored",
    [
        ({"name": "Ada Lovelace", "lastName": "Lovelace"}, ("Ada Lovelace", "Ada", "Lovelace")),
        ({"name": "Mary Ann Smith", "firstName": "Mary Ann"}, ("Mary Ann Smith", "Mary Ann", "Smith")),
        ({"name": "Ada Byron", "firstName": "Ada", "lastName": "Byron"}, ("Ada Byron", "Ada", "Byron")),
        ({"name": "Bill Gates", "firstName": "Steve"}, None),
        ({"name": "Bill Gates", "firstName": "Bill", "lastName": "Jobs"}, None),
    ],
)
async def test_name_sent_with_its_parts_must_agree_with_them(api, services, sent, stored):
    body = await api.register(email="mark@example.com", firstName="Mark", lastName="Essien")
    token, user_id = body["tokens"]["access"]["token"], body["user"]["id"]
    response = await api.put(f"/users/{user_id}", token=token, json=sent)
    user = await services.users.find_by_email("mark@example.com")
    if stored is None:
        assert response.code == 422 and response.json["errors"] == [
            {"field": "name", "message": "must be firstName and lastName joined"}
        ], response
        assert (user["name"], user["firstName"], user["lastName"]) == ("Mark Essien", "Mark", "Essien")
    else:
        assert response.code == 200, response
        assert (response.json["name"], response.json["firstName"], response.json["lastName"]) == stored
        assert (user["name"], user["firstName"], user["lastName"]) == stored
