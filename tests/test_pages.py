"""The pages behind the email links: over HTTP in-process, then in a real headless Chromium."""
import re
from urllib.parse import urlencode

import pytest
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from tests.helpers import PASSWORD, assert_error, free_port, link_token, text_part
from tests.service_process import running, wait_for_mail

NEW_PASSWORD = "  a brand new password  "  # spaces kept: the form must not trim
FORM = {"Content-Type": "application/x-www-form-urlencoded"}
PAGE_CSP = "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'"
INVALID = "This link is invalid or has expired"


@pytest.fixture
def settings_env(smtp_env):
    return smtp_env


async def reset_token(api, mailbox) -> str:
    await api.register(email="mark@example.com")
    await api.post("/auth/forgot-password", json={"email": "mark@example.com"})
    return link_token((await mailbox.wait_for(2))[1], "reset-password")


async def open_form(api, token):
    """GET the reset page; returns (its _xsrf cookie as a Cookie header value, the form's _xsrf field, page)."""
    page = await api.get(f"/reset-password?token={token}")
    assert page.code == 200, page
    cookie = page.headers["Set-Cookie"].split(";")[0]
    field = re.search(r'name="_xsrf" value="([^"]+)"', page.body.decode()).group(1)
    return cookie, field, page


async def submit(api, cookie, fields):
    headers = dict(FORM, Cookie=cookie) if cookie else FORM
    return await api.post("/reset-password", body=urlencode(fields), headers=headers)


def assert_page(response, status, *texts):
    assert response.code == status, response
    assert response.headers["Content-Type"] == "text/html; charset=UTF-8"
    assert response.headers["Content-Security-Policy"] == PAGE_CSP
    assert response.headers["Referrer-Policy"] == "no-referrer"
    assert response.headers["Cache-Control"] == "no-store"
    html = response.body.decode()
    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in html
    assert "<script" not in html
    for text in texts:
        assert text in html, html
    return html


@pytest.mark.gen_test
async def test_verify_page_verifies_once_and_explains_bad_links(api, mailbox, services):
    await api.register(email="mark@example.com")
    token = link_token((await mailbox.wait_for(1))[0], "verify-email")
    assert_page(await api.get(f"/verify-email?token={token}"), 200, "Your email address is verified")
    user = await services.users.collection.find_one({"email": "mark@example.com"})
    assert user["isEmailVerified"] is True
    assert_page(await api.get(f"/verify-email?token={token}"), 400, INVALID)
    assert_page(await api.get("/verify-email"), 400, INVALID)
    html = assert_page(await api.get("/verify-email?token=%3Cscript%3Ealert(1)%3C/script%3E"), 400, INVALID)
    assert "alert(1)" not in html


@pytest.mark.gen_test
async def test_reset_page_shows_a_protected_form_without_using_the_token(api, mailbox):
    token = await reset_token(api, mailbox)
    for _ in range(2):  # a mail scanner's GET first, then the person's
        cookie, field, page = await open_form(api, token)
        assert_page(page, 200, "Choose a new password", f'name="token" value="{token}"',
                    'action="/reset-password"', 'type="password"')
    flags = {part.strip().lower() for part in page.headers["Set-Cookie"].split(";")[1:]}
    assert {"httponly", "samesite=strict", "secure", "path=/"} <= flags  # APP_URL is https here
    assert cookie.startswith("_xsrf=") and field
    assert_page(await api.get("/reset-password?token=bad"), 400, INVALID)
    # The token still works: GET did not consume it.
    assert (await api.post(f"/auth/reset-password?token={token}", json={"password": "another password"})).code == 204


@pytest.mark.gen_test
async def test_reset_form_checks_the_password_then_sets_it_once(api, mailbox):
    token = await reset_token(api, mailbox)
    cookie, field, _ = await open_form(api, token)
    base = {"_xsrf": field, "token": token}
    for password, confirm, message in (
            ("a long password", "a long passwort", "The two passwords are not the same."),
            ("short", "short", "The password must be at least 8 characters."),
            ("é" * 37, "é" * 37, "The password must be at most 72 bytes in UTF-8.")):
        response = await submit(api, cookie, {**base, "password": password, "confirm": confirm})
        assert_page(response, 422, message, f'name="token" value="{token}"', 'name="_xsrf"')
    assert_error(await api.post("/auth/login", json={"email": "mark@example.com", "password": NEW_PASSWORD}), 401)
    done = await submit(api, cookie, {**base, "password": NEW_PASSWORD, "confirm": NEW_PASSWORD})
    assert_page(done, 200, "Your password has been changed")
    await api.login(password=NEW_PASSWORD)
    assert_error(await api.post("/auth/login", json={"email": "mark@example.com", "password": PASSWORD}), 401)
    again = await submit(api, cookie, {**base, "password": "yet another one", "confirm": "yet another one"})
    assert_page(again, 400, INVALID)
    forged = await submit(api, cookie, {**base, "token": "not-a-token", "password": "x" * 9, "confirm": "x" * 9})
    assert_page(forged, 400, INVALID)


@pytest.mark.gen_test
async def test_reset_post_without_a_matching_xsrf_token_is_403(api, mailbox):
    token = await reset_token(api, mailbox)
    cookie, field, _ = await open_form(api, token)
    other_cookie, _, _ = await open_form(api, token)
    fields = {"token": token, "password": NEW_PASSWORD, "confirm": NEW_PASSWORD}
    for sent_cookie, sent in ((None, fields), (None, {**fields, "_xsrf": field}), (cookie, fields),
                              (other_cookie, {**fields, "_xsrf": field})):
        assert_page(await submit(api, sent_cookie, sent), 403, "This form has expired")
    await api.login(password=PASSWORD)  # nothing changed
    # Not a form, or not text: refused in the envelope, never a 500.
    assert_error(await api.post("/reset-password", json=fields), 415)
    broken = await api.post("/reset-password", body=b"password=%FF%FE&confirm=%FF%FE&_xsrf=" + field.encode()
                            + b"&token=" + token.encode(), headers=dict(FORM, Cookie=cookie))
    assert_error(broken, 400, "Malformed form body")
    assert (await api.post(f"/auth/reset-password?token={token}", json={"password": "another password"})).code == 204


# ---- in a real browser, against run.py ------------------------------------------------------------

@pytest.fixture
def service(mailbox):
    """run.py sending mail to the test SMTP server, its links pointing at itself."""
    port = free_port()
    with running(port=port, SMTP_HOST="127.0.0.1", SMTP_PORT=str(mailbox.port), SMTP_STARTTLS="false",
                 APP_URL=f"http://127.0.0.1:{port}") as process:
        yield process


def mail_link(service, message, path: str) -> str:
    """The APP_URL/<path>?token=… link, checked to be in the email as it was sent."""
    link = f"{service.url}/{path}?token={link_token(message, path)}"
    assert link in text_part(message)
    return link


def page_text(driver) -> str:
    return driver.find_element(By.TAG_NAME, "body").text


@pytest.mark.slow
def test_verify_link_in_a_browser(browser, service, mailbox):
    registered = service.request("POST", "/auth/register", json={
        "name": "Mark Essien", "email": "mark@example.com", "password": PASSWORD})
    assert registered.code == 201, registered
    link = mail_link(service, wait_for_mail(mailbox, 1)[0], "verify-email")
    browser.get(link)
    assert browser.title == "Your email address is verified"
    assert "Your email address is verified" in page_text(browser)
    login = service.request("POST", "/auth/login", json={"email": "mark@example.com", "password": PASSWORD})
    assert login.json["data"]["user"]["isEmailVerified"] is True
    browser.get(link)
    assert INVALID in page_text(browser)


@pytest.mark.slow
def test_reset_link_and_form_in_a_browser(browser, service, mailbox):
    assert service.request("POST", "/auth/register", json={
        "name": "Mark Essien", "email": "mark@example.com", "password": PASSWORD}).code == 201
    assert service.request("POST", "/auth/forgot-password", json={"email": "mark@example.com"}).code == 204
    browser.get(mail_link(service, wait_for_mail(mailbox, 2)[1], "reset-password"))
    fill_and_submit(browser, "a long password", "a different one", "The two passwords are not the same.")
    fill_and_submit(browser, NEW_PASSWORD, NEW_PASSWORD, "Your password has been changed")
    login = service.request("POST", "/auth/login", json={"email": "mark@example.com", "password": NEW_PASSWORD})
    assert login.code == 200, login
    old = service.request("POST", "/auth/login", json={"email": "mark@example.com", "password": PASSWORD})
    assert_error(old, 401)


def fill_and_submit(driver, password: str, confirm: str, expected: str) -> None:
    """Type both passwords, submit, and wait until the answer page shows `expected`."""
    assert driver.title == "Choose a new password"
    driver.find_element(By.ID, "password").send_keys(password)
    driver.find_element(By.ID, "confirm").send_keys(confirm)
    driver.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    # `expected` is only on the answer page. While the page navigates, chromedriver may answer a read
    # with a stale-element error or a generic "node does not belong to the document": keep waiting.
    WebDriverWait(driver, 30, ignored_exceptions=(WebDriverException,)).until(lambda d: expected in page_text(d))
