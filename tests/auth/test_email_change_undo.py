"""Taking an account back: the link in an email-change notice, APP_URL/email-change/undo?token=…,
over HTTP in-process, with stored state (tests/pages/test_email_change_undo_browser.py walks it in Chromium).

The story in each test: Ada's address is verified; a thief holding her access token and password moves the
account's email to theirs; the notice to Ada's address carries the undo link."""

import datetime as dt
import re

import pytest
from bson import ObjectId
from pymongo.errors import ExecutionTimeout, OperationFailure

from models import sessions as session_model
from services.sessions import hash_token
from tests.account_security_fixtures import FORM, SUPPORT, Browser, mail_to, sentinel, taken_over, verified_account
from tests.helpers import PASSWORD, assert_error, link_token, server_error, sign_up, text_part

pytestmark = pytest.mark.gen_test

UNDO = "/email-change/undo"
OWN_PASSWORD = "ada's own new password"  # what Ada chooses once she has her account back
ASK = "Put your old email address back?"
BACK = "Your old email address is back"
USED = "This link was already used"
EXPIRED = "This link has expired"
UNKNOWN = "This link is not valid"
TAKEN = "Your old address now belongs to another account"
THIEFS_PASSWORD = "the thief's new password"


@pytest.fixture
def settings_env(smtp_env):
    return {**smtp_env, "SUPPORT_EMAIL": SUPPORT}


def page_of(response, status: int, heading: str, *texts: str) -> str:
    assert response.code == status, response
    assert response.headers["Content-Type"] == "text/html; charset=UTF-8"
    assert response.headers["Cache-Control"] == "no-store" and response.headers["Referrer-Policy"] == "no-referrer"
    html = response.body.decode()
    assert f"<h1>{heading}</h1>" in html, html
    for text in texts:
        assert text in html, html
    return html


async def snapshot(store, user_id: str) -> tuple:
    """What a refused or merely opened link must leave alone: the user, their sessions and tokens."""
    user = await store.users.find_one({"_id": ObjectId(user_id)})
    sessions = await store.sessions.count_documents({"userId": ObjectId(user_id)})
    tokens = sorted(
        (t["hash"], t.get("usedAt"), t.get("usedBy"))
        for t in await store.tokens.find({"userId": ObjectId(user_id)}).to_list(None)
    )
    return user, sessions, tokens


async def scene(api, mailbox):
    """Ada (verified, signed in twice), then the thief's takeover: (ada, her other session, the undo token)."""
    ada = await verified_account(api, mailbox)
    laptop = await api.login("ada@example.com", PASSWORD)
    token = await taken_over(api, mailbox, ada)
    return ada, laptop, token


async def reset_with(api, reset) -> None:
    """Ada chooses her own new password through the reset link in `reset` (204 asserted)."""
    response = await api.post(
        f"/auth/reset-password?token={link_token(reset, 'reset-password')}", json={"password": OWN_PASSWORD}
    )
    assert response.code == 204, response


async def test_the_notice_carries_a_link_that_is_stored_hashed_and_bound_to_the_change(api, mailbox, store):
    ada, _, token = await scene(api, mailbox)
    notice = (await mail_to(mailbox, "ada@example.com", 2))[1]
    text = text_part(notice)
    assert f"https://app.example.com{UNDO}?token={token}" in text and "expires in 7 days" in text
    assert "t***@example.com" in text and "thief@example.com" not in text
    assert f"Write to {SUPPORT}" in text and notice["Reply-To"] == SUPPORT
    assert re.fullmatch(r"[A-Za-z0-9_-]{43}", token)  # 256 random bits
    (stored,) = await store.tokens.find({"type": session_model.UNDO}).to_list(None)
    assert stored["hash"] == hash_token(token) and token not in str(stored)
    assert set(stored) == {
        "_id",
        "hash",
        "type",
        "userId",
        "oldEmail",
        "newEmail",
        "createdAt",
        "validUntil",
        "expiresAt",
    }
    assert stored["createdAt"] <= stored["validUntil"]
    assert (stored["userId"], stored["oldEmail"], stored["newEmail"]) == (
        ObjectId(ada.id),
        "ada@example.com",
        "thief@example.com",
    )
    assert (
        dt.timedelta(days=7) - dt.timedelta(minutes=1)
        < stored["validUntil"].replace(tzinfo=dt.UTC) - dt.datetime.now(dt.UTC)
        <= dt.timedelta(days=7)
    )
    assert stored["expiresAt"] > stored["validUntil"]  # kept a while after, so the page can say "expired"


async def test_opening_the_link_changes_nothing_and_one_click_takes_the_account_back(api, mailbox, store):
    ada, laptop, token = await scene(api, mailbox)
    # The thief also asked for a reset link, to the address that is theirs now, and signed in again.
    assert (await api.post("/auth/forgot-password", json={"email": "thief@example.com"})).code == 204
    (thiefs_reset,) = await mail_to(mailbox, "thief@example.com", 1)
    thief = await api.login("thief@example.com", PASSWORD)
    before = await snapshot(store, ada.id)
    # A mail scanner opens the link: it sees the button, and nothing changes.
    browser = Browser(api)
    page = await browser.get(f"{UNDO}?token={token}")
    html = page_of(
        page,
        200,
        ASK,
        f'action="{UNDO}"',
        'method="post"',
        f'name="token" value="{token}"',
        'name="_xsrf"',
        "Put my old address back",
    )
    assert "<title>Put your old email address back? – Accounts</title>" in html
    assert await snapshot(store, ada.id) == before
    # Ada clicks.
    response = await browser.submit(page, UNDO, {"token": token})
    assert response.code == 303 and response.headers["Location"] == f"{UNDO}/done"
    page_of(
        await api.get(f"{UNDO}/done"),
        200,
        BACK,
        "has been signed out",
        "works for 10 minutes",
        'href="/forgot-password"',
    )
    user = await store.users.find_one({"_id": ObjectId(ada.id)})
    old = before[0]
    # The old address, verified; every session ended in that same write; nothing else turned off or changed.
    assert user["email"] == "ada@example.com" and user["isEmailVerified"] is True
    assert user["sessionEpoch"] == old.get("sessionEpoch", 0) + 1
    assert {k: v for k, v in user.items() if k not in ("email", "isEmailVerified", "updatedAt", "sessionEpoch")} == {
        k: v for k, v in old.items() if k not in ("email", "isEmailVerified", "updatedAt", "sessionEpoch")
    }
    assert await store.sessions.count_documents({"userId": ObjectId(ada.id)}) == 0
    for access in (ada.token, laptop["tokens"]["access"]["token"], thief["tokens"]["access"]["token"]):
        assert_error(await api.get("/users/user", token=access), 401)
    assert_error(
        await api.post("/auth/refresh-tokens", json={"refreshToken": thief["tokens"]["refresh"]["token"]}), 401
    )
    # The thief's reset link is dead; a new one went to Ada's address, not counted against its budget, and works.
    assert_error(
        await api.post(
            f"/auth/reset-password?token={link_token(thiefs_reset, 'reset-password')}",
            json={"password": THIEFS_PASSWORD},
        ),
        401,
    )
    reset = (await mail_to(mailbox, "ada@example.com", 3))[2]
    assert reset["Subject"] == "[Accounts] Reset your password"
    assert text_part(reset).startswith("Hello Ada,")  # the restored address is a verified one
    await reset_with(api, reset)
    await api.login("ada@example.com", OWN_PASSWORD)
    assert (await api.post("/auth/login", json={"email": "thief@example.com", "password": PASSWORD})).code == 401
    used = await store.tokens.find_one({"hash": hash_token(token)})
    assert used["usedAt"] is not None and used["usedBy"] == hash_token(browser.cookie.split("=", 1)[1])


async def test_a_second_click_and_back_show_the_outcome_and_anyone_else_hears_used(api, mailbox, store):
    ada, _, token = await scene(api, mailbox)
    browser = Browser(api)
    page = await browser.get(f"{UNDO}?token={token}")
    assert (await browser.submit(page, UNDO, {"token": token})).code == 303
    after = await snapshot(store, ada.id)
    # The same browser: a second click is the same redirect, Back the outcome; nothing happens twice.
    response = await browser.submit(page, UNDO, {"token": token})
    assert response.code == 303 and response.headers["Location"] == f"{UNDO}/done"
    page_of(await browser.get(f"{UNDO}?token={token}"), 200, BACK)
    # Anyone else: the link is used, and the way forward is a new reset link.
    other = Browser(api)
    html = page_of(await other.get(f"{UNDO}?token={token}"), 400, USED, 'href="/forgot-password"')
    assert 'name="token"' not in html
    refused = await other.submit(await other.get("/forgot-password"), UNDO, {"token": token})
    page_of(refused, 400, USED)
    assert await snapshot(store, ada.id) == after
    await sentinel(api, mailbox, 4)  # Ada's verification, notice and one reset, and the sentinel's


async def test_an_expired_link_says_so_and_changes_nothing(api, mailbox, store):
    ada, _, token = await scene(api, mailbox)
    browser = Browser(api)
    page = await browser.get(f"{UNDO}?token={token}")
    await store.tokens.update_one(
        {"hash": hash_token(token)},
        {"$set": {"validUntil": dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)}},
    )
    before = await snapshot(store, ada.id)
    page_of(
        await api.get(f"{UNDO}?token={token}"),
        400,
        EXPIRED,
        "work for 7 days",
        f"write to {SUPPORT}",
        f'href="mailto:{SUPPORT}"',
    )
    page_of(await browser.submit(page, UNDO, {"token": token}), 400, EXPIRED)  # the page opened in time
    assert await snapshot(store, ada.id) == before


async def test_a_link_is_expired_at_its_very_instant(api, mailbox, store, monkeypatch):
    import services.auth as auth_module
    import services.sessions as sessions_module

    ada, _, token = await scene(api, mailbox)
    browser = Browser(api)
    page = await browser.get(f"{UNDO}?token={token}")
    instant = sessions_module.utcnow()
    await store.tokens.update_one({"hash": hash_token(token)}, {"$set": {"validUntil": instant}})
    for module in (auth_module, sessions_module):
        monkeypatch.setattr(module, "utcnow", lambda: instant)  # the clock stops at the link's last instant
    before = await snapshot(store, ada.id)
    page_of(await api.get(f"{UNDO}?token={token}"), 400, EXPIRED)
    page_of(await browser.submit(page, UNDO, {"token": token}), 400, EXPIRED)
    assert await snapshot(store, ada.id) == before


@pytest.mark.parametrize(
    "query", ["?token=made-up-token-0123456789abcdef", "?token=short", "", "?token=a&token=b", "?token=" + "x" * 300]
)
async def test_an_unknown_or_malformed_link_says_so(api, mailbox, store, query):
    ada, _, token = await scene(api, mailbox)
    before = await snapshot(store, ada.id)
    page_of(await api.get(UNDO + query), 400, UNKNOWN, "the whole link", 'href="/forgot-password"')
    browser = Browser(api)
    page = await browser.get("/forgot-password")  # any page with the form's xsrf field
    fields = {"token": query.partition("=")[2]} if query else {}
    page_of(await browser.submit(page, UNDO, fields), 400, UNKNOWN)
    assert await snapshot(store, ada.id) == before


async def test_the_old_address_taken_meanwhile_says_so_and_the_link_stays_usable(api, mailbox, store):
    ada, _, token = await scene(api, mailbox)
    browser = Browser(api)
    page = await browser.get(f"{UNDO}?token={token}")
    page_of(page, 200, ASK)
    # Registered in the moment between the email change and the storing of its undo link, the only time the
    # address is free since attack finding 24: for that moment the link is kept from reserving the address.
    hidden = {"hash": hash_token(token)}
    await store.tokens.update_one(hidden, {"$set": {"oldEmail": "elsewhere@example.com"}})
    squatter = await sign_up(api, email="ada@example.com", name="Someone Else")
    await store.tokens.update_one(hidden, {"$set": {"oldEmail": "ada@example.com"}})
    html = page_of(
        await browser.get(f"{UNDO}?token={token}"), 400, TAKEN, f"write to {SUPPORT}", f'href="mailto:{SUPPORT}"'
    )
    assert 'name="token"' not in html
    before = await snapshot(store, ada.id)
    # Taken between the page and the click (the page was opened before the squatter came): the same answer.
    posted = await browser.submit(page, UNDO, {"token": token})
    page_of(posted, 400, TAKEN)
    assert await snapshot(store, ada.id) == before  # the link is not used up: it did nothing
    assert (await store.users.find_one({"_id": ObjectId(squatter.id)}))["email"] == "ada@example.com"
    # Once the address is free again, the same link works.
    assert (await api.post(f"/users/{squatter.id}", token=squatter.token, json={"password": PASSWORD})).code == 204
    assert (await browser.submit(page, UNDO, {"token": token})).code == 303
    assert (await store.users.find_one({"_id": ObjectId(ada.id)}))["email"] == "ada@example.com"


async def test_an_address_changed_again_still_takes_the_account_back(api, mailbox, store):
    # A thief's second change must not void the owner's link (attack finding 18; tests/auth/test_attack_found_today.py).
    ada, _, token = await scene(api, mailbox)
    response = await api.patch(
        f"/users/{ada.id}", token=ada.token, json={"email": "thief2@example.com", "currentPassword": PASSWORD}
    )
    assert response.code == 200, response
    browser = Browser(api)
    page = page_of(await browser.get(f"{UNDO}?token={token}"), 200, ASK)
    assert 'name="token"' in page
    response = await browser.submit(await browser.get(f"{UNDO}?token={token}"), UNDO, {"token": token})
    assert response.code == 303, response
    user = await store.users.find_one({"_id": ObjectId(ada.id)})
    assert (user["email"], user["isEmailVerified"]) == ("ada@example.com", True)
    assert_error(await api.get("/users/getFav", token=ada.token), 401)


async def test_the_undo_voids_every_other_link_the_thief_holds(api, mailbox, store):
    ada, _, token = await scene(api, mailbox)
    # The thief verifies their address, then moves the account on and back, which mails them an undo link of
    # their own (bound to thief -> thief2) and leaves the account at the thief's first address.
    assert (await api.post("/auth/send-verification-email", token=ada.token)).code == 204
    (verification,) = await mail_to(mailbox, "thief@example.com", 1)
    assert (await api.post(f"/auth/verify-email?token={link_token(verification, 'verify-email')}")).code == 204
    response = await api.patch(
        f"/users/{ada.id}", token=ada.token, json={"email": "thief2@example.com", "currentPassword": PASSWORD}
    )
    assert response.code == 200
    notice = (await mail_to(mailbox, "thief@example.com", 2))[1]
    thiefs_undo = link_token(notice, "email-change/undo")
    response = await api.patch(
        f"/users/{ada.id}", token=ada.token, json={"email": "thief@example.com", "currentPassword": PASSWORD}
    )
    assert response.code == 200
    assert await store.tokens.count_documents({"type": session_model.UNDO}) == 2
    browser = Browser(api)
    assert (await browser.submit(await browser.get(f"{UNDO}?token={token}"), UNDO, {"token": token})).code == 303
    left = await store.tokens.find({"userId": ObjectId(ada.id), "type": {"$ne": session_model.REFRESH}}).to_list(None)
    assert sorted(t["type"] for t in left) == [session_model.UNDO, session_model.RESET]  # this one, used; the reset
    assert await store.tokens.find_one({"hash": hash_token(thiefs_undo)}) is None
    page_of(await api.get(f"{UNDO}?token={thiefs_undo}"), 400, UNKNOWN)


async def test_a_form_without_the_xsrf_cookie_changes_nothing(api, mailbox, store):
    ada, _, token = await scene(api, mailbox)
    before = await snapshot(store, ada.id)
    page = await api.get(f"{UNDO}?token={token}")
    xsrf = re.search(r'name="_xsrf" value="([^"]+)"', page.body.decode()).group(1)
    refused = await api.post(UNDO, body=f"token={token}&_xsrf={xsrf}", headers=FORM)  # no cookie: another site
    page_of(refused, 403, "This form has expired", "Open the link in the email again")
    assert await snapshot(store, ada.id) == before


def failing_write(services, where: str):
    """(object, method name) of a write the undo makes after its restore."""
    return {
        "sessions.delete_many": (services.sessions.sessions, "delete_many"),  # end_all, the clean-up
        "tokens.delete_many": (services.sessions.tokens, "delete_many"),  # end_all's tokens, void_links
        "outbox.insert_one": (services.outbox.collection, "insert_one"),
    }[where]  # the reset email


@pytest.mark.parametrize(
    "error",
    [
        server_error(OperationFailure, "operation was interrupted", 189, "PrimarySteppedDown"),
        server_error(ExecutionTimeout, "operation exceeded time limit", 50, "MaxTimeMSExpired"),
    ],
    ids=["PrimarySteppedDown", "MaxTimeMSExpired"],
)
@pytest.mark.parametrize("where", ["sessions.delete_many", "tokens.delete_many", "outbox.insert_one"])
async def test_a_failure_after_the_restore_leaves_no_session_behind(
    api, mailbox, services, store, monkeypatch, where, error
):
    # The primary steps down, or timeoutMS runs out, after the restore committed: the restore's own write
    # already ended every session (sessionEpoch), so nothing the thief holds outlives it.
    ada, _, token = await scene(api, mailbox)
    old_epoch = (await store.users.find_one({"_id": ObjectId(ada.id)})).get("sessionEpoch", 0)

    async def fail(*args, **kwargs):
        raise error

    monkeypatch.setattr(*failing_write(services, where), fail)
    browser = Browser(api)
    response = await browser.submit(await browser.get(f"{UNDO}?token={token}"), UNDO, {"token": token})
    if where == "sessions.delete_many":
        # Only the clean-up of dead session documents failed: the undo goes on (links voided, reset mailed).
        assert response.code == 303 and response.headers["Location"] == f"{UNDO}/done"
        reset = (await mail_to(mailbox, "ada@example.com", 3))[2]
        assert reset["Subject"] == "[Accounts] Reset your password"
    else:
        page_of(response, 503, "This page is not available right now")
    user = await store.users.find_one({"_id": ObjectId(ada.id)})
    assert user["email"] == "ada@example.com" and user["sessionEpoch"] == old_epoch + 1
    monkeypatch.undo()
    # The thief's session (ada's own token, kept through the takeover) is dead, whatever failed after the write.
    assert_error(await api.get("/users/getFav", token=ada.token), 401)
    # The link is used; the person is told so, and the way forward (a reset link to the restored address) works.
    page_of(await Browser(api).get(f"{UNDO}?token={token}"), 400, USED, 'href="/forgot-password"')
    assert (await api.post("/auth/forgot-password", json={"email": "ada@example.com"})).code == 204
    sent = 4 if where == "sessions.delete_many" else 3  # the undo's own reset link went out first there
    reset = (await mail_to(mailbox, "ada@example.com", sent))[sent - 1]
    assert reset["Subject"] == "[Accounts] Reset your password"
    await reset_with(api, reset)


class TestUndoBeyondTheBudget:
    @pytest.fixture
    def settings_env(self, smtp_env):
        return {**smtp_env, "SUPPORT_EMAIL": SUPPORT, "EMAILS_PER_ADDRESS_PER_HOUR": "1"}

    async def test_the_reset_link_after_an_undo_is_not_held_back_by_a_full_budget(self, api, mailbox, store):
        ada, _, token = await scene(api, mailbox)  # the verification email spent Ada's whole budget
        for _ in range(3):  # and the thief spends it again, should it not be full
            assert (await api.post("/auth/forgot-password", json={"email": "ada@example.com"})).code == 204
        browser = Browser(api)
        assert (await browser.submit(await browser.get(f"{UNDO}?token={token}"), UNDO, {"token": token})).code == 303
        _, notice, reset = await mail_to(mailbox, "ada@example.com", 3)
        assert reset["Subject"] == "[Accounts] Reset your password"
        await reset_with(api, reset)
