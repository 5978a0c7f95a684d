"""Browser sessions: the session cookie names the same server-side session as the tokens issued with it."""

import datetime as dt
import hashlib
from email.utils import parsedate_to_datetime
from http.cookies import SimpleCookie

import pytest
from bson import ObjectId

from tests.helpers import PASSWORD, assert_error, claims, link_token

pytestmark = pytest.mark.gen_test

APP = "https://app.example.com"
WEB = "https://web.example.com"  # listed in CORS_ORIGINS


@pytest.fixture
def settings_env():
    return {"APP_URL": APP, "CORS_ORIGINS": WEB, "REFRESH_TOKEN_DAYS": "7"}


def session_cookie(response) -> SimpleCookie:
    (line,) = [v for v in response.headers.get_list("Set-Cookie") if v.startswith("session=")]
    return SimpleCookie(line)["session"], line


def with_cookie(value: str, origin: str = None, **headers) -> dict:
    return {"Cookie": f"session={value}", **({"Origin": origin} if origin else {}), **headers}


async def signed_in(api, **register):
    registered = await api.post(
        "/auth/register", json={"name": "Ada Lovelace", "email": "ada@example.com", "password": PASSWORD, **register}
    )
    assert registered.code == 201
    morsel, _ = session_cookie(registered)
    return registered.json, morsel.value


async def test_login_and_register_set_an_httponly_lax_cookie_stored_only_as_a_hash(api, store):
    registered = await api.post(
        "/auth/register", json={"name": "Ada", "email": "ada@example.com", "password": PASSWORD}
    )
    morsel, line = session_cookie(registered)
    assert len(morsel.value) == 43  # 32 random bytes, base64url
    assert morsel["httponly"] and morsel["secure"] and morsel["samesite"] == "Lax" and morsel["path"] == "/"
    assert morsel["max-age"] == str(7 * 86400), line
    sid = ObjectId(claims(registered.json["tokens"]["access"]["token"])["sid"])
    session = await store.sessions.find_one({"_id": sid})
    assert session["cookieHash"] == hashlib.sha256(morsel.value.encode()).hexdigest()
    assert morsel.value not in repr(await store.sessions.find({}).to_list(None))
    logged_in = await api.post("/auth/login", json={"email": "ada@example.com", "password": PASSWORD})
    other, _ = session_cookie(logged_in)
    assert other.value != morsel.value
    assert await store.sessions.count_documents({"cookieHash": {"$exists": True}}) == 2


async def test_the_cookie_authenticates_and_the_bearer_header_wins(api, services):
    ada, cookie = await signed_in(api)
    me = await api.get("/users/user", headers=with_cookie(cookie))
    assert me.code == 200 and me.json["id"] == ada["user"]["id"]
    bob = await api.register(email="bob@example.com", name="Bob")
    as_bob = await api.get("/users/user", token=bob["tokens"]["access"]["token"], headers=with_cookie(cookie))
    assert as_bob.json["id"] == bob["user"]["id"]
    assert_error(await api.get("/users/user", headers=with_cookie(cookie, Authorization="Bearer junk")), 401)
    for junk in ("x", "a" * 43, cookie[:-1] + ("A" if cookie[-1] != "A" else "B")):
        await assert_signed_out(api, junk)
    # Refreshing the tokens keeps the same session, so the cookie goes on working.
    await api.post("/auth/refresh-tokens", json={"refreshToken": ada["tokens"]["refresh"]["token"]})
    assert (await api.get("/users/user", headers=with_cookie(cookie))).code == 200


async def test_cookie_changes_need_a_trusted_origin_and_bearer_ones_do_not(api, store):
    ada, cookie = await signed_in(api)
    user_id = ObjectId(ada["user"]["id"])
    for headers in (
        with_cookie(cookie),
        with_cookie(cookie, "https://evil.example.com"),
        with_cookie(cookie, "null"),
        with_cookie(cookie, Referer="https://evil.example.com/app"),
        with_cookie(cookie, Referer="not a url"),
    ):
        refused = await api.put("/users/addToFav", json={"boardId": "planted"}, headers=headers)
        assert_error(refused, 403, "Cross-site request refused: Origin is not trusted")
    assert (await store.users.find_one({"_id": user_id}))["favoriteBoards"] == []
    for n, headers in enumerate(
        (with_cookie(cookie, APP), with_cookie(cookie, WEB), with_cookie(cookie, Referer=f"{APP}/settings?tab=1"))
    ):
        accepted = await api.put("/users/addToFav", json={"boardId": f"b{n}"}, headers=headers)
        assert accepted.code == 200, (headers, accepted)
    by_bearer = await api.put("/users/addToFav", json={"boardId": "b3"}, token=ada["tokens"]["access"]["token"])
    assert by_bearer.code == 200 and by_bearer.json["favoriteBoards"] == ["b0", "b1", "b2", "b3"]
    assert (await api.get("/users/getFav", headers=with_cookie(cookie))).code == 200  # reads need no Origin


async def test_logout_with_only_the_cookie_ends_that_session_and_clears_it(api, services):
    ada, cookie = await signed_in(api)
    other = await api.login(email="ada@example.com")
    out = await api.post("/auth/logout", headers=with_cookie(cookie, APP))
    assert out.code == 204
    assert_cleared(out)
    await assert_signed_out(api, cookie)  # a dead cookie is cleared when presented
    assert_error(await api.get("/users/user", token=ada["tokens"]["access"]["token"]), 401)
    assert_error(await api.post("/auth/refresh-tokens", json={"refreshToken": ada["tokens"]["refresh"]["token"]}), 401)
    assert (await api.get("/users/user", token=other["tokens"]["access"]["token"])).code == 200
    assert_error(await api.post("/auth/logout", headers=with_cookie(cookie, APP)), 401)
    assert_error(await api.post("/auth/logout"), 401)


async def test_password_change_and_account_deletion_end_cookie_sessions(api, store):
    ada, cookie = await signed_in(api)
    second = await api.post("/auth/login", json={"email": "ada@example.com", "password": PASSWORD})
    second_cookie = session_cookie_value(second)
    changed = await api.post(
        "/auth/change-password",
        token=second.json["tokens"]["access"]["token"],
        json={"email": "ada@example.com", "password": PASSWORD, "newPassword": "another good password"},
    )
    assert changed.code == 204
    await assert_signed_out(api, cookie)
    assert (await api.get("/users/user", headers=with_cookie(second_cookie))).code == 200  # the caller's own
    deleted = await api.post(
        f"/users/{ada['user']['id']}",
        json={"password": "another good password"},
        headers=with_cookie(second_cookie, APP),
    )
    assert deleted.code == 204
    await assert_signed_out(api, second_cookie)
    assert await store.sessions.count_documents({}) == 0


def assert_cleared(response, secure: bool = True) -> None:
    """Set-Cookie empties the cookie with an expiry in the past (Tornado's clear_cookie), with the attributes
    it was set with: a browser lets only a Secure Set-Cookie overwrite a Secure cookie, and one for another
    Path would leave the session cookie in place."""
    cleared, line = session_cookie(response)
    assert cleared.value == "" and parsedate_to_datetime(cleared["expires"]) < dt.datetime.now(dt.UTC), line
    assert cleared["path"] == "/" and cleared["httponly"] is True and cleared["samesite"] == "Lax", line
    assert bool(cleared["secure"]) is secure, line


async def assert_signed_out(api, cookie: str) -> None:
    """A cookie naming no live session: an endpoint that needs one is a 401, and GET /users/user (the web app's
    signed-out check, docs/using/clients.md) is 200 with the body null; both clear the cookie."""
    refused = await api.get("/users/getFav", headers=with_cookie(cookie))
    assert_error(refused, 401)
    assert_cleared(refused)
    me = await api.get("/users/user", headers=with_cookie(cookie))
    assert me.code == 200 and me.body == b"null", me
    assert_cleared(me)


def session_cookie_value(response) -> str:
    return session_cookie(response)[0].value


class TestCookiesOff:
    @pytest.fixture
    def settings_env(self):
        return {"SESSION_COOKIE": "false"}

    async def test_no_cookie_is_set_stored_or_believed(self, api, store):
        registered = await api.post(
            "/auth/register", json={"name": "Ada", "email": "ada@example.com", "password": PASSWORD}
        )
        assert registered.code == 201 and not registered.headers.get_list("Set-Cookie")
        logged_in = await api.post("/auth/login", json={"email": "ada@example.com", "password": PASSWORD})
        assert not logged_in.headers.get_list("Set-Cookie")
        assert await store.sessions.count_documents({"cookieHash": {"$exists": True}}) == 0
        ignored = await api.get("/users/getFav", headers=with_cookie("a" * 43))
        assert_error(ignored, 401)
        assert not ignored.headers.get_list("Set-Cookie")
        signed_out = await api.get("/users/user", headers=with_cookie("a" * 43))
        assert signed_out.code == 200 and signed_out.body == b"null" and not signed_out.headers.get_list("Set-Cookie")
        assert (await api.get("/users/user", token=logged_in.json["tokens"]["access"]["token"])).code == 200
        # A cookie left from before cookies were turned off is neither believed nor touched on logout.
        out = await api.post(
            "/auth/logout", token=logged_in.json["tokens"]["access"]["token"], headers=with_cookie("a" * 43)
        )
        assert out.code == 204 and not out.headers.get_list("Set-Cookie")
        assert await store.sessions.count_documents({}) == 1  # registration's session; login's ended


class TestPasswordReset:
    @pytest.fixture
    def settings_env(self, smtp_env):
        return smtp_env

    async def test_a_password_reset_ends_every_cookie_session(self, api, store, mailbox):
        _, cookie = await signed_in(api)
        assert (await api.get("/users/user", headers=with_cookie(cookie))).code == 200
        assert (await api.post("/auth/forgot-password", json={"email": "ada@example.com"})).code == 204
        token = link_token((await mailbox.wait_for(2))[1], "reset-password")
        reset = await api.post(f"/auth/reset-password?token={token}", json={"password": "another good password"})
        assert reset.code == 204
        await assert_signed_out(api, cookie)
        assert await store.sessions.count_documents({}) == 0


class TestPlainHttpAppUrl:
    @pytest.fixture
    def settings_env(self):
        return {"APP_URL": "http://localhost:3000"}

    async def test_the_cookie_is_not_secure_and_the_app_url_origin_is_trusted(self, api, services):
        _, cookie = await signed_in(api)
        logged_in = await api.post("/auth/login", json={"email": "ada@example.com", "password": PASSWORD})
        morsel, _ = session_cookie(logged_in)
        assert not morsel["secure"] and morsel["httponly"]
        out = await api.post("/auth/logout", headers=with_cookie(morsel.value, "http://localhost:3000"))
        assert out.code == 204
        assert_cleared(out, secure=False)
        assert (
            await api.put(
                "/users/addToFav", json={"boardId": "b"}, headers=with_cookie(cookie, "http://localhost:3000")
            )
        ).code == 200
        assert_error(
            await api.put(
                "/users/addToFav", json={"boardId": "c"}, headers=with_cookie(cookie, "https://localhost:3000")
            ),
            403,
        )
