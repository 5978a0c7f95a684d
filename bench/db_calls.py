"""Database calls per request, by kind: python bench/db_calls.py [--detail].

The service's app in this process on the embedded store; each request is sent once (after one unrecorded
warm-up of the same kind) and every call that passes the process's database gate is counted, as reads
(find_one, find fetches, count, aggregate) and writes (insert, update, delete, find-and-modify). The counts
do not depend on the store: the same service code sends the same calls to MongoDB. docs/operating/scaling.md turns
them and bench/run.py's per-core rates into the load a deployment puts on its replica set.
"""

import asyncio
import collections
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from tornado.httpclient import AsyncHTTPClient  # noqa: E402
from tornado.httpserver import HTTPServer  # noqa: E402
from tornado.netutil import bind_sockets  # noqa: E402

from handlers.routes import make_app  # noqa: E402
from services import deadlines  # noqa: E402
from services.container import Services  # noqa: E402
from services.database import Database  # noqa: E402
from settings import Settings  # noqa: E402

WRITES = {
    "insert_one",
    "insert_many",
    "update_one",
    "update_many",
    "replace_one",
    "delete_one",
    "delete_many",
    "find_one_and_update",
    "find_one_and_delete",
    "find_one_and_replace",
    "bulk_write",
}


class Counting(deadlines.GatedCollection):
    """Counts each call by kind; cursor fetches count as reads."""

    counts = collections.Counter()
    calls = []  # "collection.method", in order

    def __getattr__(self, name):
        if name in self.CALLS or name in self.CURSORS:
            Counting.counts["write" if name in WRITES else "read"] += 1
            Counting.calls.append(f"{self._collection.name}.{name}")
        return super().__getattr__(name)


class CountingDatabase(Database):
    def __getitem__(self, collection):
        return Counting(self.db[collection], self.gate)


async def main() -> None:
    settings = Settings.from_env(
        {
            "BCRYPT_ROUNDS": "4",
            "EMAIL_POLL_SECONDS": "3600",
            "ADMIN_EMAIL": "admin@example.com",
            "ADMIN_PASSWORD": "admin-password-123",
        }
    )
    services = Services(settings, CountingDatabase.connect(settings))
    services.start()
    while not services.database.indexes_ready:
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.5)  # the admin bootstrap
    server = HTTPServer(make_app(services, settings))
    sockets = bind_sockets(0, "127.0.0.1")
    server.add_sockets(sockets)
    base = f"http://127.0.0.1:{sockets[0].getsockname()[1]}"
    http = AsyncHTTPClient()
    state = {"n": 0}

    async def call(method, path, body=None, token=None):
        headers = {"Content-Type": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        response = await http.fetch(
            base + path,
            method=method,
            raise_error=False,
            headers=headers,
            body=json.dumps(body) if body is not None else (b"" if method == "POST" else None),
        )
        return json.loads(response.body) if response.body and response.body[:1] in b"[{" else None

    async def register():
        state["n"] += 1
        return await call(
            "POST",
            "/auth/register",
            {
                "email": f"u{state['n']}@example.com",
                "password": "password-123",
                "firstName": "Bench",
                "lastName": "User",
            },
        )

    async def login():
        return await call("POST", "/auth/login", {"email": "u1@example.com", "password": "password-123"})

    first = await register()
    token = first["tokens"]["access"]["token"]
    refresh = {"token": first["tokens"]["refresh"]["token"]}

    async def refresh_tokens():
        answer = await call("POST", "/auth/refresh-tokens", {"refreshToken": refresh["token"]})
        refresh["token"] = answer["tokens"]["refresh"]["token"] if answer and "tokens" in answer else refresh["token"]

    kinds = {
        "POST /auth/register": register,
        "POST /auth/login": login,
        "GET /users/user": lambda: call("GET", "/users/user", token=token),
        "POST /auth/refresh-tokens": refresh_tokens,
        "GET /api/organisations": lambda: call("GET", "/api/organisations", token=token),
        "POST /auth/forgot-password": lambda: call("POST", "/auth/forgot-password", {"email": "u1@example.com"}),
        "PUT /users/addToFav": lambda: call("PUT", "/users/addToFav", {"boardId": "board-1"}, token=token),
    }
    detail = "--detail" in sys.argv[1:]  # also each call, collection.method, in order
    print("| request | reads | writes |" + (" calls |" if detail else ""))
    print("|---|---:|---:|" + ("---|" if detail else ""))
    for name, send in kinds.items():
        await send()
        await asyncio.sleep(0.2)  # work done after the answer (forgot-password's email) counts too
        Counting.counts.clear()
        Counting.calls.clear()
        await send()
        await asyncio.sleep(0.2)
        calls = f" {', '.join(Counting.calls)} |" if detail else ""
        print(f"| {name} | {Counting.counts['read']} | {Counting.counts['write']} |{calls}")
    server.stop()
    await services.stop()


if __name__ == "__main__":
    asyncio.run(main())
