"""HTTP helpers shared by the tests: every behaviour is exercised through the server."""

import asyncio
import contextlib
import datetime as dt
import email
import json as jsonlib
import re
import socket
import time

import jwt
from prometheus_client.parser import text_string_to_metric_families

from models import budgets, login_attempts, organisations, outbox, photos, sessions, users

PASSWORD = "correct horse battery"
# The User-Agent of the tests' own requests (tests/conftest.py), as a session made by one records it.
TEST_AGENT = "accounts-tests"


class Response:
    def __init__(self, raw):
        self.raw = raw
        self.code = raw.code
        self.headers = raw.headers
        self.body = raw.body or b""

    @property
    def json(self):
        return jsonlib.loads(self.body)

    def __repr__(self):
        return f"<Response {self.code} {self.body[:300]!r}>"


class Api:
    """A thin client over pytest-tornado's http_client that never raises on error statuses."""

    def __init__(self, http_client, base_url, app_url=None):
        self.http_client = http_client
        self.base_url = base_url
        self.app_url = app_url

    def url(self, path: str) -> str:
        """A path on the test server; an absolute URL only under APP_URL (a profilePhotoUrl), which the test
        server stands behind as the service does behind its public address."""
        if path.startswith(("http://", "https://")):
            assert self.app_url and path.startswith(self.app_url + "/"), f"{path} is not under APP_URL {self.app_url}"
            path = path[len(self.app_url) :]
        return self.base_url + path

    async def request(self, method, path, json=None, body=None, token=None, headers=None, **kwargs) -> Response:
        all_headers = dict(headers or {})
        if json is not None:
            body = jsonlib.dumps(json)
            all_headers.setdefault("Content-Type", "application/json")
        if token:
            all_headers["Authorization"] = f"Bearer {token}"
        raw = await self.http_client.fetch(
            self.url(path),
            method=method,
            body=body,
            headers=all_headers,
            raise_error=False,
            allow_nonstandard_methods=True,
            request_timeout=60,
            **kwargs,
        )
        return Response(raw)

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def post(self, path, **kw):
        return self.request("POST", path, **kw)

    def put(self, path, **kw):
        return self.request("PUT", path, **kw)

    def patch(self, path, **kw):
        return self.request("PATCH", path, **kw)

    def delete(self, path, **kw):
        return self.request("DELETE", path, **kw)

    async def register(self, email="mark@example.com", password=PASSWORD, **fields):
        """Register with the organisation client's shape unless name is given; returns the 201 body."""
        body = {"email": email, "password": password}
        if "name" in fields:
            body.update(fields)
        else:
            body.update({"firstName": "Mark", "lastName": "Essien", **fields})
        response = await self.post("/auth/register", json=body)
        assert response.code == 201, response
        return response.json

    async def login(self, email="mark@example.com", password=PASSWORD, headers=None):
        response = await self.post("/auth/login", json={"email": email, "password": password}, headers=headers)
        assert response.code == 200, response
        return response.json


class Account:
    """A registered user as the tests use it: .id, .token (access), .refresh, .user (the 201 body's user).

    It also unpacks, and indexes, as the pair (token, id): `token, user_id = await sign_up(api, email)`."""

    def __init__(self, body: dict):
        self.user = body["user"]
        self.id = body["user"]["id"]
        self.token = body["tokens"]["access"]["token"]
        self.refresh = body["tokens"]["refresh"]["token"]

    def __iter__(self):
        return iter((self.token, self.id))

    def __getitem__(self, index):
        return (self.token, self.id)[index]


class Store:
    """The service's collections by their model names: the one way tests read or arrange stored state.

    Tests take the `store` fixture (tests/conftest.py); a helper given `services` builds
    Store(services.database). Never read state through a service's attributes (services.users.collection...);
    only a fault injection patches a service's own collection object (monkeypatch.setattr(services.users.
    collection, "find_one", fail)), since store.users is another handle on the same collection."""

    def __init__(self, database):
        self.users = database[users.COLLECTION]
        self.deletions = database[users.DELETIONS]
        self.sessions = database[sessions.SESSIONS]
        self.tokens = database[sessions.TOKENS]
        self.organisations = database[organisations.ORGANISATIONS]
        self.memberships = database[organisations.MEMBERSHIPS]
        self.invitations = database[organisations.INVITATIONS]
        self.outbox = database[outbox.COLLECTION]
        self.send_counts = database[outbox.SEND_COUNTS]
        self.photos = database[photos.COLLECTION]
        self.login_attempts = database[login_attempts.COLLECTION]
        self.budgets = database[budgets.COLLECTION]


async def sign_up(api, email: str = "ada@example.com", **fields) -> Account:
    """Register through POST /auth/register (201 asserted). The shape follows the fields: firstName/lastName
    for the organisation client's, name for the task-board app's; with neither, name="Ada Lovelace"."""
    if not {"name", "firstName", "lastName"} & set(fields):
        fields["name"] = "Ada Lovelace"
    return Account(await api.register(email=email, **fields))


def claims(token: str) -> dict:
    """A JWT's claims, read without checking the signature (the server checks it)."""
    return jwt.decode(token, options={"verify_signature": False})


def assert_error(response: Response, status: int, message: str = None):
    """The response is the contract's error envelope with this status."""
    assert response.code == status, response
    body = response.json
    word = {403: "Forbidden", 404: "Not found"}.get(status, "Error" if status >= 500 else "Bad request")
    assert body["status"] == word
    assert body["statusCode"] == status and body["code"] == status
    assert isinstance(body["message"], str) and body["message"]
    if message is not None:
        assert body["message"] == message
    return body


def error_fields(response: Response) -> dict:
    """field -> message of a 422 response."""
    body = assert_error(response, 422, "Validation failed")
    return {entry["field"]: entry["message"] for entry in body["errors"]}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Mailbox:
    """Messages received by the in-process SMTP server (aiosmtpd handler), with their envelope recipients;
    recipients in `refused` are answered 550, as a server does for a mailbox that does not exist."""

    def __init__(self):
        self.messages = []
        self.recipients = []  # the SMTP envelope's RCPT TO list of each message, in order
        self.refused = set()

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address in self.refused:
            return "550 5.1.1 No such user here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        self.recipients.append(list(envelope.rcpt_tos))
        self.messages.append(email.message_from_bytes(envelope.content))
        return "250 Message accepted for delivery"

    async def wait_for(self, count: int = 1, timeout: float = 10.0):
        """Wait until `count` messages have arrived; return them."""
        deadline = time.monotonic() + timeout
        while len(self.messages) < count:
            assert time.monotonic() < deadline, f"expected {count} emails, got {len(self.messages)}"
            await asyncio.sleep(0.002)
        return self.messages[:count]


@contextlib.contextmanager
def smtp_server():
    """A real SMTP server (aiosmtpd) on a free local port, in its own thread; yields its Mailbox."""
    from aiosmtpd.controller import Controller

    box = Mailbox()
    controller = Controller(box, hostname="127.0.0.1", port=free_port())
    controller.start()
    box.port = controller.port
    try:
        yield box
    finally:
        controller.stop()


def text_part(message) -> str:
    return (
        message.get_body(preferencelist=("plain",)).get_content() if hasattr(message, "get_body") else _plain(message)
    )


def _plain(message) -> str:
    for part in message.walk():
        if part.get_content_type() == "text/plain":
            return part.get_payload(decode=True).decode()
    raise AssertionError("no text/plain part")


def html_part(message) -> str:
    for part in message.walk():
        if part.get_content_type() == "text/html":
            return part.get_payload(decode=True).decode()
    raise AssertionError("no text/html part")


def link_token(message, path: str) -> str:
    """The token of the APP_URL/<path>?token=… link in a received email."""
    found = re.search(rf"https?://\S+/{path}\?token=([A-Za-z0-9_\-]+)", _plain(message))
    assert found, _plain(message)
    return found.group(1)


def server_error(cls, message: str, code: int, code_name: str, **details):
    """A pymongo OperationFailure (or subclass) as the driver raises it from a server's reply."""
    return cls(
        message, code=code, details={"ok": 0.0, "errmsg": message, "code": code, "codeName": code_name, **details}
    )


class Held:
    """A collection whose first call of one method waits until released: a race's window held open. A held
    `find` returns a cursor at once, as Motor's does, and waits when it is first read."""

    def __init__(self, collection, method: str):
        self.collection, self.method = collection, method
        self.reached, self.released = asyncio.Event(), asyncio.Event()

    def __getattr__(self, name):
        attribute = getattr(self.collection, name)
        if name != self.method or self.reached.is_set():
            return attribute
        if name == "find":
            return self._held_find

        async def held(*args, **kwargs):
            self.reached.set()
            await self.released.wait()
            return await attribute(*args, **kwargs)

        return held

    def _held_find(self, *args, **kwargs):
        self.reached.set()
        return self._released_find(*args, **kwargs)

    async def _released_find(self, *args, **kwargs):
        await self.released.wait()
        async for doc in self.collection.find(*args, **kwargs):
            yield doc


REQUESTS = "accounts_http_requests_total"


class Scrape:
    """One scrape: sample values by name and labels. Each metric family is parsed (by prometheus_client's own
    parser) when first asked about: a process's exposition grows with every route and status the suite has
    touched, and a test reads two or three families of it. tests/operations/test_metrics.py parses whole ones."""

    def __init__(self, text: str):
        self.text = text
        self._lines = {}  # family name -> its lines, from its "# HELP" on
        family = None
        for line in text.splitlines(keepends=True):
            if line.startswith("# HELP "):
                family = line.split(" ", 3)[2]
                self._lines[family] = []
            if family is not None:
                self._lines[family].append(line)
        self._parsed = {}

    def samples(self, name: str) -> dict:
        """(sample name, labels) -> value, for the family a sample name belongs to (its longest prefix)."""
        family = max((f for f in self._lines if name.startswith(f)), key=len, default=None)
        if family is None:
            return {}
        if family not in self._parsed:
            self._parsed[family] = {
                (sample.name, frozenset(sample.labels.items())): sample.value
                for parsed in text_string_to_metric_families("".join(self._lines[family]))
                for sample in parsed.samples
            }
        return self._parsed[family]

    def value(self, name: str, **labels) -> float:
        return self.samples(name).get((name, frozenset(labels.items())), 0.0)

    def has(self, name: str, **labels) -> bool:
        return (name, frozenset(labels.items())) in self.samples(name)

    def labels(self, name: str, label: str) -> set:
        return {dict(labels)[label] for sample, labels in self.samples(name) if sample == name}

    def delta(self, before: "Scrape", name: str, **labels) -> float:
        return self.value(name, **labels) - before.value(name, **labels)


# Every key of the user as every endpoint returns it (API.md, "The user, as every endpoint returns it").
USER_KEYS = {
    "id",
    "userId",
    "name",
    "firstName",
    "lastName",
    "email",
    "phone",
    "username",
    "role",
    "isEmailVerified",
    "twoFactorEnabled",
    "profilePhotoUrl",
    "favoriteBoards",
    "createdAt",
    "updatedAt",
}


async def caller(api, token: str):
    """GET /users/user: who the server thinks the token belongs to."""
    return await api.get("/users/user", token=token)


def now() -> dt.datetime:
    """The time now, in UTC, as the service stores it."""
    return dt.datetime.now(dt.UTC)


def close_to(value: dt.datetime, expected: dt.datetime, seconds: float = 30) -> bool:
    """True when value is within `seconds` of expected: a stored time against the clock."""
    return abs((value - expected).total_seconds()) <= seconds
