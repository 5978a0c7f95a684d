"""How fast a MongoDB outage becomes a 503: python bench/outage.py [--requests 50] [--budget-ms 300] [--slots 4].

Two measures against a real Motor client pointed at a local port nothing listens on (so every call meets
pymongo's ServerSelectionTimeoutError once its deadline has passed), printed as a markdown table:

  1. "Motor alone": N concurrent find_one calls on a client with timeoutMS=budget, no gate: what the
     service did before the deadline covered queueing (calls queue for Motor's threads; each holds one
     for the full timeout).
  2. "the service": N concurrent POST /auth/login through the service's app in this process (the
     request's budget, the process's slots), answered 503 each; the gate's peak of calls in flight.

A benchmark, not a test: nothing here fails on a number (docs/operating/benchmarks.md records the figures).
"""

import argparse
import asyncio
import json
import os
import socket
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from motor.frameworks.asyncio import max_workers  # noqa: E402
from motor.motor_asyncio import AsyncIOMotorClient  # noqa: E402
from pymongo.errors import PyMongoError  # noqa: E402
from tornado.httpclient import AsyncHTTPClient  # noqa: E402
from tornado.httpserver import HTTPServer  # noqa: E402
from tornado.netutil import bind_sockets  # noqa: E402

from handlers.routes import make_app  # noqa: E402
from services.container import Services  # noqa: E402
from services.database import Database  # noqa: E402
from settings import Settings  # noqa: E402


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def summary(times: list) -> dict:
    return {"p50_s": round(statistics.median(times), 3), "max_s": round(max(times), 3)}


async def motor_alone(uri: str, requests: int, budget_ms: int) -> dict:
    client = AsyncIOMotorClient(uri, timeoutMS=budget_ms, serverSelectionTimeoutMS=20000)

    async def one():
        started = time.monotonic()
        try:
            await client.accounts.users.find_one({})
        except PyMongoError:
            pass
        return time.monotonic() - started

    try:
        return summary(await asyncio.gather(*(one() for _ in range(requests))))
    finally:
        client.close()


async def the_service(uri: str, requests: int, budget_ms: int, slots: int) -> dict:
    settings = Settings.from_env(
        {
            "MONGODB_URI": uri,
            "JWT_SECRET": "bench-secret-that-is-long-enough-0123456789",
            "MONGODB_TIMEOUT_MS": "20000",
            "MONGODB_OPERATION_TIMEOUT_MS": str(budget_ms),
            "MONGODB_MAX_IN_FLIGHT": str(slots),
        }
    )
    services = Services(settings, Database.connect(settings))  # not started: no background calls compete
    server = HTTPServer(make_app(services, settings))
    sockets = bind_sockets(0, "127.0.0.1")
    server.add_sockets(sockets)
    url = f"http://127.0.0.1:{sockets[0].getsockname()[1]}/auth/login"
    http = AsyncHTTPClient(max_clients=requests)
    body = json.dumps({"email": "a@example.com", "password": "password-123"})

    async def one():
        started = time.monotonic()
        response = await http.fetch(
            url,
            method="POST",
            body=body,
            raise_error=False,
            request_timeout=120,
            headers={"Content-Type": "application/json"},
        )
        return time.monotonic() - started, response.code

    try:
        results = await asyncio.gather(*(one() for _ in range(requests)))
    finally:
        server.stop()
        await services.stop()
    codes = sorted({code for _, code in results})
    return {
        **summary([elapsed for elapsed, _ in results]),
        "statuses": codes,
        "peak_in_flight": services.database.gate.peak,
        "slots": services.database.gate.slots,
    }


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=50)
    parser.add_argument("--budget-ms", type=int, default=300)
    parser.add_argument("--slots", type=int, default=4)
    args = parser.parse_args()
    uri = f"mongodb://127.0.0.1:{closed_port()}/"
    alone = await motor_alone(uri, args.requests, args.budget_ms)
    service = await the_service(uri, args.requests, args.budget_ms, args.slots)
    print(
        f"{args.requests} concurrent calls, budget {args.budget_ms} ms, Motor threads {max_workers}, "
        f"service slots {service['slots']}, {os.cpu_count()} cores"
    )
    print("| measure | p50 | max | notes |")
    print("|---|---:|---:|---|")
    print(
        f"| Motor alone (timeoutMS={args.budget_ms}) | {alone['p50_s']} s | {alone['max_s']} s | queued for threads |"
    )
    print(
        f"| the service, POST /auth/login | {service['p50_s']} s | {service['max_s']} s | statuses "
        f"{service['statuses']}, peak in flight {service['peak_in_flight']} |"
    )


if __name__ == "__main__":
    asyncio.run(main())
