"""Revocation in the same write as the change (API.md "Revocation that holds").

A password change or reset, an email change and a role change increment the user's session epoch in the
very update that makes the change; a session lives only while it carries that epoch. The session deletes
that follow are cleanup: here they fail (pymongo's real errors, injected into the recording collections)
and no old session survives. The grace window of a copied refresh token never revives one either.
"""

import asyncio
import logging

import pytest
from bson import ObjectId
from pymongo.errors import NetworkTimeout, OperationFailure

from tests.attack_helpers import mail_settled
from tests.helpers import PASSWORD, Held, assert_error, claims, link_token, server_error, sign_up
from tests.users_fixtures import make_admin

pytestmark = pytest.mark.gen_test

NEW_PASSWORD = "a brand new password"
# Ada's change-password body: her password, then the new one.
CHANGE = {"email": "ada@example.com", "password": PASSWORD, "newPassword": NEW_PASSWORD}
APP = "https://app.example.com"


@pytest.fixture
def settings_env(smtp_env):
    return {**smtp_env, "APP_URL": APP, "REFRESH_REUSE_GRACE_SECONDS": "60"}


def network_timeout(*args, **kwargs):
    raise NetworkTimeout("localhost:27017: timed out (configured timeouts: timeoutMS: 5000.0ms)")


async def change_password_raced_by_a_role_change(api, services, monkeypatch, ada, admin, mine):
    """Ada's change-password (from `mine`) held while its new password hashes; meanwhile an admin changes her
    role, and that change's session cleanup fails, so her session document stays, ended by the epoch alone.
    Then the change goes on; its answer is returned."""
    held = Held(services.users.passwords, "hash")
    monkeypatch.setattr(services.users, "passwords", held)
    change = asyncio.ensure_future(
        api.post(
            "/auth/change-password",
            token=mine.access,
            json=CHANGE,
        )
    )
    await asyncio.wait_for(held.reached.wait(), 10)
    monkeypatch.setattr(services.sessions.sessions, "delete_many", network_timeout)
    assert (await api.put(f"/users/{ada.id}", token=admin.token, json={"role": "admin"})).code == 200
    held.released.set()
    answer = await change
    monkeypatch.undo()
    return answer


async def stepped_down(*args, **kwargs):
    raise server_error(
        OperationFailure, "operation was interrupted because a client disconnected", 189, "PrimarySteppedDown"
    )


def cookie_of(response) -> str:
    (line,) = [v for v in response.headers.get_list("Set-Cookie") if v.startswith("session=")]
    return line.split(";")[0].split("=", 1)[1]


class Device:
    """One signed-in device: its access token, refresh token and session cookie."""

    def __init__(self, response):
        assert response.code == 200, response
        self.access = response.json["tokens"]["access"]["token"]
        self.refresh = response.json["tokens"]["refresh"]["token"]
        self.cookie = cookie_of(response)

    @classmethod
    async def login(cls, api, email="ada@example.com", password=PASSWORD):
        return cls(await api.post("/auth/login", json={"email": email, "password": password}))

    async def works(self, api) -> dict:
        """Which of its credentials still authenticate (the refresh token is not spent: a 401 spends nothing)."""
        access = (await api.get("/users/user", token=self.access)).code
        cookie = (await api.get("/users/getFav", headers={"Cookie": f"session={self.cookie}"})).code
        return {"access": access == 200, "cookie": cookie == 200}

    async def refresh_works(self, api) -> bool:
        response = await api.post("/auth/refresh-tokens", json={"refreshToken": self.refresh})
        if response.code == 200:
            self.access = response.json["access"]["token"]
            self.refresh = response.json["refresh"]["token"]
            return True
        assert_error(response, 401, "Invalid refresh token")
        return False


async def assert_ended(api, device) -> None:
    assert await device.works(api) == {"access": False, "cookie": False}
    assert not await device.refresh_works(api)


async def test_the_epoch_alone_ends_every_session(api, store):
    """No delete at all: moving the stored epoch on is what ends access tokens, refresh tokens and cookies."""
    await sign_up(api)
    devices = [await Device.login(api), await Device.login(api)]
    sessions_before = await store.sessions.count_documents({})
    await store.users.update_one({"email": "ada@example.com"}, {"$inc": {"sessionEpoch": 1}})
    for device in devices:
        await assert_ended(api, device)
    assert await store.sessions.count_documents({}) == sessions_before  # nothing was deleted


async def test_a_password_change_whose_cleanup_fails_leaves_no_other_session(api, services, store, monkeypatch):
    await sign_up(api)
    mine, thief = await Device.login(api), await Device.login(api)
    monkeypatch.setattr(services.sessions.sessions, "delete_many", network_timeout)
    monkeypatch.setattr(services.sessions.tokens, "delete_many", stepped_down)
    changed = await api.post(
        "/auth/change-password",
        token=mine.access,
        json=CHANGE,
    )
    # The change is made (one write): the client is told so, though the cleanup failed.
    assert changed.code == 204, changed
    monkeypatch.undo()
    await assert_ended(api, thief)
    assert await mine.works(api) == {"access": True, "cookie": True}
    assert await mine.refresh_works(api) and (await api.get("/users/user", token=mine.access)).code == 200
    user = await store.users.find_one({"email": "ada@example.com"})
    assert user["sessionEpoch"] == 1
    # The thief's session document is still there (the delete failed), and dead.
    assert await store.sessions.count_documents({"userId": user["_id"]}) == 3
    await mail_settled(services)


async def test_a_reset_whose_cleanup_fails_leaves_no_session(api, services, store, mailbox, monkeypatch):
    await sign_up(api)
    devices = [await Device.login(api), await Device.login(api)]
    assert (await api.post("/auth/forgot-password", json={"email": "ada@example.com"})).code == 204
    token = link_token((await mailbox.wait_for(2))[1], "reset-password")
    monkeypatch.setattr(services.sessions.sessions, "delete_many", network_timeout)
    reset = await api.post(f"/auth/reset-password?token={token}", json={"password": NEW_PASSWORD})
    assert reset.code == 204, reset
    monkeypatch.undo()
    for device in devices:
        await assert_ended(api, device)
    assert await store.sessions.count_documents({}) == 3  # left behind, dead
    assert_error(await api.post("/auth/login", json={"email": "ada@example.com", "password": PASSWORD}), 401)
    await Device.login(api, password=NEW_PASSWORD)
    await mail_settled(services)


async def test_when_keeping_the_callers_session_fails_the_caller_is_signed_out_too(
    api, services, store, monkeypatch, caplog
):
    caplog.set_level(logging.ERROR, logger="accounts.sessions")
    await sign_up(api)
    mine, other = await Device.login(api), await Device.login(api)
    real_update_one = services.sessions.sessions.update_one

    async def keep_fails(query, update, *args, **kwargs):
        if "keptAt" in update.get("$set", {}):
            await stepped_down()
        return await real_update_one(query, update, *args, **kwargs)

    monkeypatch.setattr(services.sessions.sessions, "update_one", keep_fails)
    changed = await api.post(
        "/auth/change-password",
        token=mine.access,
        json=CHANGE,
    )
    assert changed.code == 204, changed
    monkeypatch.undo()
    await assert_ended(api, other)
    await assert_ended(api, mine)  # the safe direction
    # Said once, with the driver's error: an operator sees why a user was signed out of their own device.
    (logged,) = [r for r in caplog.records if r.name == "accounts.sessions"]
    assert logged.levelno == logging.ERROR
    assert logged.getMessage() == "keeping the current session after a revoking change failed"
    assert logged.exc_info and isinstance(logged.exc_info[1], OperationFailure) and logged.exc_info[1].code == 189
    await Device.login(api, password=NEW_PASSWORD)
    await mail_settled(services)


async def test_a_refresh_token_copied_inside_the_grace_window_dies_with_the_password(api, services, store):
    """The issue's scenario: the victim rotates, the thief presents the old refresh token inside the grace
    window and gets a pair of the same session; the victim's password change ends the thief's pair."""
    await sign_up(api)
    victim = await Device.login(api)
    stolen = victim.refresh
    assert await victim.refresh_works(api)  # the victim's app refreshes: the stolen token is now retired
    thief = await api.post("/auth/refresh-tokens", json={"refreshToken": stolen})
    assert thief.code == 200, thief  # inside the grace window: a pair of the victim's session
    thief_access, thief_refresh = thief.json["access"]["token"], thief.json["refresh"]["token"]
    assert claims(thief_access)["sid"] == claims(victim.access)["sid"]
    assert (await api.get("/users/user", token=thief_access)).code == 200

    changed = await api.post(
        "/auth/change-password",
        token=victim.access,
        json=CHANGE,
    )
    assert changed.code == 204, changed
    assert_error(await api.get("/users/user", token=thief_access), 401)
    assert_error(await api.post("/auth/refresh-tokens", json={"refreshToken": thief_refresh}), 401)
    # The stolen token again, still inside the grace window: no new pair either.
    assert_error(await api.post("/auth/refresh-tokens", json={"refreshToken": stolen}), 401)
    # The victim's own pair lives on, and so does what it is rotated into.
    assert (await api.get("/users/user", token=victim.access)).code == 200
    assert await victim.refresh_works(api)
    assert (await api.get("/users/user", token=victim.access)).code == 200
    assert claims(victim.access)["gen"] == 1
    session = await store.sessions.find_one({"_id": ObjectId(claims(victim.access)["sid"])})
    assert session["gen"] == 1 and session["epoch"] == 1
    await mail_settled(services)


async def test_a_self_update_with_a_password_keeps_only_the_callers_pair(api, services):
    ada = await sign_up(api)
    victim = await Device.login(api)
    stolen = victim.refresh
    assert await victim.refresh_works(api)
    thief = (await api.post("/auth/refresh-tokens", json={"refreshToken": stolen})).json
    other = await Device.login(api)
    updated = await api.put(
        f"/users/{ada.id}", token=victim.access, json={"password": NEW_PASSWORD, "currentPassword": PASSWORD}
    )
    assert updated.code == 200, updated
    assert_error(await api.get("/users/user", token=thief["access"]["token"]), 401)
    assert_error(await api.post("/auth/refresh-tokens", json={"refreshToken": thief["refresh"]["token"]}), 401)
    await assert_ended(api, other)
    assert_error(await api.get("/users/user", token=ada.token), 401)
    assert (await api.get("/users/user", token=victim.access)).code == 200
    assert await victim.refresh_works(api)
    await mail_settled(services)


async def test_a_cookie_caller_keeps_its_cookie_and_no_token_pair(api, services):
    """The cookie is the browser's credential; the token pair its login answered with is another one, and
    ends with the change (tests/auth/test_attack_found_today.py, finding 17)."""
    await sign_up(api)
    mine, other = await Device.login(api), await Device.login(api)
    changed = await api.post(
        "/auth/change-password",
        json=CHANGE,
        headers={"Cookie": f"session={mine.cookie}", "Origin": APP},
    )
    assert changed.code == 204, changed
    assert await mine.works(api) == {"access": False, "cookie": True}
    assert not await mine.refresh_works(api)
    await assert_ended(api, other)
    await mail_settled(services)


async def test_an_email_change_ends_the_other_sessions_in_the_same_write(api, services, store, monkeypatch):
    ada = await sign_up(api)
    mine, other = await Device.login(api), await Device.login(api)
    monkeypatch.setattr(services.sessions.sessions, "delete_many", network_timeout)
    changed = await api.put(
        f"/users/{ada.id}", token=mine.access, json={"email": "ada.new@example.com", "currentPassword": PASSWORD}
    )
    assert changed.code == 200, changed
    monkeypatch.undo()
    await assert_ended(api, other)
    assert (await api.get("/users/user", token=mine.access)).code == 200
    assert (await store.users.find_one({"_id": ObjectId(ada.id)}))["sessionEpoch"] == 1
    await mail_settled(services)


async def test_an_admin_setting_a_password_or_role_ends_every_session_of_that_user(api, services, store, monkeypatch):
    ada = await sign_up(api)
    admin = await make_admin(api, services)
    device = await Device.login(api)
    monkeypatch.setattr(services.sessions.sessions, "delete_many", network_timeout)
    updated = await api.put(f"/users/{ada.id}", token=admin.token, json={"password": NEW_PASSWORD})
    assert updated.code == 200, updated
    monkeypatch.undo()
    await assert_ended(api, device)
    assert_error(await api.get("/users/user", token=ada.token), 401)
    assert (await api.get("/users", token=admin.token)).code == 200  # the admin's own session is untouched
    device = await Device.login(api, password=NEW_PASSWORD)
    assert (await api.put(f"/users/{ada.id}", token=admin.token, json={"role": "admin"})).code == 200
    await assert_ended(api, device)
    assert (await store.users.find_one({"_id": ObjectId(ada.id)}))["sessionEpoch"] == 2
    await mail_settled(services)


async def test_a_change_raced_by_another_revocation_keeps_no_session(api, services, store, monkeypatch):
    """The caller's change-password is hashing the new password when an admin ends the caller's sessions (a
    role change): the caller's session was ended first, and keeping it must not bring it back."""
    ada = await sign_up(api)
    admin = await make_admin(api, services)
    mine = await Device.login(api)
    assert (await change_password_raced_by_a_role_change(api, services, monkeypatch, ada, admin, mine)).code == 204
    assert await store.sessions.count_documents({"userId": ObjectId(ada.id)}) == 2
    await assert_ended(api, mine)
    assert (await store.users.find_one({"_id": ObjectId(ada.id)}))["sessionEpoch"] == 2
    await mail_settled(services)


async def test_a_login_racing_a_role_change_gets_no_session(api, services, store, monkeypatch):
    """The login checked the password before the revoking write: its session would carry the old epoch."""
    ada = await sign_up(api)
    admin = await make_admin(api, services)
    verify = services.passwords.verify
    reached, released = asyncio.Event(), asyncio.Event()

    async def held_verify(*args):
        result = await verify(*args)
        if not reached.is_set():
            reached.set()
            await released.wait()
        return result

    monkeypatch.setattr(services.passwords, "verify", held_verify)
    login = asyncio.ensure_future(api.post("/auth/login", json={"email": "ada@example.com", "password": PASSWORD}))
    await asyncio.wait_for(reached.wait(), 10)
    assert (await api.put(f"/users/{ada.id}", token=admin.token, json={"role": "admin"})).code == 200
    released.set()
    assert_error(await login, 401, "Authentication failed")
    assert await store.sessions.count_documents({"userId": ObjectId(ada.id)}) == 0


async def test_sessions_from_before_epochs_stay_valid_until_the_next_change(api, services, store):
    """Documents written by the previous version have no epoch, gen, accessJti or lastUsedAt: all read as 0."""
    await sign_up(api)
    old, mine = await Device.login(api), await Device.login(api)
    await store.users.update_many({}, {"$unset": {"sessionEpoch": ""}})
    await store.sessions.update_many(
        {}, {"$unset": {"epoch": "", "gen": "", "lastUsedAt": "", "userAgent": "", "ipAddress": ""}}
    )
    await store.tokens.update_many({}, {"$unset": {"gen": "", "accessJti": ""}})
    assert await old.works(api) == {"access": True, "cookie": True}
    assert await old.refresh_works(api)
    listed = await api.get("/auth/sessions", token=mine.access)
    assert listed.code == 200 and len(listed.json["sessions"]) == 3
    changed = await api.post(
        "/auth/change-password",
        token=mine.access,
        json=CHANGE,
    )
    assert changed.code == 204
    await assert_ended(api, old)
    assert (await api.get("/users/user", token=mine.access)).code == 200
    # A refresh token from before names no access token: it cannot be told from a copy, so it ends too (the
    # safe direction; that device signs in again once its access token expires).
    assert not await mine.refresh_works(api)
    await mail_settled(services)


async def test_a_change_raced_by_another_revocation_keeps_no_session_from_before_epochs(
    api, services, store, monkeypatch
):
    """As above, with the caller's session written by the previous version (no epoch): only the epoch just
    before the caller's write (or none, when that write made it 1) keeps a session, so the admin's change,
    which moved the epoch to 1 first, still ends it."""
    ada = await sign_up(api)
    admin = await make_admin(api, services)
    mine = await Device.login(api)
    await store.users.update_one({"_id": ObjectId(ada.id)}, {"$unset": {"sessionEpoch": ""}})
    await store.sessions.update_one({"_id": ObjectId(claims(mine.access)["sid"])}, {"$unset": {"epoch": ""}})
    assert await mine.works(api) == {"access": True, "cookie": True}
    assert (await change_password_raced_by_a_role_change(api, services, monkeypatch, ada, admin, mine)).code == 204
    stored = await store.sessions.find_one({"_id": ObjectId(claims(mine.access)["sid"])})
    assert stored is not None and "epoch" not in stored  # left as it was: not re-stamped
    await assert_ended(api, mine)
    assert (await store.users.find_one({"_id": ObjectId(ada.id)}))["sessionEpoch"] == 2
    await mail_settled(services)
