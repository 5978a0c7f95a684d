"""Found by the red-team pass (docs/history/attack-findings.md): registering ADMIN_EMAIL before the admin bootstrap
gains nothing.

Before: ensure_admin promoted the existing account and kept *its* password, so whoever registered the
admin's address first became an admin with a password of their choosing.
"""

import asyncio

import pytest
from bson import ObjectId
from pymongo.errors import NetworkTimeout

from models import sessions as session_model
from tests.helpers import assert_error, claims


def network_timeout(*args, **kwargs):
    raise NetworkTimeout("localhost:27017: timed out (configured timeouts: timeoutMS: 5000.0ms)")


ADMIN_EMAIL, ADMIN_PASSWORD = "root@example.com", "the real admin password"
SQUATTER_PASSWORD = "squatter's own password"


@pytest.mark.gen_test(timeout=30)
async def test_a_squatter_on_the_admin_email_is_locked_out_and_the_admin_gets_in(api, services, store):
    squatter = await api.register(email=ADMIN_EMAIL, password=SQUATTER_PASSWORD)
    squatter_id = ObjectId(squatter["user"]["id"])
    assert (await api.post("/auth/forgot-password", json={"email": ADMIN_EMAIL})).code == 204
    second = (await api.login(ADMIN_EMAIL, SQUATTER_PASSWORD))["tokens"]

    # What start-up runs with ADMIN_EMAIL / ADMIN_PASSWORD set (services.container._prepare_database).
    await services.users.ensure_admin(ADMIN_EMAIL, ADMIN_PASSWORD, "Site Admin")

    for tokens in (squatter["tokens"], second):
        assert_error(await api.get("/users/user", token=tokens["access"]["token"]), 401)
        assert_error(await api.get("/users", token=tokens["access"]["token"]), 401)
        assert_error(await api.post("/auth/refresh-tokens", json={"refreshToken": tokens["refresh"]["token"]}), 401)
    assert_error(await api.post("/auth/login", json={"email": ADMIN_EMAIL, "password": SQUATTER_PASSWORD}), 401)
    assert await store.sessions.count_documents({"userId": squatter_id}) == 0
    assert (
        await store.tokens.count_documents(
            {"userId": squatter_id, "type": {"$in": [session_model.RESET, session_model.VERIFY]}}
        )
        == 0
    )

    admin = await api.login(ADMIN_EMAIL, ADMIN_PASSWORD)
    assert admin["data"]["user"]["role"] == "admin" and claims(admin["tokens"]["access"]["token"])["role"] == "admin"
    assert (await api.get("/users", token=admin["tokens"]["access"]["token"])).code == 200
    assert await store.users.count_documents({"email": ADMIN_EMAIL}) == 1


@pytest.mark.gen_test(timeout=30)
async def test_a_restart_leaves_a_bootstrapped_admin_signed_in(api, services, store):
    await services.users.ensure_admin(ADMIN_EMAIL, ADMIN_PASSWORD, "Site Admin")
    admin = await api.login(ADMIN_EMAIL, ADMIN_PASSWORD)
    before = await store.users.find_one({"email": ADMIN_EMAIL})
    await services.users.ensure_admin(ADMIN_EMAIL, ADMIN_PASSWORD, "Site Admin")
    assert (await api.get("/users/user", token=admin["tokens"]["access"]["token"])).code == 200
    assert await store.users.find_one({"email": ADMIN_EMAIL}) == before


class TestAtStartUp:
    @pytest.fixture
    def settings_env(self):
        return {"ADMIN_EMAIL": ADMIN_EMAIL, "ADMIN_PASSWORD": ADMIN_PASSWORD}

    @pytest.mark.gen_test(timeout=30)
    async def test_once_bootstrapped_the_address_cannot_be_registered(self, api, services):
        for _ in range(200):
            if await services.users.find_by_email(ADMIN_EMAIL):
                break
            await asyncio.sleep(0.02)
        response = await api.post(
            "/auth/register", json={"name": "Squatter", "email": ADMIN_EMAIL, "password": SQUATTER_PASSWORD}
        )
        assert response.code == 422
        await api.login(ADMIN_EMAIL, ADMIN_PASSWORD)


@pytest.mark.gen_test(timeout=30)
async def test_a_squatter_moving_away_while_the_admin_password_hashes_is_not_crowned(api, services, store, monkeypatch):
    """The squatter registers ADMIN_EMAIL, and changes the account's email while the bootstrap
    hashes ADMIN_PASSWORD (held open here). The promotion is one write on {_id, email: ADMIN_EMAIL}: it
    misses, nobody but ADMIN_EMAIL becomes admin, and the squatter's sessions end."""
    squatter = await api.register(email=ADMIN_EMAIL, password=SQUATTER_PASSWORD)
    squatter_id, squatter_token = ObjectId(squatter["user"]["id"]), squatter["tokens"]["access"]["token"]
    second = (await api.login(ADMIN_EMAIL, SQUATTER_PASSWORD))["tokens"]
    hash_password = services.passwords.hash
    reached, released = asyncio.Event(), asyncio.Event()

    async def held_hash(password):
        if not reached.is_set():
            reached.set()
            await released.wait()
        return await hash_password(password)

    monkeypatch.setattr(services.passwords, "hash", held_hash)
    bootstrap = asyncio.ensure_future(services.users.ensure_admin(ADMIN_EMAIL, ADMIN_PASSWORD, "Site Admin"))
    await asyncio.wait_for(reached.wait(), 10)
    moved = await api.put(
        f"/users/{squatter_id}",
        token=squatter_token,
        json={"email": "elsewhere@example.com", "currentPassword": SQUATTER_PASSWORD},
    )
    assert moved.code == 200 and moved.json["role"] == "user", moved
    # The session deletes fail from here: the squatter's sessions must end by the epoch alone.
    monkeypatch.setattr(services.sessions.sessions, "delete_many", network_timeout)
    released.set()
    await asyncio.wait_for(bootstrap, 20)
    monkeypatch.undo()

    stored = await store.users.find_one({"_id": squatter_id})
    assert (stored["email"], stored["role"]) == ("elsewhere@example.com", "user")
    assert [doc["email"] async for doc in store.users.find({"role": "admin"})] == [ADMIN_EMAIL]
    for tokens in ({"access": {"token": squatter_token}, "refresh": squatter["tokens"]["refresh"]}, second):
        assert_error(await api.get("/users/user", token=tokens["access"]["token"]), 401)
        assert_error(await api.post("/auth/refresh-tokens", json={"refreshToken": tokens["refresh"]["token"]}), 401)
    # The squatter keeps an ordinary account under their own password; the admin's password opens only the admin.
    assert_error(
        await api.post("/auth/login", json={"email": "elsewhere@example.com", "password": ADMIN_PASSWORD}), 401
    )
    again = await api.login("elsewhere@example.com", SQUATTER_PASSWORD)
    assert again["data"]["user"]["role"] == "user"
    assert_error(await api.get("/users", token=again["tokens"]["access"]["token"]), 403)
    admin = await api.login(ADMIN_EMAIL, ADMIN_PASSWORD)
    assert admin["data"]["user"]["role"] == "admin" and admin["data"]["user"]["id"] != str(squatter_id)
    assert (await api.get("/users", token=admin["tokens"]["access"]["token"])).code == 200


@pytest.mark.gen_test(timeout=30)
async def test_the_promotion_ends_the_squatters_sessions_in_the_same_write(api, services, store, monkeypatch):
    squatter = await api.register(email=ADMIN_EMAIL, password=SQUATTER_PASSWORD)
    monkeypatch.setattr(services.sessions.sessions, "delete_many", network_timeout)
    await services.users.ensure_admin(ADMIN_EMAIL, ADMIN_PASSWORD, "Site Admin")
    monkeypatch.undo()
    assert await store.sessions.count_documents({"userId": ObjectId(squatter["user"]["id"])}) == 1  # left, dead
    assert_error(await api.get("/users", token=squatter["tokens"]["access"]["token"]), 401)
    assert_error(
        await api.post("/auth/refresh-tokens", json={"refreshToken": squatter["tokens"]["refresh"]["token"]}), 401
    )
    assert (await store.users.find_one({"email": ADMIN_EMAIL}))["sessionEpoch"] == 1
