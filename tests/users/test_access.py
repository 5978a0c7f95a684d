"""Who may act on whom under /users (services/users.py Users.require_admin / target_for), through HTTP:
the messages and the order of the checks."""

import pytest
from bson import ObjectId

from tests.helpers import assert_error, sign_up

pytestmark = pytest.mark.gen_test

ADMIN_PASSWORD = "admin password 1"


async def admin_token(api, services) -> str:
    await services.users.ensure_admin("admin@example.com", ADMIN_PASSWORD, "Admin")
    return (await api.login("admin@example.com", ADMIN_PASSWORD))["tokens"]["access"]["token"]


async def test_a_non_admin_naming_someone_else_is_403_whether_or_not_the_id_exists(api, services):
    ada = await sign_up(api, "ada@example.com")
    grace = await sign_up(api, "grace@example.com", name="Grace Hopper")
    for user_id in (grace.id, str(ObjectId())):
        assert_error(await api.get(f"/users/{user_id}", token=ada.token), 403, "Admins only")
        assert_error(
            await api.patch(f"/users/{user_id}", token=ada.token, json={"name": "Taken Over"}), 403, "Admins only"
        )
    stored = await services.users.get(ObjectId(grace.id))
    assert stored["name"] == "Grace Hopper"
    assert_error(await api.get("/users/not-an-id", token=ada.token), 404)  # malformed: 404 before the role check


async def test_a_non_admin_acts_on_themselves_and_lists_nobody(api):
    ada = await sign_up(api, "ada@example.com")
    response = await api.get(f"/users/{ada.id}", token=ada.token)
    assert response.code == 200, response
    assert response.json["email"] == "ada@example.com"
    assert_error(await api.get("/users", token=ada.token), 403, "Admins only")


async def test_an_admin_reaches_anyone_and_an_unknown_id_is_404(api, services):
    token = await admin_token(api, services)
    grace = await sign_up(api, "grace@example.com", name="Grace Hopper")
    response = await api.get(f"/users/{grace.id}", token=token)
    assert response.code == 200, response
    assert response.json["email"] == "grace@example.com"
    assert_error(await api.get(f"/users/{ObjectId()}", token=token), 404, "User not found")
