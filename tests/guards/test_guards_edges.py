"""Boundaries, stored state and failure paths that mutmut's survivors showed no test looked at
(docs/history/mutants.md).

Sessions and tokens, the login-attempt window's arithmetic, the error envelope's other paths, body
limits at the byte, and what the logs say. docs/developing/testing.md has the run these came from.
"""

import asyncio
import datetime as dt
import json
import logging
import math
import time

import pytest
from bson import ObjectId
from pymongo.errors import DuplicateKeyError, ServerSelectionTimeoutError

from tests.helpers import PASSWORD, assert_error, claims
from tests.users_fixtures import sign_up
from tests.wire import raw_exchange

DAY = dt.timedelta(days=1)
WRONG = {"email": "ada@example.com", "password": "wrong password"}


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def close_to(value: dt.datetime, expected: dt.datetime, seconds: float = 30) -> bool:
    return abs((value - expected).total_seconds()) <= seconds


# ---- sessions and the token pair --------------------------------------------------------------------


@pytest.mark.gen_test
async def test_the_token_pair_and_its_claims_match_the_contract(api, services, store):
    ada = await sign_up(api)
    pair = (await api.login(email="ada@example.com"))["tokens"]
    access = claims(pair["access"]["token"])
    # The contract's claims, and `gen`: the session's token generation (docs/using/two-factor.md, "Sessions").
    assert set(access) == {"sub", "userId", "email", "role", "type", "sid", "iat", "exp", "jti", "gen"}
    assert access["gen"] == 0
    user_id = (await services.users.find_by_email("ada@example.com"))["_id"]
    assert access["sub"] == access["userId"] == ada.id == str(user_id)
    assert (access["email"], access["role"], access["type"]) == ("ada@example.com", "user", "access")
    assert access["exp"] - access["iat"] == 30 * 60
    assert abs(access["iat"] - time.time()) < 30
    assert len(access["jti"]) == 32 and access["jti"] != claims(ada.token)["jti"]
    expires = dt.datetime.fromisoformat(pair["access"]["expires"].replace("Z", "+00:00"))
    assert expires == dt.datetime.fromtimestamp(access["exp"], dt.UTC)
    refresh_expires = dt.datetime.fromisoformat(pair["refresh"]["expires"].replace("Z", "+00:00"))
    assert close_to(refresh_expires, now() + 30 * DAY)
    # Stored: the session, and the refresh token as a hash bound to that session and user.
    sid = ObjectId(access["sid"])
    session = await store.sessions.find_one({"_id": sid})
    assert session["userId"] == user_id and close_to(session["createdAt"], now())
    assert close_to(session["expiresAt"], now() + 30 * DAY)
    token = await store.tokens.find_one({"sessionId": sid})
    assert token["type"] == "refresh" and token["userId"] == user_id and token["usedAt"] is None
    assert close_to(token["createdAt"], now()) and token["expiresAt"] == refresh_expires


@pytest.mark.gen_test
async def test_refreshing_extends_the_session_and_retires_the_old_token(api, services, store):
    ada = await sign_up(api)
    sid = ObjectId(claims(ada.token)["sid"])
    await store.sessions.update_one({"_id": sid}, {"$set": {"expiresAt": now() + dt.timedelta(minutes=5)}})
    response = await api.post("/auth/refresh-tokens", json={"refreshToken": ada.refresh})
    assert response.code == 200, response
    session = await store.sessions.find_one({"_id": sid})
    assert close_to(session["expiresAt"], now() + 30 * DAY)
    old = await store.tokens.find_one({"sessionId": sid, "usedAt": {"$ne": None}})
    assert old is not None and close_to(old["usedAt"], now())
    assert await store.tokens.count_documents({"sessionId": sid, "usedAt": None}) == 1


@pytest.mark.gen_test
async def test_refresh_of_a_gone_session_or_user_is_401(api, services, store):
    ada = await sign_up(api)
    bob = await sign_up(api, email="bob@example.com", name="Bob Marley")
    # The session document is gone but its refresh token is still stored.
    await store.sessions.delete_one({"_id": ObjectId(claims(ada.token)["sid"])})
    assert_error(
        await api.post("/auth/refresh-tokens", json={"refreshToken": ada.refresh}), 401, "Invalid refresh token"
    )
    # The user is gone but session and token are still stored.
    await store.users.delete_one({"_id": ObjectId(bob.id)})
    assert_error(
        await api.post("/auth/refresh-tokens", json={"refreshToken": bob.refresh}), 401, "Invalid refresh token"
    )


@pytest.mark.gen_test
async def test_refresh_and_logout_messages(api, services, store):
    ada = await sign_up(api)
    await store.tokens.update_many({"type": "refresh"}, {"$set": {"expiresAt": now() - DAY}})
    assert_error(
        await api.post("/auth/refresh-tokens", json={"refreshToken": ada.refresh}), 401, "Invalid refresh token"
    )
    assert_error(await api.post("/auth/logout", json={"refreshToken": "made-up"}), 401, "Invalid refresh token")
    assert_error(await api.get("/users/getFav"), 401, "Please authenticate")
    # An expired refresh token is refused without ending its session: the access token still works.
    assert (await api.get("/users/user", token=ada.token)).code == 200


@pytest.mark.gen_test
async def test_change_password_keeps_only_the_caller_s_session(api, services, store):
    ada = await sign_up(api)
    others = [(await api.login(email="ada@example.com"))["tokens"] for _ in range(2)]
    bob = await sign_up(api, email="bob@example.com", name="Bob Marley")
    body = {"email": "ada@example.com", "password": PASSWORD, "newPassword": "a brand new password"}
    assert (await api.post("/auth/change-password", json=body, token=ada.token)).code == 204
    user_id = ObjectId(ada.id)
    assert [s["_id"] for s in await store.sessions.find({"userId": user_id}).to_list(None)] == [
        ObjectId(claims(ada.token)["sid"])
    ]
    for pair in others:
        assert_error(await api.get("/users/user", token=pair["access"]["token"]), 401)
        # Their refresh tokens are gone from the store too, not merely unusable.
        assert await store.tokens.count_documents({"sessionId": ObjectId(claims(pair["access"]["token"])["sid"])}) == 0
    assert await store.tokens.count_documents({"sessionId": ObjectId(claims(ada.token)["sid"])}) == 1
    assert (await api.get("/users/user", token=bob.token)).code == 200  # another user's session is untouched


@pytest.mark.gen_test
async def test_reset_token_of_a_deleted_user_is_401(api, services, store):
    await sign_up(api)
    user = await services.users.find_by_email("ada@example.com")
    raw, _ = await services.sessions.issue_single_use(user, "reset", 10)
    stored = await store.tokens.find_one({"type": "reset"})
    assert stored["email"] == "ada@example.com" and stored["userId"] == user["_id"]
    assert close_to(stored["createdAt"], now()) and close_to(stored["expiresAt"], now() + dt.timedelta(minutes=10))
    await store.users.delete_one({"_id": user["_id"]})
    response = await api.post(f"/auth/reset-password?token={raw}", json={"password": "a brand new password"})
    assert_error(response, 401, "Invalid or expired token")


# ---- the login-attempt window -----------------------------------------------------------------------


class TestAttemptWindow:
    @pytest.fixture
    def settings_env(self):
        return {"LOGIN_ATTEMPTS_LIMIT": "2", "LOGIN_ATTEMPTS_WINDOW_SECONDS": "600", "TRUST_PROXY": "true"}

    @pytest.mark.gen_test
    async def test_retry_after_is_the_rest_of_the_window_and_the_count_expires_with_it(self, api, services, store):
        await sign_up(api)
        for _ in range(2):
            assert_error(await api.post("/auth/login", json=WRONG), 401)
        before = time.time()
        blocked = await api.post("/auth/login", json=WRONG)
        assert_error(blocked, 429, "Too many login attempts, try again later")
        window_end = (int(before) // 600 + 1) * 600
        assert abs(int(blocked.headers["Retry-After"]) - math.ceil(window_end - before)) <= 2
        # Two counters: this email from this address, and this address across all emails.
        counters = await store.login_attempts.find({}).to_list(None)
        assert len(counters) == 2
        for counter in counters:
            assert counter["count"] == 3
            assert counter["expiresAt"] == dt.datetime.fromtimestamp(window_end, dt.UTC)
            assert counter["_id"].endswith(f":{window_end - 600}") and "ada" not in counter["_id"]

    @pytest.mark.gen_test
    async def test_the_address_is_the_last_forwarded_hop(self, api):
        await sign_up(api)
        # nginx appends the peer it saw; whatever the client wrote before it is not believed.
        for spoofed in ("10.0.0.1", "10.0.0.2"):
            headers = {"X-Forwarded-For": f"{spoofed}, 203.0.113.9"}
            assert_error(await api.post("/auth/login", json=WRONG, headers=headers), 401)
        blocked = await api.post("/auth/login", json=WRONG, headers={"X-Forwarded-For": "10.0.0.3,203.0.113.9 "})
        assert_error(blocked, 429)
        assert (
            await api.post(
                "/auth/login",
                json={**WRONG, "password": PASSWORD},
                headers={"X-Forwarded-For": "203.0.113.9, 198.51.100.1"},
            )
        ).code == 200

    @pytest.mark.gen_test
    async def test_without_forwarding_headers_the_peer_address_counts(self, api):
        await sign_up(api)
        for _ in range(2):
            assert_error(await api.post("/auth/login", json=WRONG), 401)
        # The same client named by nginx's header is the same counter.
        assert_error(await api.post("/auth/login", json=WRONG, headers={"X-Forwarded-For": "127.0.0.1"}), 429)
        assert_error(await api.post("/auth/login", json=WRONG, headers={"X-Real-IP": " 127.0.0.1 "}), 429)

    @pytest.mark.gen_test
    async def test_a_lost_insert_race_still_counts_the_attempt(self, api, services, store, monkeypatch):
        await sign_up(api)
        collection = services.login_attempts.collection  # the service's own handle: patched below
        real = collection.find_one_and_update
        raced = []

        async def first_insert_loses(*args, **kwargs):
            if not raced:
                raced.append(True)
                await real(*args, **kwargs)  # the other request's insert
                raise DuplicateKeyError("E11000 duplicate key error", 11000)
            return await real(*args, **kwargs)

        monkeypatch.setattr(collection, "find_one_and_update", first_insert_loses)
        # Two first attempts race (on the per-address counter, counted first) and its limit is 1: the
        # loser's retry counts second, and is refused.
        monkeypatch.setattr(services.login_attempts, "per_address", 1)
        assert_error(await api.post("/auth/login", json=WRONG), 429)
        assert raced and [doc["count"] for doc in await collection.find({}).to_list(None)] == [2]

    @pytest.mark.gen_test
    async def test_the_counter_expires_at_the_window_end_in_utc_whatever_the_local_zone(
        self, api, services, store, monkeypatch
    ):
        await sign_up(api)
        monkeypatch.setenv("TZ", "Asia/Kolkata")  # UTC+5:30: a naive local time would be stored 5.5 h off
        time.tzset()
        try:
            before = time.time()
            assert_error(await api.post("/auth/login", json=WRONG), 401)
        finally:
            monkeypatch.undo()
            time.tzset()
        window_end = (int(before) // 600 + 1) * 600
        for counter in await store.login_attempts.find({}).to_list(None):
            assert counter["expiresAt"] == dt.datetime.fromtimestamp(window_end, dt.UTC)


# ---- the error envelope's other paths ----------------------------------------------------------------


@pytest.mark.gen_test
async def test_database_unavailable_is_503_in_the_envelope(api, services, monkeypatch, caplog):
    async def unreachable(email):
        raise ServerSelectionTimeoutError("no server")

    monkeypatch.setattr(services.auth, "forgot_password", unreachable)
    with caplog.at_level(logging.INFO, logger="accounts.http"):
        response = await api.post("/auth/forgot-password", json={"email": "ada@example.com"})
    body = assert_error(response, 503, "Database unavailable")
    assert set(body) == {"status", "statusCode", "code", "message"}
    (record,) = [r for r in caplog.records if r.name == "accounts.http"]
    assert record.levelno == logging.WARNING and "database unavailable" in record.getMessage()
    assert record.exc_info is None and response.headers["X-Request-ID"] in record.getMessage()


@pytest.mark.gen_test
async def test_unexpected_errors_are_logged_with_their_traceback_and_client_errors_are_not(
    api, services, monkeypatch, caplog
):
    async def broken(email):
        raise RuntimeError("boom")

    with caplog.at_level(logging.INFO, logger="accounts.http"):
        assert_error(await api.post("/auth/login", json={}), 422)
        assert_error(await api.get("/users/getFav"), 401)
        assert not [r for r in caplog.records if r.name == "accounts.http"]
        monkeypatch.setattr(services.auth, "forgot_password", broken)
        response = await api.post("/auth/forgot-password", json={"email": "ada@example.com"})
    assert_error(response, 500)
    (record,) = [r for r in caplog.records if r.name == "accounts.http"]
    assert record.levelno == logging.ERROR and record.exc_info[0] is RuntimeError
    message = record.getMessage()
    assert response.headers["X-Request-ID"] in message and "POST /auth/forgot-password" in message


@pytest.mark.gen_test
async def test_tornado_s_own_errors_keep_their_reason(api, caplog):
    with caplog.at_level(logging.INFO, logger="accounts.http"):
        assert_error(await api.delete("/auth/login"), 405, "Method Not Allowed")
    assert not [r for r in caplog.records if r.name == "accounts.http" and r.levelno >= logging.ERROR]


@pytest.mark.gen_test
async def test_every_request_leaves_the_in_flight_count_at_zero(api, app):
    await api.get("/health")
    await api.get("/no/such/route")
    await api.post("/auth/login", json={})
    await api.post("/auth/login", body=b"x" * (2 * 1024 * 1024), headers={"Content-Type": "application/json"})
    assert app.in_flight == 0


@pytest.fixture
def held_forgot_password(services, monkeypatch):
    """forgot-password requests held in the service until released: (entered, release). Each request that
    reaches the service releases `entered` once."""
    entered, release = asyncio.Semaphore(0), asyncio.Event()

    async def held(email):
        entered.release()
        await release.wait()

    monkeypatch.setattr(services.auth, "forgot_password", held)
    return entered, release


@pytest.mark.gen_test
async def test_a_client_that_hangs_up_mid_request_is_uncounted_once(api, app, held_forgot_password, http_port):
    # The SIGTERM drain waits for in_flight to reach 0: counted twice down, it would stop waiting early.
    entered, release = held_forgot_password
    body = b'{"email": "mark@example.com"}'
    reader, writer = await asyncio.open_connection("127.0.0.1", http_port)
    writer.write(
        b"POST /auth/forgot-password HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body
    )
    await writer.drain()
    await asyncio.wait_for(entered.acquire(), 10)
    writer.close()
    deadline = time.monotonic() + 10
    while app.in_flight != 0 and time.monotonic() < deadline:  # the server notices the hang-up
        await asyncio.sleep(0.01)
    assert app.in_flight == 0
    release.set()  # the handler now finishes its answer to nobody
    await api.get("/health")  # by its answer, the woken handler has run to its end
    assert app.in_flight == 0


@pytest.mark.gen_test
async def test_requests_in_flight_together_are_each_counted(api, app, held_forgot_password):
    # What the SIGTERM drain waits on: three requests held at once are three, and each answer takes one away.
    entered, release = held_forgot_password
    asking = [
        asyncio.ensure_future(api.post("/auth/forgot-password", json={"email": f"u{n}@example.com"})) for n in range(3)
    ]
    for _ in asking:
        await asyncio.wait_for(entered.acquire(), 10)
    assert app.in_flight == 3
    release.set()
    assert [(await answer).code for answer in asking] == [204, 204, 204]
    assert app.in_flight == 0


# ---- request bodies at the byte ----------------------------------------------------------------------


class TestBodyLimit:
    LIMIT = 2048

    @pytest.fixture
    def settings_env(self):
        return {"MAX_BODY_BYTES": str(self.LIMIT)}

    @staticmethod
    def body_of(size: int) -> bytes:
        """A login body of exactly size bytes (JSON, padded with spaces)."""
        core = b'{"email": "ada@example.com", "password": "wrong password"}'
        return core + b" " * (size - len(core))

    @pytest.mark.gen_test
    async def test_a_body_of_exactly_the_limit_is_read_and_one_byte_more_is_413(self, api):
        json_type = {"Content-Type": "application/json"}
        at_limit = await api.post("/auth/login", body=self.body_of(self.LIMIT), headers=json_type)
        assert_error(at_limit, 401, "Authentication failed")
        assert_error(
            await api.post("/auth/login", body=self.body_of(self.LIMIT + 1), headers=json_type),
            413,
            "Request body too large",
        )

    @pytest.mark.gen_test
    async def test_the_same_holds_for_chunked_bodies(self, api):
        def chunked(body: bytes):
            async def produce(write):
                for start in range(0, len(body), 500):
                    await write(body[start : start + 500])

            return produce

        json_type = {"Content-Type": "application/json"}
        at_limit = await api.post("/auth/login", body_producer=chunked(self.body_of(self.LIMIT)), headers=json_type)
        assert_error(at_limit, 401, "Authentication failed")
        over = await api.post("/auth/login", body_producer=chunked(self.body_of(self.LIMIT + 1)), headers=json_type)
        assert_error(over, 413, "Request body too large")

    @pytest.mark.gen_test
    async def test_a_body_up_to_eight_times_the_limit_is_read_before_the_413_and_past_that_is_not(self, api, http_port):
        async def post(size: int) -> tuple:
            body = self.body_of(size)
            return await raw_exchange(
                http_port,
                (
                    b"POST /auth/login HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                    b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body
                ),
            )

        # Read and dropped first (DISCARD_FACTOR = 8): the 413 keeps the keep-alive connection usable.
        status, headers, body = await post(8 * self.LIMIT)
        assert (status, json.loads(body)["message"]) == (413, "Request body too large")
        assert "connection" not in headers
        # One byte more is refused unread, and the answer says the connection ends.
        status, headers, body = await post(8 * self.LIMIT + 1)
        assert (status, json.loads(body)["message"]) == (413, "Request body too large")
        assert headers["connection"] == "close"


@pytest.mark.gen_test
async def test_json_media_type_is_matched_without_case_or_spacing(api):
    body = b'{"email": "ada@example.com", "password": "wrong password"}'
    for content_type in ("Application/JSON", " application/json ; charset=utf-8", "application/json;charset=UTF-8"):
        assert_error(await api.post("/auth/login", body=body, headers={"Content-Type": content_type}), 401)
    for content_type in ("application/jsonp", "text/json", ""):
        assert_error(
            await api.post("/auth/login", body=body, headers={"Content-Type": content_type}),
            415,
            "Content-Type must be application/json",
        )
    # No body at all needs no content type.
    assert_error(await api.post("/auth/login", body=b"  ", headers={"Content-Type": "text/plain"}), 422)


# ---- organisations -----------------------------------------------------------------------------------


@pytest.mark.gen_test
async def test_a_registration_that_loses_the_email_race_leaves_no_organisation(api, services, store, monkeypatch):
    async def lost_race(document, *args, **kwargs):
        raise DuplicateKeyError("E11000 duplicate key error collection: users index: email_unique", 11000)

    monkeypatch.setattr(services.users.collection, "insert_one", lost_race)
    response = await api.post(
        "/auth/register", json={"name": "Ada Lovelace", "email": "ada@example.com", "password": PASSWORD}
    )
    assert_error(response, 422)
    assert await store.organisations.count_documents({}) == 0
    assert await store.memberships.count_documents({}) == 0


@pytest.mark.gen_test
async def test_a_user_in_no_organisation_still_sees_themselves(api, services, store):
    ada = await sign_up(api)
    bob = await sign_up(api, email="bob@example.com", name="Bob Marley")
    await store.memberships.delete_many({"userId": ObjectId(ada.id)})
    response = await api.get(f"/api/users/{ada.id}", token=ada.token)
    assert response.code == 200 and response.json["data"]["id"] == ada.id
    assert_error(await api.get(f"/api/users/{bob.id}", token=ada.token), 403)
    assert_error(await api.get(f"/api/users/{ada.id}", token=bob.token), 403)


@pytest.mark.gen_test
async def test_organisations_are_listed_in_the_order_they_were_joined(api, services, store):
    ada = await sign_up(api)
    created = []
    for name in ("Zeta", "Alpha", "Mid"):
        response = await api.post("/api/organisations", json={"name": name}, token=ada.token)
        created.append(response.json["data"]["orgId"])
    # An organisation deleted behind its memberships' back is not listed.
    await store.organisations.delete_one({"_id": ObjectId(created[1])})
    listed = (await api.get("/api/organisations", token=ada.token)).json["data"]["organisations"]
    assert [org["name"] for org in listed] == ["Ada's Organisation", "Zeta", "Mid"]
    # The order is the joining time, not the id: joined "Mid" first, then the default, then "Zeta".
    memberships = store.memberships
    for org_id, joined in ((created[2], 1), (None, 2), (created[0], 3)):
        query = {"orgId": ObjectId(org_id)} if org_id else {"orgId": {"$nin": [ObjectId(i) for i in created]}}
        when = dt.datetime(2026, 1, joined, tzinfo=dt.UTC)
        await memberships.update_one(query, {"$set": {"createdAt": when}})
    listed = (await api.get("/api/organisations", token=ada.token)).json["data"]["organisations"]
    assert [org["name"] for org in listed] == ["Mid", "Ada's Organisation", "Zeta"]
    # Joined at the same instant: by id, whatever order the store holds them in (the default's
    # membership, the oldest id, is written back last).
    await memberships.update_many({}, {"$set": {"createdAt": dt.datetime(2026, 1, 1, tzinfo=dt.UTC)}})
    default = await memberships.find_one({"orgId": {"$nin": [ObjectId(i) for i in created]}})
    await memberships.delete_one({"_id": default["_id"]})
    await memberships.insert_one(default)
    listed = (await api.get("/api/organisations", token=ada.token)).json["data"]["organisations"]
    assert [org["name"] for org in listed] == ["Ada's Organisation", "Zeta", "Mid"]


# ---- CORS ---------------------------------------------------------------------------------------------


class TestCorsPreflight:
    @pytest.fixture
    def settings_env(self):
        return {"CORS_ORIGINS": "https://app.example.com"}

    @pytest.mark.gen_test
    async def test_the_preflight_allows_the_contract_s_methods_and_headers_and_says_for_how_long(self, api):
        preflight = await api.request(
            "OPTIONS",
            "/users/user",
            headers={
                "Origin": "https://app.example.com",
                "Access-Control-Request-Method": "PUT",
                "Access-Control-Request-Headers": "authorization, content-type",
            },
        )
        assert preflight.code == 204 and preflight.body == b""
        methods = {m.strip() for m in preflight.headers["Access-Control-Allow-Methods"].split(",")}
        assert {"GET", "POST", "PUT", "PATCH", "DELETE"} <= methods
        allowed = {h.strip().lower() for h in preflight.headers["Access-Control-Allow-Headers"].split(",")}
        assert {"authorization", "content-type"} <= allowed
        assert int(preflight.headers["Access-Control-Max-Age"]) > 0
        exposed = {h.strip().lower() for h in preflight.headers["Access-Control-Expose-Headers"].split(",")}
        assert {"retry-after", "x-request-id"} <= exposed
        # An unlisted origin's preflight gets none of it.
        other = await api.request(
            "OPTIONS",
            "/users/user",
            headers={"Origin": "https://evil.example.com", "Access-Control-Request-Method": "PUT"},
        )
        assert other.code == 204
        assert not [name for name in other.headers if name.lower().startswith("access-control-")]


# ---- expiry instants ------------------------------------------------------------------------------------


@pytest.mark.gen_test
async def test_refresh_tokens_sessions_and_reset_tokens_are_dead_at_their_expiry_instant(
    api, services, store, monkeypatch
):
    import services.sessions as sessions_module

    ada = await sign_up(api)
    user = await services.users.find_by_email("ada@example.com")
    raw_reset, _ = await services.sessions.issue_single_use(user, "reset", 10)
    instant = sessions_module.utcnow()
    monkeypatch.setattr(sessions_module, "utcnow", lambda: instant)  # the clock stops at the expiry instant
    sid = ObjectId(claims(ada.token)["sid"])
    await store.tokens.update_many({"userId": user["_id"]}, {"$set": {"expiresAt": instant}})
    assert_error(await api.post("/auth/refresh-tokens", json={"refreshToken": ada.refresh}), 401)
    assert_error(await api.post(f"/auth/reset-password?token={raw_reset}", json={"password": "a brand new one"}), 401)
    await store.sessions.update_one({"_id": sid}, {"$set": {"expiresAt": instant}})
    assert_error(await api.get("/users/user", token=ada.token), 401)


@pytest.mark.gen_test
async def test_a_path_that_is_not_utf_8_is_400_and_logged_as_a_warning(api, caplog):
    ada = await sign_up(api)
    with caplog.at_level(logging.INFO, logger="accounts.http"):
        response = await api.get("/users/%FF%FE", token=ada.token)
    assert_error(response, 400, "Bad Request")
    (record,) = [r for r in caplog.records if r.name == "accounts.http"]
    assert record.levelno == logging.WARNING
    request_id = response.headers["X-Request-ID"]
    assert record.getMessage() == f"400 Invalid unicode in url: b'\\xff\\xfe' request_id={request_id}"


@pytest.mark.gen_test
async def test_a_new_organisation_is_stored_with_exactly_its_fields(api, services, store):
    ada = await sign_up(api)
    response = await api.post("/api/organisations", json={"name": "Acme", "description": "Anvils"}, token=ada.token)
    org_id = ObjectId(response.json["data"]["orgId"])
    stored_org = await store.organisations.find_one({"_id": org_id})
    assert set(stored_org) == {"_id", "name", "description", "createdBy", "createdAt"}
    assert (stored_org["name"], stored_org["description"], stored_org["createdBy"]) == (
        "Acme",
        "Anvils",
        ObjectId(ada.id),
    )
    assert close_to(stored_org["createdAt"], now())
    membership = await store.memberships.find_one({"orgId": org_id})
    assert membership["userId"] == ObjectId(ada.id) and membership["createdAt"] == stored_org["createdAt"]


@pytest.mark.gen_test
async def test_the_pair_s_expiry_times_are_utc_whatever_the_local_zone(api, monkeypatch):
    await sign_up(api)
    monkeypatch.setenv("TZ", "Asia/Kolkata")
    time.tzset()
    try:
        pair = (await api.login(email="ada@example.com"))["tokens"]
    finally:
        monkeypatch.undo()
        time.tzset()
    exp = dt.datetime.fromtimestamp(claims(pair["access"]["token"])["exp"], dt.UTC)
    assert pair["access"]["expires"] == exp.strftime("%Y-%m-%dT%H:%M:%S.000Z")
