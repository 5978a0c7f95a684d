"""What an attacker's pass of 2026-12-06 found in what landed that day (docs/attack-findings.md, 17 onwards).

Each test replays the attack over HTTP and asserts the refusal and the stored state."""
import pytest
from bson import ObjectId

from services.sessions import hash_token
from tests.attack_helpers import mail_settled
from tests.helpers import PASSWORD, assert_error, sign_up

pytestmark = pytest.mark.gen_test

APP = "https://app.example.com"
NEW_PASSWORD = "a brand new password"


@pytest.fixture
def settings_env(smtp_env):
    return {**smtp_env, "APP_URL": APP, "REFRESH_REUSE_GRACE_SECONDS": "60"}


def cookie_of(response) -> str:
    (line,) = [v for v in response.headers.get_list("Set-Cookie") if v.startswith("session=")]
    return line.split(";")[0].split("=", 1)[1]


async def refresh(api, token: str):
    return await api.post("/auth/refresh-tokens", json={"refreshToken": token})


@pytest.mark.parametrize("change", ["change-password", "put-password", "email"])
async def test_a_cookie_callers_change_ends_the_token_pairs_of_its_own_session(api, services, store, change):
    """Finding 17: a browser signs in (the login answer carries a token pair beside the cookie; the web app
    ignores it, whoever read that answer has it). The owner changes the password, or the email, through the
    cookie: the cookie must stay signed in, every token pair of that session must die with the change."""
    ada = await sign_up(api)
    login = await api.post("/auth/login", json={"email": "ada@example.com", "password": PASSWORD})
    assert login.code == 200, login
    cookie, stolen = cookie_of(login), login.json["tokens"]
    grace_copy = stolen["refresh"]["token"]
    rotated = await refresh(api, grace_copy)  # the thief's own copy, rotated once: grace_copy is in the window
    assert rotated.code == 200
    browser = {"Cookie": f"session={cookie}", "Origin": APP}
    if change == "change-password":
        response = await api.post("/auth/change-password", headers=browser, json={
            "email": "ada@example.com", "password": PASSWORD, "newPassword": NEW_PASSWORD})
        assert response.code == 204, response
    else:
        body = {"password": NEW_PASSWORD} if change == "put-password" else {"email": "ada.new@example.com"}
        response = await api.put(f"/users/{ada.id}", headers=browser, json={**body, "currentPassword": PASSWORD})
        assert response.code == 200, response
    # The owner's browser stays signed in.
    me = await api.get("/users/user", headers={"Cookie": f"session={cookie}"})
    assert me.code == 200 and me.json["id"] == ada.id
    # The token pairs issued with that session do not.
    assert_error(await api.get("/users/user", token=stolen["access"]["token"]), 401)
    assert_error(await api.get("/users/user", token=rotated.json["access"]["token"]), 401)
    assert_error(await refresh(api, rotated.json["refresh"]["token"]), 401, "Invalid refresh token")
    assert_error(await refresh(api, grace_copy), 401, "Invalid refresh token")
    # Stored: the cookie's session is the account's only one, and the refusals minted no token for it.
    (session,) = await store.sessions.find({"userId": ObjectId(ada.id)}).to_list(None)
    assert session["cookieHash"] == hash_token(cookie)
    assert await store.tokens.count_documents({"sessionId": session["_id"], "type": "refresh"}) == 2
    await mail_settled(services)
