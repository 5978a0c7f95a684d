"""What an attacker's pass of 2026-12-06 found in what landed that day (docs/history/attack-findings.md, 17 onwards).

Each test replays the attack over HTTP and asserts the refusal and the stored state."""

import time

import pyotp
import pytest
from bson import ObjectId

from models import sessions as session_model
from services.sessions import hash_token
from tests.account_security_fixtures import Browser, mail_to, taken_over, verified_account
from tests.attack_helpers import mail_settled
from tests.helpers import PASSWORD, assert_error, link_token, sign_up
from tests.wire import exchange, one_connection, run

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
        response = await api.post(
            "/auth/change-password",
            headers=browser,
            json={"email": "ada@example.com", "password": PASSWORD, "newPassword": NEW_PASSWORD},
        )
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


UNDO = "/email-change/undo"


async def thief_verifies(api, mailbox, ada, address: str) -> None:
    """The thief, signed in as ada, verifies the address they moved the account to (theirs)."""
    before = len([r for r in mailbox.recipients if r == [address]])
    assert (await api.post("/auth/send-verification-email", token=ada.token)).code == 204
    verification = (await mail_to(mailbox, address, before + 1))[before]
    assert (await api.post(f"/auth/verify-email?token={link_token(verification, 'verify-email')}")).code == 204


async def owner_takes_it_back(api, mailbox, store, ada, token: str) -> None:
    """Ada clicks her link: her address is back (verified), the thief's sessions are dead, a reset link comes."""
    browser = Browser(api)
    page = await browser.get(f"{UNDO}?token={token}")
    assert page.code == 200 and "Put your old email address back?" in page.body.decode(), page
    done = await browser.submit(page, UNDO, {"token": token})
    assert done.code == 303 and done.headers["Location"] == f"{UNDO}/done", done
    user = await store.users.find_one({"_id": ObjectId(ada.id)})
    assert (user["email"], user["isEmailVerified"]) == ("ada@example.com", True)
    assert_error(await api.get("/users/user", token=ada.token), 401)  # the thief's session
    reset = (await mail_to(mailbox, "ada@example.com", 3))[2]  # verification, notice, then the reset link
    assert reset["Subject"] == "[Accounts] Reset your password"
    assert (
        await store.tokens.count_documents(
            {"userId": ObjectId(ada.id), "type": {"$in": [session_model.UNDO, session_model.RESET]}}
        )
        == 2
    )


async def test_a_second_email_change_does_not_void_the_owners_undo_link(api, mailbox, services, store):
    """Finding 18: the thief moved Ada's account to their address, then moved it once more. Ada's link (to her
    old address) was bound to the first change's new address, so it said "no longer applies": one more PATCH
    voided the only way back the owner had. Her link takes the account back whatever happened after."""
    ada = await verified_account(api, mailbox)
    token = await taken_over(api, mailbox, ada)
    response = await api.patch(
        f"/users/{ada.id}", token=ada.token, json={"email": "thief2@example.com", "currentPassword": PASSWORD}
    )
    assert response.code == 200, response
    await owner_takes_it_back(api, mailbox, store, ada, token)
    await mail_settled(services)


async def test_the_thiefs_own_undo_link_does_not_void_the_owners(api, mailbox, services, store):
    """Finding 18, second way: the thief verifies their address, moves the account on (which mails their
    address an undo link of its own) and clicks that link. The undo voided every other link of the account,
    Ada's included. An undo voids the links of its own and later changes, never those of earlier ones."""
    ada = await verified_account(api, mailbox)
    token = await taken_over(api, mailbox, ada)
    await thief_verifies(api, mailbox, ada, "thief@example.com")
    response = await api.patch(
        f"/users/{ada.id}", token=ada.token, json={"email": "thief2@example.com", "currentPassword": PASSWORD}
    )
    assert response.code == 200, response
    notice = (await mail_to(mailbox, "thief@example.com", 2))[1]
    thiefs = Browser(api)
    page = await thiefs.get(f"{UNDO}?token={link_token(notice, 'email-change/undo')}")
    assert (await thiefs.submit(page, UNDO, {"token": link_token(notice, "email-change/undo")})).code == 303
    assert (await store.users.find_one({"_id": ObjectId(ada.id)}))["email"] == "thief@example.com"
    assert await store.tokens.find_one({"hash": hash_token(token), "usedAt": None}) is not None
    await owner_takes_it_back(api, mailbox, store, ada, token)
    await mail_settled(services)


async def test_a_second_factor_the_thief_turned_on_does_not_survive_the_undo(api, mailbox, services, store):
    """Finding 19: the thief (Ada's session and password) moves the account to their address and turns two-factor
    on with their own authenticator. Ada clicks her undo link and sets a new password with the reset link it
    mails her; she still cannot sign in: the login asks for a code from the thief's device, and only an admin
    can help. The takeover was undone on paper only."""
    ada = await verified_account(api, mailbox)
    token = await taken_over(api, mailbox, ada)
    setup = await api.post("/auth/2fa/setup", token=ada.token, json={"currentPassword": PASSWORD})
    assert setup.code == 200, setup
    enabled = await api.post("/auth/2fa/enable", token=ada.token, json={"code": pyotp.TOTP(setup.json["secret"]).now()})
    assert enabled.code == 200, enabled
    await owner_takes_it_back(api, mailbox, store, ada, token)
    reset = (await mail_to(mailbox, "ada@example.com", 3))[2]
    response = await api.post(
        f"/auth/reset-password?token={link_token(reset, 'reset-password')}", json={"password": NEW_PASSWORD}
    )
    assert response.code == 204, response
    signed_in = await api.post("/auth/login", json={"email": "ada@example.com", "password": NEW_PASSWORD})
    await mail_settled(services)
    assert signed_in.code == 200, signed_in  # before the fix: 401 "Two-factor code required" (the thief's device)
    stored = await store.users.find_one({"_id": ObjectId(ada.id)})
    assert stored["twoFactorEnabled"] is False
    assert not {"totpSecret", "totpLastStep", "recoveryCodes", "totpPending", "twoFactorEnabledAt"} & set(stored)


async def test_the_owners_own_second_factor_survives_the_undo(api, mailbox, services, store):
    """Finding 19's other side: a second factor Ada turned on before the takeover stays on (the undo turns
    nothing of hers off); the reset link it mails her still needs her code to sign in."""
    ada = await verified_account(api, mailbox)
    setup = await api.post("/auth/2fa/setup", token=ada.token, json={"currentPassword": PASSWORD})
    secret = setup.json["secret"]
    enabled = await api.post("/auth/2fa/enable", token=ada.token, json={"code": pyotp.TOTP(secret).now()})
    assert enabled.code == 200, enabled
    sealed = (await store.users.find_one({"_id": ObjectId(ada.id)}))["totpSecret"]
    on = (await mail_to(mailbox, "ada@example.com", 2))[1]  # verification, then the two-factor notice
    assert on["Subject"] == "[Accounts] Two-factor sign-in was turned on"
    token = await taken_over(api, mailbox, ada)
    browser = Browser(api)
    done = await browser.submit(await browser.get(f"{UNDO}?token={token}"), UNDO, {"token": token})
    assert done.code == 303 and done.headers["Location"] == f"{UNDO}/done", done
    stored = await store.users.find_one({"_id": ObjectId(ada.id)})
    assert stored["email"] == "ada@example.com" and stored["twoFactorEnabled"] is True
    assert stored["totpSecret"] == sealed and stored["twoFactorEnabledAt"]
    assert_error(await api.get("/users/getFav", token=ada.token), 401)  # the thief's session
    signed_in = await api.post("/auth/login", json={"email": "ada@example.com", "password": PASSWORD})
    assert signed_in.code == 401 and signed_in.json["mfaRequired"] is True
    await mail_settled(services)


class TestAProxyHeaderThatIsNoAddress:
    """Finding 20: with TRUST_PROXY on, X-Real-IP (or the last X-Forwarded-For entry) was taken as it came:
    behind a proxy that does not overwrite X-Real-IP (a load balancer setting only X-Forwarded-For), a client's
    `1.2.3.4 userId=<someone> status=200` went into the session list and, with LOG_FORMAT=text, forged fields of
    the access log line; 5,000 characters were stored per session; `a, b,` gave the empty address. A value that
    is not an IP address is not believed: the next source is."""

    @pytest.fixture
    def settings_env(self, smtp_env):
        return {**smtp_env, "TRUST_PROXY": "true", "REGISTRATIONS_PER_ADDRESS_PER_HOUR": "0"}

    @pytest.mark.parametrize(
        "headers, seen",
        [
            ({"X-Real-IP": "203.0.113.7 userId=6b15f0ebbf10afce848b16d9 status=200"}, "127.0.0.1"),
            ({"X-Real-IP": "x" * 5000}, "127.0.0.1"),
            ({"X-Real-IP": "not-an-address", "X-Forwarded-For": "198.51.100.1, 203.0.113.9"}, "203.0.113.9"),
            ({"X-Forwarded-For": "198.51.100.1, 203.0.113.9,"}, "127.0.0.1"),
            ({"X-Real-IP": "fe80::1%x status=200"}, "127.0.0.1"),
            ({"X-Real-IP": "2001:DB8:0::1"}, "2001:db8::1"),
            ({"X-Real-IP": "203.0.113.7"}, "203.0.113.7"),
        ],
        ids=["forged-fields", "long", "falls-to-xff", "empty-last-hop", "ipv6-zone", "ipv6", "plain"],
    )
    async def test_only_an_ip_address_is_believed(self, api, services, store, caplog, headers, seen):
        with caplog.at_level("INFO", logger="accounts.access"):
            response = await api.post(
                "/auth/register",
                headers=headers,
                json={"name": "Ada Lovelace", "email": "ada@example.com", "password": PASSWORD},
            )
        assert response.code == 201, response
        (session,) = await store.sessions.find({}).to_list(None)
        assert session["ipAddress"] == seen
        listed = await api.get("/auth/sessions", token=response.json["tokens"]["access"]["token"])
        assert [s["ipAddress"] for s in listed.json["sessions"]] == [seen]
        (line,) = [r for r in caplog.records if r.getMessage() == "POST /auth/register 201"]
        assert line.fields["ip"] == seen
        await mail_settled(services)


class TestEnableCodeGuesses:
    """Finding 21: POST /auth/2fa/enable took any number of wrong codes. Whoever holds a stolen access token of
    an account whose owner started a setup (the pending secret is the owner's) could guess the code, turn
    two-factor on with it, sign every other session (the owner's) out and walk away with the recovery codes.
    A wrong code now counts as a failed attempt of LOGIN_ATTEMPTS_LIMIT, as on disable."""

    @pytest.fixture
    def settings_env(self):
        return {"APP_URL": APP, "LOGIN_ATTEMPTS_LIMIT": "4"}

    async def test_wrong_enable_codes_are_counted_and_limited(self, api, store):
        ada = await sign_up(api)
        setup = await api.post("/auth/2fa/setup", token=ada.token, json={"currentPassword": PASSWORD})
        assert setup.code == 200, setup
        totp = pyotp.TOTP(setup.json["secret"])
        right = {totp.at(time.time() + k * 30) for k in (-1, 0, 1)}
        guesses = (f"{n:06d}" for n in range(1000) if f"{n:06d}" not in right)
        for _ in range(4):
            assert_error(await api.post("/auth/2fa/enable", token=ada.token, json={"code": next(guesses)}), 422)
        limited = await api.post("/auth/2fa/enable", token=ada.token, json={"code": totp.now()})
        assert_error(limited, 429)
        assert limited.headers["Retry-After"]
        user = await store.users.find_one({"_id": ObjectId(ada.id)})
        assert not user.get("twoFactorEnabled") and user["totpPending"] and "recoveryCodes" not in user


class TestCodeGuessesFromManyAddresses:
    """Finding 22: the login limiter counts per (email, address) and per address, so a thief holding the
    password and many addresses guessed second-factor codes without bound: 10 guesses per address and 15
    minutes, 1,000 addresses make 10,000 guesses, a 3-in-a-million chance each (three codes are valid at once).
    Now an account's codes (login and disable) take at most 3 × LOGIN_ATTEMPTS_LIMIT tries a window across
    every address; past it 429, the right code included, and no session opens."""

    @pytest.fixture
    def settings_env(self):
        return {
            "APP_URL": APP,
            "LOGIN_ATTEMPTS_LIMIT": "2",
            "TRUST_PROXY": "true",
            "REGISTRATIONS_PER_ADDRESS_PER_HOUR": "0",
        }

    async def test_an_accounts_codes_are_limited_across_addresses(self, api, store):
        ada = await sign_up(api)
        setup = await api.post("/auth/2fa/setup", token=ada.token, json={"currentPassword": PASSWORD})
        totp = pyotp.TOTP(setup.json["secret"])
        enabled = await api.post("/auth/2fa/enable", token=ada.token, json={"code": totp.now()})
        assert enabled.code == 200, enabled
        right = {totp.at(time.time() + k * 30) for k in (-1, 0, 1)}
        guesses = (f"{n:06d}" for n in range(1000) if f"{n:06d}" not in right)
        body = {"email": "ada@example.com", "password": PASSWORD}
        for n in range(6):  # one guess from each of six addresses: every address is far below its own limit
            response = await api.post(
                "/auth/login", json={**body, "otp": next(guesses)}, headers={"X-Real-IP": f"203.0.113.{n + 1}"}
            )
            assert_error(response, 401, "Authentication failed")
        sessions = await store.sessions.count_documents({"userId": ObjectId(ada.id)})
        # A seventh address, even with a right recovery code: refused, nothing used up, no session.
        recovery = enabled.json["recoveryCodes"][0]
        limited = await api.post("/auth/login", json={**body, "otp": recovery}, headers={"X-Real-IP": "198.51.100.7"})
        assert_error(limited, 429)
        assert int(limited.headers["Retry-After"]) > 0
        assert await store.sessions.count_documents({"userId": ObjectId(ada.id)}) == sessions
        assert len((await store.users.find_one({"_id": ObjectId(ada.id)}))["recoveryCodes"]) == 10


def browser_misses_then_continues(connection) -> list:
    """A browser's navigation to a missing page, then its next requests on the same connection."""
    page = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}
    seen = []
    for method, path, headers in [
        ("GET", "/no/such/page", page),
        ("GET", "/health", {}),
        ("GET", "/another/missing/page", page),
        ("GET", "/health", {}),
    ]:
        status, response_headers, body, port = exchange(connection, method, path, headers=headers)
        seen.append((status, response_headers.get("Connection"), response_headers["Content-Type"], port))
    return seen


async def test_the_html_404_keeps_the_connection_alive(http_server, base_url):
    """Finding 23: the HTML 404 page (a browser's navigation to a missing path) was answered before the request
    body was read, so it said `Connection: close`: every mistyped URL cost the browser its connection, against
    the contract's "keep-alive works after every answer, errors included"."""
    connection = one_connection(base_url)
    try:
        seen = await run(browser_misses_then_continues, connection)
    finally:
        connection.close()
    assert [(status, header, kind.split(";")[0]) for status, header, kind, _ in seen] == [
        (404, None, "text/html"),
        (200, None, "application/json"),
    ] * 2
    assert len({port for *_, port in seen}) == 1, seen  # one connection throughout


async def test_a_squatter_account_on_the_old_address_does_not_block_the_undo(api, mailbox, services, store):
    """Finding 24: once the thief moved Ada's account to their address, her old address was free, and one sign-up
    with it (no verification needed: the link would go to Ada's mailbox) made her undo link say "Your old address
    now belongs to another account": the owner's way back, voided by one registration. While an undo link may
    still put an address back, the address is not free: registering it, or moving another account to it, is the
    ordinary "already taken"."""
    ada = await verified_account(api, mailbox)
    token = await taken_over(api, mailbox, ada)
    squat = await api.post("/auth/register", json={"name": "Not Ada", "email": "ada@example.com", "password": PASSWORD})
    assert_error(squat, 422)
    assert squat.json["errors"] == [{"field": "email", "message": "is already taken"}]
    other = await sign_up(api, email="other@example.com", name="Other Person")
    moved = await api.patch(
        f"/users/{other.id}", token=other.token, json={"email": "ada@example.com", "currentPassword": PASSWORD}
    )
    assert_error(moved, 422)
    assert await store.users.count_documents({"email": "ada@example.com"}) == 0
    assert (await store.users.find_one({"_id": ObjectId(other.id)}))["email"] == "other@example.com"
    await owner_takes_it_back(api, mailbox, store, ada, token)
    await mail_settled(services)
