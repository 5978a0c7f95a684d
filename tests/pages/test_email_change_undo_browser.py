"""The email-change undo page in every state, walked in headless Chromium at a phone's and a desktop's size, with
axe-core on every page (as tests/pages/test_pages_browser.py does for the other email-link pages).

The service runs in-process here, not as run.py: the expired state needs the stored link's validUntil moved into
the past, and run.py's embedded store lives in its own process. Chromium is driven from a worker thread
(run_in_executor), so the test's event loop keeps serving the pages the browser asks for."""

import asyncio
import datetime as dt
from functools import partial

import pytest
from bson import ObjectId
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.common.by import By

from services.sessions import hash_token
from tests.account_security_fixtures import SUPPORT, mail_to, taken_over, verified_account
from tests.browser import VIEWPORTS, check_page, wait_until
from tests.helpers import PASSWORD, sign_up

pytestmark = pytest.mark.slow

CLIENT_URL = "https://board.example.com"
UNDO = "/email-change/undo"


@pytest.fixture
def settings_env(smtp_env, http_port):
    # Plain http on 127.0.0.1, so the browser keeps the _xsrf cookie (it is Secure under an https APP_URL).
    return {
        **smtp_env,
        "APP_URL": f"http://127.0.0.1:{http_port}",
        "APP_NAME": "Task Board",
        "CLIENT_URL": CLIENT_URL,
        "SUPPORT_EMAIL": SUPPORT,
    }


class Person:
    """A browser at one size, looking at the in-process service; every method is blocking (run it in a thread)."""

    def __init__(self, driver, url, axe_source, viewport):
        self.driver, self.url, self.axe_source, self.viewport = driver, url, axe_source, viewport
        width, height, mobile = VIEWPORTS[viewport]
        driver.execute_cdp_cmd(
            "Emulation.setDeviceMetricsOverride",
            {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": mobile},
        )
        driver.delete_all_cookies()

    def open(self, path: str, heading: str) -> str:
        self.driver.get(self.url + path)
        return self.sees(heading)

    def sees(self, heading: str) -> str:
        """Wait for the page whose h1 is `heading`, check it as a person and a screen reader would; its main text."""
        wait_until(
            self.driver,
            lambda d: d.find_element(By.TAG_NAME, "h1").text == heading,
            ignored_exceptions=(WebDriverException,),
        )
        driver = self.driver
        assert driver.title == f"{heading} – Task Board"
        assert driver.find_element(By.TAG_NAME, "header").text == "Task Board"
        check_page(driver, self.url, heading, self.viewport, self.axe_source, shot_prefix="undo-")
        return driver.find_element(By.TAG_NAME, "main").text

    def click(self) -> None:
        self.driver.find_element(By.CSS_SELECTOR, "button[type=submit]").click()

    def link(self, text: str) -> str:
        return self.driver.find_element(By.LINK_TEXT, text).get_attribute("href")

    def forget(self) -> None:
        """Another browser, as far as the service can tell: no _xsrf cookie."""
        self.driver.delete_all_cookies()


async def in_thread(function, *args):
    return await asyncio.get_running_loop().run_in_executor(None, partial(function, *args))


async def scene(api, mailbox, email: str) -> tuple:
    """A verified account taken over by a thief: (the account, the undo link's token)."""
    account = await verified_account(api, mailbox, email=email)
    return account, await taken_over(api, mailbox, account, new_email=f"thief-{email}")


@pytest.mark.parametrize("viewport", list(VIEWPORTS))
@pytest.mark.gen_test(timeout=180)
async def test_every_state_of_the_undo_page(api, mailbox, store, browser, axe_source, http_port, viewport):
    person = Person(browser, f"http://127.0.0.1:{http_port}", axe_source, viewport)
    ada, token = await scene(api, mailbox, f"ada-{viewport}@example.com")
    link = f"{UNDO}?token={token}"

    # Usable: one button; opening it changed nothing. Clicking takes the account back; Back and reload say so.
    text = await in_thread(person.open, link, "Put your old email address back?")
    assert "every device signed in to the account will be signed out" in text
    assert (await store.users.find_one({"_id": ObjectId(ada.id)}))["email"] == f"thief-ada-{viewport}@example.com"
    await in_thread(person.click)
    text = await in_thread(person.sees, "Your old email address is back")
    assert "has been signed out" in text and "works for 10 minutes" in text
    assert browser.current_url.endswith(f"{UNDO}/done")
    user = await store.users.find_one({"_id": ObjectId(ada.id)})
    assert user["email"] == f"ada-{viewport}@example.com" and user["isEmailVerified"] is True
    await mail_to(mailbox, f"ada-{viewport}@example.com", 3)  # verification, notice, the reset link
    await in_thread(browser.refresh)
    await in_thread(person.sees, "Your old email address is back")
    await in_thread(browser.back)  # the link's page, in the browser that used it: the outcome, no button
    await in_thread(person.sees, "Your old email address is back")
    assert browser.find_elements(By.CSS_SELECTOR, "button[type=submit]") == []

    # Used, seen from another browser: said so, with the way forward.
    await in_thread(person.forget)
    text = await in_thread(person.open, link, "This link was already used")
    assert "ask for a new one" in text and person.link("Reset your password").endswith("/forgot-password")

    # Unknown.
    text = await in_thread(person.open, f"{UNDO}?token=made-up-token-0123456789", "This link is not valid")
    assert "the whole link" in text

    # Expired.
    grace, expired_token = await scene(api, mailbox, f"grace-{viewport}@example.com")
    await store.tokens.update_one(
        {"hash": hash_token(expired_token)},
        {"$set": {"validUntil": dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)}},
    )
    text = await in_thread(person.open, f"{UNDO}?token={expired_token}", "This link has expired")
    assert "work for 7 days" in text and person.link(f"Write to {SUPPORT}") == f"mailto:{SUPPORT}"

    # The old address taken by another account meanwhile.
    lin, taken_token = await scene(api, mailbox, f"lin-{viewport}@example.com")
    # In the moment before the undo link was stored (the only time the address is free, attack finding 24).
    hidden = {"hash": hash_token(taken_token)}
    await store.tokens.update_one(hidden, {"$set": {"oldEmail": "elsewhere@example.com"}})
    await sign_up(api, email=f"lin-{viewport}@example.com", name="Someone Else")
    await store.tokens.update_one(hidden, {"$set": {"oldEmail": f"lin-{viewport}@example.com"}})
    text = await in_thread(
        person.open, f"{UNDO}?token={taken_token}", "Your old address now belongs to another account"
    )
    assert f"write to {SUPPORT}" in text

    # The account's address changed again since: the link still asks to put the old one back (finding 18).
    joan, moved_token = await scene(api, mailbox, f"joan-{viewport}@example.com")
    response = await api.patch(
        f"/users/{joan.id}",
        token=joan.token,
        json={"email": f"again-{viewport}@example.com", "currentPassword": PASSWORD},
    )
    assert response.code == 200, response
    await in_thread(person.open, f"{UNDO}?token={moved_token}", "Put your old email address back?")

    # A form left open while its cookie went (another browser profile, cleared cookies): refused, nothing changes.
    mae, kept_token = await scene(api, mailbox, f"mae-{viewport}@example.com")
    await in_thread(person.open, f"{UNDO}?token={kept_token}", "Put your old email address back?")
    await in_thread(person.forget)
    await in_thread(person.click)
    text = await in_thread(person.sees, "This form has expired")
    assert "Open the link in the email again" in text
    assert (await store.users.find_one({"_id": ObjectId(mae.id)}))["email"] == f"thief-mae-{viewport}@example.com"
