"""GET /users/user, GET /users/:id and updates (PUT and PATCH) with their rules."""

import asyncio
import datetime as dt

import pytest
from bson import ObjectId
from pymongo.errors import AutoReconnect

from tests.helpers import PASSWORD, Store, assert_error, error_fields, sign_up
from tests.users_fixtures import make_admin, stored

pytestmark = pytest.mark.gen_test

NEW_PASSWORD = "a brand new password"
OTHER_ID = "0123456789abcdef01234567"
PAST = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)


async def test_users_user_is_the_caller(api):
    ada = await sign_up(api, username="ada")
    response = await api.get("/users/user", token=ada.token)
    assert response.code == 200 and response.json == ada.user
    # Signed out (no Authorization header, no session cookie): null, which the web app reads as "signed out".
    signed_out = await api.get("/users/user")
    assert signed_out.code == 200 and signed_out.body == b"null" and signed_out.json is None
    assert signed_out.headers["Content-Type"] == "application/json; charset=UTF-8"
    assert signed_out.headers["Cache-Control"] == "no-store"
    # A token client's failing Authorization header is still a 401: it refreshes on it.
    for header in ("Bearer not-a-jwt", "Bearer ", "Basic YTpi", ada.token):
        assert_error(await api.get("/users/user", headers={"Authorization": header}), 401, "Please authenticate")


async def test_get_self_or_admin_else_403_and_bad_ids_404(api, services):
    ada = await sign_up(api)
    bob = await sign_up(api, email="bob@example.com", name="Bob")
    admin = await make_admin(api, services)
    assert (await api.get(f"/users/{ada.id}", token=ada.token)).json == ada.user
    assert (await api.get(f"/users/{ada.id}", token=admin.token)).json == ada.user
    assert_error(await api.get(f"/users/{bob.id}", token=ada.token), 403)
    # A non-admin cannot tell unknown ids from other people's.
    assert_error(await api.get(f"/users/{OTHER_ID}", token=ada.token), 403)
    assert_error(await api.get(f"/users/{OTHER_ID}", token=admin.token), 404)
    for junk in ("not-an-id", "123", "zzzzzzzzzzzzzzzzzzzzzzzz", ada.id + "0"):
        assert_error(await api.get(f"/users/{junk}", token=admin.token), 404)
        assert_error(await api.get(f"/users/{junk}", token=ada.token), 404)
    assert_error(await api.get(f"/users/{ada.id}"), 401)


async def test_route_words_are_not_ids(api, services):
    ada = await sign_up(api)
    admin = await make_admin(api, services)
    assert (await api.get("/users/user", token=ada.token)).json["id"] == ada.id
    assert (await api.get("/users/getFav", token=ada.token)).json == {"favoriteBoards": []}
    assert (await api.get("/users/getUsers?email=ada", token=ada.token)).code == 200
    assert (await api.get("/users/usersByMonth", token=admin.token)).code == 200
    assert (await api.put("/users/addToFav", token=ada.token, json={"boardId": "b1"})).code == 200
    assert (await api.put("/users/removeFromFav", token=ada.token, json={"boardId": "b1"})).code == 200
    assert (await api.put(f"/users/deleteProfilePic/{ada.id}", token=ada.token)).code == 200
    assert_error(await api.delete("/users/user", token=ada.token), 405)


# ---- updates ------------------------------------------------------------------------------------


async def backdate(services, user_id) -> None:
    """Move updatedAt into the past, so a change is visible whatever the clock's resolution."""
    store = Store(services.database)
    await store.users.update_one({"_id": ObjectId(user_id)}, {"$set": {"updatedAt": PAST}})


async def test_put_and_patch_update_fields_and_updated_at(api, services):
    ada = await sign_up(api, username="ada")
    await backdate(services, ada.id)
    response = await api.patch(f"/users/{ada.id}", token=ada.token, json={"phone": "0800 123 4567"})
    assert response.code == 200, response
    assert response.json["phone"] == "0800 123 4567" and response.json["name"] == "Ada Lovelace"
    assert response.json["updatedAt"] > "2001" and response.json["createdAt"] == ada.user["createdAt"]
    await backdate(services, ada.id)
    response = await api.put(f"/users/{ada.id}", token=ada.token, json={"username": "  Countess  "})
    assert response.json["username"] == "countess" and response.json["phone"] == "0800 123 4567"
    assert (await stored(services, ada.id))["updatedAt"] > PAST
    assert (await api.get("/users/user", token=ada.token)).json == response.json


async def test_name_and_its_parts_stay_consistent(api, services):
    ada = await sign_up(api)
    path = f"/users/{ada.id}"
    body = (await api.put(path, token=ada.token, json={"name": "Augusta Ada King"})).json
    assert (body["name"], body["firstName"], body["lastName"]) == ("Augusta Ada King", "Augusta", "Ada King")
    body = (await api.put(path, token=ada.token, json={"lastName": "Byron"})).json
    assert (body["name"], body["firstName"], body["lastName"]) == ("Augusta Byron", "Augusta", "Byron")
    body = (await api.put(path, token=ada.token, json={"firstName": "Ada"})).json
    assert (body["name"], body["firstName"], body["lastName"]) == ("Ada Byron", "Ada", "Byron")
    # name with parts that do not join to it would show two different people to the two client families.
    refused = await api.put(
        path, token=ada.token, json={"name": "The Countess", "firstName": "Ada", "lastName": "Lovelace"}
    )
    assert error_fields(refused) == {"name": "must be firstName and lastName joined"}
    doc = await stored(services, ada.id)
    assert (doc["name"], doc["firstName"], doc["lastName"]) == ("Ada Byron", "Ada", "Byron")
    body = (await api.put(path, token=ada.token, json={"name": "Ada Lovelace", "firstName": "Ada"})).json
    assert (body["name"], body["firstName"], body["lastName"]) == ("Ada Lovelace", "Ada", "Lovelace")
    body = (await api.put(path, token=ada.token, json={"name": "Mononym"})).json
    assert (body["name"], body["firstName"], body["lastName"]) == ("Mononym", "Mononym", "")


async def test_null_username_and_phone_remove_the_field(api, services):
    ada = await sign_up(api, username="ada")
    await sign_up(api, email="ben@example.com", name="Ben")
    await api.patch(f"/users/{ada.id}", token=ada.token, json={"phone": "0800 123 4567"})
    body = (await api.patch(f"/users/{ada.id}", token=ada.token, json={"username": None, "phone": None})).json
    assert body["username"] is None and body["phone"] is None
    doc = await stored(services, ada.id)
    assert "username" not in doc and "phone" not in doc  # absent, so the sparse unique index skips them


async def test_changed_email_is_lower_cased_unverified_and_unique(api, services, store):
    ada = await sign_up(api)
    await sign_up(api, email="taken@example.com", name="Taken", username="taken")
    await store.users.update_one({"email": "ada@example.com"}, {"$set": {"isEmailVerified": True}})
    same = await api.put(f"/users/{ada.id}", token=ada.token, json={"email": "ADA@example.com"})
    # The same address in other case is no change (and an update that changes nothing is a 422).
    assert error_fields(same) == {"body": "must change at least one field"}
    assert (await stored(services, ada.id))["isEmailVerified"] is True
    changed = await api.put(
        f"/users/{ada.id}", token=ada.token, json={"email": " New.Ada@Example.com ", "currentPassword": PASSWORD}
    )
    assert changed.json["email"] == "new.ada@example.com" and changed.json["isEmailVerified"] is False
    assert error_fields(
        await api.put(
            f"/users/{ada.id}", token=ada.token, json={"email": "Taken@example.com", "currentPassword": PASSWORD}
        )
    ) == {"email": "is already taken"}
    assert error_fields(await api.put(f"/users/{ada.id}", token=ada.token, json={"username": "TAKEN"})) == {
        "username": "is already taken"
    }
    assert (await stored(services, ada.id))["email"] == "new.ada@example.com"
    await api.login("new.ada@example.com", PASSWORD)


async def test_concurrent_updates_to_one_email_leave_one_owner(api):
    people = [await sign_up(api, email=f"p{n}@example.com", name=f"P {n}") for n in range(5)]
    responses = await asyncio.gather(
        *[
            api.put(f"/users/{p.id}", token=p.token, json={"email": "wanted@example.com", "currentPassword": PASSWORD})
            for p in people
        ]
    )
    assert sorted(r.code for r in responses) == [200, 422, 422, 422, 422]


async def test_invalid_and_empty_updates_are_422(api):
    ada = await sign_up(api)
    path = f"/users/{ada.id}"
    assert error_fields(await api.put(path, token=ada.token, json={})) == {"body": "must change at least one field"}
    assert error_fields(await api.put(path, token=ada.token)) == {"body": "must change at least one field"}
    fields = error_fields(
        await api.put(
            path,
            token=ada.token,
            json={
                "email": "nope",
                "username": "a",
                "phone": "abc",
                "name": "",
                "isAdmin": True,
                "password": "short",
                "passwordHash": "x",
            },
        )
    )
    assert set(fields) == {"email", "username", "phone", "name", "isAdmin", "password", "passwordHash"}
    assert_error(await api.put(path, token=ada.token, body=b"{bad", headers={"Content-Type": "application/json"}), 400)
    assert_error(
        await api.put(
            path, token=ada.token, body=b"name=x", headers={"Content-Type": "application/x-www-form-urlencoded"}
        ),
        415,
    )


async def test_others_cannot_update_and_admins_can(api, services):
    ada = await sign_up(api)
    bob = await sign_up(api, email="bob@example.com", name="Bob")
    admin = await make_admin(api, services)
    assert_error(await api.put(f"/users/{bob.id}", token=ada.token, json={"name": "Hacked"}), 403)
    assert_error(await api.patch(f"/users/{OTHER_ID}", token=admin.token, json={"name": "Ghost"}), 404)
    assert_error(await api.patch("/users/junk", token=admin.token, json={"name": "Ghost"}), 404)
    response = await api.patch(f"/users/{bob.id}", token=admin.token, json={"name": "Robert"})
    assert response.code == 200 and response.json["name"] == "Robert"
    assert (await stored(services, bob.id))["name"] == "Robert"


async def test_only_admins_change_roles(api, services):
    ada = await sign_up(api)
    admin = await make_admin(api, services)
    assert_error(await api.put(f"/users/{ada.id}", token=ada.token, json={"role": "admin"}), 403)
    assert_error(await api.put(f"/users/{ada.id}", token=ada.token, json={"role": "user"}), 403)
    assert (await stored(services, ada.id))["role"] == "user"
    promoted = await api.put(f"/users/{ada.id}", token=admin.token, json={"role": "admin"})
    assert promoted.json["role"] == "admin"
    # A role change ends the account's sessions in the same write (API.md "Revocation that holds").
    assert_error(await api.get("/users/user", token=ada.token), 401)
    as_admin = (await api.login("ada@example.com", PASSWORD))["tokens"]["access"]["token"]
    assert (await api.get("/users", token=as_admin)).code == 200
    demoted = await api.put(f"/users/{ada.id}", token=admin.token, json={"role": "user"})
    assert demoted.code == 200 and demoted.json["role"] == "user"
    assert_error(await api.get("/users", token=as_admin), 401)
    as_user = (await api.login("ada@example.com", PASSWORD))["tokens"]["access"]["token"]
    assert_error(await api.get("/users", token=as_user), 403)
    # Setting the role it already has changes nothing and ends nothing.
    assert (await api.put(f"/users/{ada.id}", token=admin.token, json={"role": "user", "name": "Ada L"})).code == 200
    assert (await api.get("/users/user", token=as_user)).code == 200


# ---- password changes ---------------------------------------------------------------------------


async def test_self_password_change_needs_the_current_one_and_ends_other_sessions(api):
    ada = await sign_up(api)
    other = (await api.login("ada@example.com", PASSWORD))["tokens"]
    path = f"/users/{ada.id}"
    assert error_fields(await api.put(path, token=ada.token, json={"password": NEW_PASSWORD})) == {
        "currentPassword": "is required"
    }
    assert_error(
        await api.put(path, token=ada.token, json={"password": NEW_PASSWORD, "currentPassword": "wrong password"}),
        401,
        "Authentication failed",
    )
    response = await api.put(path, token=ada.token, json={"password": NEW_PASSWORD, "currentPassword": PASSWORD})
    assert response.code == 200, response
    assert "passwordHash" not in response.json and NEW_PASSWORD not in response.body.decode()
    assert (await api.get("/users/user", token=ada.token)).code == 200  # this session lives on
    assert_error(await api.get("/users/user", token=other["access"]["token"]), 401)
    assert_error(await api.post("/auth/refresh-tokens", json={"refreshToken": other["refresh"]["token"]}), 401)
    assert_error(await api.post("/auth/login", json={"email": "ada@example.com", "password": PASSWORD}), 401)
    await api.login("ada@example.com", NEW_PASSWORD)


async def test_admin_sets_another_users_password_without_it_and_ends_all_their_sessions(api, services):
    ada = await sign_up(api)
    admin = await make_admin(api, services)
    response = await api.put(f"/users/{ada.id}", token=admin.token, json={"password": NEW_PASSWORD})
    assert response.code == 200, response
    assert_error(await api.get("/users/user", token=ada.token), 401)
    assert_error(await api.post("/auth/refresh-tokens", json={"refreshToken": ada.refresh}), 401)
    assert (await api.get("/users/user", token=admin.token)).code == 200
    await api.login("ada@example.com", NEW_PASSWORD)


async def test_admin_changing_their_own_password_is_a_self_change(api, services):
    admin = await make_admin(api, services)
    assert error_fields(await api.put(f"/users/{admin.id}", token=admin.token, json={"password": NEW_PASSWORD})) == {
        "currentPassword": "is required"
    }


class SessionsDown:
    """The sessions collection, except that find_one fails as the driver does when MongoDB is unreachable."""

    def __init__(self, real):
        self._real = real
        self.calls = 0

    async def find_one(self, *args, **kwargs):
        self.calls += 1
        raise AutoReconnect("connection closed")

    def __getattr__(self, name):
        return getattr(self._real, name)


async def test_signed_out_is_never_guessed_when_the_database_fails(api, services, monkeypatch):
    registered = await api.post(
        "/auth/register", json={"name": "Ada", "email": "ada@example.com", "password": PASSWORD}
    )
    cookie = [v for v in registered.headers.get_list("Set-Cookie") if v.startswith("session=")][0]
    cookie = cookie.split(";")[0]
    down = SessionsDown(services.sessions.sessions)
    monkeypatch.setattr(services.sessions, "sessions", down)
    # A session that cannot be looked up is not "signed out": the web app would show its landing page to a
    # signed-in person and drop nothing; the cookie stays (CWE-755).
    answer = await api.get("/users/user", headers={"Cookie": cookie})
    assert_error(answer, 503, "Database unavailable")
    assert down.calls == 1 and not answer.headers.get_list("Set-Cookie")
    monkeypatch.undo()
    assert (await api.get("/users/user", headers={"Cookie": cookie})).json["email"] == "ada@example.com"
