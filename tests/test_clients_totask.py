"""The task-board web app (khalednadam/totask-app, client/src), replayed call by call as Chromium sends them.

What the app's code does, and so what is on the wire here:
- composables/axios.js: one axios instance, `withCredentials: true`, headers `Content-Type: application/json`
  and `Access-Control-Allow-Origin` (a *request* header, so every call is preflighted), POSTs with
  `Accept: application/json`; it keeps no token: it lives on the session cookie.
- App.vue fetches GET /csrf-token on start (this service has none: a 404 it ignores).
- Register.vue: POST /auth/register {name, username, email, password}, then POST /auth/login.
- stores/auth.js: GET /users/user.
- Settings.vue: PUT /users/:id with `Content-Type: multipart/form-data` and a plain object, which axios turns
  into a FormData (null values left out) and the browser encodes with its own boundary: {name, username, email}
  to update, {file} to change the photo, {file: null} (an empty form) when no file was chosen;
  PUT /users/deleteProfilePic/:id with {file: null} the same way; POST /auth/send-verification-email (no body).
- VerifyEmail.vue: POST /auth/verify-email?token=… with body {}.
- stores/favoriteBoards.js: PUT /users/addToFav, PUT /users/removeFromFav {boardId}; GET /users/getFav.
- AddMemberToWorkspaceModal.vue: GET /users/getUsers?limit=5&email=….
- admin/Users.vue: GET /users/?limit=9&page=1&sortBy=createdAt:desc (trailing slash); UsersStats.vue:
  GET /users/usersByMonth.
- LogoutBtn.vue: POST /auth/logout with no body.
"""
import json

import pytest
from bson import ObjectId

from tests.client_replay import BrowserPage, FormData
from tests.helpers import PASSWORD, link_token
from tests.users_fixtures import png

pytestmark = pytest.mark.gen_test

APP = "https://app.example.com"
SERVER_URL = "https://totask-server.onrender.com"  # the app's VITE_SERVER_URL, echoed in its odd header
JSON = {"Content-Type": "application/json", "Accept": "application/json",
        "Access-Control-Allow-Origin": SERVER_URL}
GET = {"Accept": "application/json, text/plain, */*", "Access-Control-Allow-Origin": SERVER_URL}


@pytest.fixture
def settings_env(smtp_env):
    return {**smtp_env, "CORS_ORIGINS": APP}  # smtp_env's APP_URL is https://app.example.com


@pytest.fixture
def page(http_server, base_url):
    browser = BrowserPage(base_url, APP)
    yield browser
    browser.close()


def as_json(body: dict) -> bytes:
    return json.dumps(body).encode()


async def form(page, method, path, data: FormData):
    """axios with a FormData in Chromium: the browser sets the Content-Type with its boundary."""
    headers = {"Accept": "application/json", "Access-Control-Allow-Origin": SERVER_URL,
               "Content-Type": data.content_type}
    return await page.fetch(method, path, data.encode(), headers)


async def sign_up_and_in(page, email="ada@example.com", username="ad"):
    registered = await page.fetch("POST", "/auth/register", as_json(
        {"name": "Ada Lovelace", "username": username, "email": email, "password": PASSWORD}), JSON)
    assert registered.code == 201, registered
    logged_in = await page.fetch("POST", "/auth/login", as_json({"email": email, "password": PASSWORD}), JSON)
    assert logged_in.code == 200, logged_in
    return logged_in


@pytest.mark.gen_test(timeout=60)
async def test_the_web_app_signs_up_works_and_logs_out_on_its_cookie_alone(page, store, mailbox):
    assert (await page.fetch("GET", "/csrf-token", headers=GET)).code == 404
    await sign_up_and_in(page)
    assert set(page.cookies) == {"session"}
    me = await page.fetch("GET", "/users/user", headers=GET)
    assert me.code == 200 and me.json["email"] == "ada@example.com" and me.json["username"] == "ad"
    user_id = me.json["id"]

    # Settings: Save (a multipart form of name, username, email: axios leaves out nulls).
    saved = await form(page, "PUT", f"/users/{user_id}",
                       FormData().text("name", "Ada King").text("username", "ak").text("email", "ada@example.com"))
    assert saved.code == 200, saved
    assert (saved.json["name"], saved.json["username"], saved.json["profilePhotoUrl"]) == ("Ada King", "ak", None)

    # Change photo, with a file chosen ...
    image = png(2, 2)
    changed = await form(page, "PUT", f"/users/{user_id}", FormData().file("file", "me.png", image, "image/png"))
    assert changed.code == 200, changed
    photo_url = changed.json["profilePhotoUrl"]
    assert photo_url and (await store.photos.find_one({"_id": ObjectId(user_id)}))["renditions"]
    # ... and with none ({file: null}: an empty form; a plain <form> would send an empty file part).
    for nothing in (FormData(), FormData().no_file_chosen("file")):
        unchanged = await form(page, "PUT", f"/users/{user_id}", nothing)
        assert unchanged.code == 422 and unchanged.json["errors"] == [
            {"field": "body", "message": "must change at least one field"}], unchanged
    with_other_fields = await form(page, "PUT", f"/users/{user_id}",
                                   FormData().text("name", "Ada Lovelace").no_file_chosen("file"))
    assert with_other_fields.code == 200 and with_other_fields.json["profilePhotoUrl"] == photo_url

    # Delete photo: PUT with {file: null} as a multipart form.
    deleted = await form(page, "PUT", f"/users/deleteProfilePic/{user_id}", FormData())
    assert deleted.code == 200 and deleted.json["profilePhotoUrl"] is None, deleted
    assert await store.photos.count_documents({}) == 0

    # Favourites.
    added = await page.fetch("PUT", "/users/addToFav", as_json({"boardId": "board-1"}), JSON)
    assert added.code == 200 and added.json == {"favoriteBoards": ["board-1"]}
    assert (await page.fetch("GET", "/users/getFav", headers=GET)).json == {"favoriteBoards": ["board-1"]}
    removed = await page.fetch("PUT", "/users/removeFromFav", as_json({"boardId": "board-1"}), JSON)
    assert removed.code == 200 and removed.json == {"favoriteBoards": []}

    # Verify the email (the link's page posts {} with the token), then find people to invite.
    assert (await page.fetch("POST", "/auth/send-verification-email", headers=JSON)).code == 204
    messages = await mailbox.wait_for(2)
    token = link_token(messages[-1], "verify-email")
    assert (await page.fetch("POST", f"/auth/verify-email?token={token}", b"{}", JSON)).code == 204
    found = await page.fetch("GET", "/users/getUsers?limit=5&email=ADA", headers=GET)
    assert found.code == 200 and [u["id"] for u in found.json["results"]] == [user_id]

    # Log out: no body, the cookie ends its session and is cleared.
    assert (await page.fetch("POST", "/auth/logout", headers={"Accept": "application/json",
                                                              "Access-Control-Allow-Origin": SERVER_URL})).code == 204
    assert page.cookies == {}
    assert await store.sessions.count_documents({"userId": ObjectId(user_id)}) == 1  # registration's
    assert (await page.fetch("GET", "/users/user", headers=GET)).code == 401

    # All of it on one keep-alive connection, errors included, each request after its preflight.
    assert len(page.local_ports) == 1, page.wire
    assert [status for method, _, status in page.wire if method == "OPTIONS"] == \
        [204] * sum(1 for method, _, _ in page.wire if method != "OPTIONS")


@pytest.mark.gen_test(timeout=60)
async def test_the_admin_pages_list_users_with_a_trailing_slash(page, store):
    await sign_up_and_in(page, email="admin@example.com", username="admin")
    await store.users.update_one({"email": "admin@example.com"}, {"$set": {"role": "admin"}})
    listed = await page.fetch("GET", "/users/?limit=9&page=1&sortBy=createdAt:desc", headers=GET)
    assert listed.code == 200, listed
    assert listed.json["limit"] == 9 and [u["email"] for u in listed.json["results"]] == ["admin@example.com"]
    searched = await page.fetch("GET", "/users/?limit=9&page=1&username=adm&sortBy=createdAt:desc", headers=GET)
    assert searched.json["totalResults"] == 1
    stats = await page.fetch("GET", "/users/usersByMonth", headers=GET)
    assert stats.code == 200 and sum(row["count"] for row in stats.json["results"]) == 1
    assert len(page.local_ports) == 1


@pytest.mark.gen_test(timeout=60)
async def test_a_page_of_another_site_cannot_use_the_cookie(page, base_url, store):
    await sign_up_and_in(page)
    user_id = (await page.fetch("GET", "/users/user", headers=GET)).json["id"]
    # Another site's page making the browser send the same cookie (a form post, which needs no preflight).
    attacker = BrowserPage(base_url, "https://evil.example.net")
    try:
        for origin_headers in ({"Origin": "https://evil.example.net"}, {"Referer": "https://evil.example.net/x"}, {}):
            answer = await attacker.raw("PUT", "/users/addToFav", b'{"boardId": "planted"}', {
                "Content-Type": "text/plain", "Cookie": f"session={page.cookies['session']}", **origin_headers})
            assert answer.code == 403 and "Access-Control-Allow-Origin" not in answer.headers, answer
            answer = await attacker.raw("POST", "/auth/logout", None, {
                "Cookie": f"session={page.cookies['session']}", **origin_headers})
            assert answer.code == 403
    finally:
        attacker.close()
    stored = await store.users.find_one({"_id": ObjectId(user_id)})
    assert stored["favoriteBoards"] == []
    assert (await page.fetch("GET", "/users/user", headers=GET)).code == 200  # still signed in
