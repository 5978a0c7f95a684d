"""Login, refresh rotation with reuse detection, logout, and the attempt limit."""

import asyncio
import datetime as dt
import math
import time

import jwt
import pytest
from bson import ObjectId
from pymongo.errors import DuplicateKeyError

from tests.helpers import PASSWORD, Store, assert_error, claims, error_fields, sign_up

pytestmark = pytest.mark.gen_test

WRONG = {"email": "ada@example.com", "password": "wrong password"}


async def test_login_body_matches_the_contract(api):
    registered = await api.register(email="Mark@Example.com")
    body = await api.login("  MARK@example.com ", PASSWORD)
    assert set(body) == {"status", "message", "data", "user", "tokens"}
    assert body["status"] == "success" and body["message"] == "Login successful"
    assert body["user"] == registered["user"]["id"]
    assert body["data"]["user"] == registered["user"]
    assert body["data"]["accessToken"] == body["tokens"]["access"]["token"]
    assert claims(body["tokens"]["access"]["token"])["sid"] != claims(registered["tokens"]["access"]["token"])["sid"]


async def test_wrong_password_and_unknown_email_look_the_same(api):
    await api.register()
    wrong = await api.post("/auth/login", json={"email": "mark@example.com", "password": "not the password"})
    unknown = await api.post("/auth/login", json={"email": "nobody@example.com", "password": "not the password"})
    assert_error(wrong, 401, "Authentication failed")
    assert_error(unknown, 401, "Authentication failed")
    assert wrong.json == unknown.json


async def test_overlong_login_password_is_just_a_failed_login(api):
    await api.register()
    response = await api.post("/auth/login", json={"email": "mark@example.com", "password": "x" * 200})
    assert_error(response, 401, "Authentication failed")


async def test_bearer_token_reaches_protected_endpoints(api):
    token = (await api.register())["tokens"]["access"]["token"]
    assert (await api.post("/auth/send-verification-email", token=token)).code == 204
    assert_error(await api.post("/auth/send-verification-email"), 401)
    assert_error(await api.post("/auth/send-verification-email", headers={"Authorization": "Basic abc"}), 401)
    assert_error(await api.post("/auth/send-verification-email", token="not.a.jwt"), 401)


async def test_tampered_expired_and_foreign_tokens_are_refused(api, config):
    token = (await api.register())["tokens"]["access"]["token"]
    good = claims(token)
    # Another user's live session: its sid paired with the first user's sub (and the reverse) must not pass.
    other = claims((await api.register(email="other@example.com"))["tokens"]["access"]["token"])
    mixed = [
        jwt.encode({**good, "sid": other["sid"]}, config.jwt_secret, algorithm="HS256"),
        jwt.encode({**other, "sid": good["sid"]}, config.jwt_secret, algorithm="HS256"),
    ]
    tampered = jwt.encode({**good, "role": "admin"}, "another-secret-that-is-at-least-32-bytes!", algorithm="HS256")
    expired = jwt.encode(
        {**good, "iat": good["iat"] - 7200, "exp": good["iat"] - 3600}, config.jwt_secret, algorithm="HS256"
    )
    unsigned = jwt.encode({**good}, None, algorithm="none")
    wrong_type = jwt.encode({**good, "type": "refresh"}, config.jwt_secret, algorithm="HS256")
    no_sid = jwt.encode({k: v for k, v in good.items() if k != "sid"}, config.jwt_secret, algorithm="HS256")
    for bad in (tampered, expired, unsigned, wrong_type, no_sid, *mixed):
        assert_error(await api.post("/auth/send-verification-email", token=bad), 401)
    # The genuine tokens still work: nothing above was refused for a reason other than its forgery.
    assert (await api.get("/users/user", token=token)).json["email"] == "mark@example.com"


async def test_refresh_returns_a_new_pair_and_retires_the_old_token(api):
    tokens = (await api.register())["tokens"]
    response = await api.post("/auth/refresh-tokens", json={"refreshToken": tokens["refresh"]["token"]})
    assert response.code == 200, response
    pair = response.json
    assert set(pair) == {"access", "refresh"}
    assert pair["refresh"]["token"] != tokens["refresh"]["token"]
    assert claims(pair["access"]["token"])["sid"] == claims(tokens["access"]["token"])["sid"]
    assert (await api.post("/auth/send-verification-email", token=pair["access"]["token"])).code == 204
    again = await api.post("/auth/refresh-tokens", json={"refreshToken": pair["refresh"]["token"]})
    assert again.code == 200


async def age_retirement(services, refresh_token: str, seconds: float) -> None:
    """Move a retired refresh token's rotation this many seconds into the past."""
    store = Store(services.database)
    from services.sessions import hash_token

    token = await store.tokens.find_one({"hash": hash_token(refresh_token)})
    await store.tokens.update_one(
        {"_id": token["_id"]}, {"$set": {"usedAt": token["usedAt"] - dt.timedelta(seconds=seconds)}}
    )


async def test_reusing_a_retired_refresh_token_after_the_grace_revokes_the_session(api, services, store):
    tokens = (await api.register())["tokens"]
    first = (await api.post("/auth/refresh-tokens", json={"refreshToken": tokens["refresh"]["token"]})).json
    await age_retirement(services, tokens["refresh"]["token"], 10.5)  # REFRESH_REUSE_GRACE_SECONDS is 10
    # The old token comes back (a thief, or the victim after the thief): the whole session ends.
    assert_error(await api.post("/auth/refresh-tokens", json={"refreshToken": tokens["refresh"]["token"]}), 401)
    assert_error(await api.post("/auth/refresh-tokens", json={"refreshToken": first["refresh"]["token"]}), 401)
    assert_error(await api.post("/auth/send-verification-email", token=first["access"]["token"]), 401)
    assert await store.sessions.count_documents({}) == 0


async def test_within_the_grace_a_retired_token_gets_a_new_pair_in_the_same_session(api, services, store):
    tokens = (await api.register())["tokens"]
    sid = claims(tokens["access"]["token"])["sid"]
    first = (await api.post("/auth/refresh-tokens", json={"refreshToken": tokens["refresh"]["token"]})).json
    await age_retirement(services, tokens["refresh"]["token"], 9)
    second = await api.post("/auth/refresh-tokens", json={"refreshToken": tokens["refresh"]["token"]})
    assert second.code == 200, second
    assert claims(second.json["access"]["token"])["sid"] == sid
    assert second.json["refresh"]["token"] not in (first["refresh"]["token"], tokens["refresh"]["token"])
    # Both tabs go on with their own pair.
    for pair in (first, second.json):
        assert (await api.get("/users/user", token=pair["access"]["token"])).code == 200
        assert (await api.post("/auth/refresh-tokens", json={"refreshToken": pair["refresh"]["token"]})).code == 200
    assert await store.sessions.count_documents({}) == 1


async def test_a_retired_token_presented_exactly_at_the_end_of_the_grace_ends_the_session(api, store, monkeypatch):
    import services.sessions as sessions_module

    tokens = (await api.register())["tokens"]
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)  # whole seconds: stored as MongoDB stores dates
    monkeypatch.setattr(sessions_module, "utcnow", lambda: now)
    assert (await api.post("/auth/refresh-tokens", json={"refreshToken": tokens["refresh"]["token"]})).code == 200
    now += dt.timedelta(seconds=10)  # REFRESH_REUSE_GRACE_SECONDS is 10: the grace is "less than 10 s ago"
    assert_error(await api.post("/auth/refresh-tokens", json={"refreshToken": tokens["refresh"]["token"]}), 401)
    assert await store.sessions.count_documents({}) == 0


async def test_concurrent_use_of_one_refresh_token_gives_every_tab_a_pair_of_one_session(api, services, store):
    tokens = (await api.register())["tokens"]
    responses = await asyncio.gather(
        *[api.post("/auth/refresh-tokens", json={"refreshToken": tokens["refresh"]["token"]}) for _ in range(5)]
    )
    assert [r.code for r in responses] == [200] * 5
    assert {claims(r.json["access"]["token"])["sid"] for r in responses} == {claims(tokens["access"]["token"])["sid"]}
    assert len({r.json["refresh"]["token"] for r in responses}) == 5
    assert await store.sessions.count_documents({}) == 1
    # The token was retired once: its rotation time is the first one, so the grace does not slide.
    from services.sessions import hash_token

    retired = await store.tokens.find_one({"hash": hash_token(tokens["refresh"]["token"])})
    assert retired["usedAt"] is not None


class TestNoGrace:
    @pytest.fixture
    def settings_env(self):
        return {"REFRESH_REUSE_GRACE_SECONDS": "0"}

    async def test_concurrent_use_gives_one_pair_and_then_ends_the_session(self, api, services, store):
        # Without a grace, one request wins the rotation; the other four present a retired token, which
        # ends the session (theft detection): exactly one 200, and the session is gone afterwards.
        tokens = (await api.register())["tokens"]
        sid = ObjectId(claims(tokens["access"]["token"])["sid"])
        body = {"refreshToken": tokens["refresh"]["token"]}
        responses = await asyncio.gather(*[api.post("/auth/refresh-tokens", json=body) for _ in range(5)])
        assert sorted(r.code for r in responses) == [200] + [401] * 4
        for response in responses:
            if response.code == 401:
                assert_error(response, 401, "Invalid refresh token")
        (pair,) = [r.json for r in responses if r.code == 200]
        assert claims(pair["access"]["token"])["sid"] == str(sid)
        assert await store.sessions.count_documents({"_id": sid}) == 0
        assert await store.tokens.count_documents({"sessionId": sid}) == 0
        assert (await api.get("/users/user", token=pair["access"]["token"])).code == 401
        assert_error(await api.post("/auth/refresh-tokens", json={"refreshToken": pair["refresh"]["token"]}), 401)


async def test_unknown_expired_and_malformed_refresh_tokens(api, store):
    tokens = (await api.register())["tokens"]
    assert_error(await api.post("/auth/refresh-tokens", json={"refreshToken": "made-up"}), 401)
    assert error_fields(await api.post("/auth/refresh-tokens", json={})) == {"refreshToken": "is required"}
    assert error_fields(await api.post("/auth/refresh-tokens", json={"refreshToken": 1})) == {
        "refreshToken": "must be a string"
    }
    past = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
    await store.tokens.update_many({"type": "refresh"}, {"$set": {"expiresAt": past}})
    assert_error(await api.post("/auth/refresh-tokens", json={"refreshToken": tokens["refresh"]["token"]}), 401)


async def test_refresh_tokens_are_stored_only_as_hashes(api, store):
    tokens = (await api.register())["tokens"]
    stored = await store.tokens.find({}).to_list(None)
    dump = repr(stored)
    assert tokens["refresh"]["token"] not in dump and tokens["access"]["token"] not in dump
    assert any(len(doc["hash"]) == 64 for doc in stored)


async def test_logout_with_refresh_token_ends_that_session_only(api):
    first = (await api.register())["tokens"]
    second = (await api.login())["tokens"]
    response = await api.post("/auth/logout", json={"refreshToken": first["refresh"]["token"]})
    assert response.code == 204 and response.body == b""
    assert_error(await api.post("/auth/send-verification-email", token=first["access"]["token"]), 401)
    assert_error(await api.post("/auth/refresh-tokens", json={"refreshToken": first["refresh"]["token"]}), 401)
    assert (await api.post("/auth/send-verification-email", token=second["access"]["token"])).code == 204
    assert_error(await api.post("/auth/logout", json={"refreshToken": first["refresh"]["token"]}), 401)


async def test_logout_with_bearer_token_and_no_body(api):
    tokens = (await api.register())["tokens"]
    assert (await api.post("/auth/logout", token=tokens["access"]["token"])).code == 204
    assert_error(await api.post("/auth/send-verification-email", token=tokens["access"]["token"]), 401)
    assert_error(await api.post("/auth/refresh-tokens", json={"refreshToken": tokens["refresh"]["token"]}), 401)
    assert_error(await api.post("/auth/logout"), 401)


@pytest.mark.gen_test
async def test_change_password_keeps_only_the_caller_s_session(api, services, store):
    """Guard held by mutation testing: kills the caller's session not kept, or the other sessions' refresh tokens
    left stored."""
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


class TestAttemptLimit:
    @pytest.fixture
    def settings_env(self):
        return {"LOGIN_ATTEMPTS_LIMIT": "3", "LOGIN_ATTEMPTS_WINDOW_SECONDS": "600", "TRUST_PROXY": "true"}

    async def test_failures_past_the_limit_get_429_with_retry_after(self, api):
        await api.register()
        wrong = {"email": "mark@example.com", "password": "wrong password"}
        for _ in range(3):
            assert_error(await api.post("/auth/login", json=wrong), 401)
        blocked = await api.post("/auth/login", json=wrong)
        assert_error(blocked, 429)
        assert 1 <= int(blocked.headers["Retry-After"]) <= 600
        # Even the right password waits: otherwise guessing could go on.
        assert_error(await api.post("/auth/login", json={"email": "mark@example.com", "password": PASSWORD}), 429)
        # Another client address is counted apart.
        other = {"X-Forwarded-For": "198.51.100.7"}
        assert (
            await api.post("/auth/login", json={"email": "mark@example.com", "password": PASSWORD}, headers=other)
        ).code == 200

    async def test_concurrent_guesses_cannot_slip_past_the_limit(self, api):
        await api.register()
        wrong = {"email": "mark@example.com", "password": "wrong password"}
        responses = await asyncio.gather(*[api.post("/auth/login", json=wrong) for _ in range(12)])
        assert sorted(r.code for r in responses) == [401] * 3 + [429] * 9

    async def test_unknown_emails_are_limited_too_and_success_resets(self, api):
        await api.register()
        for _ in range(3):
            assert_error(await api.post("/auth/login", json={"email": "ghost@example.com", "password": "x"}), 401)
        assert_error(await api.post("/auth/login", json={"email": "ghost@example.com", "password": "x"}), 429)
        wrong = {"email": "mark@example.com", "password": "wrong password"}
        for _ in range(2):
            assert_error(await api.post("/auth/login", json=wrong), 401)
        await api.login()
        for _ in range(3):
            assert_error(await api.post("/auth/login", json=wrong), 401)

    async def test_x_real_ip_is_the_address_behind_nginx(self, api):
        await api.register()
        wrong = {"email": "mark@example.com", "password": "wrong password"}
        for _ in range(3):
            await api.post("/auth/login", json=wrong, headers={"X-Real-IP": "203.0.113.1"})
        assert_error(await api.post("/auth/login", json=wrong, headers={"X-Real-IP": "203.0.113.1"}), 429)
        assert_error(await api.post("/auth/login", json=wrong, headers={"X-Real-IP": "203.0.113.2"}), 401)


class TestAttemptWindow:
    @pytest.fixture
    def settings_env(self):
        return {"LOGIN_ATTEMPTS_LIMIT": "2", "LOGIN_ATTEMPTS_WINDOW_SECONDS": "600", "TRUST_PROXY": "true"}

    @pytest.mark.gen_test
    async def test_retry_after_is_the_rest_of_the_window_and_the_count_expires_with_it(self, api, services, store):
        """Guard held by mutation testing: kills WindowCounter's window arithmetic (Retry-After, the window's start
        and end) altered."""
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
        """Guard held by mutation testing: kills client_address taking a hop of X-Forwarded-For other than the last,
        or not stripping it."""
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
        """Guard held by mutation testing: kills client_address's fallback to the peer address, or its stripping of
        the headers, altered."""
        await sign_up(api)
        for _ in range(2):
            assert_error(await api.post("/auth/login", json=WRONG), 401)
        # The same client named by nginx's header is the same counter.
        assert_error(await api.post("/auth/login", json=WRONG, headers={"X-Forwarded-For": "127.0.0.1"}), 429)
        assert_error(await api.post("/auth/login", json=WRONG, headers={"X-Real-IP": " 127.0.0.1 "}), 429)

    @pytest.mark.gen_test
    async def test_a_lost_insert_race_still_counts_the_attempt(self, api, services, store, monkeypatch):
        """Guard held by mutation testing: kills WindowCounter.count's retry after a DuplicateKeyError dropped."""
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
        """Guard held by mutation testing: kills the counter's expiresAt built in local time."""
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


class TestForwardedHeadersIgnoredByDefault:
    @pytest.fixture
    def settings_env(self):
        return {"LOGIN_ATTEMPTS_LIMIT": "2"}

    async def test_spoofed_addresses_do_not_escape_the_limit(self, api):
        await api.register()
        wrong = {"email": "mark@example.com", "password": "wrong password"}
        for n in range(2):
            await api.post("/auth/login", json=wrong, headers={"X-Forwarded-For": f"10.0.0.{n}"})
        blocked = await api.post(
            "/auth/login", json=wrong, headers={"X-Forwarded-For": "10.0.0.99", "X-Real-IP": "10.0.0.98"}
        )
        assert_error(blocked, 429)


class TestAttemptLimitOff:
    @pytest.fixture
    def settings_env(self):
        return {"LOGIN_ATTEMPTS_LIMIT": "0", "LOGIN_ATTEMPTS_PER_ADDRESS": "0"}

    async def test_zero_turns_the_limit_off(self, api, store):
        await api.register()
        for _ in range(12):
            assert_error(await api.post("/auth/login", json={"email": "mark@example.com", "password": "nope"}), 401)
        await api.login()
        assert await store.login_attempts.count_documents({}) == 0
