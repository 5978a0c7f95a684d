"""Account notices: after a password change (change-password, an update with `password`, a reset),
two-factor on or off, and an email change, the account's verified address is told; every email is
Auto-Submitted and answers go to SUPPORT_EMAIL. Read from a real SMTP server."""

import asyncio

import pytest
from bson import ObjectId

from services.counters import digest
from settings import Settings, SettingsError
from tests.account_security_fixtures import SUPPORT, mail_to, sentinel, verified_account
from tests.attack_helpers import mail_settled
from tests.helpers import PASSWORD, html_part, link_token, sign_up, text_part
from tests.users_fixtures import make_admin

NEW_PASSWORD = "a brand new password"
PASSWORD_SUBJECT = "[Accounts] Your password was changed"


@pytest.fixture
def settings_env(smtp_env):
    return {**smtp_env, "SUPPORT_EMAIL": SUPPORT}


def assert_notice(message, subject: str, *says: str) -> None:
    """A notice: its subject, the words, the support contact and a way forward, in both parts; robot headers."""
    assert message["Subject"] == subject
    assert message["Auto-Submitted"] == "auto-generated" and message["Reply-To"] == SUPPORT
    text, page = text_part(message), html_part(message)
    for words in (*says, f"Questions? Write to {SUPPORT}.", "https://app.example.com/forgot-password"):
        assert words in text and words in page.replace("&#x27;", "'"), words
    assert PASSWORD not in text and NEW_PASSWORD not in text


async def change_password(api, account, email="ada@example.com", password=PASSWORD):
    response = await api.post(
        "/auth/change-password",
        token=account.token,
        json={"email": email, "password": password, "newPassword": NEW_PASSWORD},
    )
    assert response.code == 204, response


@pytest.mark.gen_test(timeout=30)
async def test_every_email_is_auto_submitted_and_answered_to_support(api, mailbox):
    await sign_up(api)
    (verification,) = await mail_to(mailbox, "ada@example.com", 1)
    assert verification["Auto-Submitted"] == "auto-generated"  # RFC 3834: no vacation replies to a robot
    assert verification["Reply-To"] == SUPPORT and verification["From"] == "Accounts <accounts@example.com>"


class TestWithoutSupportEmail:
    @pytest.fixture
    def settings_env(self, smtp_env):
        return smtp_env

    @pytest.mark.gen_test(timeout=30)
    async def test_no_reply_to_and_the_notice_names_no_contact(self, api, mailbox):
        ada = await verified_account(api, mailbox)
        await change_password(api, ada)
        _, notice = await mail_to(mailbox, "ada@example.com", 2)
        assert notice["Subject"] == PASSWORD_SUBJECT and notice["Auto-Submitted"] == "auto-generated"
        assert notice["Reply-To"] is None
        assert (
            text_part(notice)
            .replace("\r\n", "\n")
            .endswith("If it was not, choose a new password at once with the link above.\n\n-- \nAccounts\n")
        )


@pytest.mark.gen_test(timeout=30)
async def test_change_password_tells_the_verified_address(api, mailbox, services, store):
    ada = await verified_account(api, mailbox)
    await change_password(api, ada)
    _, notice = await mail_to(mailbox, "ada@example.com", 2)
    assert_notice(
        notice,
        PASSWORD_SUBJECT,
        "Hello Ada,",
        "The password of your Accounts account was just changed.",
        "If it was not, choose a new password at once",
    )
    assert notice["To"] == "ada@example.com"
    # Delivered, the body is not kept; the record says what was sent to whom (once the sender has written it).
    await mail_settled(services)
    assert (
        await store.outbox.count_documents({"to": "ada@example.com", "subject": PASSWORD_SUBJECT, "status": "sent"})
        == 1
    )


@pytest.mark.gen_test(timeout=30)
async def test_an_update_with_a_password_tells_the_address_whoever_made_it(api, services, mailbox):
    ada = await verified_account(api, mailbox)
    response = await api.patch(
        f"/users/{ada.id}", token=ada.token, json={"password": NEW_PASSWORD, "currentPassword": PASSWORD}
    )
    assert response.code == 200, response
    _, notice = await mail_to(mailbox, "ada@example.com", 2)
    assert_notice(notice, PASSWORD_SUBJECT, "was just changed")
    admin = await make_admin(api, services)
    response = await api.put(f"/users/{ada.id}", token=admin.token, json={"password": "the admin's choice"})
    assert response.code == 200, response
    _, _, notice = await mail_to(mailbox, "ada@example.com", 3)
    assert_notice(notice, PASSWORD_SUBJECT, "was just changed")
    # A name change is no password change: no notice.
    assert (await api.put(f"/users/{ada.id}", token=admin.token, json={"name": "Ada King"})).code == 200
    await sentinel(api, mailbox, 5)  # Ada's 3, the admin's verification email, the sentinel's


@pytest.mark.gen_test(timeout=30)
async def test_an_email_change_with_a_new_password_says_both_in_one_notice(api, services, mailbox):
    ada = await verified_account(api, mailbox)
    response = await api.patch(
        f"/users/{ada.id}",
        token=ada.token,
        json={"email": "ada2@example.com", "password": NEW_PASSWORD, "currentPassword": PASSWORD},
    )
    assert response.code == 200, response
    _, notice = await mail_to(mailbox, "ada@example.com", 2)
    assert notice["Subject"] == "[Accounts] The email address of your account was changed"
    assert "changed to a***@example.com. Its password was changed too." in text_part(notice)
    # An email change alone says nothing of the password (an admin's, to the address now verified).
    grace = await verified_account(api, mailbox, email="grace@example.com", name="Grace Hopper")
    admin = await make_admin(api, services)
    assert (await api.patch(f"/users/{grace.id}", token=admin.token, json={"email": "g2@example.com"})).code == 200
    _, notice = await mail_to(mailbox, "grace@example.com", 2)
    assert "changed to g***@example.com. If you did not do this" in text_part(notice)
    assert "password" not in text_part(notice).split("If you did not")[0]


@pytest.mark.gen_test(timeout=30)
async def test_a_reset_tells_the_address(api, mailbox):
    await verified_account(api, mailbox)
    assert (await api.post("/auth/forgot-password", json={"email": "ada@example.com"})).code == 204
    _, reset = await mail_to(mailbox, "ada@example.com", 2)
    response = await api.post(
        f"/auth/reset-password?token={link_token(reset, 'reset-password')}", json={"password": NEW_PASSWORD}
    )
    assert response.code == 204, response
    _, _, notice = await mail_to(mailbox, "ada@example.com", 3)
    assert_notice(notice, PASSWORD_SUBJECT, "was just changed")


@pytest.mark.gen_test(timeout=30)
async def test_an_unverified_address_gets_no_notice(api, mailbox, store):
    # Anyone can sign up with anyone's address: mail nobody asked for must not follow (CWE-451).
    ada = await sign_up(api)
    await mail_to(mailbox, "ada@example.com", 1)  # the verification email, which asks to prove it
    await change_password(api, ada)
    assert (
        await api.patch(
            f"/users/{ada.id}", token=ada.token, json={"email": "ada2@example.com", "currentPassword": NEW_PASSWORD}
        )
    ).code == 200
    await sentinel(api, mailbox, 2)
    assert await store.outbox.count_documents({"to": "ada@example.com"}) == 1
    assert await store.tokens.count_documents({"type": "email_change_undo"}) == 0


@pytest.mark.gen_test(timeout=30)
async def test_two_factor_on_and_off_tell_the_verified_address(api, services, mailbox, store):
    # No HTTP operation turns two-factor on or off on this branch yet: the notice the two-factor code calls is
    # called here as that code will, with the stored user.
    await verified_account(api, mailbox)
    ada = await store.users.find_one({"email": "ada@example.com"})
    await services.outbox.two_factor_notice(ada, True)
    await services.outbox.two_factor_notice(ada, False)
    _, on, off = await mail_to(mailbox, "ada@example.com", 3)
    assert_notice(
        on,
        "[Accounts] Two-factor sign-in was turned on",
        "Two-factor sign-in was just turned on for your Accounts account.",
    )
    assert_notice(
        off,
        "[Accounts] Two-factor sign-in was turned off",
        "Two-factor sign-in was just turned off for your Accounts account.",
    )
    await services.outbox.two_factor_notice({**ada, "isEmailVerified": False}, False)
    await sentinel(api, mailbox, 4)


async def counted(store, count: int, address: str = "ada@example.com") -> dict:
    """An address's send count this hour, once forgot-password's work after the answer has counted `count`."""
    key = f"{digest('email', address)}:"
    for _ in range(500):
        found = [doc async for doc in store.send_counts.find({}) if doc["_id"].startswith(key)]
        if found and found[0]["count"] >= count:
            assert len(found) == 1 and found[0]["count"] == count, found
            return found[0]
        await asyncio.sleep(0.02)
    raise AssertionError(f"the send count never reached {count}")


class TestTheBudgetCannotSilenceANotice:
    @pytest.fixture
    def settings_env(self, smtp_env):
        return {**smtp_env, "SUPPORT_EMAIL": SUPPORT, "EMAILS_PER_ADDRESS_PER_HOUR": "2"}

    @pytest.mark.gen_test(timeout=60)
    async def test_a_thief_fills_the_budget_then_changes_password_and_email(self, api, mailbox, store):
        ada = await verified_account(api, mailbox)  # the verification email: 1 of 2 this hour
        # The thief, holding Ada's token and password, first spends the address's budget...
        for _ in range(6):
            assert (await api.post("/auth/forgot-password", json={"email": "ada@example.com"})).code == 204
        budget = await counted(store, 7)  # past the cap of 2: no reset or verify email goes to Ada this hour
        await mail_to(mailbox, "ada@example.com", 2)
        # ...then takes the account: both notices still go out, and neither spends the budget.
        await change_password(api, ada)
        response = await api.patch(
            f"/users/{ada.id}", token=ada.token, json={"email": "thief@example.com", "currentPassword": NEW_PASSWORD}
        )
        assert response.code == 200, response
        _, _, password_notice, email_notice = await mail_to(mailbox, "ada@example.com", 4)
        assert_notice(password_notice, PASSWORD_SUBJECT, "was just changed")
        assert email_notice["Subject"] == "[Accounts] The email address of your account was changed"
        assert "https://app.example.com/email-change/undo?token=" in text_part(email_notice)
        assert (await store.send_counts.find_one({"_id": budget["_id"]}))["count"] == 7
        # And the budget still holds for the links anyone may ask for.
        for _ in range(3):
            assert (await api.post("/auth/forgot-password", json={"email": "thief@example.com"})).code == 204
        await counted(store, 3, "thief@example.com")
        await sentinel(api, mailbox, 7)  # Ada's 4, two resets to the new address, the sentinel's


@pytest.mark.gen_test(timeout=30)
async def test_a_name_with_cr_lf_injects_no_header_and_no_recipient(api, mailbox, store):
    # The schemas refuse control characters in names; this one was stored before they did (or by hand).
    ada = await verified_account(api, mailbox)
    crafted = "Eve\r\nBcc: thief@evil.example\r\nSubject: Ignore this\r\n\r\nCall us"
    await store.users.update_one({"_id": ObjectId(ada.id)}, {"$set": {"firstName": crafted, "name": crafted}})
    await change_password(api, ada)
    _, notice = await mail_to(mailbox, "ada@example.com", 2)
    assert mailbox.recipients[-1] == ["ada@example.com"]  # the envelope: nobody else
    assert notice.get_all("Bcc") is None and notice.get_all("Subject") == [PASSWORD_SUBJECT]
    assert notice.get_all("To") == ["ada@example.com"]
    assert "thief@evil.example" in text_part(notice)  # only as text in the body, where it is harmless
    assert "Bcc: thief@evil.example" in html_part(notice)


def test_support_email_is_a_plain_address():
    assert Settings.from_env({"SUPPORT_EMAIL": SUPPORT}).support_email == SUPPORT
    for bad in ("help@example.com\r\nBcc: x@evil.example", "Help <help@example.com>", "not an address"):
        with pytest.raises(SettingsError) as caught:
            Settings.from_env({"SUPPORT_EMAIL": bad})
        assert str(caught.value).startswith("SUPPORT_EMAIL")
    assert Settings.from_env({}).email_change_undo_days == 7
    for bad in ("0", "91", "a week"):
        with pytest.raises(SettingsError):
            Settings.from_env({"EMAIL_CHANGE_UNDO_DAYS": bad})


@pytest.mark.gen_test(timeout=30)
async def test_the_notices_word_for_word(api, services, mailbox, store):
    # What a person reads is the feature: each notice whole, the buttons of its HTML part too.
    ada = await verified_account(api, mailbox)
    await change_password(api, ada)
    user = await store.users.find_one({"email": "ada@example.com"})
    await services.outbox.two_factor_notice(user, True)
    response = await api.patch(
        f"/users/{ada.id}", token=ada.token, json={"email": "thief@example.com", "currentPassword": NEW_PASSWORD}
    )
    assert response.code == 200, response
    _, password, two_factor, email = await mail_to(mailbox, "ada@example.com", 4)
    contact = f"Questions? Write to {SUPPORT}.\n\n-- \nAccounts\n"
    assert words(password) == (
        "Hello Ada,\n\nThe password of your Accounts account was just changed.\n\n"
        "https://app.example.com/forgot-password\n\nIf it was you, there is nothing to do. If it was not, choose "
        f"a new password at once with the link above. {contact}"
    )
    assert words(two_factor) == (
        "Hello Ada,\n\nTwo-factor sign-in was just turned on for your Accounts account.\n\n"
        "https://app.example.com/forgot-password\n\nIf it was you, there is nothing to do. If it was not, someone "
        f"else can sign in to your account: choose a new password at once with the link above. {contact}"
    )
    token = link_token(email, "email-change/undo")
    assert words(email) == (
        "Hello Ada,\n\nThe email address of your Accounts account was changed to t***@example.com. If you did "
        "not do this, put your address back with this link: every device signed in to the account will be signed "
        "out, and we will email you a link to choose a new password.\n\n"
        f"https://app.example.com/email-change/undo?token={token}\n\nThe link works once and expires in 7 days. "
        f"If it was you, there is nothing to do. {contact}"
    )
    for message, button in (
        (password, "Choose a new password"),
        (two_factor, "Choose a new password"),
        (email, "Put my address back"),
    ):
        assert f'font-weight:bold">{button}</a>' in html_part(message)


def words(message) -> str:
    return text_part(message).replace("\r\n", "\n")
