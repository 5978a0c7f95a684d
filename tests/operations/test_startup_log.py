"""What run.py says when it starts, in either log format, and what every email leaves in the log."""

import json

import pytest

from tests.helpers import PASSWORD, free_port
from tests.service_process import run_py, running, wait_for, wait_for_mail
from version import __version__

pytestmark = pytest.mark.slow  # every test starts run.py

DATABASE_PASSWORD = "db-pass-7f3k9"


def summary(output: str) -> list:
    """The messages before the first request: the start-up lines."""
    return [json.loads(line)["message"] for line in output.splitlines()]


def test_json_start_up_lines_say_what_runs_and_where_and_never_the_database_password(mailbox):
    mongo_port = free_port()
    mongo = f"mongodb://admin:{DATABASE_PASSWORD}@127.0.0.1:{mongo_port}/?authSource=admin"
    env = {
        "MONGODB_URI": mongo,
        "MONGODB_DB": "accounts_startup",
        "MONGODB_TIMEOUT_MS": "300",
        "APP_URL": "https://accounts.example.com",
        "SMTP_HOST": "127.0.0.1",
        "SMTP_PORT": str(mailbox.port),
        "SMTP_STARTTLS": "false",
    }
    with running(**env) as service:
        output = service.stderr()
        port = service.port
    lines = [json.loads(line) for line in output.splitlines()]  # JSON is the default
    messages = [line["message"] for line in lines]
    assert messages[:7] == [
        f"accounts service {__version__} starting (pid {service.pid})",
        f"listening on http://localhost:{port} (port {port} on every interface)",
        "APP_URL (links in emails, cookies, CSRF origin): https://accounts.example.com",
        "API documentation: https://accounts.example.com/docs",
        f"store: using MongoDB from MONGODB_URI, database accounts_startup, at 127.0.0.1:{mongo_port}",
        f"email: sent through SMTP at 127.0.0.1:{mailbox.port}",
        'CLIENT_URL is unset: the pages\' "back to the app" and "sign in" links have nowhere to go; set it to '
        "the web app's address",
    ]
    assert lines[0]["version"] == __version__ and lines[1]["url"] == f"http://localhost:{port}"
    assert lines[6]["level"] == "WARNING"
    assert DATABASE_PASSWORD not in output and "admin:" not in output


def test_text_start_up_lines_for_a_terminal_with_the_embedded_store_and_no_smtp():
    with running(LOG_FORMAT="text", CLIENT_URL="https://app.example.com") as service:
        output = service.stderr()
    lines = output.splitlines()
    assert lines[0].endswith(
        f" INFO accounts: accounts service {__version__} starting (pid {service.pid}) version={__version__}"
    )
    assert lines[0][:4].isdigit() and lines[0][23] == "Z"  # an ISO time first
    assert f"INFO accounts: listening on http://localhost:{service.port} " in lines[1]
    assert "WARNING accounts: store: no MONGODB_URI: using the embedded in-memory MongoDB stand-in" in lines[4]
    assert "WARNING accounts: email: no SMTP_HOST: every email is written to the log instead of being sent" in lines[5]
    assert "CLIENT_URL is unset" not in output
    assert not any(line.startswith("{") for line in lines)


def test_a_bad_log_format_is_one_line_and_exit_code_2():
    result = run_py(LOG_FORMAT="xml")
    assert result.returncode == 2
    assert result.stderr == "error: LOG_FORMAT must be one of json, text, got 'xml'\n"


def test_every_email_is_logged_masked_with_its_message_id_sent_or_held_back(mailbox):
    email = "tess.ochoa@example.com"
    with running(
        SMTP_HOST="127.0.0.1", SMTP_PORT=str(mailbox.port), SMTP_STARTTLS="false", EMAILS_PER_ADDRESS_PER_HOUR="1"
    ) as service:
        assert (
            service.request(
                "POST", "/auth/register", json={"name": "Tess Ochoa", "email": email, "password": PASSWORD}
            ).code
            == 201
        )
        [verification] = wait_for_mail(mailbox, 1)
        message_id = verification["Message-ID"].strip()
        # The second email this hour is held back by EMAILS_PER_ADDRESS_PER_HOUR; the call still says 204.
        assert service.request("POST", "/auth/forgot-password", json={"email": email}).code == 204
        wait_for(lambda: "email held back" in service.stderr())  # decided after the answer
        assert service.stop() == 0
        output = service.stderr()
    assert len(mailbox.messages) == 1
    entries = [json.loads(line) for line in output.splitlines()]
    sent = [e for e in entries if e["message"].startswith("email sent")]
    held = [e for e in entries if e["message"].startswith("email held back")]
    assert [(e["level"], e["kind"], e["to"], e["messageId"]) for e in sent] == [
        ("INFO", "verification", "t***@example.com", message_id)
    ]
    assert sent[0]["message"] == f"email sent: verification to t***@example.com, {message_id}"
    assert [(e["level"], e["kind"], e["to"], e["message"]) for e in held] == [
        (
            "INFO",
            "reset",
            "t***@example.com",
            "email held back: reset to t***@example.com, EMAILS_PER_ADDRESS_PER_HOUR (1) reached this hour",
        )
    ]
    assert email not in output and "tess.ochoa" not in output


def test_without_smtp_the_log_holds_the_email_with_the_address_masked():
    email = "walt.ng@example.com"
    with running() as service:
        assert (
            service.request(
                "POST", "/auth/register", json={"name": "Walt Ng", "email": email, "password": PASSWORD}
            ).code
            == 201
        )
        wait_for(lambda: "email sent" in service.stderr())
        assert service.stop() == 0
        output = service.stderr()
    entries = [json.loads(line) for line in output.splitlines()]
    written = [e for e in entries if e["message"].startswith("email (no SMTP_HOST set, not sent)")]
    assert len(written) == 1 and "to=w***@example.com subject=" in written[0]["message"]
    assert "/verify-email?token=" in written[0]["message"]  # what a developer needs from it
    [sent] = [e for e in entries if e["message"].startswith("email sent")]
    assert sent["message"].endswith("(no SMTP_HOST: written to the log, not sent)") and sent["messageId"]
    assert email not in output
