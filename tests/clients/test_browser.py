"""A web app on another origin, in headless Chromium, signed in by the session cookie alone.

The page is served from a second local port listed in CORS_ORIGINS; it calls run.py with
fetch(..., {credentials: "include"}) as the task-board app's axios does with withCredentials, keeps no
token, uploads a photo with a FormData, shows it through <img> and logs out. Both origins are on
127.0.0.1, so they are one site and the SameSite=Lax cookie goes along (as for app.example.com and
api.example.com in production).
"""

import base64
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.browser import wait_until
from tests.helpers import PASSWORD, free_port
from tests.service_process import running
from tests.users_fixtures import png

pytestmark = pytest.mark.slow

APP_PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>app</title></head><body>
<script>
const API = %(api)s, EMAIL = %(email)s, PASSWORD = %(password)s, PHOTO = %(photo)s;
const result = {};
function send(path, options) {
  return fetch(API + path, Object.assign({credentials: "include"}, options));
}
async function run() {
  const login = await send("/auth/login", {method: "POST", headers: {"Content-Type": "application/json"},
                                           body: JSON.stringify({email: EMAIL, password: PASSWORD})});
  result.login = login.status;
  result.cookieVisibleToScript = document.cookie.includes("session=");
  const me = await send("/users/user/");
  result.me = me.status;
  const user = await me.json();
  result.email = user.email;
  const form = new FormData();
  const bytes = Uint8Array.from(atob(PHOTO), c => c.charCodeAt(0));
  form.append("file", new Blob([bytes], {type: "image/png"}), "me.png");
  const upload = await send("/users/" + user.id, {method: "PUT", body: form});
  result.upload = upload.status;
  const photoUrl = (await upload.json()).profilePhotoUrl;
  result.photoUrl = photoUrl;
  await new Promise(resolve => {
    const img = document.createElement("img");
    img.onload = () => { result.img = "loaded " + img.naturalWidth + "x" + img.naturalHeight; resolve(); };
    img.onerror = () => { result.img = "error"; resolve(); };
    img.src = photoUrl;  // as it is: absolute, under APP_URL
    document.body.appendChild(img);
  });
  result.logout = (await send("/auth/logout", {method: "POST"})).status;
  const after = await send("/users/user");
  result.afterLogout = after.status;
  result.afterLogoutBody = await after.text();
}
run().catch(error => { result.error = String(error); }).finally(() => { window.appResult = result; });
</script></body></html>
"""


class AppServer:
    """The web app's own origin: one page, served by a thread."""

    def __init__(self, port: int, html: str):
        body = html.encode()

        class Page(BaseHTTPRequestHandler):
            def do_GET(self):
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Page)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


def test_a_page_of_another_origin_signs_in_by_cookie_and_shows_the_photo(browser):
    app_port = free_port()
    app_origin = f"http://127.0.0.1:{app_port}"
    with running(CORS_ORIGINS=app_origin) as service:
        assert (
            service.request(
                "POST",
                "/auth/register",
                json={"name": "Ada Lovelace", "email": "ada@example.com", "password": PASSWORD},
            ).code
            == 201
        )
        html = APP_PAGE % {
            "api": json.dumps(service.url),
            "email": json.dumps("ada@example.com"),
            "password": json.dumps(PASSWORD),
            "photo": json.dumps(base64.b64encode(png(3, 2)).decode()),
        }
        with AppServer(app_port, html):
            browser.get(app_origin + "/")
            result = wait_until(browser, lambda d: d.execute_script("return window.appResult"))
    assert "error" not in result, result
    assert (result["login"], result["me"], result["email"], result["upload"]) == (200, 200, "ada@example.com", 200)
    assert result["cookieVisibleToScript"] is False  # HttpOnly
    assert result["photoUrl"].startswith(f"http://localhost:{service.port}/users/")  # APP_URL's default
    # The contract: profilePhotoUrl works as an <img src> with no token (the page has none to give).
    assert result["img"] == "loaded 3x2", result
    assert (result["logout"], result["afterLogout"], result["afterLogoutBody"]) == (204, 200, "null")  # signed out
