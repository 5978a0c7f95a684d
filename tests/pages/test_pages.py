"""The pages behind the email links and the new-link forms, over HTTP in-process (tests/pages/test_pages_browser.py
walks the same paths in headless Chromium)."""

import asyncio
import datetime as dt
import re
from urllib.parse import urlencode

import pytest
from pymongo.errors import ServerSelectionTimeoutError

from services.sessions import hash_token
from tests.account_security_fixtures import Browser
from tests.helpers import PASSWORD, Store, assert_error, link_token

pytestmark = pytest.mark.gen_test

NEW_PASSWORD = "  a brand new password  "  # spaces kept: the form must not trim
FORM = {"Content-Type": "application/x-www-form-urlencoded"}
PAGE_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'unsafe-inline'; form-action 'self'; "
    "base-uri 'none'; frame-ancestors 'none'"
)
VERIFIED = "Your email address is verified"
ALREADY_VERIFIED = "Your email address is already verified"
DEAD_VERIFY = "This verification link has expired or is not valid"
DEAD_RESET = "This password reset link has expired or was already used"
USED_RESET = "This password reset link was already used"
SIGN_IN = 'href="https://board.example.com">Sign in to Task Board</a>'
CHANGED = "Your password has been changed"
SENT = "Check your email"


@pytest.fixture
def settings_env(smtp_env):
    return {**smtp_env, "APP_NAME": "Task Board", "CLIENT_URL": "https://board.example.com/"}


def assert_page(response, status, *texts):
    """An HTML page for a person: its headers, the product's name, a phone viewport, only our own script."""
    assert response.code == status, response
    assert response.headers["Content-Type"] == "text/html; charset=UTF-8"
    assert response.headers["Content-Security-Policy"] == PAGE_CSP
    assert response.headers["Referrer-Policy"] == "no-referrer"
    assert response.headers["Cache-Control"] == "no-store"
    html = response.body.decode()
    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in html
    assert re.findall(r"<script[^>]*>", html) == ['<script src="/pages/forms.js">']
    assert "Task Board" in html
    for text in texts:
        assert text in html, html
    return html


def assert_new_link_form(html, action):
    """The dead-link page offers the form for a new link, not the password fields."""
    assert f'action="{action}"' in html and 'type="email"' in html and 'type="password"' not in html


def assert_redirect(response, location):
    assert response.code == 303, response
    assert response.headers["Location"] == location


async def expire(services, kind):
    store = Store(services.database)
    past = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
    await store.tokens.update_many({"type": kind}, {"$set": {"expiresAt": past}})


async def verify_token(api, mailbox):
    await api.register(email="mark@example.com")
    return link_token((await mailbox.wait_for(1))[0], "verify-email")


async def reset_token(api, mailbox):
    await api.register(email="mark@example.com")
    await api.post("/auth/forgot-password", json={"email": "mark@example.com"})
    return link_token((await mailbox.wait_for(2))[1], "reset-password")


async def reset_form(api, mailbox) -> tuple:
    """A reset link's token, and a browser that has opened its page: (token, browser, page)."""
    token = await reset_token(api, mailbox)
    browser = Browser(api)
    return token, browser, await browser.get(f"/reset-password?token={token}")


async def can_login(api, password):
    return (await api.post("/auth/login", json={"email": "mark@example.com", "password": password})).code == 200


# ---- verify-email ---------------------------------------------------------------------------------

CONFIRM = "Confirm your email address"


async def confirm(browser, token):
    """Open a verify link in this browser and press its "Confirm my email address" button."""
    page = await browser.get(f"/verify-email?token={token}")
    assert_page(
        page, 200, CONFIRM, 'action="/verify-email"', f'name="token" value="{token}"', "Confirm my email address"
    )
    return await browser.submit(page, "/verify-email", {"token": token})


async def test_opening_a_verify_link_changes_nothing_and_the_button_verifies_once(api, mailbox, store):
    token = await verify_token(api, mailbox)
    # A mail scanner opens it first: it sees the button, and nothing changes.
    html = assert_page(await api.get(f"/verify-email?token={token}"), 200, CONFIRM)
    assert "<title>Confirm your email address – Task Board</title>" in html and 'method="post"' in html
    user = await store.users.find_one({"email": "mark@example.com"})
    assert user["isEmailVerified"] is False
    assert (await store.tokens.find_one({"hash": hash_token(token)})).get("usedAt") is None
    # Then the person presses the button: verified, and shown so on a page of its own (Post/Redirect/Get).
    browser = Browser(api)
    page = await browser.get(f"/verify-email?token={token}")
    assert_redirect(await browser.submit(page, "/verify-email", {"token": token}), "/verify-email/done")
    assert_page(
        await api.get("/verify-email/done"), 200, VERIFIED, 'href="https://board.example.com">Go to Task Board</a>'
    )
    user = await store.users.find_one({"email": "mark@example.com"})
    assert user["isEmailVerified"] is True
    stored = await store.tokens.find_one({"hash": hash_token(token)})
    assert stored["usedAt"] is not None  # kept, marked used, until it expires
    # A second click of the button (a double submit) lands on the same page, changing nothing more.
    assert_redirect(await browser.submit(page, "/verify-email", {"token": token}), "/verify-email/done")
    # Opening the link again is told it is done, not sent off to ask for a new email.
    assert_page(await browser.get(f"/verify-email?token={token}"), 200, ALREADY_VERIFIED)
    # The API keeps the contract: a used token is a 401.
    assert_error(await api.post(f"/auth/verify-email?token={token}"), 401)


async def test_the_confirm_button_needs_the_xsrf_cookie_and_a_live_link(api, mailbox, services, store):
    token = await verify_token(api, mailbox)
    # Posted from elsewhere (no _xsrf cookie or field): refused, nothing verified (CWE-352).
    refused = await api.post("/verify-email", body=urlencode({"token": token}), headers=FORM)
    assert_page(refused, 403, "This form has expired")
    browser = Browser(api)
    page = await browser.get(f"/verify-email?token={token}")
    for bad in ("made-up-token-0123456789", "<script>"):
        html = assert_page(await browser.submit(page, "/verify-email", {"token": bad}), 400, DEAD_VERIFY)
        assert_new_link_form(html, "/verify-email/resend")
    await expire(services, "verify")
    assert_page(await browser.submit(page, "/verify-email", {"token": token}), 400, DEAD_VERIFY)
    user = await store.users.find_one({"email": "mark@example.com"})
    assert user["isEmailVerified"] is False


@pytest.mark.parametrize(
    "query", ["", "?token=made-up-token-0123456789", "?token=%3Cscript%3Ealert(1)%3C/script%3E", "?token=a&token=b"]
)
async def test_unknown_or_malformed_verify_links_offer_a_new_link(api, services, query):
    html = assert_page(await api.get(f"/verify-email{query}"), 400, DEAD_VERIFY)
    assert_new_link_form(html, "/verify-email/resend")
    assert "alert(1)" not in html


async def test_an_expired_verify_link_offers_a_new_link_and_verifies_nothing(api, mailbox, services, store):
    token = await verify_token(api, mailbox)
    await expire(services, "verify")
    assert_new_link_form(
        assert_page(await api.get(f"/verify-email?token={token}"), 400, DEAD_VERIFY), "/verify-email/resend"
    )
    user = await store.users.find_one({"email": "mark@example.com"})
    assert user["isEmailVerified"] is False


async def test_resend_work_that_fails_after_the_answer_is_logged_under_its_name(api, services, monkeypatch, caplog):
    await api.register(email="mark@example.com")
    browser = Browser(api)
    page = await browser.get("/verify-email/resend")

    async def database_gone(*args, **kwargs):
        raise ServerSelectionTimeoutError("no servers")

    monkeypatch.setattr(services.users, "find_by_email", database_gone)
    response = await browser.submit(page, "/verify-email/resend", {"email": "mark@example.com"})
    assert_redirect(response, "/verify-email/resend?sent=1")  # answered before the work, which cannot fail it
    for _ in range(1000):
        if not services.auth.background:
            break
        await asyncio.sleep(0.01)
    # Operators find the failed work by the operation's name in this line.
    (logged,) = [record for record in caplog.records if record.name == "accounts.auth"]
    assert logged.getMessage() == "resend-verification failed after the answer"
    assert isinstance(logged.exc_info[1], ServerSelectionTimeoutError)


async def test_the_resend_form_answers_alike_for_every_address_and_mails_only_unverified_accounts(api, mailbox, store):
    await verify_token(api, mailbox)
    browser = Browser(api)
    page = await browser.get("/verify-email?token=made-up-token-0123456789")
    answers = []
    for email in ("nobody@example.com", " MARK@example.com "):
        response = await browser.submit(page, "/verify-email/resend", {"email": email})
        assert_redirect(response, "/verify-email/resend?sent=1")
        answers.append((response.code, response.headers["Location"], response.body))
    assert answers[0] == answers[1]  # nothing tells which address has an account (CWE-204)
    messages = await mailbox.wait_for(2)
    assert [m["To"] for m in mailbox.messages] == ["mark@example.com", "mark@example.com"]
    new_token = link_token(messages[1], "verify-email")
    assert_page(await api.get("/verify-email/resend?sent=1"), 200, SENT, "1 hour")
    assert_redirect(await confirm(browser, new_token), "/verify-email/done")
    assert (await store.users.find_one({"email": "mark@example.com"}))["isEmailVerified"] is True
    # A verified account gets nothing more, and the answer is the same.
    assert_redirect(
        await browser.submit(page, "/verify-email/resend", {"email": "mark@example.com"}), "/verify-email/resend?sent=1"
    )
    assert await store.outbox.count_documents({}) == 2


async def test_the_resend_form_keeps_what_was_typed_and_marks_the_field_on_an_error(api, store):
    browser = Browser(api)
    page = await browser.get("/verify-email/resend")
    assert_page(page, 200, "Get a new verification link")
    for typed, message in (("", "Enter your email address."), ("not-an-address", "Enter an email address like")):
        html = assert_page(await browser.submit(page, "/verify-email/resend", {"email": typed}), 422, message)
        assert re.search(
            rf'<input type="email" id="email" name="email" value="{re.escape(typed)}"[^>]*aria-invalid="true" '
            r"autofocus>",
            html,
            re.S,
        ), html
        assert 'aria-describedby="email-error"' in html and '<p class="error" id="email-error">' in html
    assert await store.outbox.count_documents({}) == 0


async def test_forms_without_the_xsrf_cookie_are_refused_and_change_nothing(api, mailbox, store):
    await verify_token(api, mailbox)
    for action in ("/verify-email/resend", "/forgot-password"):
        response = await api.post(action, body=urlencode({"email": "mark@example.com"}), headers=FORM)
        assert_page(response, 403, "This form has expired", f'href="{action}"')
    assert await store.outbox.count_documents({}) == 1  # only the registration's email


# ---- reset-password -------------------------------------------------------------------------------


async def test_opening_a_reset_link_checks_it_without_using_it(api, mailbox, store):
    token = await reset_token(api, mailbox)
    browser = Browser(api)
    for _ in range(2):  # a mail scanner's GET first, then the person's
        page = await browser.get(f"/reset-password?token={token}")
        assert_page(page, 200, "Choose a new password", f'name="token" value="{token}"', 'type="password"')
    first = await Browser(api).get(f"/reset-password?token={token}")
    flags = {part.strip().lower() for part in first.headers["Set-Cookie"].split(";")[1:]}
    assert {"httponly", "samesite=lax", "secure", "path=/"} <= flags  # APP_URL is https here
    stored = await store.tokens.find_one({"hash": hash_token(token)})
    assert stored.get("usedAt") is None
    assert (await api.post(f"/auth/reset-password?token={token}", json={"password": "another password"})).code == 204


async def test_used_expired_and_unknown_reset_links_show_the_new_link_form_not_the_password_fields(
    api, mailbox, services
):
    token = await reset_token(api, mailbox)
    assert (await api.post(f"/auth/reset-password?token={token}", json={"password": "another password"})).code == 204
    # Used elsewhere (here by an app): "already changed? sign in", and the form for a new link.
    html = assert_page(
        await api.get(f"/reset-password?token={token}"),
        400,
        USED_RESET,
        "Already changed it? Sign in with your new password.",
        SIGN_IN,
    )
    assert_new_link_form(html, "/forgot-password")
    for query in ("?token=made-up-token-0123456789", ""):
        html = assert_page(await api.get(f"/reset-password{query}"), 400, DEAD_RESET)
        assert_new_link_form(html, "/forgot-password")
        assert "Sign in" not in html
    await api.post("/auth/forgot-password", json={"email": "mark@example.com"})
    fresh = link_token((await mailbox.wait_for(3))[2], "reset-password")
    await expire(services, "reset")
    assert_new_link_form(
        assert_page(await api.get(f"/reset-password?token={fresh}"), 400, DEAD_RESET), "/forgot-password"
    )


async def test_reset_form_errors_are_tied_to_their_field(api, mailbox):
    token, browser, page = await reset_form(api, mailbox)
    for password, confirm, field, message in (
        ("short", "short", "password", "Use at least 8 characters."),
        ("é" * 37, "é" * 37, "password", "This password is too long"),
        ("a long password", "a long passwort", "confirm", "The two passwords are not the same."),
    ):
        html = assert_page(
            await browser.submit(page, "/reset-password", {"token": token, "password": password, "confirm": confirm}),
            422,
            message,
            f'name="token" value="{token}"',
        )
        assert re.search(rf'id="{field}"[^>]*aria-invalid="true" autofocus>', html, re.S), html
        assert re.search(rf'<p class="error" id="{field}-error">{re.escape(message)}', html), html
        assert html.count('aria-invalid="true"') == 1
        assert "bytes" not in html and "UTF-8" not in html
    assert not await can_login(api, "a long password")


async def test_a_reset_redirects_and_a_repeat_from_the_same_browser_shows_success_without_changing_anything(
    api, mailbox, store
):
    token, browser, page = await reset_form(api, mailbox)
    fields = {"token": token, "password": NEW_PASSWORD, "confirm": NEW_PASSWORD}
    assert_redirect(await browser.submit(page, "/reset-password", fields), "/reset-password/done")
    assert await can_login(api, NEW_PASSWORD) and not await can_login(api, PASSWORD)
    stored = await store.tokens.find_one({"hash": hash_token(token)})
    assert stored["usedAt"] is not None and stored["usedBy"]
    assert_page(
        await browser.get("/reset-password/done"),
        200,
        CHANGED,
        'href="https://board.example.com">Sign in to Task Board</a>',
    )
    # The second click, or a reload that re-sends the form: success again, and the password is not set again.
    repeat = {**fields, "password": "a different password", "confirm": "a different password"}
    assert_redirect(await browser.submit(page, "/reset-password", repeat), "/reset-password/done")
    assert await can_login(api, NEW_PASSWORD) and not await can_login(api, "a different password")
    # Back to the link's page in that browser: it says the password was changed, and offers no form.
    html = assert_page(await browser.get(f"/reset-password?token={token}"), 200, CHANGED)
    assert 'type="password"' not in html
    # Any other browser holding the link learns nothing and changes nothing.
    other = Browser(api)
    other_page = await other.get("/forgot-password")
    # Any other browser holding the link hears it was used (sign in, or a new link), and changes nothing.
    assert_new_link_form(
        assert_page(await other.submit(other_page, "/reset-password", repeat), 400, USED_RESET, SIGN_IN),
        "/forgot-password",
    )
    assert_page(await other.get(f"/reset-password?token={token}"), 400, USED_RESET, SIGN_IN)
    assert await can_login(api, NEW_PASSWORD)


async def test_the_forgot_password_form_mails_a_link_only_for_an_account_and_answers_alike(api, mailbox, services):
    await verify_token(api, mailbox)
    browser = Browser(api)
    page = await browser.get("/forgot-password")
    assert_page(page, 200, "Reset your password", 'type="email"')
    for email in ("nobody@example.com", "mark@example.com"):
        assert_redirect(await browser.submit(page, "/forgot-password", {"email": email}), "/forgot-password?sent=1")
    message = (await mailbox.wait_for(2))[1]
    assert message["To"] == "mark@example.com" and len(mailbox.messages) == 2
    assert_page(await api.get("/forgot-password?sent=1"), 200, SENT, "10 minutes")
    assert_page(
        await api.get(f"/reset-password?token={link_token(message, 'reset-password')}"), 200, "Choose a new password"
    )


async def test_reset_post_without_a_matching_xsrf_token_is_403_and_changes_nothing(api, mailbox):
    token, browser, page = await reset_form(api, mailbox)
    other = Browser(api)
    await other.get(f"/reset-password?token={token}")
    xsrf = re.search(r'name="_xsrf" value="([^"]+)"', page.body.decode()).group(1)
    fields = {"token": token, "password": NEW_PASSWORD, "confirm": NEW_PASSWORD}
    for cookie, sent in (
        (None, fields),
        (None, {**fields, "_xsrf": xsrf}),
        (browser.cookie, fields),
        (other.cookie, {**fields, "_xsrf": xsrf}),
    ):
        headers = dict(FORM, Cookie=cookie) if cookie else FORM
        html = assert_page(
            await api.post("/reset-password", body=urlencode(sent), headers=headers),
            403,
            "This form has expired",
            "Open the link in the email again",
        )
        # A way back: the link's own page again (a fresh form and cookie), and the app.
        assert f'<a href="/reset-password?token={token}">Open the form again</a>' in html
        assert 'href="https://board.example.com">Back to Task Board</a>' in html
    assert await can_login(api, PASSWORD)
    assert_redirect(await browser.submit(page, "/reset-password", fields), "/reset-password/done")


async def test_reset_post_that_is_not_a_form_is_refused_in_the_envelope(api, mailbox):
    token, browser, page = await reset_form(api, mailbox)
    fields = {"token": token, "password": NEW_PASSWORD, "confirm": NEW_PASSWORD}
    assert_error(await api.post("/reset-password", json=fields), 415)
    xsrf = re.search(r'name="_xsrf" value="([^"]+)"', page.body.decode()).group(1)
    broken = await api.post(
        "/reset-password",
        body=b"password=%FF%FE&confirm=%FF%FE&_xsrf=" + xsrf.encode() + b"&token=" + token.encode(),
        headers=dict(FORM, Cookie=browser.cookie),
    )
    assert_error(broken, 400, "Malformed form body")
    assert await can_login(api, PASSWORD)


async def test_the_database_down_is_a_page_not_json(api, mailbox, services, monkeypatch):
    token, browser, page = await reset_form(api, mailbox)

    async def unreachable(*args):
        raise ServerSelectionTimeoutError("No servers found yet, Timeout: 3.0s")

    monkeypatch.setattr(services.sessions.tokens, "find_one", unreachable)
    html = assert_page(
        await browser.get(f"/reset-password?token={token}"),
        503,
        "This page is not available right now",
        "Nothing was changed",
    )
    assert "statusCode" not in html
    monkeypatch.setattr(services.sessions.tokens, "find_one_and_update", unreachable)
    fields = {"token": token, "password": NEW_PASSWORD, "confirm": NEW_PASSWORD}
    assert_page(await browser.submit(page, "/reset-password", fields), 503, "This page is not available right now")
    monkeypatch.undo()
    assert await can_login(api, PASSWORD)


# ---- the home page and API errors met in a browser ------------------------------------------------


async def test_home_page_names_the_service_and_points_at_the_docs(api):
    html = assert_page(
        await api.get("/", headers={"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}),
        200,
        'href="/docs"',
        'href="/openapi.json"',
    )
    assert "<title>Task Board</title>" in html
    response = await api.get("/", headers={"Accept": "application/json"})
    assert response.code == 200 and response.headers["Content-Type"] == "application/json; charset=UTF-8"
    assert response.json == {"name": "Task Board", "docs": "/docs", "openapi": "/openapi.json"}
    assert response.headers["Vary"] == "Accept"


async def test_every_401_says_how_to_authenticate(api):
    await api.register(email="mark@example.com")
    for response in (
        await api.get("/users/getFav"),
        await api.get("/users/user", token="not-a-jwt"),
        await api.post("/auth/login", json={"email": "mark@example.com", "password": "wrong one"}),
        await api.post("/auth/verify-email?token=nonsense"),
    ):
        assert_error(response, 401)
        assert response.headers["WWW-Authenticate"] == "Bearer"
    assert "WWW-Authenticate" not in (await api.get("/nothing-here")).headers


# ---- what a person needs on the pages -----------------------------------------------------------


async def test_the_reset_form_names_its_account_for_the_person_and_for_password_managers(api, mailbox):
    token, browser, page = await reset_form(api, mailbox)

    html = assert_page(
        page,
        200,
        "Choose a new password",
        'For your Task Board account <strong class="account">mark@example.com</strong>.',
    )
    # A hidden username field beside the new-password fields: password managers save the password under it.
    assert re.search(
        r'<input type="email" name="username" value="mark@example.com" autocomplete="username" '
        r"readonly hidden>",
        html,
    ), html
    # The show-password toggle is in the page hidden (forms.js shows it), a button with aria-pressed.
    assert re.search(
        r'<button type="button" class="toggle" id="show-passwords" aria-pressed="false" '
        r'aria-controls="password confirm"\s+hidden>Show passwords</button>',
        html,
    ), html
    # A refused post shows the form again for the same account.
    again = await browser.submit(
        page,
        "/reset-password",
        {"token": token, "password": "short", "confirm": "short", "username": "someone.else@example.com"},
    )
    html = assert_page(again, 422, "Use at least 8 characters.", 'value="mark@example.com" autocomplete="username"')
    assert "someone.else" not in html  # the posted username is never echoed: the stored address is shown
    assert await can_login(api, PASSWORD)


async def test_a_dead_reset_link_form_names_no_account(api, mailbox):
    html = assert_page(await api.get("/reset-password?token=made-up-token-0123456789"), 400, DEAD_RESET)
    assert 'name="username"' not in html and "mark@example.com" not in html


@pytest.mark.parametrize(
    "action, what",
    [
        ("/forgot-password", "If a Task Board account uses that address, a link to choose a new password"),
        ("/verify-email/resend", "If a Task Board account with that address still needs verifying, a new link"),
    ],
)
async def test_check_your_email_repeats_the_typed_address_alike_for_any_address(api, mailbox, action, what):
    await api.register(email="mark@example.com")
    for email in ("mark@example.com", "nobody.here@example.com"):
        browser = Browser(api)
        page = await browser.get(action)
        sent = await browser.submit(page, action, {"email": email})
        assert_redirect(sent, f"{action}?sent=1")
        assert email not in sent.headers["Location"]  # not in the URL, so not in a shared computer's history
        cookie = sent.headers["Set-Cookie"]
        flags = {part.strip().lower() for part in cookie.split(";")[1:]}
        assert {"httponly", "samesite=lax", f"path={action}", "max-age=900"} <= flags
        browser.cookie = cookie.split(";")[0]
        html = assert_page(
            await browser.get(f"{action}?sent=1"),
            200,
            SENT,
            what.replace("that address", email),
            f'<a href="{action}">Wrong address? Enter it again</a>',
        )
        assert html.count(email) == 1
    # Another browser, or a forged cookie that is no address, is told about "that address".
    html = assert_page(await api.get(f"{action}?sent=1", headers={"Cookie": "sent_to=%3Cscript%3E"}), 200, SENT, what)
    assert "<script>" not in html.replace('<script src="/pages/forms.js">', "")


@pytest.mark.parametrize("typed", ["hedy@example", "hedy@", "hedy@example..com", "hedy@-example.com"])
async def test_the_new_link_forms_refuse_what_email_validator_refuses(api, mailbox, store, typed):
    await api.register(email="mark@example.com")
    before = await store.outbox.count_documents({})
    for action in ("/forgot-password", "/verify-email/resend"):
        browser = Browser(api)
        page = await browser.get(action)
        html = assert_page(
            await browser.submit(page, action, {"email": typed}), 422, "Enter an email address like name@example.com."
        )
        assert f'value="{typed}"' in html
    assert await store.outbox.count_documents({}) == before


async def test_an_expired_verify_form_offers_the_link_again(api, mailbox):
    token = await verify_token(api, mailbox)
    response = await api.post("/verify-email", body=urlencode({"token": token}), headers=FORM)
    html = assert_page(response, 403, "This form has expired")
    assert f'<a href="/verify-email?token={token}">Open the form again</a>' in html
    bad = await api.post("/verify-email", body=urlencode({"token": "x"}), headers=FORM)
    assert '<a href="/verify-email/resend">Open the form again</a>' in assert_page(bad, 403, "This form has expired")
