"""Seeding a running service through its HTTP API.

The embedded store lives inside the service process, so the only way in is the API itself:
POST /auth/register for each user (which also opens a session and returns a token pair), the
admin created by the service from ADMIN_EMAIL/ADMIN_PASSWORD at start-up and logged in with
POST /auth/login, and organisations made with POST /api/organisations and filled with
POST /api/organisations/:id/users. The 2,000-user store is filled by the admin with POST /users
(no session, token or email per user) and then some of them log in.
"""

import http.client
import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor

PASSWORD = "bench-password-123"
ADMIN_EMAIL = "bench-admin@example.com"


class SeedError(RuntimeError):
    """The service did not answer a seeding request as the contract says."""


class Client:
    """A tiny keep-alive JSON client, one connection per thread."""

    def __init__(self, port: int, timeout: float = 60.0):
        self.port = port
        self.timeout = timeout
        self._local = threading.local()

    def _connection(self) -> http.client.HTTPConnection:
        connection = getattr(self._local, "connection", None)
        if connection is None:
            connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=self.timeout)
            self._local.connection = connection
        return connection

    def request(self, method: str, path: str, body=None, token: str = None) -> tuple:
        headers = {}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        if token:
            headers["Authorization"] = f"Bearer {token}"
        for attempt in (1, 2):
            connection = self._connection()
            try:
                connection.request(method, path, body=data, headers=headers)
                response = connection.getresponse()
                raw = response.read()
                return response.status, (json.loads(raw) if raw else None)
            except (http.client.HTTPException, ConnectionError):
                connection.close()
                self._local.connection = None
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def expect(self, status: int, method: str, path: str, body=None, token: str = None):
        got, answer = self.request(method, path, body, token)
        if got != status:
            raise SeedError(f"{method} {path}: expected {status}, got {got}: {answer}")
        return answer


def email_of(index: int) -> str:
    return f"bench-user-{index:04d}@example.com"


def register_users(client: Client, first: int, count: int, concurrency: int = 8) -> list:
    """Register users first..first+count-1 (organisation-client shape); returns, in order,
    dicts with id, email, access and refresh tokens."""

    def register(index: int) -> dict:
        answer = client.expect(
            201,
            "POST",
            "/auth/register",
            {
                "firstName": f"Bench{index:04d}",
                "lastName": "User",
                "email": email_of(index),
                "password": PASSWORD,
            },
        )
        return {
            "id": answer["user"]["id"],
            "email": email_of(index),
            "access": answer["tokens"]["access"]["token"],
            "refresh": answer["tokens"]["refresh"]["token"],
        }

    with ThreadPoolExecutor(concurrency) as pool:
        return list(pool.map(register, range(first, first + count)))


def create_users(client: Client, admin_token: str, first: int, count: int, concurrency: int = 8) -> None:
    """Admin-created users first..first+count-1 (POST /users, task-board shape): each gets its default
    organisation, but no session, token or email, which keeps seeding thousands fast enough."""

    def create(index: int) -> None:
        client.expect(
            201,
            "POST",
            "/users",
            {"name": f"Bench{index:04d} User", "email": email_of(index), "password": PASSWORD},
            token=admin_token,
        )

    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(create, range(first, first + count)))


def login_all(client: Client, emails: list, concurrency: int = 8) -> list:
    """Log each of these users in; returns their ids and tokens, in order."""
    with ThreadPoolExecutor(concurrency) as pool:
        return list(pool.map(lambda email: login(client, email), emails))


def login(client: Client, email: str, password: str = PASSWORD, wait_seconds: float = 0.0) -> dict:
    """Log in (retrying for wait_seconds while the account does not exist yet, as the admin
    bootstrap runs in the background at start-up); returns id, email, access and refresh tokens."""
    deadline = time.monotonic() + wait_seconds
    while True:
        status, answer = client.request("POST", "/auth/login", {"email": email, "password": password})
        if status == 200:
            return {
                "id": answer["user"],
                "email": email,
                "access": answer["tokens"]["access"]["token"],
                "refresh": answer["tokens"]["refresh"]["token"],
            }
        if time.monotonic() >= deadline:
            raise SeedError(f"login as {email}: {status} {answer}")
        time.sleep(0.2)


def organise(client: Client, users: list, organisations: int, concurrency: int = 8) -> list:
    """Split users into `organisations` groups of equal size; the last user of each group creates
    its organisation and invites the others, who accept. Returns the organisation ids."""
    size = len(users) // organisations

    def build(group: int) -> str:
        members = users[group * size : (group + 1) * size]
        owner = members[-1]
        answer = client.expect(
            201,
            "POST",
            "/api/organisations",
            {"name": f"Bench organisation {group}", "description": "Seeded by bench/run.py"},
            token=owner["access"],
        )
        org_id = answer["data"]["orgId"]
        for member in members[:-1]:
            client.expect(
                200, "POST", f"/api/organisations/{org_id}/users", {"userId": member["id"]}, token=owner["access"]
            )
            # Adding only invites; the member joins by accepting.
            client.expect(200, "POST", f"/api/invitations/{org_id}/accept", token=member["access"])
        return org_id

    with ThreadPoolExecutor(min(concurrency, organisations)) as pool:
        return list(pool.map(build, range(organisations)))
