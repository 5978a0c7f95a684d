"""Fuzz the service with schemathesis against its own /openapi.json: python fuzz/run.py

Starts run.py (on the embedded store, or a throwaway database when MONGODB_URI is set), makes a user and an admin, and runs every operation three
times over (no token, the user's, the admin's), checking that no response is a 5xx and that every
response matches the documented status codes, content types, headers and schemas.
Bounded: FUZZ_EXAMPLES examples per operation (default 20), FUZZ_SECONDS per pass (default 240).
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from tests.service_process import running  # noqa: E402

CHECKS = ("not_a_server_error,status_code_conformance,content_type_conformance,"
          "response_headers_conformance,response_schema_conformance")
ADMIN = ("fuzz-admin@example.com", "fuzz admin password")
USER = ("fuzz-user@example.com", "fuzz user password")


def fuzz(base: str, who: str, token: str, examples: int, seconds: int, report_dir: str) -> bool:
    # One worker: with several threads, CPython 3.11 sometimes crashes inside schemathesis' own code generation.
    command = [shutil.which("st") or "st", "run", f"{base}/openapi.json", "--checks", CHECKS,
               "--max-examples", str(examples), "--workers", "1", "--request-timeout", "10",
               "--report", "junit", "--report-junit-path", os.path.join(report_dir, f"{who}.xml"),
               "--suppress-health-check", "all"]
    if token:
        command += ["-H", f"Authorization: Bearer {token}",
                    # Logging out would end the very session the rest of the pass runs with.
                    "--exclude-operation-id", "post_auth_logout"]
    print(f"== schemathesis as {who}: {' '.join(c if 'Bearer' not in c else 'Authorization: Bearer …' for c in command)}",
          flush=True)
    try:
        return subprocess.run(command, cwd=ROOT, timeout=seconds).returncode == 0
    except subprocess.TimeoutExpired:
        # Failures found before the cut would go unreported, so an unfinished pass is not a pass.
        print(f"== schemathesis as {who}: did not finish within {seconds} s; lower FUZZ_EXAMPLES")
        return False


def wait_for_admin(service) -> dict:
    """Log the admin in; it is created in the background right after the indexes."""
    deadline = time.monotonic() + 30
    while True:
        response = service.request("POST", "/auth/login", json={"email": ADMIN[0], "password": ADMIN[1]})
        if response.code == 200 or time.monotonic() > deadline:
            assert response.code == 200, response
            return response.json
        time.sleep(0.1)


def main() -> int:
    examples = int(os.environ.get("FUZZ_EXAMPLES", "20"))
    seconds = int(os.environ.get("FUZZ_SECONDS", "240"))
    with running(ADMIN_EMAIL=ADMIN[0], ADMIN_PASSWORD=ADMIN[1], LOG_LEVEL="WARNING") as service:
        user = service.request("POST", "/auth/register", json={"name": "Fuzz User", "email": USER[0],
                                                                "password": USER[1]})
        assert user.code == 201, user
        tokens = {"anonymous": None, "user": user.json["tokens"]["access"]["token"],
                  "admin": wait_for_admin(service)["tokens"]["access"]["token"]}
        with tempfile.TemporaryDirectory() as reports:
            results = {who: fuzz(service.url, who, token, examples, seconds, reports) for who, token in tokens.items()}
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
