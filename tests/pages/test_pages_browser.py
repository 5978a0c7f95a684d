"""The email-link pages walked as a person would, in headless Chromium at a phone's and a desktop's size,
against a real run.py mailing a real SMTP server: used, expired and unknown links, the new-link forms,
errors (text, focus, aria-invalid), a double submit, Back and reload after success; axe-core on every page.
Set SCREENSHOTS_DIR to keep a screenshot of each page."""

import time

import pytest
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.common.by import By

from tests.browser import VIEWPORTS, check_page, wait_until
from tests.helpers import PASSWORD, free_port, link_token, smtp_server, text_part
from tests.service_process import running

pytestmark = pytest.mark.slow

NEW_PASSWORD = "a brand new password"
CLIENT_URL = "https://board.example.com"


@pytest.fixture(scope="module")
def mailbox():
    """One SMTP server for the module's run.py (each test mails its own address)."""
    with smtp_server() as box:
        yield box


@pytest.fixture(scope="module")
def service(mailbox):
    port = free_port()
    with running(
        port=port,
        SMTP_HOST="127.0.0.1",
        SMTP_PORT=str(mailbox.port),
        SMTP_STARTTLS="false",
        APP_URL=f"http://127.0.0.1:{port}",
        APP_NAME="Task Board",
        CLIENT_URL=CLIENT_URL,
    ) as process:
        yield process


@pytest.fixture(params=list(VIEWPORTS))
def viewport(request, browser):
    width, height, mobile = VIEWPORTS[request.param]
    browser.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": mobile},
    )
    browser.delete_all_cookies()
    return request.param


class Person:
    """A person with a browser, an inbox and an account on the service."""

    def __init__(self, driver, service, mailbox, axe_source, viewport, email):
        self.driver, self.service, self.mailbox = driver, service, mailbox
        self.axe_source, self.viewport, self.email = axe_source, viewport, email

    def register(self):
        response = self.service.request(
            "POST", "/auth/register", json={"name": "Mark Essien", "email": self.email, "password": PASSWORD}
        )
        assert response.code == 201, response

    def mail(self, count: int, timeout: float = 15.0) -> list:
        """The first `count` messages to this person, waiting for them to arrive."""
        deadline = time.monotonic() + timeout
        while True:
            mine = [m for m in list(self.mailbox.messages) if m["To"] == self.email]
            if len(mine) >= count:
                return mine
            assert time.monotonic() < deadline, f"expected {count} emails to {self.email}, got {len(mine)}"
            time.sleep(0.05)

    def login(self, password: str = PASSWORD) -> dict:
        """Sign in through the API (200 asserted); the answer's body."""
        response = self.service.request("POST", "/auth/login", json={"email": self.email, "password": password})
        assert response.code == 200, response
        return response.json

    def verified(self) -> bool:
        return self.login()["data"]["user"]["isEmailVerified"]

    def reset_link(self) -> str:
        """Ask for a password reset; the link in the email (the second, after the verification)."""
        self.service.request("POST", "/auth/forgot-password", json={"email": self.email})
        return self.link(self.mail(2)[1], "reset-password")

    def link(self, message, path: str) -> str:
        link = f"{self.service.url}/{path}?token={link_token(message, path)}"
        assert link in text_part(message)
        return link

    def open(self, url: str, heading: str) -> None:
        self.driver.get(url)
        self.sees(heading)

    def sees(self, heading: str) -> None:
        """Wait for the page whose h1 is `heading`, then check it as a person and a screen reader would."""
        wait_until(
            self.driver,
            lambda d: d.find_element(By.TAG_NAME, "h1").text == heading,
            ignored_exceptions=(WebDriverException,),
        )
        assert self.driver.title == f"{heading} – Task Board"
        assert self.driver.find_element(By.TAG_NAME, "header").text == "Task Board"
        self.check_page(heading)

    def check_page(self, name: str) -> None:
        check_page(self.driver, self.service.url, name, self.viewport, self.axe_source)

    def field(self, name: str):
        return self.driver.find_element(By.ID, name)

    def active_id(self) -> str:
        return self.driver.execute_script("return document.activeElement && document.activeElement.id")

    def submit(self) -> None:
        self.driver.find_element(By.CSS_SELECTOR, "button[type=submit]").click()

    def error_under(self, name: str) -> str:
        """The error shown under a field, checked to be tied to it for assistive technology."""
        field = self.field(name)
        assert field.get_attribute("aria-invalid") == "true"
        assert f"{name}-error" in field.get_attribute("aria-describedby").split()
        return self.driver.find_element(By.ID, f"{name}-error").text


@pytest.fixture
def person(request, browser, service, mailbox, axe_source, viewport):
    email = f"{request.node.name.split('[')[0][5:30].replace('_', '-')}-{viewport}@example.com"
    return Person(browser, service, mailbox, axe_source, viewport, email)


def test_a_verify_link_opened_twice_then_a_dead_one_and_a_new_link(person):
    person.register()
    link = person.link(person.mail(1)[0], "verify-email")
    # Opening the link (as a mail scanner does) verifies nothing: the person confirms with the button.
    person.open(link, "Confirm your email address")
    assert not person.verified()
    person.submit()
    person.sees("Your email address is verified")
    assert person.driver.current_url.endswith("/verify-email/done")
    assert person.driver.find_element(By.LINK_TEXT, "Go to Task Board").get_attribute("href").startswith(CLIENT_URL)
    assert person.verified()
    # The second tap is told it is done, not to ask for a new email.
    person.open(link, "Your email address is already verified")


def test_an_unknown_verify_link_offers_a_new_one_and_errors_keep_focus_and_text(person):
    person.register()
    person.mail(1)
    person.open(
        f"{person.service.url}/verify-email?token=made-up-token-0123456789",
        "This verification link has expired or is not valid",
    )
    assert "Enter the address of your Task Board account" in person.driver.find_element(By.TAG_NAME, "main").text
    person.submit()  # nothing typed: the error is shown under the field, focus goes there, nothing is sent
    assert person.error_under("email") == "Enter your email address."
    assert person.active_id() == "email" and "/verify-email?token=" in person.driver.current_url
    person.field("email").send_keys("not-an-address")
    person.submit()
    assert person.error_under("email") == "Enter an email address like name@example.com."
    assert person.field("email").get_attribute("value") == "not-an-address" and person.active_id() == "email"
    person.check_page("verify new link error")
    person.field("email").clear()
    person.field("email").send_keys(person.email)
    person.submit()
    person.sees("Check your email")
    assert person.driver.current_url.endswith("/verify-email/resend?sent=1")
    person.open(person.link(person.mail(2)[1], "verify-email"), "Confirm your email address")
    person.submit()
    person.sees("Your email address is verified")
    assert person.verified()


def test_a_reset_with_a_mistake_then_a_double_submit_then_back_and_reload(person):
    person.register()
    link = person.reset_link()
    person.open(link, "Choose a new password")
    person.field("password").send_keys(NEW_PASSWORD)
    person.field("confirm").send_keys("a brand new passwort")
    person.submit()
    assert person.error_under("confirm") == "The two passwords are not the same. Type the new password again."
    assert person.active_id() == "confirm"
    assert person.field("password").get_attribute("value") == NEW_PASSWORD  # nothing typed is lost
    assert person.field("password").get_attribute("aria-invalid") is None
    person.check_page("reset form error")
    person.field("confirm").clear()
    person.field("confirm").send_keys(NEW_PASSWORD)
    # Two clicks in a row: the first disables the button, the second sends nothing.
    disabled = person.driver.execute_script(
        "const b = document.querySelector('button[type=submit]'); b.click(); const d = b.disabled; b.click(); return d;"
    )
    assert disabled is True
    person.sees("Your password has been changed")
    assert person.driver.current_url.endswith("/reset-password/done")
    assert (
        person.driver.find_element(By.LINK_TEXT, "Sign in to Task Board").get_attribute("href").startswith(CLIENT_URL)
    )
    person.driver.refresh()  # a reload re-sends nothing (Post/Redirect/Get)
    person.sees("Your password has been changed")
    person.driver.back()  # the link's page, in the browser that used it: done, no form, no resubmission page
    person.sees("Your password has been changed")
    assert person.driver.find_elements(By.CSS_SELECTOR, "input[type=password]") == []
    person.login(NEW_PASSWORD)


def test_used_and_unknown_reset_links_offer_the_new_link_form_at_once(person):
    person.register()
    link = person.reset_link()
    token = link.rsplit("=", 1)[1]
    used = person.service.request("POST", f"/auth/reset-password?token={token}", json={"password": NEW_PASSWORD})
    assert used.code == 204, used
    for dead, heading in (
        (link, "This password reset link was already used"),
        (
            f"{person.service.url}/reset-password?token=made-up-token-0123456789",
            "This password reset link has expired or was already used",
        ),
    ):
        person.open(dead, heading)
        assert person.driver.find_elements(By.CSS_SELECTOR, "input[type=password]") == []
    person.field("email").send_keys(person.email)
    person.submit()
    person.sees("Check your email")
    person.open(person.link(person.mail(3)[2], "reset-password"), "Choose a new password")


def test_the_home_page(person):
    person.driver.get(person.service.url + "/")
    wait_until(person.driver, lambda d: d.title == "Task Board")
    assert person.driver.find_element(By.LINK_TEXT, "API documentation").get_attribute("href").endswith("/docs")
    person.check_page("home")


def test_a_mistyped_link_shows_a_page_with_the_ways_on(person):
    person.open(f"{person.service.url}/reset-pasword?token=made-up-token-0123456789", "This page does not exist")
    links = {a.text: a.get_attribute("href") for a in person.driver.find_elements(By.CSS_SELECTOR, "main a")}
    assert links == {
        "Reset your password": f"{person.service.url}/forgot-password",
        "Get a new link to verify your email address": f"{person.service.url}/verify-email/resend",
        "Back to Task Board": f"{CLIENT_URL}/",
    }
    person.driver.find_element(By.LINK_TEXT, "Reset your password").click()
    person.sees("Reset your password")


def test_the_reset_form_names_the_account_and_shows_the_passwords_on_request(person):
    person.register()
    person.open(person.reset_link(), "Choose a new password")
    assert person.driver.find_element(By.CSS_SELECTOR, "strong.account").text == person.email
    username = person.driver.find_element(By.CSS_SELECTOR, "input[autocomplete=username]")
    assert username.get_attribute("value") == person.email and not username.is_displayed()
    toggle = person.driver.find_element(By.ID, "show-passwords")
    assert toggle.is_displayed() and toggle.get_attribute("aria-pressed") == "false"
    person.field("password").send_keys(NEW_PASSWORD)
    person.field("confirm").send_keys(NEW_PASSWORD)
    toggle.click()
    assert toggle.get_attribute("aria-pressed") == "true"
    assert [person.field(n).get_attribute("type") for n in ("password", "confirm")] == ["text", "text"]
    person.check_page("reset form, passwords shown")
    toggle.click()
    assert toggle.get_attribute("aria-pressed") == "false"
    assert person.field("password").get_attribute("type") == "password"
    toggle.click()  # shown when sent: the fields are password fields again on the way out
    person.submit()
    person.sees("Your password has been changed")
    person.login(NEW_PASSWORD)


def test_without_javascript_the_reset_form_has_no_dead_toggle_and_still_works(person):
    person.register()
    link = person.reset_link()
    person.open(link, "Choose a new password")  # checked with axe while scripts run
    person.driver.execute_cdp_cmd("Emulation.setScriptExecutionDisabled", {"value": True})
    try:
        person.driver.refresh()  # the same page, no script this time (axe needs one, so it ran above)
        heading = lambda text: lambda d: d.find_element(By.TAG_NAME, "h1").text == text  # noqa: E731
        wait_until(person.driver, heading("Choose a new password"), ignored_exceptions=(WebDriverException,))
        toggle = person.driver.find_element(By.ID, "show-passwords")
        assert not toggle.is_displayed()
        person.field("password").send_keys(NEW_PASSWORD)
        person.field("confirm").send_keys(NEW_PASSWORD)
        person.submit()
        wait_until(person.driver, heading("Your password has been changed"), ignored_exceptions=(WebDriverException,))
    finally:
        person.driver.execute_cdp_cmd("Emulation.setScriptExecutionDisabled", {"value": False})
    person.login(NEW_PASSWORD)


def test_a_reset_link_used_on_another_device_says_sign_in(person):
    person.register()
    link = person.reset_link()
    # The phone changed the password; the laptop opens the same link afterwards.
    used = person.service.request(
        "POST", f"/auth/reset-password?token={link.rsplit('=', 1)[1]}", json={"password": NEW_PASSWORD}
    )
    assert used.code == 204, used
    person.open(link, "This password reset link was already used")
    assert "Already changed it? Sign in with your new password." in person.driver.find_element(By.TAG_NAME, "main").text
    sign_in = person.driver.find_element(By.LINK_TEXT, "Sign in to Task Board")
    assert sign_in.get_attribute("href") == f"{CLIENT_URL}/"
    assert person.driver.find_elements(By.CSS_SELECTOR, "input[type=password]") == []


def test_check_your_email_repeats_the_address_and_a_domain_without_a_dot_is_refused(person):
    person.register()
    person.open(f"{person.service.url}/verify-email/resend", "Get a new verification link")
    person.field("email").send_keys("hedy@example")
    person.submit()
    assert person.error_under("email") == "Enter an email address like name@example.com."
    assert person.driver.current_url.endswith("/verify-email/resend")
    person.check_page("resend form, no dot")
    person.field("email").clear()
    person.field("email").send_keys(person.email)
    person.submit()
    person.sees("Check your email")
    assert person.email in person.driver.find_element(By.TAG_NAME, "main").text
    assert person.email not in person.driver.current_url
    person.driver.find_element(By.LINK_TEXT, "Wrong address? Enter it again").click()
    person.sees("Get a new verification link")


def test_an_expired_form_offers_a_way_back(person):
    person.register()
    person.open(person.reset_link(), "Choose a new password")
    person.driver.delete_all_cookies()  # the browser dropped its cookies while the form was open
    person.field("password").send_keys(NEW_PASSWORD)
    person.field("confirm").send_keys(NEW_PASSWORD)
    person.submit()
    person.sees("This form has expired")
    person.driver.find_element(By.LINK_TEXT, "Open the form again").click()
    person.sees("Choose a new password")
    person.field("password").send_keys(NEW_PASSWORD)
    person.field("confirm").send_keys(NEW_PASSWORD)
    person.submit()
    person.sees("Your password has been changed")
