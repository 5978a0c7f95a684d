"""Access and refresh tokens: the pair's claims and lifetimes, refreshing, expiry to the instant, and access
tokens signed with the real secret whose claims lie (forge).

Guards found by mutation testing (docs/history/mutants.md, docs/history/mutation-testing.md): no test failed
when they broke. Each test was checked by breaking its guard and watching it fail (tools/guard_mutations.py
re-checks the hand-made mutations); every attack asserts the refusal AND that nothing changed.
"""

import datetime as dt
import time
import uuid

import jwt
import pytest
from bson import ObjectId

from tests.conftest import TEST_ENV
from tests.helpers import assert_error, caller, claims, close_to, now, sign_up
from tests.users_fixtures import stored

SECRET = TEST_ENV["JWT_SECRET"]
PAST = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
DAY = dt.timedelta(days=1)


def forge(sub: str, sid: str, **extra) -> str:
    """An access token signed with the suite's real secret: only the claims are a lie."""
    now = int(dt.datetime.now(dt.UTC).timestamp())
    payload = {
        "sub": sub,
        "userId": sub,
        "email": "forged@example.com",
        "role": "user",
        "type": "access",
        "sid": sid,
        "iat": now,
        "exp": now + 600,
        "jti": uuid.uuid4().hex,
        **extra,
    }
    return jwt.encode(payload, SECRET, algorithm="HS256")


@pytest.mark.gen_test
async def test_the_token_pair_and_its_claims_match_the_contract(api, services, store):
    """Guard held by mutation testing: kills mutmut's survivors in the pair's claims and lifetimes, and in the
    session and token stored."""
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
async def test_the_pair_s_expiry_times_are_utc_whatever_the_local_zone(api, monkeypatch):
    """Guard held by mutation testing: kills the pair's `expires` times built in local time."""
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


@pytest.mark.gen_test
async def test_refreshing_extends_the_session_and_retires_the_old_token(api, services, store):
    """Guard held by mutation testing: kills rotate's new session expiry or the old token's usedAt altered (mutmut)."""
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
    """Guard held by mutation testing: kills rotate's checks that the session and the user still exist, each dropped."""
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
    """Guard held by mutation testing: kills the 401 messages altered, and rotate's refresh-token expiry check
    dropped (mutmut)."""
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
async def test_refresh_tokens_sessions_and_reset_tokens_are_dead_at_their_expiry_instant(
    api, services, store, monkeypatch
):
    """Guard held by mutation testing: kills an expiry check's `<=` made `<`: a refresh, reset or session alive at
    its expiry instant."""
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
async def test_access_token_stops_working_at_its_session_s_expiry(api, services, store):
    """Guard held by mutation testing: kills `session-expiry` in tools/guard_mutations.py (the session's expiresAt
    not checked)."""
    ada = await sign_up(api)
    assert (await caller(api, ada.token)).code == 200
    sid = ObjectId(claims(ada.token)["sid"])
    await store.sessions.update_one({"_id": sid}, {"$set": {"expiresAt": PAST}})
    assert_error(await caller(api, ada.token), 401)
    # A token forged for that expired session (right user, right secret) fares no better.
    assert_error(await caller(api, forge(ada.id, str(sid))), 401)
    assert (await stored(services, ada.id))["email"] == "ada@example.com"


@pytest.mark.gen_test
async def test_a_session_expiring_right_now_is_over(api, services, store):
    """Guard held by mutation testing: kills the session expiry comparison turned round (a session with a minute left
    refused)."""
    ada = await sign_up(api)
    sid = ObjectId(claims(ada.token)["sid"])
    soon = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=60)
    await store.sessions.update_one({"_id": sid}, {"$set": {"expiresAt": soon}})
    assert (await caller(api, ada.token)).code == 200  # a minute left: still valid


@pytest.mark.gen_test
async def test_one_user_s_sub_with_another_user_s_live_sid_is_refused(api, services, store):
    """Guard held by mutation testing: kills `session-user` in tools/guard_mutations.py (the session looked up
    without its user)."""
    ada = await sign_up(api)
    bob = await sign_up(api, email="bob@example.com", name="Bob Marley")
    ada_sid, bob_sid = claims(ada.token)["sid"], claims(bob.token)["sid"]
    # Both sessions are alive, and each user's own forged-but-correct pairing works: the secret is right.
    assert (await caller(api, forge(ada.id, ada_sid))).json["id"] == ada.id
    for forged in (forge(ada.id, bob_sid), forge(bob.id, ada_sid)):
        assert_error(await caller(api, forged), 401)
    # Nothing changed: both sessions still work for their own users.
    assert (await caller(api, ada.token)).json["id"] == ada.id
    assert (await caller(api, bob.token)).json["id"] == bob.id
    assert await store.sessions.count_documents({}) == 2


@pytest.mark.gen_test
async def test_forged_tokens_with_unknown_or_malformed_ids_are_refused(api, services, store):
    """Guard held by mutation testing: kills authenticate's checks of the claims' ids, of the token type and of a
    deleted user, each dropped."""
    ada = await sign_up(api)
    ada_sid = claims(ada.token)["sid"]
    unknown = str(ObjectId())
    for forged in (
        forge(unknown, ada_sid),
        forge(ada.id, unknown),
        forge("not-an-id", ada_sid),
        forge(ada.id, "not-an-id"),
        forge(ada.id, ada_sid, type="refresh"),
        forge(ada.id, ada_sid, type=None),
    ):
        assert_error(await caller(api, forged), 401)
    # After the user is gone their still-live-looking session document authenticates nothing.
    await store.users.delete_one({"_id": ObjectId(ada.id)})
    assert_error(await caller(api, ada.token), 401)


@pytest.mark.gen_test
async def test_every_required_claim_is_required(api):
    """Guard held by mutation testing: kills a claim dropped from jwt.decode's `require` list, or the bearer scheme
    read loosely."""
    ada = await sign_up(api)
    good = claims(ada.token)
    for missing in ("exp", "iat", "sub", "sid", "jti", "type"):
        token = jwt.encode({k: v for k, v in good.items() if k != missing}, SECRET, algorithm="HS256")
        assert_error(await caller(api, token), 401)
    # Not a bearer scheme, or an empty one.
    for header in ("Basic " + ada.token, "Bearer ", "Bearer    ", ada.token):
        assert_error(await api.get("/users/user", headers={"Authorization": header}), 401)
    assert (await api.get("/users/user", headers={"Authorization": "bearer  " + ada.token})).code == 200
