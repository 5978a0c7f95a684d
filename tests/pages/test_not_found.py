"""A path no route knows: a page for a browser (a mistyped or broken link from an email), the JSON 404 for API
clients. Over HTTP in-process; tests/pages/test_pages_browser.py opens it in headless Chromium."""

import pytest

from tests.helpers import assert_error

pytestmark = pytest.mark.gen_test

BROWSER = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8"}
PAGE_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'unsafe-inline'; form-action 'self'; "
    "base-uri 'none'; frame-ancestors 'none'"
)


@pytest.fixture
def settings_env():
    return {"APP_NAME": "Task Board", "CLIENT_URL": "https://board.example.com"}


async def test_a_browser_on_a_mistyped_link_gets_a_page_with_the_ways_on(api):
    response = await api.get("/reset-pasword?token=abcdefghijklmnopqrstuvwxyz012345", headers=BROWSER)

    assert response.code == 404
    assert response.headers["Content-Type"] == "text/html; charset=UTF-8"
    assert response.headers["Content-Security-Policy"] == PAGE_CSP
    assert "Accept" in response.headers.get_list("Vary")
    html = response.body.decode()
    assert "<h1>This page does not exist</h1>" in html
    assert "<title>This page does not exist – Task Board</title>" in html
    assert '<a href="/forgot-password">Reset your password</a>' in html
    assert '<a href="/verify-email/resend">Get a new link to verify your email address</a>' in html
    assert '<a href="https://board.example.com">Back to Task Board</a>' in html
    assert "abcdefghijklmnopqrstuvwxyz012345" not in html  # the mistyped link's token is not echoed


@pytest.mark.parametrize("settings_env", [{"APP_NAME": "Task Board"}])
async def test_without_client_url_the_page_has_no_back_link(api, settings_env):
    response = await api.get("/nowhere", headers=BROWSER)

    assert response.code == 404
    html = response.body.decode()
    assert "/forgot-password" in html and "Back to" not in html


@pytest.mark.parametrize(
    "method, headers",
    [
        ("GET", {}),  # no Accept: curl, most HTTP libraries
        ("GET", {"Accept": "*/*"}),  # fetch() and XMLHttpRequest
        ("GET", {"Accept": "application/json"}),
        ("GET", {"Accept": "application/json, text/html"}),  # asks for JSON too
        ("POST", BROWSER),  # a form post somewhere unknown: no page to show it, the envelope
        ("DELETE", BROWSER),
    ],
)
async def test_api_clients_keep_the_json_404(api, method, headers):
    response = await api.request(method, "/users-list", headers=headers, body="" if method == "POST" else None)

    assert_error(response, 404, "Not found")
    assert response.headers["Content-Type"].startswith("application/json")
    assert "Accept" in response.headers.get_list("Vary")


async def test_a_known_api_route_answering_404_stays_json_for_a_browser(api):
    assert_error(await api.get("/users/not-an-id/photo?v=1", headers=BROWSER), 404)
