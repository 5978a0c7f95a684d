"""The task-board web app (khalednadam/totask-app, client/src), replayed call by call as Chromium sends them.

What the app's code does, and so what is on the wire here:
- composables/axios.js: one axios instance, `withCredentials: true`, headers `Content-Type: application/json`
  and `Access-Control-Allow-Origin` (a *request* header, so every call is preflighted), POSTs with
  `Accept: application/json`; it keeps no token: it lives on the session cookie.
- App.vue fetches GET /csrf-token on start (this service has none: a 404 it ignores).
- Register.vue: POST /auth/register {name, username, email, password}, then POST /auth/login.
- router/index.js and stores/auth.js: GET /users/user before every navigation; `user.value = res.data`, then
  `!!user.id`. Signed out, its own server answered Express's `res.send(null)`: 200 with an empty body, which
  axios reads as "" (so `user.id` is undefined); a 401 or JSON null makes the guard throw and the page stay
  blank. TOTASK_WEB_COMPAT=true answers the empty body; off, JSON null as documented.
- UserAvatar.vue, Settings.vue, AppLayout.vue: `<v-img :src="user.profilePhotoUrl">` as it is, on the app's own
  origin: an <img> request (no Origin, no credentials it could use) to the absolute URL.
- Settings.vue: PUT /users/:id with `Content-Type: multipart/form-data` and a plain object, which axios turns
  into a FormData (null values left out) and the browser encodes with its own boundary: {name, username, email}
  to update, {file} to change the photo, {file: null} (an empty form) when no file was chosen;
  PUT /users/deleteProfilePic/:id with {file: null} the same way; POST /auth/send-verification-email (no body).
- VerifyEmail.vue: POST /auth/verify-email?token=… with body {}.
- stores/favoriteBoards.js: PUT /users/addToFav, PUT /users/removeFromFav {boardId}; GET /users/getFav, kept as
  `favoriteBoards` and read with `favoriteBoards.some(b => b.id === board.id)`.
- AddMemberToWorkspaceModal.vue: GET /users/getUsers?limit=5&email=…, iterated as an array of users.
- admin/Users.vue: GET /users/?limit=9&page=1&sortBy=createdAt:desc (trailing slash); UsersStats.vue:
  GET /users/usersByMonth, read as `data.map(d => `${d.month} ${d.year}`)` and `d.count`.
- LogoutBtn.vue: POST /auth/logout with no body.
"""

import calendar
import datetime as dt
import json
from email.utils import parsedate_to_datetime
from http.cookies import SimpleCookie

import pytest
from bson import ObjectId

from tests.client_replay import BrowserPage, FormData, set_cookie_lines
from tests.helpers import PASSWORD, link_token
from tests.users_fixtures import png

pytestmark = pytest.mark.gen_test

APP = "https://app.example.com"
API = "https://accounts.example.com"  # APP_URL: where the service is, and so where its photo URLs point
SERVER_URL = "https://totask-server.onrender.com"  # the app's VITE_SERVER_URL, echoed in its odd header
JSON = {"Content-Type": "application/json", "Accept": "application/json", "Access-Control-Allow-Origin": SERVER_URL}
GET = {"Accept": "application/json, text/plain, */*", "Access-Control-Allow-Origin": SERVER_URL}


@pytest.fixture
def settings_env(smtp_env):
    return {**smtp_env, "APP_URL": API, "CORS_ORIGINS": APP}


@pytest.fixture
def page(http_server, base_url):
    browser = BrowserPage(base_url, APP)
    yield browser
    browser.close()


def as_json(body: dict) -> bytes:
    return json.dumps(body).encode()


async def form(page, method, path, data: FormData):
    """axios with a FormData in Chromium: the browser sets the Content-Type with its boundary."""
    headers = {
        "Accept": "application/json",
        "Access-Control-Allow-Origin": SERVER_URL,
        "Content-Type": data.content_type,
    }
    return await page.fetch(method, path, data.encode(), headers)


async def sign_up_and_in(page, email="ada@example.com", username="ad"):
    registered = await page.fetch(
        "POST",
        "/auth/register",
        as_json({"name": "Ada Lovelace", "username": username, "email": email, "password": PASSWORD}),
        JSON,
    )
    assert registered.code == 201, registered
    logged_in = await page.fetch("POST", "/auth/login", as_json({"email": email, "password": PASSWORD}), JSON)
    assert logged_in.code == 200, logged_in
    return logged_in


def axios_data(answer):
    """response.data as axios 1.x makes it: a non-empty body parsed as JSON, an empty one the string ""."""
    return json.loads(answer.body) if answer.body else ""


def guard_signed_in(answer) -> bool:
    """router/index.js after getUser(): `!!currentUserStore.user.id`, which throws on null (the page stays blank)."""
    assert answer.code == 200, f"getUser() failed ({answer.code}): user.value stays null and the guard throws"
    user = axios_data(answer)
    assert user is not None, "null.id: the route guard throws, next() is never called, the page stays blank"
    return bool(user.get("id")) if isinstance(user, dict) else False


def assert_cookie_cleared(answer) -> None:
    """Set-Cookie empties the session cookie with an expiry in the past: the browser drops it."""
    (line,) = [line for line in set_cookie_lines(answer) if line.startswith("session=")]
    cleared = SimpleCookie(line)["session"]
    assert cleared.value == "" and parsedate_to_datetime(cleared["expires"]) < dt.datetime.now(dt.UTC), line


async def load_as_img(base_url, url: str):
    """What Chromium sends for `<img src=url>` on a page of APP: a no-cors GET, no Origin (no crossorigin
    attribute), no preflight, no cookie (SameSite=Lax keeps it off a cross-site image), the page as Referer."""
    assert url.startswith(API + "/users/"), url  # absolute: a relative URL would ask the app's own origin
    img = BrowserPage(base_url, APP)
    try:
        return await img.raw(
            "GET",
            url[len(API) :],
            None,
            {
                "Accept": "image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8",
                "Referer": APP + "/",
                "Sec-Fetch-Dest": "image",
                "Sec-Fetch-Mode": "no-cors",
                "Sec-Fetch-Site": "cross-site",
            },
        )
    finally:
        img.close()


def assert_shown_as_img(answer, photo: dict) -> None:
    """Chromium shows it: an image type, and no Cross-Origin-Resource-Policy of same-origin or same-site (either
    blocks a cross-site <img>: ERR_BLOCKED_BY_RESPONSE); the bytes are the stored largest rendition."""
    assert answer.code == 200 and answer.header("Content-Type") == photo["contentType"], answer
    assert answer.header("Cross-Origin-Resource-Policy") == "cross-origin"
    assert answer.body == bytes(photo["renditions"]["512"]["data"])


@pytest.mark.gen_test(timeout=60)
async def test_the_web_app_signs_up_works_and_logs_out_on_its_cookie_alone(page, store, mailbox, base_url):
    assert (await page.fetch("GET", "/csrf-token", headers=GET)).code == 404
    await sign_up_and_in(page)
    assert set(page.cookies) == {"session"}
    me = await page.fetch("GET", "/users/user", headers=GET)
    assert me.code == 200 and me.json["email"] == "ada@example.com" and me.json["username"] == "ad"
    user_id = me.json["id"]

    # Settings: Save (a multipart form of name, username, email: axios leaves out nulls).
    saved = await form(
        page,
        "PUT",
        f"/users/{user_id}",
        FormData().text("name", "Ada King").text("username", "ak").text("email", "ada@example.com"),
    )
    assert saved.code == 200, saved
    assert (saved.json["name"], saved.json["username"], saved.json["profilePhotoUrl"]) == ("Ada King", "ak", None)

    # Change photo, with a file chosen ...
    image = png(2, 2)
    changed = await form(page, "PUT", f"/users/{user_id}", FormData().file("file", "me.png", image, "image/png"))
    assert changed.code == 200, changed
    photo_url = changed.json["profilePhotoUrl"]
    photo = await store.photos.find_one({"_id": ObjectId(user_id)})
    assert photo_url == f"{API}/users/{user_id}/photo?v={photo['version']}"
    assert (await page.fetch("GET", "/users/user", headers=GET)).json["profilePhotoUrl"] == photo_url
    # The avatar: <v-img :src="user.profilePhotoUrl"> on the app's origin.
    assert_shown_as_img(await load_as_img(base_url, photo_url), photo)
    # ... and with none ({file: null}: an empty form; a plain <form> would send an empty file part).
    for nothing in (FormData(), FormData().no_file_chosen("file")):
        unchanged = await form(page, "PUT", f"/users/{user_id}", nothing)
        assert unchanged.code == 422 and unchanged.json["errors"] == [
            {"field": "body", "message": "must change at least one field"}
        ], unchanged
    with_other_fields = await form(
        page, "PUT", f"/users/{user_id}", FormData().text("name", "Ada Lovelace").no_file_chosen("file")
    )
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
    assert (
        await page.fetch(
            "POST", "/auth/logout", headers={"Accept": "application/json", "Access-Control-Allow-Origin": SERVER_URL}
        )
    ).code == 204
    assert page.cookies == {}
    assert await store.sessions.count_documents({"userId": ObjectId(user_id)}) == 1  # registration's
    signed_out = await page.fetch("GET", "/users/user", headers=GET)
    assert signed_out.code == 200 and signed_out.body == b"null"  # the documented answer, TOTASK_WEB_COMPAT off

    # All of it on one keep-alive connection, errors included, each request after its preflight.
    assert len(page.local_ports) == 1, page.wire
    assert [status for method, _, status in page.wire if method == "OPTIONS"] == [204] * sum(
        1 for method, _, _ in page.wire if method != "OPTIONS"
    )


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
            answer = await attacker.raw(
                "PUT",
                "/users/addToFav",
                b'{"boardId": "planted"}',
                {"Content-Type": "text/plain", "Cookie": f"session={page.cookies['session']}", **origin_headers},
            )
            assert answer.code == 403 and "Access-Control-Allow-Origin" not in answer.headers, answer
            answer = await attacker.raw(
                "POST", "/auth/logout", None, {"Cookie": f"session={page.cookies['session']}", **origin_headers}
            )
            assert answer.code == 403
    finally:
        attacker.close()
    stored = await store.users.find_one({"_id": ObjectId(user_id)})
    assert stored["favoriteBoards"] == []
    assert (await page.fetch("GET", "/users/user", headers=GET)).code == 200  # still signed in


@pytest.mark.gen_test(timeout=60)
async def test_signed_out_the_route_guard_reads_null_and_a_failing_bearer_is_still_401(page, store):
    """TOTASK_WEB_COMPAT off: the documented answer, JSON null (a client that parses JSON reads "signed out")."""
    me = await page.fetch("GET", "/users/user", headers=GET)
    assert me.code == 200 and me.body == b"null" and me.header("Content-Type") == "application/json; charset=UTF-8"
    assert not set_cookie_lines(me)
    await sign_up_and_in(page)
    stale = page.cookies["session"]
    assert (await page.fetch("POST", "/auth/logout", headers=JSON)).code == 204
    page.cookies["session"] = stale  # another tab's copy of the ended session
    after = await page.fetch("GET", "/users/user", headers=GET)
    assert after.code == 200 and after.body == b"null"
    assert_cookie_cleared(after)
    assert page.cookies == {}
    # A token client's failing Authorization header is a 401, with or without a cookie beside it.
    bad = await page.fetch("GET", "/users/user", headers={**GET, "Authorization": "Bearer expired.or.forged"})
    assert bad.code == 401 and bad.json["statusCode"] == 401
    assert await store.sessions.count_documents({"cookieHash": {"$exists": True}}) == 1  # registration's
    assert len(page.local_ports) == 1, page.wire


class TestWebCompat:
    """TOTASK_WEB_COMPAT=true: the answers as the published app reads them (its own server's shapes)."""

    @pytest.fixture
    def settings_env(self, smtp_env):
        return {**smtp_env, "APP_URL": API, "CORS_ORIGINS": APP, "TOTASK_WEB_COMPAT": "true"}

    @pytest.mark.gen_test(timeout=60)
    async def test_signed_out_navigation_shows_the_landing_and_sign_in_pages(self, page, store):
        # First visit: no cookie. The guard reads "" and routes to the landing page instead of throwing.
        first = await page.fetch("GET", "/users/user", headers=GET)
        assert first.body == b"" and first.header("Content-Length") == "0" and not set_cookie_lines(first)
        assert guard_signed_in(first) is False
        await sign_up_and_in(page)
        assert guard_signed_in(await page.fetch("GET", "/users/user", headers=GET)) is True
        stale = page.cookies["session"]
        # LogoutBtn.vue: POST /auth/logout, then router.push("/home"): the guard runs again.
        assert (await page.fetch("POST", "/auth/logout", headers=JSON)).code == 204
        assert guard_signed_in(await page.fetch("GET", "/users/user", headers=GET)) is False
        # A cookie of an ended session (another tab, a deleted account): signed out, and the cookie cleared.
        page.cookies["session"] = stale
        after = await page.fetch("GET", "/users/user", headers=GET)
        assert guard_signed_in(after) is False and after.body == b""
        assert_cookie_cleared(after)
        assert page.cookies == {}
        # A failing Authorization header stays a 401 (token clients refresh on it).
        bad = await page.fetch("GET", "/users/user", headers={**GET, "Authorization": "Bearer expired.or.forged"})
        assert bad.code == 401 and bad.json["message"] == "Please authenticate"
        assert await store.sessions.count_documents({"cookieHash": {"$exists": True}}) == 1  # registration's
        # All on one kept-alive connection, each request after its preflight.
        assert len(page.local_ports) == 1, page.wire
        assert [status for method, _, status in page.wire if method == "OPTIONS"] == [204] * sum(
            1 for method, _, _ in page.wire if method != "OPTIONS"
        )

    @pytest.mark.gen_test(timeout=60)
    async def test_the_favourites_star_and_the_favourite_boards(self, page, store):
        await sign_up_and_in(page)
        user_id = (await page.fetch("GET", "/users/user", headers=GET)).json["id"]
        # Boards.vue on mount: getFavoriteBoards(), then `favoriteBoards?.length > 0`.
        none = await page.fetch("GET", "/users/getFav", headers=GET)
        assert none.code == 200 and axios_data(none) == []
        store_list = axios_data(none)  # stores/favoriteBoards.js: favoriteBoards.value = response.data
        for board in ("board-1", "board-2"):  # BoardCard.vue's star: addToFavorite(board.id)
            added = await page.fetch("PUT", "/users/addToFav", as_json({"boardId": board}), JSON)
            assert added.code == 200, added
            store_list.append(axios_data(added))  # addToFavorite: favoriteBoards.value.push(response.data)
        # The star reads the store it pushed onto, before any reload: each entry a board with its id.
        assert store_list == [{"id": "board-1"}, {"id": "board-2"}]
        favourites = axios_data(await page.fetch("GET", "/users/getFav", headers=GET))
        assert favourites == store_list  # a reload (getFav) shows the same list
        is_favourite = lambda board_id: any(b["id"] == board_id for b in favourites)  # noqa: E731 (the app's .some)
        assert is_favourite("board-1") and is_favourite("board-2") and not is_favourite("board-3")
        removed = await page.fetch("PUT", "/users/removeFromFav", as_json({"boardId": "board-1"}), JSON)
        assert removed.code == 200 and axios_data(removed) == [{"id": "board-2"}]
        assert (await store.users.find_one({"_id": ObjectId(user_id)}))["favoriteBoards"] == ["board-2"]
        assert removed.header("Content-Type") == "application/json; charset=UTF-8"
        assert len(page.local_ports) == 1, page.wire

    @pytest.mark.gen_test(timeout=60)
    async def test_the_member_search_lists_verified_people_as_an_array(self, page, store, mailbox):
        await sign_up_and_in(page)
        assert (await page.fetch("POST", "/auth/send-verification-email", headers=JSON)).code == 204
        token = link_token((await mailbox.wait_for(2))[-1], "verify-email")
        assert (await page.fetch("POST", f"/auth/verify-email?token={token}", b"{}", JSON)).code == 204
        found = await page.fetch("GET", "/users/getUsers?limit=5&email=ada", headers=GET)
        assert found.code == 200, found
        users = axios_data(found)  # `v-for="user in users"`: user.email fills the field, user.id checks members
        assert [(u["email"], u["name"]) for u in users] == [("ada@example.com", "Ada Lovelace")]
        assert users[0]["id"] == str((await store.users.find_one({"email": "ada@example.com"}))["_id"])
        assert axios_data(await page.fetch("GET", "/users/getUsers?limit=5&email=nobody", headers=GET)) == []
        assert len(page.local_ports) == 1, page.wire

    @pytest.mark.gen_test(timeout=60)
    async def test_the_admin_sign_ups_chart_reads_month_names(self, page, store):
        await sign_up_and_in(page, email="admin@example.com", username="admin")
        await store.users.update_one({"email": "admin@example.com"}, {"$set": {"role": "admin"}})
        await page.fetch("POST", "/auth/logout", headers=JSON)
        await sign_up_and_in(page, email="bob@example.com", username="bob")
        assert (await page.fetch("GET", "/users/usersByMonth", headers=GET)).code == 403  # not an admin
        await page.fetch("POST", "/auth/logout", headers=JSON)
        logged_in = await page.fetch(
            "POST", "/auth/login", as_json({"email": "admin@example.com", "password": PASSWORD}), JSON
        )
        assert logged_in.code == 200
        stats = await page.fetch("GET", "/users/usersByMonth", headers=GET)
        assert stats.code == 200, stats
        rows = axios_data(stats)
        now = dt.datetime.now(dt.UTC)
        # UsersStats.vue: labels `${d.month} ${d.year}`, data d.count.
        assert [f"{d['month']} {d['year']}" for d in rows] == [f"{calendar.month_name[now.month]} {now.year}"]
        assert [d["count"] for d in rows] == [await store.users.count_documents({})] == [2]
        # The admin list (admin/Users.vue) keeps its documented page object.
        listed = await page.fetch("GET", "/users/?limit=9&page=1&sortBy=createdAt:desc", headers=GET)
        assert [u["email"] for u in listed.json["results"]] == ["bob@example.com", "admin@example.com"]
        assert len(page.local_ports) == 1, page.wire

    @pytest.mark.gen_test(timeout=60)
    async def test_the_avatar_url_is_absolute_and_loads_as_an_img_of_the_app(self, page, store, base_url):
        await sign_up_and_in(page)
        user_id = (await page.fetch("GET", "/users/user", headers=GET)).json["id"]
        changed = await form(
            page, "PUT", f"/users/{user_id}", FormData().file("file", "me.png", png(3, 2), "image/png")
        )
        assert changed.code == 200, changed
        photo = await store.photos.find_one({"_id": ObjectId(user_id)})
        assert changed.json["profilePhotoUrl"] == f"{API}/users/{user_id}/photo?v={photo['version']}"
        assert_shown_as_img(await load_as_img(base_url, changed.json["profilePhotoUrl"]), photo)
        # The same URL wherever the app finds the user: the member search and the admin list.
        await store.users.update_one({"_id": ObjectId(user_id)}, {"$set": {"isEmailVerified": True}})
        found = axios_data(await page.fetch("GET", "/users/getUsers?limit=5&email=ada", headers=GET))
        assert [u["profilePhotoUrl"] for u in found] == [changed.json["profilePhotoUrl"]]
