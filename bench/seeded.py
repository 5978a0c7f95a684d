"""The service on an embedded store already holding N users: python bench/seeded.py --users N --port P.

For the embedded-store scaling measure of bench/run.py (--scale). Seeding 10,000 users through the API
takes the stand-in most of an hour (every insert and look-up scans whole collections: quadratic), so
this process builds the store itself before serving, then serves exactly what run.py serves:
  1. the service's own Users.create makes user 0 (with its default organisation and membership);
  2. users 1..N-1 are copies of those three documents with their own ids, email, names and
     organisation, inserted in bulk before the indexes exist (the stand-in checks a unique index
     against every document on each insert, but builds one over existing documents in one pass);
  3. Services.start() then creates the indexes and the admin exactly as at any start-up, and the
     application from handlers.routes is served on --port.
Every seeded user has the bench password, so bench/run.py logs some of them in over HTTP.
"""

import argparse
import asyncio
import logging
import os
import signal
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import seed  # noqa: E402
from bson import ObjectId  # noqa: E402
from tornado.httpserver import HTTPServer  # noqa: E402

import logconfig  # noqa: E402
from handlers.routes import make_app  # noqa: E402
from models import organisations as org_model  # noqa: E402
from services.container import Services  # noqa: E402
from services.database import Database  # noqa: E402
from settings import Settings  # noqa: E402

log = logging.getLogger("accounts.bench")


async def fill(services: Services, count: int) -> None:
    """count users: the first made by the service, the others copies of its documents."""
    template = await services.users.create(
        email=seed.email_of(0), password=seed.PASSWORD, first_name="Bench00000", last_name="User"
    )
    organisations, memberships = services.organisations.organisations, services.organisations.memberships
    org = await organisations.find_one({"createdBy": template["_id"]})
    membership = await memberships.find_one({"userId": template["_id"]})
    users, orgs, members = [], [], []
    for index in range(1, count):
        user_id, org_id, first = ObjectId(), ObjectId(), f"Bench{index:05d}"
        users.append(
            {**template, "_id": user_id, "email": seed.email_of(index), "firstName": first, "name": f"{first} User"}
        )
        orgs.append({**org, "_id": org_id, "name": org_model.default_organisation_name(first), "createdBy": user_id})
        members.append({**membership, "_id": ObjectId(), "orgId": org_id, "userId": user_id})
    for collection, documents in ((services.users.collection, users), (organisations, orgs), (memberships, members)):
        if documents:
            await collection.insert_many(documents)


async def serve(port: int, count: int) -> None:
    settings = Settings.from_env(os.environ, port=port)
    assert settings.embedded, "the scaling measure is of the embedded store: unset MONGODB_URI"
    database = Database.connect(settings)
    services = Services(settings, database)
    # Indexes first: creating a user needs its unique indexes confirmed (a 503 before), as in the service.
    services.start()
    while not database.indexes_ready:
        await asyncio.sleep(0.05)
    await fill(services, count)
    server = HTTPServer(make_app(services, settings), idle_connection_timeout=60, body_timeout=60)
    server.listen(port, address="127.0.0.1")
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stopping.set)
    log.info("seeded service with %d users listening on port %d (pid %d)", count, port, os.getpid())
    await stopping.wait()
    server.stop()
    await services.stop()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--users", type=int, required=True, help="users in the store, the admin not counted")
    args = parser.parse_args(argv)
    logconfig.configure(logconfig.parse_level(os.environ.get("LOG_LEVEL", "")))
    asyncio.run(serve(args.port, max(1, args.users)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
