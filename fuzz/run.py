"""Fuzz the service with schemathesis against its own /openapi.json: python fuzz/run.py [--port N]

Starts run.py (on the embedded store, or a throwaway database when MONGODB_URI is set), or with --port uses
a service already running there, makes a user and an admin, and runs every operation three
times over (no token, the user's, the admin's), checking that no response is a 5xx and that every
response matches the documented status codes, content types, headers and schemas.
Bounded: FUZZ_EXAMPLES examples per operation (default 20), FUZZ_SECONDS per pass (default 240).
fuzz/hooks.py adds ids with trailing whitespace or newlines to the generated cases, and a crafted pass
sends every JSON operation bodies holding lone UTF-16 surrogates (in values, keys, nested) or bytes that
are not UTF-8: each must be a 400 (a red-team finding; schemathesis itself cannot carry such strings).
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from tests.service_process import http, running  # noqa: E402

CHECKS = (
    "not_a_server_error,status_code_conformance,content_type_conformance,"
    "response_headers_conformance,response_schema_conformance"
)
HOOKS = os.path.join(ROOT, "fuzz", "hooks.py")
ADMIN = ("fuzz-admin@example.com", "fuzz admin password")
USER = ("fuzz-user@example.com", "fuzz user password")


def fuzz(base: str, who: str, token: str, examples: int, seconds: int, report_dir: str) -> bool:
    # One worker: with several threads, CPython 3.11 sometimes crashes inside schemathesis' own code generation.
    command = [
        shutil.which("st") or "st",
        "run",
        f"{base}/openapi.json",
        "--checks",
        CHECKS,
        "--max-examples",
        str(examples),
        "--workers",
        "1",
        "--request-timeout",
        "10",
        "--report",
        "junit",
        "--report-junit-path",
        os.path.join(report_dir, f"{who}.xml"),
        "--suppress-health-check",
        "all",
    ]
    if token:
        command += [
            "-H",
            f"Authorization: Bearer {token}",
            # Logging out would end the very session the rest of the pass runs with.
            "--exclude-operation-id",
            "post_auth_logout",
        ]
    print(
        f"== schemathesis as {who}: {' '.join(c if 'Bearer' not in c else 'Authorization: Bearer …' for c in command)}",
        flush=True,
    )
    try:
        return (
            subprocess.run(
                command, cwd=ROOT, timeout=seconds, env={**os.environ, "SCHEMATHESIS_HOOKS": HOOKS}
            ).returncode
            == 0
        )
    except subprocess.TimeoutExpired:
        # Failures found before the cut would go unreported, so an unfinished pass is not a pass.
        print(f"== schemathesis as {who}: did not finish within {seconds} s; lower FUZZ_EXAMPLES")
        return False


# Raw bodies, since no JSON library writes a lone surrogate unasked.
CRAFTED_BODIES = [
    b'{"email": "\\ud800", "password": "\\udfff"}',
    b'{"\\udbff": 1}',
    b'{"a": [{"b": "x\\udc00"}]}',
    b'{"name": "\xff\xfe"}',
    b'{"name": "\xed\xa0\x80"}',
]


def crafted_pass(service, tokens: dict, ids: dict) -> bool:
    """Send each operation that takes a JSON body the crafted bodies, as each caller: the admin must get a 400
    everywhere; the others a 400 or the 401 / 403 that stops them before the body is read."""
    failures = []
    for path, methods in service.request("GET", "/openapi.json").json["paths"].items():
        for method, op in methods.items():
            schema = op.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema")
            if not schema or not (schema.get("properties") or schema.get("then")):
                continue  # no body taken: the endpoint may ignore one
            url = path.format(**ids) + ("?token=crafted-token-value" if "token" in str(op.get("parameters")) else "")
            for who, token in tokens.items():
                allowed = {400} if who == "admin" else {400} | ({401, 403} & {int(c) for c in op["responses"]})
                headers = {
                    "Content-Type": "application/json",
                    **({"Authorization": f"Bearer {token}"} if token else {}),
                }
                for body in CRAFTED_BODIES:
                    # Refused before any effect, so even logout or deletion is safe to send.
                    response = service.request(method.upper(), url, body=body, headers=headers)
                    if response.code not in allowed:
                        failures.append(f"{method.upper()} {url} as {who} {body!r}: {response.code}")
    print(f"== crafted pass: {len(failures)} failure(s)", *failures[:20], sep="\n", flush=True)
    return not failures


def wait_for_admin(service, credentials) -> dict:
    """Log the admin in; a started run.py creates it in the background right after the indexes."""
    deadline = time.monotonic() + 30
    while True:
        response = service.request("POST", "/auth/login", json={"email": credentials[0], "password": credentials[1]})
        if response.code == 200 or time.monotonic() > deadline:
            assert response.code == 200, response
            return response.json


class RunningService:
    """A service somebody else started (--port): requests only, no process to watch."""

    def __init__(self, url: str):
        self.url = url

    def request(self, method, path, json=None, **kwargs):
        return http(method, self.url + path, json=json, **kwargs)


def fuzz_service(service, admin, user, examples: int, seconds: int) -> dict:
    """Every pass against one answering service: crafted bodies, then schemathesis as each caller."""
    registered = service.request(
        "POST", "/auth/register", json={"name": "Fuzz User", "email": user[0], "password": user[1]}
    )
    assert registered.code == 201, registered
    tokens = {"anonymous": None, "user": registered.json["tokens"]["access"]["token"]}
    owner_id = registered.json["user"]["id"]
    if admin:
        admin_body = wait_for_admin(service, admin)
        tokens["admin"] = admin_body["tokens"]["access"]["token"]
        owner_id = admin_body["data"]["user"]["id"]
    owner_token = tokens.get("admin") or tokens["user"]
    org = service.request(
        "POST", "/api/organisations", json={"name": "Fuzz org"}, headers={"Authorization": f"Bearer {owner_token}"}
    )
    ids = {"userId": owner_id, "id": owner_id, "orgId": org.json["data"]["orgId"]}
    results = {"crafted": crafted_pass(service, tokens, ids)}
    with tempfile.TemporaryDirectory() as reports:
        results.update(
            {who: fuzz(service.url, who, token, examples, seconds, reports) for who, token in tokens.items()}
        )
    return results


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="Fuzz the service with schemathesis against its /openapi.json.")
    parser.add_argument(
        "--port",
        type=int,
        help="fuzz the service already answering on --host:PORT instead of "
        "starting run.py; its admin pass needs FUZZ_ADMIN_EMAIL and FUZZ_ADMIN_PASSWORD (an admin "
        "of that service), and the service should run with REGISTRATIONS_PER_ADDRESS_PER_HOUR=0 and "
        "INVITATIONS_PER_ADDRESS_PER_HOUR=0 so every example reaches the operation's code",
    )
    parser.add_argument("--host", default="127.0.0.1", help="with --port: the service's host (default 127.0.0.1)")
    args = parser.parse_args(argv)
    examples = int(os.environ.get("FUZZ_EXAMPLES", "20"))
    seconds = int(os.environ.get("FUZZ_SECONDS", "240"))
    if args.port:
        admin = (
            (os.environ["FUZZ_ADMIN_EMAIL"], os.environ["FUZZ_ADMIN_PASSWORD"])
            if os.environ.get("FUZZ_ADMIN_EMAIL") and os.environ.get("FUZZ_ADMIN_PASSWORD")
            else None
        )
        user = (f"fuzz-{uuid.uuid4().hex[:12]}@example.com", USER[1])  # a service with data of its own
        results = fuzz_service(RunningService(f"http://{args.host}:{args.port}"), admin, user, examples, seconds)
        alive, crashes = True, []  # its process and log are the operator's to read
    else:
        # schemathesis signs up and invites hundreds of times from this one address: the per-address budgets
        # are turned off, as the contract says test suites do, so every example reaches the operation's code.
        with running(
            ADMIN_EMAIL=ADMIN[0],
            ADMIN_PASSWORD=ADMIN[1],
            LOG_LEVEL="WARNING",
            REGISTRATIONS_PER_ADDRESS_PER_HOUR="0",
            INVITATIONS_PER_ADDRESS_PER_HOUR="0",
        ) as service:
            results = fuzz_service(service, ADMIN, USER, examples, seconds)
            alive = service.process.poll() is None
            crashes = [line for line in service.stderr().splitlines() if _level(line) == "ERROR"]
    if not alive:
        print("run.py died during the fuzzing")
    if crashes:
        print("the server logged errors:\n" + "\n".join(crashes[:20]))
    print("== results: " + ", ".join(f"{who}: {'passed' if ok else 'FAILED'}" for who, ok in results.items()))
    return 0 if alive and all(results.values()) and not crashes else 1


def _level(line: str):
    try:
        return json.loads(line).get("level")
    except ValueError:
        return None


if __name__ == "__main__":
    sys.exit(main())
