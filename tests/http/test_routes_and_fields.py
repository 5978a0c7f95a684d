"""Trailing slashes on every route, bodies ignored where none is taken, and the username / phone / userId rules."""

import re

import pytest
from bson import ObjectId

from handlers.routes import routes
from tests.helpers import PASSWORD, assert_error, error_fields, sign_up
from tests.users_fixtures import make_admin, multipart, stored

pytestmark = pytest.mark.gen_test


def concrete(pattern: str) -> str:
    """A path the pattern matches: each group an id (or, for the docs assets, a real file)."""
    if pattern == "/docs/assets/(.*)":
        return "/docs/assets/swagger-ui.css"
    return re.sub(r"\([^)]*\)", str(ObjectId()), pattern)


@pytest.mark.gen_test(timeout=60)
async def test_every_route_answers_the_same_with_a_trailing_slash(api, services):
    admin = await make_admin(api, services)
    for pattern, *_ in routes():
        path = concrete(pattern)
        plain = await api.get(path, token=admin.token)
        slashed = await api.get(path + "/", token=admin.token)
        # Ids are unknown ones; /metrics is a 404 while METRICS_TOKEN is unset.
        assert plain.code != 404 or "/users/" in path or "/api/" in path or path == "/metrics", path
        assert (slashed.code, slashed.headers["Content-Type"]) == (plain.code, plain.headers["Content-Type"]), path
    listed = await api.get("/users/?limit=9&page=1&sortBy=createdAt:desc", token=admin.token)
    assert listed.code == 200 and listed.json["limit"] == 9
    # One slash only: anything else is still an unknown route.
    assert_error(await api.get("/users//", token=admin.token), 404)
    assert_error(await api.get("/health//"), 404)
    created = await api.post("/api/organisations/", json={"name": "Acme"}, token=admin.token)
    assert created.code == 201


async def test_endpoints_that_take_no_body_ignore_what_they_are_sent(python_api, services):
    api = python_api  # it sends a body with a GET
    ada = await sign_up(api)
    junk = [
        ({"body": b"\xff\xfe not json", "headers": {"Content-Type": "application/json"}}),
        multipart({"file": ""}),
        {"body": b"hello", "headers": {"Content-Type": "text/plain"}},
        {"json": {"unexpected": True}},
    ]
    for sent in junk:
        assert (await api.post("/auth/send-verification-email", token=ada.token, **sent)).code == 204, sent
        assert (await api.put(f"/users/deleteProfilePic/{ada.id}", token=ada.token, **sent)).code == 200, sent
        assert_error(await api.post("/auth/verify-email?token=not-a-real-token", **sent), 401)
        assert (await api.request("GET", "/users/user", token=ada.token, **sent)).code == 200
    for sent in junk[1:]:  # logout with no refreshToken: the bearer token's session ends
        session = await api.login(email="ada@example.com")
        assert (await api.post("/auth/logout", token=session["tokens"]["access"]["token"], **sent)).code == 204
        assert_error(await api.get("/users/user", token=session["tokens"]["access"]["token"]), 401)


async def test_usernames_are_2_to_30_letters_digits_dots_underscores(api, services):
    ada = await sign_up(api, username="Ad")
    assert ada.user["username"] == "ad"
    path = f"/users/{ada.id}"
    for good in ("a_", "x" * 30, "A.b_9"):
        assert (await api.put(path, token=ada.token, json={"username": good})).json["username"] == good.lower()
    for bad in ("a", "x" * 31, "a b", "a-b", "ä1"):
        assert "username" in error_fields(await api.put(path, token=ada.token, json={"username": bad})), bad
    assert error_fields(
        await api.post(
            "/auth/register", json={"name": "B", "email": "b@example.com", "password": PASSWORD, "username": "b"}
        )
    ) == {"username": "must be 2-30 letters, digits, . or _"}


async def test_phones_are_at_most_20_characters_with_at_least_3_digits(api, store):
    body = {"firstName": "John", "lastName": "Doe", "password": PASSWORD}
    for n, good in enumerate(("080419", "123", "+44 (0)20 7946.0958", "1-2-3", "0" * 20)):
        registered = await api.post("/auth/register", json={**body, "email": f"j{n}@example.com", "phone": good})
        assert registered.code == 201 and registered.json["user"]["phone"] == good, (good, registered)
    for bad in ("12", "", "0" * 21, "phone 123", "12x3", "(+-.) 1 2"):
        response = await api.post("/auth/register", json={**body, "email": "k@example.com", "phone": bad})
        assert error_fields(response) == {
            "phone": "must be at most 20 digits, spaces, +, -, (, ) or ., with at least 3 digits"
        }, bad
    assert await store.users.count_documents({"email": "k@example.com"}) == 0


async def test_a_user_id_in_a_registration_body_is_ignored(api, services):
    for body in (
        {"firstName": "John", "lastName": "Doe", "email": "john@example.com", "userId": "given-id"},
        {"name": "Ada", "email": "ada@example.com", "userId": {"any": ["shape"]}},
    ):
        registered = await api.post("/auth/register", json={**body, "password": PASSWORD})
        assert registered.code == 201, registered
        user = registered.json["user"]
        assert user["id"] == user["userId"] and ObjectId.is_valid(user["id"])
        assert "userId" not in await stored(services, user["id"])
    # Elsewhere userId is still an unknown field.
    ada = await api.login(email="ada@example.com")
    assert error_fields(
        await api.put(f"/users/{ada['user']}", token=ada["tokens"]["access"]["token"], json={"userId": "x"})
    ) == {"userId": "is not allowed"}
