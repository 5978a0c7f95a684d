"""Your devices (API.md "Your devices"): GET /auth/sessions, DELETE /auth/sessions/:id and
DELETE /auth/sessions, for bearer and cookie clients alike."""

import asyncio
import datetime as dt

import pytest
from bson import ObjectId

from services.sessions import hash_token
from tests.helpers import PASSWORD, TEST_AGENT, assert_error, claims, sign_up

pytestmark = pytest.mark.gen_test

APP = "https://app.example.com"
PHONE = "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15"
LAPTOP = "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0"


@pytest.fixture
def settings_env():
    return {"APP_URL": APP}


def cookie_of(response) -> str:
    (line,) = [v for v in response.headers.get_list("Set-Cookie") if v.startswith("session=")]
    return line.split(";")[0].split("=", 1)[1]


async def login(api, user_agent, email="ada@example.com", **headers):
    response = await api.post(
        "/auth/login", json={"email": email, "password": PASSWORD}, headers={"User-Agent": user_agent, **headers}
    )
    assert response.code == 200, response
    tokens = response.json["tokens"]
    return {
        "access": tokens["access"]["token"],
        "refresh": tokens["refresh"]["token"],
        "cookie": cookie_of(response),
        "sid": claims(tokens["access"]["token"])["sid"],
    }


async def works(api, device) -> dict:
    access = (await api.get("/users/user", token=device["access"])).code == 200
    cookie = (await api.get("/users/getFav", headers={"Cookie": f"session={device['cookie']}"})).code == 200
    refresh = (await api.post("/auth/refresh-tokens", json={"refreshToken": device["refresh"]})).code == 200
    return {"access": access, "cookie": cookie, "refresh": refresh}


async def test_the_list_shows_the_callers_live_sessions_newest_first(api, store):
    ada = await sign_up(api)
    await sign_up(api, email="bob@example.com")
    phone = await login(api, PHONE)
    laptop = await login(api, LAPTOP)
    await login(api, PHONE, email="bob@example.com")  # someone else's: never listed
    revoked = await login(api, LAPTOP)
    # A session ended by an epoch that moved on (as a revoking change leaves it when its cleanup failed).
    await store.sessions.update_one({"_id": ObjectId(revoked["sid"])}, {"$set": {"epoch": -1}})
    expired = await login(api, LAPTOP)
    await store.sessions.update_one(
        {"_id": ObjectId(expired["sid"])},
        {"$set": {"expiresAt": dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)}},
    )

    response = await api.get("/auth/sessions", token=phone["access"])
    assert response.code == 200, response
    sessions = response.json["sessions"]
    assert [s["id"] for s in sessions] == [laptop["sid"], phone["sid"], claims(ada.token)["sid"]]
    assert [s["current"] for s in sessions] == [False, True, False]
    assert [s["userAgent"] for s in sessions[:2]] == [LAPTOP, PHONE]
    assert sessions[2]["userAgent"] == TEST_AGENT  # registration, by the test client's own agent
    for session in sessions:
        assert set(session) == {"id", "createdAt", "lastUsedAt", "expiresAt", "userAgent", "ipAddress", "current"}
        assert session["ipAddress"] == "127.0.0.1"
        assert session["createdAt"].endswith("Z") and session["expiresAt"] > session["createdAt"]
        stored = await store.sessions.find_one({"_id": ObjectId(session["id"])})
        assert stored["userId"] == ObjectId(ada.id)
    # An id is no credential, and nothing in the list is one.
    body = response.body.decode()
    for device in (phone, laptop):
        for secret in (
            device["refresh"],
            hash_token(device["refresh"]),
            device["cookie"],
            hash_token(device["cookie"]),
        ):
            assert secret not in body
    assert_error(await api.get("/users/user", token=phone["sid"]), 401)
    assert_error(await api.get("/users/getFav", headers={"Cookie": f"session={phone['sid']}"}), 401)
    assert_error(await api.post("/auth/refresh-tokens", json={"refreshToken": phone["sid"]}), 401)


async def test_a_long_user_agent_is_cut_and_a_proxy_header_is_not_believed(api, store):
    await sign_up(api)
    device = await login(api, "A" * 5000, **{"X-Real-IP": "203.0.113.9", "X-Forwarded-For": "203.0.113.9"})
    stored = await store.sessions.find_one({"_id": ObjectId(device["sid"])})
    assert stored["userAgent"] == "A" * 256 and stored["ipAddress"] == "127.0.0.1"


class TestBehindTheProxy:
    @pytest.fixture
    def settings_env(self):
        return {"APP_URL": APP, "TRUST_PROXY": "true"}

    async def test_the_address_is_the_one_nginx_names(self, api, store):
        await sign_up(api)
        device = await login(api, PHONE, **{"X-Real-IP": "203.0.113.9"})
        listed = (await api.get("/auth/sessions", token=device["access"])).json["sessions"]
        assert listed[0]["ipAddress"] == "203.0.113.9" and listed[0]["current"]


async def test_ending_one_session_by_id_ends_its_access_refresh_and_cookie_at_once(api, store):
    await sign_up(api)
    phone, laptop = await login(api, PHONE), await login(api, LAPTOP)
    response = await api.delete(f"/auth/sessions/{laptop['sid']}", token=phone["access"])
    assert response.code == 204, response
    assert await works(api, laptop) == {"access": False, "cookie": False, "refresh": False}
    assert await store.sessions.find_one({"_id": ObjectId(laptop["sid"])}) is None
    assert await store.tokens.count_documents({"sessionId": ObjectId(laptop["sid"])}) == 0
    assert await works(api, phone) == {"access": True, "cookie": True, "refresh": True}
    # Gone: a second time is a 404.
    assert_error(await api.delete(f"/auth/sessions/{laptop['sid']}", token=phone["access"]), 404, "Session not found")


async def test_another_users_unknown_or_malformed_session_id_is_a_404_and_ends_nothing(api, store):
    await sign_up(api)
    await sign_up(api, email="bob@example.com")
    ada = await login(api, PHONE)
    bob = await login(api, LAPTOP, email="bob@example.com")
    before = await store.sessions.count_documents({})
    for raw in (bob["sid"], str(ObjectId()), "not-an-id", "0" * 24 + "0", '{"$ne":null}'):
        assert_error(await api.delete(f"/auth/sessions/{raw}", token=ada["access"]), 404, "Session not found")
    assert await store.sessions.count_documents({}) == before
    assert await works(api, bob) == {"access": True, "cookie": True, "refresh": True}


async def test_ending_every_other_session_keeps_the_current_one_and_other_users(api, store):
    ada = await sign_up(api)
    await sign_up(api, email="bob@example.com")
    phone, laptop = await login(api, PHONE), await login(api, LAPTOP)
    bob = await login(api, LAPTOP, email="bob@example.com")
    response = await api.delete("/auth/sessions", token=phone["access"])
    assert response.code == 204, response
    assert await works(api, laptop) == {"access": False, "cookie": False, "refresh": False}
    assert_error(await api.get("/users/user", token=ada.token), 401)
    assert await store.sessions.count_documents({"userId": ObjectId(ada.id)}) == 1
    assert await works(api, phone) == {"access": True, "cookie": True, "refresh": True}
    assert await works(api, bob) == {"access": True, "cookie": True, "refresh": True}


async def test_cookie_clients_list_and_end_sessions_from_a_trusted_origin_only(api, store):
    await sign_up(api)
    phone, laptop = await login(api, PHONE), await login(api, LAPTOP)
    cookie = {"Cookie": f"session={phone['cookie']}"}
    listed = await api.get("/auth/sessions", headers=cookie)
    assert listed.code == 200 and [s["current"] for s in listed.json["sessions"]][:2] == [False, True]
    for path in (f"/auth/sessions/{laptop['sid']}", "/auth/sessions"):
        refused = await api.delete(path, headers={**cookie, "Origin": "https://evil.example.com"})
        assert_error(refused, 403, "Cross-site request refused: Origin is not trusted")
        assert_error(await api.delete(path, headers=cookie), 403)
    assert await store.sessions.count_documents({}) == 3
    assert (await api.delete(f"/auth/sessions/{laptop['sid']}", headers={**cookie, "Origin": APP})).code == 204
    assert await works(api, laptop) == {"access": False, "cookie": False, "refresh": False}
    assert (await api.delete("/auth/sessions", headers={**cookie, "Origin": APP})).code == 204
    assert await store.sessions.count_documents({}) == 1
    # Ending the current session by id signs this browser out and clears its cookie.
    ended = await api.delete(f"/auth/sessions/{phone['sid']}", headers={**cookie, "Origin": APP})
    assert ended.code == 204
    assert any(v.startswith("session=;") or v.startswith('session="";') for v in ended.headers.get_list("Set-Cookie"))
    assert_error(await api.get("/users/getFav", headers=cookie), 401)


async def test_last_used_moves_at_most_once_a_minute(api, services, store, monkeypatch):
    await sign_up(api)
    device = await login(api, PHONE)
    session_id = ObjectId(device["sid"])
    long_ago = (dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)).replace(microsecond=0)
    await store.sessions.update_one({"_id": session_id}, {"$set": {"lastUsedAt": long_ago}})
    writes = []
    update_one = services.sessions.sessions.update_one

    async def counted(*args, **kwargs):
        writes.append(args)
        return await update_one(*args, **kwargs)

    monkeypatch.setattr(services.sessions.sessions, "update_one", counted)
    assert (await api.get("/users/user", token=device["access"])).code == 200
    moved = (await store.sessions.find_one({"_id": session_id}))["lastUsedAt"].replace(tzinfo=dt.UTC)
    assert abs((moved - dt.datetime.now(dt.UTC)).total_seconds()) < 30 and len(writes) == 1
    for _ in range(3):
        assert (await api.get("/users/getFav", headers={"Cookie": f"session={device['cookie']}"})).code == 200
        assert (await api.get("/users/user", token=device["access"])).code == 200
    assert len(writes) == 1  # no write per request
    assert (await store.sessions.find_one({"_id": session_id}))["lastUsedAt"].replace(tzinfo=dt.UTC) == moved
    listed = (await api.get("/auth/sessions", token=device["access"])).json["sessions"]
    assert listed[0]["lastUsedAt"] == moved.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moved.microsecond // 1000:03d}Z"


async def test_the_list_is_the_newest_max_listed_sessions(api, store):
    """The list is bounded (models.sessions.MAX_LISTED): however many sessions pile up, one answer is a bounded
    read and a bounded body, the newest ones."""
    from models.sessions import MAX_LISTED

    ada = await sign_up(api)
    user = await store.users.find_one({"_id": ObjectId(ada.id)})
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    piled = [
        {
            "_id": ObjectId(),
            "userId": user["_id"],
            "createdAt": now - dt.timedelta(minutes=n + 1),
            "expiresAt": now + dt.timedelta(days=1),
            "lastUsedAt": now - dt.timedelta(minutes=n + 1),
            "epoch": user.get("sessionEpoch", 0),
            "userAgent": LAPTOP,
            "ipAddress": "127.0.0.1",
        }
        for n in range(MAX_LISTED)
    ]
    await store.sessions.insert_many(piled)
    response = await api.get("/auth/sessions", token=ada.token)
    assert response.code == 200, response
    listed = [s["id"] for s in response.json["sessions"]]
    # The caller's own (newest) and the MAX_LISTED - 1 newest piled up; the oldest is left out.
    assert listed == [claims(ada.token)["sid"]] + [str(s["_id"]) for s in piled[: MAX_LISTED - 1]]
    assert await store.sessions.count_documents({"userId": user["_id"]}) == MAX_LISTED + 1  # listing ends nothing


async def test_of_two_requests_reading_a_stale_last_used_only_one_writes(api, services, store, monkeypatch):
    """lastUsedAt's write is conditional on the stored value still being stale, so processes and requests that
    read the same stale value write it once: the later of two writes finds it fresh and changes nothing."""
    await sign_up(api)
    device = await login(api, PHONE)
    session_id = ObjectId(device["sid"])
    long_ago = (dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)).replace(microsecond=0)
    await store.sessions.update_one({"_id": session_id}, {"$set": {"lastUsedAt": long_ago}})
    update_one = services.sessions.sessions.update_one
    reached, released, writes = asyncio.Event(), asyncio.Event(), []

    async def first_one_held(query, update, *args, **kwargs):
        if "lastUsedAt" in update.get("$set", {}) and not reached.is_set():
            reached.set()
            await released.wait()
        result = await update_one(query, update, *args, **kwargs)
        writes.append(result.modified_count)
        return result

    monkeypatch.setattr(services.sessions.sessions, "update_one", first_one_held)
    held = asyncio.ensure_future(api.get("/users/user", token=device["access"]))
    await asyncio.wait_for(reached.wait(), 10)
    assert (await api.get("/users/getFav", headers={"Cookie": f"session={device['cookie']}"})).code == 200
    written = (await store.sessions.find_one({"_id": session_id}))["lastUsedAt"]
    released.set()
    assert (await held).code == 200
    assert writes == [1, 0]
    assert (await store.sessions.find_one({"_id": session_id}))["lastUsedAt"] == written
