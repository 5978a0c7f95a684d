"""The log: JSON lines only, one per request, and never a password, a token or an Authorization header."""

import json
import logging
import sys

import pytest

from logconfig import JsonFormatter
from tests.helpers import PASSWORD, link_token
from tests.service_process import running, wait_for_mail

CHANGED_PASSWORD = "changed password 1"
RESET_PASSWORD = "reset password 22"
WRONG_PASSWORD = "wrong password 333"
TOO_LONG_PASSWORD = "too long password " + "y" * 60
FORGED_BEARER = "forged.bearer.token-4444"


@pytest.mark.slow
def test_a_whole_flow_leaves_json_lines_without_secrets(mailbox):
    with running(
        LOG_LEVEL="DEBUG", SMTP_HOST="127.0.0.1", SMTP_PORT=str(mailbox.port), SMTP_STARTTLS="false"
    ) as service:
        secrets, request_ids = run_flow(service, mailbox)
        assert service.stop() == 0
        output, stdout = service.stderr(), service.stdout()
    assert stdout == ""
    lines = [json.loads(line) for line in output.splitlines()]  # every line is one JSON object
    for entry in lines:
        assert {"time", "level", "logger", "message"} <= entry.keys() and entry["time"].endswith("Z")
    for secret in secrets:
        assert secret not in output, f"a secret reached the log: {secret[:12]}…"
    access = [entry for entry in lines if entry["logger"] == "accounts.access"]
    assert {entry["requestId"] for entry in access} >= request_ids
    seen = {(entry["method"], entry["path"], entry["status"]) for entry in access}
    assert {
        ("POST", "/auth/login", 401),
        ("POST", "/auth/login", 200),
        ("POST", "/auth/refresh-tokens", 200),
        ("POST", "/auth/change-password", 204),
        ("POST", "/auth/reset-password", 204),
        ("GET", "/verify-email", 200),
        ("POST", "/auth/register", 422),
        ("POST", "/auth/send-verification-email", 401),
    } <= seen
    failed_login = next(e for e in access if e["path"] == "/auth/login" and e["status"] == 401)
    assert failed_login["level"] == "WARNING" and failed_login["durationMs"] >= 0
    assert all(entry["userId"] for entry in access if entry["path"] == "/auth/change-password")
    successful_login = next(e for e in access if e["path"] == "/auth/login" and e["status"] == 200)
    assert successful_login["userId"] and failed_login["userId"] is None


def run_flow(service, mailbox):
    """Register, verify, fail a login, log in, refresh, change and reset the password; returns what must not leak."""
    secrets, request_ids = (
        [PASSWORD, CHANGED_PASSWORD, RESET_PASSWORD, WRONG_PASSWORD, TOO_LONG_PASSWORD, FORGED_BEARER],
        set(),
    )

    def call(method, path, json=None, token=None):
        request_id = f"log-test-{len(request_ids)}"
        request_ids.add(request_id)
        headers = {"X-Request-ID": request_id}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        response = service.request(method, path, json=json, headers=headers)
        assert response.headers["X-Request-ID"] == request_id
        return response

    def keep_tokens(response):
        pair = response.json.get("tokens", response.json)
        secrets.extend([pair["access"]["token"], pair["refresh"]["token"]])
        return pair

    email = "mark@example.com"
    keep_tokens(call("POST", "/auth/register", {"name": "Mark Essien", "email": email, "password": PASSWORD}))
    assert (
        call("POST", "/auth/register", {"name": "Long", "email": "l@example.com", "password": TOO_LONG_PASSWORD}).code
        == 422
    )
    verify = link_token(wait_for_mail(mailbox, 1)[0], "verify-email")
    secrets.append(verify)
    assert call("GET", f"/verify-email?token={verify}").code == 200
    assert call("POST", "/auth/login", {"email": email, "password": WRONG_PASSWORD}).code == 401
    pair = keep_tokens(call("POST", "/auth/login", {"email": email, "password": PASSWORD}))
    pair = keep_tokens(call("POST", "/auth/refresh-tokens", {"refreshToken": pair["refresh"]["token"]}))
    change = {"email": email, "password": PASSWORD, "newPassword": CHANGED_PASSWORD}
    assert call("POST", "/auth/change-password", change, token=pair["access"]["token"]).code == 204
    assert call("POST", "/auth/send-verification-email", token=FORGED_BEARER).code == 401
    assert call("POST", "/auth/forgot-password", {"email": email}).code == 204
    reset = link_token(wait_for_mail(mailbox, 2)[1], "reset-password")
    secrets.append(reset)
    assert call("POST", f"/auth/reset-password?token={reset}", {"password": RESET_PASSWORD}).code == 204
    keep_tokens(call("POST", "/auth/login", {"email": email, "password": RESET_PASSWORD}))
    return secrets, request_ids


def test_formatter_writes_fields_and_exceptions_into_one_line():
    try:
        raise ValueError("boom\nsecond line")
    except ValueError:
        exc_info = sys.exc_info()
    record = logging.LogRecord("accounts.http", logging.ERROR, __file__, 1, "failed %s", ("twice\ninjected",), exc_info)
    record.fields = {"requestId": "abc", "message": "cannot replace the message"}
    line = JsonFormatter().format(record)
    assert "\n" not in line
    entry = json.loads(line)
    assert entry["level"] == "ERROR" and entry["logger"] == "accounts.http"
    assert entry["message"] == "failed twice\ninjected" and entry["requestId"] == "abc"
    assert entry["exception"].startswith("Traceback") and "ValueError: boom" in entry["exception"]
