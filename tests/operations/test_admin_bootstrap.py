"""ADMIN_EMAIL / ADMIN_PASSWORD make sure an admin exists at start-up."""

import asyncio

import pytest

from tests.helpers import PASSWORD, assert_error, claims

pytestmark = pytest.mark.gen_test

ADMIN = {"ADMIN_EMAIL": "Root@Example.com", "ADMIN_PASSWORD": "admin password 1", "ADMIN_NAME": "Site Admin"}


async def wait_for_user(services, email):
    for _ in range(200):
        user = await services.users.find_by_email(email)
        if user is not None:
            return user
        await asyncio.sleep(0.02)
    raise AssertionError(f"{email} was never created")


class TestCreate:
    @pytest.fixture
    def settings_env(self):
        return ADMIN

    @pytest.mark.gen_test
    async def test_admin_is_created_and_can_log_in(self, api, services):
        await wait_for_user(services, "root@example.com")
        body = await api.login("root@example.com", "admin password 1")
        assert body["data"]["user"]["role"] == "admin" and body["data"]["user"]["name"] == "Site Admin"
        assert claims(body["tokens"]["access"]["token"])["role"] == "admin"


async def test_existing_user_is_promoted_and_gets_the_admin_password(api, services, store):
    await api.register(email="root@example.com")
    await services.users.ensure_admin("root@example.com", "admin password 1", "Site Admin")
    admin = await api.login("root@example.com", "admin password 1")
    await services.users.ensure_admin("root@example.com", "admin password 1", "Site Admin")  # idempotent
    assert (await api.get("/users/user", token=admin["tokens"]["access"]["token"])).code == 200  # not logged out
    assert (await api.post("/auth/login", json={"email": "root@example.com", "password": PASSWORD})).code == 401
    assert admin["data"]["user"]["role"] == "admin"
    assert await store.users.count_documents({}) == 1


# services/users.py Users.ensure_admin: returning when the account is already an admin without checking
# ADMIN_PASSWORD against its hash (or not ending its sessions) would keep a leaked admin password, and the
# sessions opened with it, working after the operator changed it and restarted (CWE-262, CWE-613).
async def test_a_new_admin_password_at_restart_retires_the_old_one_and_its_sessions(api, services):
    """Guard held by mutation testing: kills `admin-password` in tools/guard_mutations.py."""
    email, name = "root@example.com", "Site Admin"
    # The start-up bootstrap (services/container.py runs exactly this), over the one store, three start-ups.
    await services.users.ensure_admin(email, "admin password 1", name)
    old = await api.login(email, "admin password 1")
    old_access, old_refresh = old["tokens"]["access"]["token"], old["tokens"]["refresh"]["token"]
    await services.users.ensure_admin(email, "admin password 1", name)  # restarted, same password: nothing changes
    assert (await api.get("/users/user", token=old_access)).code == 200
    await services.users.ensure_admin(email, "admin password 2", name)  # restarted with the new password
    assert_error(await api.post("/auth/login", json={"email": email, "password": "admin password 1"}), 401)
    assert_error(await api.get("/users/user", token=old_access), 401)
    assert_error(await api.post("/auth/refresh-tokens", json={"refreshToken": old_refresh}), 401)
    new = await api.login(email, "admin password 2")
    assert new["data"]["user"]["role"] == "admin"
