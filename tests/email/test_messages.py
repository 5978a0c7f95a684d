"""What a person's mail client receives: read from a real SMTP server (in-process, and behind run.py)."""

import email.utils
import re
import time

import pytest

from services.email import duration
from tests.helpers import html_part, link_token, text_part
from tests.service_process import running, wait_for_mail


@pytest.fixture
def settings_env(smtp_env):
    # One minute for verify links, the default ten for reset links: both plurals are seen.
    return {
        **smtp_env,
        "APP_NAME": "Task Board",
        "EMAIL_FROM": "Accounts Robot <no-reply@mail.example.com>",
        "VERIFY_TOKEN_MINUTES": "1",
    }


def assert_trustworthy(message, subject: str, path: str, lifetime: str):
    """Headers a receiving server wants, the product's name, and the link visible in both parts."""
    assert message["From"] == "Task Board <no-reply@mail.example.com>"
    assert message["Subject"] == f"[Task Board] {subject}"
    assert re.fullmatch(r"<[^<>@\s]+@mail\.example\.com>", message["Message-ID"]), message["Message-ID"]
    sent = email.utils.parsedate_to_datetime(message["Date"])
    assert abs(sent.timestamp() - time.time()) < 120 and message["Date"].endswith("-0000")
    token = link_token(message, path)
    link = f"https://app.example.com/{path}?token={token}"
    text, page = (part.replace("\r\n", "\n") for part in (text_part(message), html_part(message)))
    assert link in text and f"expires in {lifetime}." in text and "Task Board" in text
    assert page.startswith('<!DOCTYPE html>\n<html lang="en">')
    assert f"<title>[Task Board] {subject}</title>" in page and page.rstrip().endswith("</html>")
    # The address itself is shown as text, not only hidden behind a button.
    assert f">{link}</a>" in page and f"expires in {lifetime}." in page
    return token


@pytest.mark.gen_test
async def test_verification_and_reset_emails_are_complete_messages(api, mailbox):
    await api.register(email="mark@example.com")
    await api.post("/auth/forgot-password", json={"email": "mark@example.com"})
    verify, reset = await mailbox.wait_for(2)
    assert_trustworthy(verify, "Verify your email address", "verify-email", "1 minute")
    assert_trustworthy(reset, "Reset your password", "reset-password", "10 minutes")
    assert verify["Message-ID"] != reset["Message-ID"]
    assert verify.get_content_type() == "multipart/alternative"


def test_lifetimes_read_as_people_say_them():
    assert [duration(m) for m in (1, 2, 10, 59, 60, 61, 90, 120, 1440, 1500, 2880)] == [
        "1 minute",
        "2 minutes",
        "10 minutes",
        "59 minutes",
        "1 hour",
        "1 hour 1 minute",
        "1 hour 30 minutes",
        "2 hours",
        "1 day",
        "25 hours",
        "2 days",
    ]


@pytest.mark.slow
def test_links_follow_the_port_given_on_the_command_line(mailbox):
    # No APP_URL: the default must be built from --port, not from PORT's default of 8000.
    with running(SMTP_HOST="127.0.0.1", SMTP_PORT=str(mailbox.port), SMTP_STARTTLS="false") as service:
        registered = service.request(
            "POST",
            "/auth/register",
            json={"name": "Mark Essien", "email": "mark@example.com", "password": "correct horse battery"},
        )
        assert registered.code == 201, registered
        (message,) = wait_for_mail(mailbox, 1)
        assert f"http://localhost:{service.port}/verify-email?token=" in text_part(message)
        assert message["From"] == "Accounts <no-reply@localhost>"
        assert message["Message-ID"].endswith("@localhost>")
