"""Attack findings: a login that races a password change or reset keeps a session opened with the old password.

The login reads the user (old hash) and spends a bcrypt check; meanwhile the change or reset writes the new
hash and ends the sessions that exist; only then does the login insert its session, which nothing ends.
The window is one bcrypt check (about 250 ms at BCRYPT_ROUNDS=12); here it is held open on purpose.
"""

import asyncio

import pytest

from tests.attack_helpers import mail_settled
from tests.helpers import PASSWORD, Store, assert_error, link_token

pytestmark = pytest.mark.gen_test

NEW_PASSWORD = "a brand new password"


class HeldVerify:
    """Wraps Passwords.verify: the first call waits, after its check, until released (a race window held open)."""

    def __init__(self, verify):
        self.verify = verify
        self.reached, self.released = asyncio.Event(), asyncio.Event()

    async def __call__(self, *args, **kwargs):
        if self.reached.is_set():
            return await self.verify(*args, **kwargs)
        result = await self.verify(*args, **kwargs)
        self.reached.set()
        await self.released.wait()
        return result


async def login_held_in_its_password_check(api, services, monkeypatch, email):
    """Start a login with the (still current) password; return (held verify, the login's future)."""
    held = HeldVerify(services.passwords.verify)
    monkeypatch.setattr(services.passwords, "verify", held)
    login = asyncio.ensure_future(api.post("/auth/login", json={"email": email, "password": PASSWORD}))
    await asyncio.wait_for(held.reached.wait(), 10)
    return held, login


async def sessions_of(services, user_id):
    store = Store(services.database)
    return await store.sessions.count_documents({"userId": user_id})


async def test_a_login_racing_a_password_change_gets_no_lasting_session(api, services, monkeypatch):
    body = await api.register(email="victim@example.com")
    victim_token = body["tokens"]["access"]["token"]
    held, attacker_login = await login_held_in_its_password_check(api, services, monkeypatch, "victim@example.com")
    # The victim changes the password while the attacker's login (old password) is in flight.
    changed = await api.post(
        "/auth/change-password",
        token=victim_token,
        json={"email": "victim@example.com", "password": PASSWORD, "newPassword": NEW_PASSWORD},
    )
    assert changed.code == 204, changed
    await release_and_check_raced_login(api, services, held, attacker_login)
    # Only the victim's own session (kept by change-password) is left.
    assert await sessions_of(services, (await services.users.find_by_email("victim@example.com"))["_id"]) == 1


async def release_and_check_raced_login(api, services, held, attacker_login) -> None:
    """Let the held login finish. It was refused, or signed in with the old password to a session that did
    not outlive the change: neither its access nor its refresh token works."""
    held.released.set()
    response = await attacker_login
    await mail_settled(services)  # before any assertion: no send may be in flight at teardown
    if response.code != 200:
        assert_error(response, 401, "Authentication failed")
        return
    assert_error(await api.get("/users/user", token=response.json["tokens"]["access"]["token"]), 401)
    refreshed = await api.post(
        "/auth/refresh-tokens", json={"refreshToken": response.json["tokens"]["refresh"]["token"]}
    )
    assert_error(refreshed, 401)


@pytest.fixture
def settings_env(smtp_env):
    return smtp_env


async def test_a_login_racing_a_password_reset_gets_no_lasting_session(api, services, monkeypatch, mailbox):
    await api.register(email="victim@example.com")
    await mailbox.wait_for(1)  # the verification email
    assert (await api.post("/auth/forgot-password", json={"email": "victim@example.com"})).code == 204
    reset_token = link_token((await mailbox.wait_for(2))[1], "reset-password")
    held, attacker_login = await login_held_in_its_password_check(api, services, monkeypatch, "victim@example.com")
    # The victim resets the password (say, because the attacker knows it) while the attacker logs in.
    reset = await api.post(f"/auth/reset-password?token={reset_token}", json={"password": NEW_PASSWORD})
    assert reset.code == 204, reset
    await release_and_check_raced_login(api, services, held, attacker_login)
    # A reset ends every session: none may be left.
    assert await sessions_of(services, (await services.users.find_by_email("victim@example.com"))["_id"]) == 0
