"""The two baselines the service is measured against, each a Tornado app in a process of its own.

    python bench/baselines.py bare --port N
        one handler (any path) that writes {"status": "ok"}: what Tornado itself costs per request.

    python bench/baselines.py minimal --port N --tokens-file FILE [--users 100]
        GET /users/user done with nothing but the work it cannot avoid: verify the access JWT with
        PyJWT (same algorithm, same required claims, same kind of secret), read the session and the
        user documents through Motor's API from the same kind of store the service uses when
        MONGODB_URI is unset (mongomock-motor, in this process, seeded with documents shaped like
        the service's, with the same indexes declared), and write models.users.public_view(user),
        so the JSON is byte for byte the service's. No logging, no request ids, no security
        headers, no body limits, no error envelope. It seeds --users users with one session each,
        signs one access token per session and writes them to --tokens-file (one a line) before it
        starts listening.

Both listen on 127.0.0.1 only and stop on SIGTERM or SIGINT.
"""

import argparse
import asyncio
import datetime as dt
import os
import signal
import sys
import uuid

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import jwt  # noqa: E402
from bson import ObjectId  # noqa: E402
from tornado.web import Application, HTTPError, RequestHandler  # noqa: E402

from models.users import public_view  # noqa: E402  (the service's own view: identical JSON)

# Any secret of the service's kind (HS256, at least 32 characters); run.py passes the same one to both.
DEFAULT_SECRET = "bench-secret-0123456789abcdef0123456789abcdef0123456789abcdef"
REQUIRED_CLAIMS = ["exp", "iat", "sub", "sid", "jti", "type"]
# Shaped like a bcrypt hash (cost 12): the user document carries one, as the service's does.
PASSWORD_HASH = "$2b$12$0wPBm8jS6pqv0k3dpP6Hxe7m6o0YB0qY8H7Cyl9fJm1m5bJZ3yVEq"


class BareHandler(RequestHandler):
    def get(self, *_):
        self.write({"status": "ok"})


class MinimalUserHandler(RequestHandler):
    """GET /users/user: JWT, session, user, public view. Nothing else."""

    def initialize(self, secret, sessions, users, app_url):
        self.secret = secret
        self.app_url = app_url
        self.sessions = sessions
        self.users = users

    async def get(self):
        _, _, token = self.request.headers.get("Authorization", "").partition(" ")
        try:
            claims = jwt.decode(token, self.secret, algorithms=["HS256"], options={"require": REQUIRED_CLAIMS})
            user_id, session_id = ObjectId(claims["sub"]), ObjectId(claims["sid"])
        except (jwt.InvalidTokenError, KeyError, TypeError, ValueError):
            raise HTTPError(401) from None
        session = await self.sessions.find_one({"_id": session_id, "userId": user_id})
        user = await self.users.find_one({"_id": user_id}) if session else None
        if user is None:
            raise HTTPError(401)
        self.write(public_view(user, self.app_url))


async def seed_minimal(users_count: int, secret: str, tokens_file: str):
    """A mongomock-motor store like the service's embedded one, with users_count users and one
    session each; writes one signed access token per session to tokens_file."""
    from mongomock_motor import AsyncMongoMockClient

    from models.sessions import SESSIONS
    from models.users import COLLECTION as USERS
    from services.database import Database

    # Built exactly as the service builds its embedded store: the same client and the same indexes.
    database = Database(AsyncMongoMockClient(tz_aware=True), "accounts", embedded=True)
    await database.ensure_indexes()
    db = database.db
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    tokens = []
    for i in range(users_count):
        user_id = ObjectId()
        first = f"Bench{i:04d}"
        await db[USERS].insert_one(
            {
                "_id": user_id,
                "name": f"{first} User",
                "firstName": first,
                "lastName": "User",
                "email": f"bench-user-{i:04d}@example.com",
                "passwordHash": PASSWORD_HASH,
                "role": "user",
                "isEmailVerified": False,
                "favoriteBoards": [],
                "createdAt": now,
                "updatedAt": now,
            }
        )
        session_id = ObjectId()
        await db[SESSIONS].insert_one(
            {"_id": session_id, "userId": user_id, "createdAt": now, "expiresAt": now + dt.timedelta(days=30)}
        )
        claims = {
            "sub": str(user_id),
            "userId": str(user_id),
            "email": f"bench-user-{i:04d}@example.com",
            "role": "user",
            "type": "access",
            "sid": str(session_id),
            "iat": int(now.timestamp()),
            "exp": int((now + dt.timedelta(hours=2)).timestamp()),
            "jti": uuid.uuid4().hex,
        }
        tokens.append(jwt.encode(claims, secret, algorithm="HS256"))
    temporary = tokens_file + ".tmp"
    with open(temporary, "w") as out:
        out.write("\n".join(tokens) + "\n")
    os.replace(temporary, tokens_file)
    return database.client, db[SESSIONS], db[USERS]


async def serve(kind: str, port: int, users_count: int, secret: str, tokens_file: str) -> None:
    if kind == "bare":
        app = Application([(r"/(.*)", BareHandler)])
    else:
        _client, sessions, users = await seed_minimal(users_count, secret, tokens_file)
        app = Application(
            [
                (
                    r"/users/user",
                    MinimalUserHandler,
                    {"secret": secret, "sessions": sessions, "users": users, "app_url": f"http://localhost:{port}"},
                )
            ]
        )  # the service's default APP_URL
    server = app.listen(port, address="127.0.0.1")
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stopping.set)
    print(f"{kind} baseline listening on 127.0.0.1:{port} (pid {os.getpid()})", flush=True)
    await stopping.wait()
    server.stop()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("kind", choices=("bare", "minimal"))
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--users", type=int, default=100, help="minimal: users (and sessions) to seed")
    parser.add_argument("--tokens-file", help="minimal: where to write the access tokens, one a line")
    parser.add_argument("--secret", default=os.environ.get("JWT_SECRET") or DEFAULT_SECRET)
    args = parser.parse_args(argv)
    if args.kind == "minimal" and not args.tokens_file:
        parser.error("minimal needs --tokens-file")
    asyncio.run(serve(args.kind, args.port, args.users, args.secret, args.tokens_file))
    return 0


if __name__ == "__main__":
    sys.exit(main())
