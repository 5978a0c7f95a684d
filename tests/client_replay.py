"""A browser's side of the wire, for replaying real clients request by request.

One keep-alive connection (http.client, as a browser's connection pool reuses one), a cookie jar,
the page's Origin, the CORS preflight a browser sends before any request that is not "simple", and
the checks after which a browser lets the page read an answer. http.client is blocking, so each
call runs in a thread while the test's server keeps serving on the IOLoop.
"""

import asyncio
import http.client
import json as jsonlib
import os
from http.cookies import SimpleCookie
from urllib.parse import urlsplit

# Request headers a page may send without a preflight (the Fetch standard's CORS-safelisted ones).
SAFELISTED = {"accept", "accept-language", "content-language"}
SIMPLE_TYPES = {"application/x-www-form-urlencoded", "multipart/form-data", "text/plain"}


class CorsBlocked(AssertionError):
    """The browser would not have sent the request, or would not let the page read the answer."""


class Answer:
    def __init__(self, code: int, headers, body: bytes):
        self.code = code
        self.headers = headers
        self.body = body

    @property
    def json(self):
        return jsonlib.loads(self.body)

    def header(self, name: str, default=None):
        return self.headers.get(name, default)

    def __repr__(self):
        return f"<Answer {self.code} {self.body[:300]!r}>"


class BrowserPage:
    """A page of `origin` calling the API at base_url with credentials (fetch's "include", axios' withCredentials)."""

    def __init__(self, base_url: str, origin: str):
        parts = urlsplit(base_url)
        self.connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
        self.origin = origin
        self.cookies = {}
        self.local_ports = set()  # every client-side port used: one means one connection throughout
        self.wire = []  # (method, path, status) of every request sent, preflights included

    def close(self) -> None:
        self.connection.close()

    async def fetch(self, method: str, path: str, body: bytes = None, headers: dict = None) -> Answer:
        return await asyncio.get_running_loop().run_in_executor(None, self._fetch, method, path, body, headers or {})

    async def raw(self, method: str, path: str, body: bytes = None, headers: dict = None) -> Answer:
        """One request exactly as given: no preflight, no cookie jar, no CORS checks (a form post, curl)."""
        return await asyncio.get_running_loop().run_in_executor(None, self.send, method, path, body, headers)

    def _fetch(self, method, path, body, headers) -> Answer:
        unsafe = sorted(name.lower() for name, value in headers.items() if not safelisted(name, value))
        if unsafe or method not in ("GET", "HEAD", "POST"):
            self._preflight(method, path, unsafe)
        sent = {**headers, "Origin": self.origin}
        if self.cookies:
            sent["Cookie"] = "; ".join(f"{name}={value}" for name, value in self.cookies.items())
        answer = self.send(method, path, body, sent)
        self._check_readable(answer)
        self._store_cookies(answer)
        return answer

    def send(self, method: str, path: str, body: bytes = None, headers: dict = None) -> Answer:
        """One request on the connection, exactly as given."""
        self.connection.request(method, path, body=body, headers=headers or {})
        self.local_ports.add(self.connection.sock.getsockname()[1])
        response = self.connection.getresponse()
        answer = Answer(response.status, response.headers, response.read())
        self.wire.append((method, path, answer.code))
        return answer

    def _preflight(self, method: str, path: str, unsafe: list) -> None:
        asked = {"Origin": self.origin, "Access-Control-Request-Method": method}
        if unsafe:
            asked["Access-Control-Request-Headers"] = ",".join(unsafe)
        answer = self.send("OPTIONS", path, headers=asked)
        if not 200 <= answer.code < 300:
            raise CorsBlocked(f"preflight of {method} {path}: {answer.code}")
        self._check_readable(answer)
        methods = [m.strip() for m in answer.header("Access-Control-Allow-Methods", "").split(",")]
        if method not in methods and method not in ("GET", "HEAD", "POST"):
            raise CorsBlocked(f"preflight of {method} {path} allows only {methods}")
        allowed = {h.strip().lower() for h in answer.header("Access-Control-Allow-Headers", "").split(",")}
        if set(unsafe) - allowed:
            raise CorsBlocked(f"preflight of {method} {path} does not allow {set(unsafe) - allowed}")

    def _check_readable(self, answer: Answer) -> None:
        if answer.header("Access-Control-Allow-Origin") != self.origin:
            raise CorsBlocked(f"Access-Control-Allow-Origin is {answer.header('Access-Control-Allow-Origin')!r}")
        if answer.header("Access-Control-Allow-Credentials") != "true":
            raise CorsBlocked("no Access-Control-Allow-Credentials: true on a credentialed request")

    def _store_cookies(self, answer: Answer) -> None:
        for line in answer.headers.get_all("Set-Cookie") or []:
            for name, morsel in SimpleCookie(line).items():
                if morsel["max-age"] == "0" or not morsel.value:
                    self.cookies.pop(name, None)
                else:
                    self.cookies[name] = morsel.value


def safelisted(name: str, value: str) -> bool:
    lowered = name.lower()
    if lowered == "content-type":
        return value.split(";")[0].strip().lower() in SIMPLE_TYPES
    return lowered in SAFELISTED


def set_cookie_lines(answer) -> list:
    """Every Set-Cookie header of an answer (http.client's or the suite's Response)."""
    headers = answer.headers
    return headers.get_all("Set-Cookie") if hasattr(headers, "get_all") else headers.get_list("Set-Cookie")


class FormData:
    """A body as Chromium encodes a FormData: a WebKit boundary, text parts, file parts."""

    def __init__(self):
        self.boundary = "----WebKitFormBoundary" + os.urandom(8).hex()[:16]
        self.parts = []

    def text(self, name: str, value: str) -> "FormData":
        self.parts.append(f'Content-Disposition: form-data; name="{name}"\r\n\r\n'.encode() + value.encode())
        return self

    def file(self, name: str, filename: str, data: bytes, content_type: str) -> "FormData":
        self.parts.append(
            f'Content-Disposition: form-data; name="{name}"; filename="{filename}"\r\n'
            f"Content-Type: {content_type}\r\n\r\n".encode()
            + data
        )
        return self

    def no_file_chosen(self, name: str) -> "FormData":
        """What a <form> sends for a file input left empty."""
        return self.file(name, "", b"", "application/octet-stream")

    @property
    def content_type(self) -> str:
        return f"multipart/form-data; boundary={self.boundary}"

    def encode(self) -> bytes:
        dash = f"--{self.boundary}".encode()
        return b"".join(dash + b"\r\n" + part + b"\r\n" for part in self.parts) + dash + b"--\r\n"
