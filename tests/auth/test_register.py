"""POST /auth/register: both client shapes, the default organisation, validation and uniqueness."""

import asyncio
import datetime as dt
import re

import pytest
from pymongo.errors import DuplicateKeyError

from tests.helpers import PASSWORD, USER_KEYS, assert_error, claims, error_fields

pytestmark = pytest.mark.gen_test

ISO_Z = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")


def check_pair(pair):
    assert set(pair) == {"access", "refresh"}
    for kind in ("access", "refresh"):
        assert set(pair[kind]) == {"token", "expires"}
        assert ISO_Z.match(pair[kind]["expires"])


async def test_register_with_first_and_last_name(api, store):
    response = await api.post(
        "/auth/register",
        json={
            "firstName": "Mark",
            "lastName": "Essien",
            "email": "  MarkEssien@HNG.com ",
            "password": PASSWORD,
            "phone": "09001234567",
        },
    )
    assert response.code == 201, response
    body = response.json
    assert set(body) == {"status", "message", "data", "user", "tokens"}
    assert body["status"] == "success" and body["message"] == "Registration successful"
    user = body["user"]
    assert set(user) == USER_KEYS
    assert user["id"] == user["userId"] and re.match(r"^[0-9a-f]{24}$", user["id"])
    assert user["name"] == "Mark Essien" and user["firstName"] == "Mark" and user["lastName"] == "Essien"
    assert user["email"] == "markessien@hng.com"
    assert user["phone"] == "09001234567" and user["username"] is None
    assert user["role"] == "user" and user["isEmailVerified"] is False
    assert user["profilePhotoUrl"] is None and user["favoriteBoards"] == []
    assert ISO_Z.match(user["createdAt"]) and ISO_Z.match(user["updatedAt"])
    assert body["data"] == {"accessToken": body["tokens"]["access"]["token"], "user": user}
    check_pair(body["tokens"])
    stored = await store.users.find_one({"email": "markessien@hng.com"})
    assert stored["passwordHash"].startswith("$2b$") and PASSWORD not in str(stored)
    assert "password" not in response.body.decode() and "$2b$" not in response.body.decode()


async def test_register_with_name_and_username(api):
    body = await api.register(email="ada@example.com", name="Ada King Lovelace", username="Ada.L")
    user = body["user"]
    assert (user["name"], user["firstName"], user["lastName"]) == ("Ada King Lovelace", "Ada", "King Lovelace")
    assert user["username"] == "ada.l" and user["phone"] is None


async def test_register_single_word_name_has_empty_last_name(api):
    user = (await api.register(email="cher@example.com", name="Cher"))["user"]
    assert (user["firstName"], user["lastName"]) == ("Cher", "")


@pytest.mark.parametrize("shape", ["parts", "name"])
async def test_register_creates_default_organisation(api, store, shape):
    fields = {"name": "Mark Essien"} if shape == "name" else {"firstName": "Mark", "lastName": "Essien"}
    user_id = (await api.register(**fields))["user"]["id"]
    memberships = await store.memberships.find({}).to_list(None)
    assert len(memberships) == 1 and str(memberships[0]["userId"]) == user_id
    org = await store.organisations.find_one({"_id": memberships[0]["orgId"]})
    assert org["name"] == "Mark's Organisation" and org["description"] == "Default organisation"


async def test_access_token_claims_and_lifetime(api, config):
    body = await api.register()
    token = claims(body["tokens"]["access"]["token"])
    user = body["user"]
    assert token["sub"] == token["userId"] == user["id"]
    assert token["email"] == user["email"] and token["role"] == "user" and token["type"] == "access"
    assert re.match(r"^[0-9a-f]{24}$", token["sid"]) and token["jti"]
    assert token["exp"] - token["iat"] == config.access_token_minutes * 60
    expires = dt.datetime.strptime(body["tokens"]["access"]["expires"], "%Y-%m-%dT%H:%M:%S.%fZ")
    assert expires.replace(tzinfo=dt.UTC).timestamp() == token["exp"]
    refresh_expires = dt.datetime.strptime(body["tokens"]["refresh"]["expires"], "%Y-%m-%dT%H:%M:%S.%fZ")
    days = (refresh_expires.replace(tzinfo=dt.UTC) - dt.datetime.now(dt.UTC)).total_seconds() / 86400
    assert config.refresh_token_days - 0.01 < days <= config.refresh_token_days


async def test_missing_fields_are_named_as_the_client_sent_them(api):
    fields = error_fields(await api.post("/auth/register", json={"lastName": "Essien", "email": "a@b.co"}))
    assert fields == {"firstName": "is required", "password": "is required"}
    fields = error_fields(await api.post("/auth/register", json={"name": "Mark", "password": PASSWORD}))
    assert fields == {"email": "is required"}


async def test_invalid_fields_each_get_one_entry(api):
    response = await api.post(
        "/auth/register",
        json={
            "firstName": "",
            "lastName": "x" * 101,
            "email": "not-an-email",
            "password": "short",
            "phone": "abc",
            "role": "admin",
        },
    )
    fields = error_fields(response)
    assert set(fields) == {"firstName", "lastName", "email", "password", "phone", "role"}
    assert fields["role"] == "is not allowed"
    assert "short" not in response.body.decode()  # the rejected password is not echoed


async def test_blank_name_is_rejected_after_trimming(api):
    fields = error_fields(
        await api.post(
            "/auth/register", json={"firstName": "   ", "lastName": "E", "email": "a@b.co", "password": PASSWORD}
        )
    )
    assert set(fields) == {"firstName"}


async def test_password_limit_is_72_bytes_not_characters(api):
    await api.register(email="a@example.com", password="a" * 72)
    await api.login("a@example.com", "a" * 72)
    fields = error_fields(
        await api.post(
            "/auth/register", json={"firstName": "A", "lastName": "B", "email": "b@example.com", "password": "a" * 73}
        )
    )
    assert fields == {"password": "must be at most 72 bytes in UTF-8"}
    # 25 euro signs are 25 characters but 75 bytes: refused rather than silently truncated.
    fields = error_fields(
        await api.post(
            "/auth/register", json={"firstName": "A", "lastName": "B", "email": "c@example.com", "password": "€" * 25}
        )
    )
    assert set(fields) == {"password"}
    await api.register(email="d@example.com", password="€" * 24)
    await api.login("d@example.com", "€" * 24)


async def test_passwords_keep_their_spaces(api):
    await api.register(email="s@example.com", password="  spaced out  ")
    await api.login("s@example.com", "  spaced out  ")
    response = await api.post("/auth/login", json={"email": "s@example.com", "password": "spaced out"})
    assert_error(response, 401, "Authentication failed")


async def test_duplicate_email_and_username_are_422(api, store):
    await api.register(email="dup@example.com", name="First User", username="taken")
    response = await api.post(
        "/auth/register", json={"firstName": "X", "lastName": "Y", "email": "DUP@example.com", "password": PASSWORD}
    )
    assert error_fields(response) == {"email": "is already taken"}
    response = await api.post(
        "/auth/register",
        json={"name": "Other", "email": "other@example.com", "password": PASSWORD, "username": "TAKEN"},
    )
    assert error_fields(response) == {"username": "is already taken"}
    assert await store.users.count_documents({}) == 1
    assert await store.organisations.count_documents({}) == 1


@pytest.mark.gen_test(timeout=30)
async def test_twelve_concurrent_registrations_make_one_account(api, store):
    body = {"firstName": "Race", "lastName": "Condition", "email": "race@example.com", "password": PASSWORD}
    responses = await asyncio.gather(*[api.post("/auth/register", json=body) for _ in range(12)])
    codes = sorted(r.code for r in responses)
    assert codes == [201] + [422] * 11, codes
    for response in responses:
        if response.code == 422:
            assert error_fields(response) == {"email": "is already taken"}
    assert await store.users.count_documents({"email": "race@example.com"}) == 1
    # The losers' default organisations were removed again.
    assert await store.organisations.count_documents({}) == 1
    assert await store.memberships.count_documents({}) == 1


@pytest.mark.gen_test
async def test_a_registration_that_loses_the_email_race_leaves_no_organisation(api, services, store, monkeypatch):
    """Guard held by mutation testing: kills a registration that loses the email race leaving its default
    organisation behind."""

    async def lost_race(document, *args, **kwargs):
        raise DuplicateKeyError("E11000 duplicate key error collection: users index: email_unique", 11000)

    monkeypatch.setattr(services.users.collection, "insert_one", lost_race)
    response = await api.post(
        "/auth/register", json={"name": "Ada Lovelace", "email": "ada@example.com", "password": PASSWORD}
    )
    assert_error(response, 422)
    assert await store.organisations.count_documents({}) == 0
    assert await store.memberships.count_documents({}) == 0


@pytest.mark.parametrize("injected", [{"$ne": None}, {"$gt": ""}, ["a@b.co"], 5, None, True])
async def test_operators_and_non_strings_never_reach_a_query(api, injected):
    await api.register(email="victim@example.com")
    response = await api.post("/auth/login", json={"email": injected, "password": PASSWORD})
    assert error_fields(response) == {"email": "must be a string"}
    response = await api.post("/auth/login", json={"email": "victim@example.com", "password": injected})
    assert error_fields(response) == {"password": "must be a string"}
    response = await api.post(
        "/auth/register", json={"firstName": "A", "lastName": "B", "email": injected, "password": PASSWORD}
    )
    assert set(error_fields(response)) == {"email"}
