"""The pages a person sees: the links in emails (GET /verify-email, GET and POST /reset-password and
/email-change/undo), the forms that send a new link (/verify-email/resend, /forgot-password), and the
service's home page (/).

Plain server-rendered HTML for a person on a phone; the JSON API under /auth does the same work for
apps. Every form is protected by Tornado's xsrf cookie, checked here only: the JSON API authenticates
with bearer tokens and must not need a cookie. After a form is sent the answer is a redirect to a
page (Post/Redirect/Get), so a reload or Back never sends it again. docs/using/pages.md tells the states.
"""

import logging
import os
import re
from urllib.parse import quote, unquote

from tornado import httputil
from tornado.web import HTTPError

from handlers.base import BaseHandler, NotFoundHandler
from handlers.documented import HOME, HTML, RESET_FORM, VERIFY_FORM, _json, new_link_form, operation, page
from models.schemas import auth as schemas
from services import auth as auth_service
from services.database import is_unavailable
from services.email import duration, plural
from services.errors import ApiError
from services.sessions import hash_token
from services.validation import is_plain_address, validate, validator_for

log = logging.getLogger("accounts.pages")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TEMPLATES = os.path.join(ROOT, "templates")
FORMS_SCRIPT = os.path.join(ROOT, "static", "pages", "forms.js")

# Scripts and forms from this origin only, inline styles, no framing (CWE-79, CWE-1021).
PAGE_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'unsafe-inline'; form-action 'self'; "
    "base-uri 'none'; frame-ancestors 'none'"
)

# The shape of what services.sessions issues (secrets.token_urlsafe); anything else is refused unread (CWE-20).
_TOKEN = re.compile(rb"[A-Za-z0-9_-]{16,256}")

FORM_MEDIA_TYPE = "application/x-www-form-urlencoded"

# The address a new-link form was just sent with, for its "check your email" page (NewLinkPage).
SENT_TO = "sent_to"
SENT_TO_SECONDS = 900

# What people read when a check fails; forms.js shows the same words before the form is sent.
MESSAGES = {
    "password_short": "Use at least 8 characters.",
    "password_long": "This password is too long: use at most 72 characters, or fewer if it has accented "
    "letters, symbols or emoji.",
    "confirm_differs": "The two passwords are not the same. Type the new password again.",
    "email_missing": "Enter your email address.",
    "email_invalid": "Enter an email address like name@example.com.",
}


def xsrf_cookie_kwargs(config) -> dict:
    """Flags of the _xsrf cookie: hidden from scripts, never sent by cross-site POSTs, HTTPS-only when served so."""
    # CWE-1004 (HttpOnly), CWE-1275 (SameSite), CWE-614 (Secure). Lax, not Strict: a link opened from a
    # webmail must carry the cookie, or the page could not recognise the browser that already used it.
    return {"httponly": True, "samesite": "Lax", "secure": config.app_url.startswith("https://")}


class PageHandler(BaseHandler):
    """HTML pages: their own CSP, the token from a link, the forms and the outcome pages."""

    public = True
    # What a form refused by the xsrf check says, and where it offers to start again.
    form_expired_text = "Open the page again and send the form once more."

    @property
    def form_expired_retry(self) -> str | None:
        return self.request.path

    def set_default_headers(self) -> None:
        super().set_default_headers()  # Referrer-Policy: no-referrer keeps the token out of Referer (CWE-598)
        self.set_header("Content-Security-Policy", PAGE_CSP)

    def write_error(self, status_code: int, **kwargs) -> None:
        """A person never meets JSON for the server's own failures: MongoDB unreachable, shutting down or a bug
        is a page too. A client error (a malformed, oversized or non-form body: no person sends one) keeps the
        envelope."""
        error = kwargs.get("exc_info", (None, None, None))[1]
        status = getattr(error, "status", getattr(error, "status_code", status_code))
        unavailable = error is not None and is_unavailable(error)
        if status < 500 and not unavailable:
            return super().write_error(status_code, **kwargs)
        if unavailable or status == 503 or self.application.shutting_down:
            return self.message(
                "This page is not available right now", "Nothing was changed. Please try again in a minute.", 503
            )
        self.message("Something went wrong on our side", "Please try again in a minute.", 500)

    def show(self, template: str, status: int = 200, **values) -> None:
        self.set_status(status)
        config = self.config
        values = {
            "next_step": None,
            "retry_url": None,
            "retry_text": "Open the form again",
            "lead": None,
            "sign_in": None,
            "links": (),
            **values,
        }
        self.render(template, app_name=config.app_name, client_url=config.client_url, messages=MESSAGES, **values)

    def message(self, title: str, text: str, status: int = 200, **values) -> None:
        self.show("message.html", status, title=title, text=text, **values)

    def password_changed(self) -> None:
        self.message(
            "Your password has been changed",
            "Sign in with your new password. Every device that was signed in has been signed out.",
            next_step=f"Sign in to {self.config.app_name}",
        )

    def address_restored(self) -> None:
        app_name = self.config.app_name
        self.message(
            "Your old email address is back",
            f"Every device that was signed in to your {app_name} account has been signed out. We have "
            "emailed a link to choose a new password to your address: use it soon, it works for "
            f"{duration(self.config.reset_token_minutes)}.",
            links=[("/forgot-password", "Ask for a new password link")],
        )

    def see_other(self, url: str) -> None:
        """303 to the page that shows the outcome: reloading it or going Back never re-sends the form."""
        self.redirect(url, status=303)

    @staticmethod
    def well_formed(values: list | None) -> str | None:
        """The token when exactly one well-formed value was given, else None."""
        if not values or len(values) != 1 or not _TOKEN.fullmatch(values[0]):
            return None
        return values[0].decode("ascii")

    def link_token(self) -> str | None:
        return self.well_formed(self.request.query_arguments.get("token"))

    def browser(self) -> str | None:
        """A hash naming this browser: its _xsrf cookie, which is HttpOnly and set once per browser."""
        cookie = self.get_cookie("_xsrf")
        return hash_token(cookie) if cookie else None

    def read_form(self) -> dict | None:
        """The url-encoded body as name -> [bytes], xsrf checked; None (answered with 403) if the check fails."""
        raw = self.raw_body()  # 413 past MAX_BODY_BYTES (CWE-400)
        if self.media_type() != FORM_MEDIA_TYPE:
            raise ApiError(415, f"Content-Type must be {FORM_MEDIA_TYPE}")
        form = {}
        try:
            httputil.parse_body_arguments(FORM_MEDIA_TYPE, raw, form, {})
        except httputil.HTTPInputError:
            raise ApiError(400, "Malformed form body") from None
        for name, values in form.items():
            self.request.arguments.setdefault(name, []).extend(values)
        try:
            self.check_xsrf_cookie()  # a form posted from another site, or without our cookie (CWE-352)
        except HTTPError as error:
            log.warning("form refused request_id=%s: %s", self.request_id, error.log_message)
            self.message("This form has expired", self.form_expired_text, 403, retry_url=self.form_expired_retry)
            return None
        return form

    @staticmethod
    def field(form: dict, name: str) -> str:
        """One text field exactly as typed: no trimming, no rewriting (passwords keep every character)."""
        values = form.get(name) or [b""]
        try:
            return values[0].decode("utf-8")
        except UnicodeDecodeError:
            # Tornado's decode_argument would put the bytes in its log message (CWE-532).
            raise ApiError(400, "Malformed form body") from None


class NewLinkPage(PageHandler):
    """A form asking for an email address, then the same "check your email" answer whether or not it
    has an account (no account probing, CWE-204). Subclasses name the page and the Auth operation."""

    heading = ""
    intro = ""
    operation = ""  # the services.auth.Auth method that queues the link, given the typed address
    lifetime_setting = ""  # the Settings attribute of that link's lifetime in minutes
    what = ""  # what the email holds, for the "check your email" page; {address} is the typed address

    def get(self) -> None:
        if self.get_query_argument("sent", None) is not None:
            lifetime = duration(getattr(self.config, self.lifetime_setting))
            sent_to = self.sent_to()
            # The typed address, shown back so a typo is seen; said alike whether or not it has an account.
            what = self.what.format(address=sent_to or "that address")
            return self.message(
                "Check your email",
                f"If a {self.config.app_name} account {what} is on its way. "
                f"It works once, for {lifetime}. It can take a few minutes to arrive; look in your "
                "spam folder too.",
                retry_url=self.request.path,
                retry_text="Wrong address? Enter it again",
            )
        self.show_form()

    def sent_to(self) -> str | None:
        """The address this browser just sent the form with (its SENT_TO cookie), if it is one."""
        raw = self.get_cookie(SENT_TO)
        address = unquote(raw) if raw else None
        return address if address and not email_problem(address) else None

    async def post(self) -> None:
        form = self.read_form()
        if form is None:
            return
        email = self.field(form, "email").strip()
        problem = email_problem(email)
        if problem:
            return self.show_form(email, problem, 422)
        # Past EMAILS_PER_ADDRESS_PER_HOUR the operation sends nothing, and this answer stays the same.
        await getattr(self.services.auth, self.operation)(email)
        # The address rides to the "check your email" page in a cookie of this page's path, not in the URL:
        # a URL keeps it in the history of a shared computer. HttpOnly, Lax, short-lived (CWE-359).
        self.set_cookie(
            SENT_TO,
            quote(email),
            path=self.request.path,
            expires_days=None,
            max_age=SENT_TO_SECONDS,
            httponly=True,
            samesite="Lax",
            secure=self.config.app_url.startswith("https://"),
        )
        self.see_other(f"{self.request.path}?sent=1")

    def show_form(self, email: str = "", error: str | None = None, status: int = 200) -> None:
        self.show(
            "new_link.html",
            status,
            title=self.heading,
            intro=self.intro,
            action=self.request.path,
            email=email,
            error=error,
        )


def email_problem(email: str) -> str | None:
    """Why a typed address cannot be one, by the API's own rule (email-validator: `hedy@example` has no dot
    in its domain, so no mail could reach it), or None."""
    if not email:
        return MESSAGES["email_missing"]
    if len(email) > 254 or not is_plain_address(email):
        return MESSAGES["email_invalid"]
    return None


class LinkPage(PageHandler):
    """A page opened from a link in an email, whose form posts the link's token back."""

    new_link_path = ""  # where a new link is asked for

    @property
    def form_expired_retry(self) -> str | None:
        """The link's page again (it sets a fresh xsrf cookie), from the posted token; else the new-link form."""
        token = self.well_formed(self.request.arguments.get("token"))
        return f"{self.request.path}?token={token}" if token else self.new_link_path

    async def post(self) -> None:
        """The posted form, xsrf checked, and its token; a missing or malformed token is a dead link."""
        form = self.read_form()
        if form is None:
            return  # answered: the form has expired (403)
        token = self.well_formed(form.get("token"))
        if token is None:
            return self.dead_link()
        await self.use_link(form, token)

    async def use_link(self, form: dict, token: str) -> None:
        """What the posted form does with a well-formed token."""
        raise NotImplementedError

    def dead_link(self) -> None:
        raise NotImplementedError

    def show_dead_link(self, title: str, lifetime_minutes: int, account: str, new_link_url: str) -> None:
        """400: why the link cannot be used, and the form that sends a new one."""
        self.show(
            "new_link.html",
            400,
            title=title,
            intro=f"Links in our emails work once and expire after {duration(lifetime_minutes)}. "
            f"Enter the address of {account} and we will send a new link.",
            action=new_link_url,
            email="",
            error=None,
        )


class VerifyEmailPage(LinkPage):
    """GET checks the link without using it and shows a "Confirm my email address" button (mail scanners open
    every link: verifying on GET would verify squatted addresses, CWE-352/CWE-285); POST verifies and redirects
    to /verify-email/done."""

    openapi = {
        "get": page(
            "The verify-email link: checked (not used up) on opening, as mail scanners open links; "
            'a "Confirm my email address" button, or already verified, or a new-link form',
            {
                200: 'The confirm button; or "already verified"',
                400: "Unknown or expired link: the page offers the form for a new link",
            },
        ),
        "post": page(
            "The confirm button's submission: verifies",
            {
                303: "Verified (also for a second click): to /verify-email/done",
                400: "Invalid or expired link: the form for a new link",
                403: "Missing or wrong xsrf token",
            },
            query_token=False,
            form=VERIFY_FORM,
        ),
    }

    form_expired_text = "Open the link in the email again to confirm your address."
    new_link_path = "/verify-email/resend"

    async def get(self) -> None:
        token = self.link_token()
        state = auth_service.DEAD if token is None else await self.services.auth.verify_link_state(token)
        if state == auth_service.USABLE:
            return self.show("verify_email.html", title="Confirm your email address", token=token)
        if state == auth_service.ALREADY:
            # An earlier confirmation (a tap in another browser, say) did the work already.
            app_name = self.config.app_name
            return self.message(
                "Your email address is already verified",
                f"This link was used before and your address is confirmed. There is nothing "
                f"more to do: you can use your {app_name} account.",
                next_step=f"Go to {app_name}",
            )
        self.dead_link()

    async def use_link(self, form: dict, token: str) -> None:
        if await self.services.auth.open_verify_link(token) == auth_service.DEAD:
            return self.dead_link()
        self.see_other("/verify-email/done")  # DONE, or ALREADY for a second click of the button

    def dead_link(self) -> None:
        self.show_dead_link(
            "This verification link has expired or is not valid",
            self.config.verify_token_minutes,
            f"your {self.config.app_name} account",
            "/verify-email/resend",
        )


class EmailVerifiedPage(PageHandler):
    """GET /verify-email/done, where the confirm form redirects: no token, the same text to anyone."""

    openapi = {
        "get": page('"Your email address is verified"', {200: "The page"}, query_token=False),
    }

    def get(self) -> None:
        app_name = self.config.app_name
        self.message(
            "Your email address is verified",
            f"Thank you. Your {app_name} account is ready.",
            next_step=f"Go to {app_name}",
        )


class ResendVerificationPage(NewLinkPage):
    """GET /verify-email/resend: the form; POST: a new verify link if the address has an unverified account."""

    openapi = new_link_form("verify-email", "if the address has an unverified account")

    heading = "Get a new verification link"
    intro = "Enter the address of your account and we will send a new link to confirm it."
    operation = "resend_verification"
    lifetime_setting = "verify_token_minutes"
    what = "with {address} still needs verifying, a new link"


class ForgotPasswordPage(NewLinkPage):
    """GET /forgot-password: the form; POST: a reset link if the address has an account."""

    openapi = new_link_form("reset-password", "if the address has an account")

    heading = "Reset your password"
    intro = "Enter the address of your account and we will email you a link to choose a new password."
    operation = "forgot_password"
    lifetime_setting = "reset_token_minutes"
    what = "uses {address}, a link to choose a new password"


class ResetPasswordPage(LinkPage):
    """GET checks the link without using it (mail scanners open links) and shows the form, or says why
    not; POST sets the password and redirects to /reset-password/done."""

    openapi = {
        "get": page(
            "The reset-password link: checked (not used up) on opening; the form, or why not",
            {
                200: 'The form; or, in the browser that already used this link, "password changed"',
                400: "Used, expired or unknown link: the page offers the form for a new link",
            },
        ),
        "post": page(
            "The form's submission: sets the password",
            {
                303: "Changed (also for a repeat of a submission that already worked): to /reset-password/done",
                400: "Invalid or used link",
                403: "Missing or wrong xsrf token",
                422: "The form again, with the problem",
            },
            query_token=False,
            form=RESET_FORM,
        ),
    }

    form_expired_text = "Open the link in the email again to choose a new password."
    new_link_path = "/forgot-password"

    async def get(self) -> None:
        token = self.link_token()
        state, email = (
            (auth_service.DEAD, None) if token is None else await self.services.auth.reset_link(token, self.browser())
        )
        if state == auth_service.USABLE:
            return self.show_form(token, email)
        if state == auth_service.DONE:  # Back after success, in the browser that used the link
            return self.password_changed()
        if state == auth_service.USED:  # used on another device: most likely by this same person
            return self.used_link()
        self.dead_link()

    async def use_link(self, form: dict, token: str) -> None:
        password, confirm = self.field(form, "password"), self.field(form, "confirm")
        problem = password_problem(password)
        mismatch = None if problem or password == confirm else MESSAGES["confirm_differs"]
        if problem or mismatch:
            # The form again, naming its account as the first one did (a password manager needs it).
            state, email = await self.services.auth.reset_link(token, self.browser())
            if state != auth_service.USABLE:
                return self.used_link() if state == auth_service.USED else self.dead_link()
            return self.show_form(token, email, password_error=problem, confirm_error=mismatch, status=422)
        browser = self.browser()
        try:
            await self.services.auth.reset_password(token, password, used_by=browser)
        except ApiError as error:
            if error.status != 401:
                raise
            # A second click or a reload of a submit that worked: say so, change nothing (the token is used).
            state = await self.services.auth.reset_link_state(token, browser)
            if state == auth_service.DONE:
                return self.see_other("/reset-password/done")
            return self.used_link() if state == auth_service.USED else self.dead_link()
        self.see_other("/reset-password/done")

    def show_form(
        self,
        token: str,
        email: str | None = None,
        password_error: str | None = None,
        confirm_error: str | None = None,
        status: int = 200,
    ) -> None:
        """The form, naming the account: the full address, since whoever holds the link reads that mailbox
        (docs/using/pages.md)."""
        self.show(
            "reset_password.html",
            status,
            title="Choose a new password",
            token=token,
            email=email,
            password_error=password_error,
            confirm_error=confirm_error,
        )

    def used_link(self) -> None:
        """400: the link changed the password already, from another browser; sign in, or ask for a new link."""
        app_name = self.config.app_name
        self.show(
            "new_link.html",
            400,
            title="This password reset link was already used",
            lead="The password was already changed with this link, perhaps on another device. "
            "Already changed it? Sign in with your new password.",
            sign_in=f"Sign in to {app_name}",
            intro="Not you, or forgotten it again? Enter the address of your account and we will send a new link.",
            action="/forgot-password",
            email="",
            error=None,
        )

    def dead_link(self) -> None:
        self.show_dead_link(
            "This password reset link has expired or was already used",
            self.config.reset_token_minutes,
            "your account",
            "/forgot-password",
        )


def password_problem(password: str) -> str | None:
    """The contract's password rule (services.validation decides), in words for a person, or None."""
    try:
        validate(validator_for(schemas.RESET_PASSWORD), {"password": password})
    except ApiError as error:
        return MESSAGES["password_long" if "at most" in error.errors[0]["message"] else "password_short"]
    return None


class PasswordChangedPage(PageHandler):
    """GET /reset-password/done, where a successful reset form redirects: it holds no token and shows the same
    text to anyone, so it tells nothing."""

    openapi = {
        "get": page('"Your password has been changed"', {200: "The page"}, query_token=False),
    }

    def get(self) -> None:
        self.password_changed()


class EmailChangeUndoPage(LinkPage):
    """GET /email-change/undo?token=…, the link in an email-change notice: GET checks it without using it (mail
    scanners open links) and asks for one click; POST takes the account back and redirects to
    /email-change/undo/done. Every other state says why not and what to do instead."""

    openapi = {
        "get": page(
            'The link in an email-change notice: checked (not used up) on opening; a "Put my old '
            'address back" button, or why not',
            {
                200: 'The button; or, in the browser that already used this link, "address back"',
                400: "Used, expired or unknown link, the old address taken by another account, or the "
                "account's address changed again: which, and what to do",
            },
        ),
        "post": page(
            "The button's submission: the old address back (verified), every session and link ended, "
            "a reset link mailed to the old address",
            {
                303: "Done (also for a second click in the same browser): to /email-change/undo/done",
                400: "Used, expired, unknown, taken or changed again: which, and what to do",
                403: "Missing or wrong xsrf token",
            },
            query_token=False,
            form=VERIFY_FORM,
        ),
    }

    form_expired_text = "Open the link in the email again to put your address back."

    async def get(self) -> None:
        token = self.link_token()
        state = (
            auth_service.UNKNOWN if token is None else await self.services.auth.undo_link_state(token, self.browser())
        )
        if state == auth_service.USABLE:
            return self.show("undo_email_change.html", title="Put your old email address back?", token=token)
        self.show_state(state)

    async def use_link(self, form: dict, token: str) -> None:
        state = await self.services.auth.undo_email_change(token, self.browser())
        if state == auth_service.DONE:
            return self.see_other("/email-change/undo/done")
        self.show_state(state)

    def dead_link(self) -> None:
        self.show_state(auth_service.UNKNOWN)

    def show_state(self, state: str) -> None:
        """The page of every state but USABLE: what happened, and the way forward."""
        if state == auth_service.DONE:  # Back after success, in the browser that used the link
            return self.address_restored()
        config = self.config
        ask = f"write to {config.support_email}" if config.support_email else f"contact the {config.app_name} team"
        title, text = {
            auth_service.USED: (
                "This link was already used",
                "It has put your old address back already. We emailed a link to choose a new password to that "
                "address; if it has expired, ask for a new one below.",
            ),
            auth_service.EXPIRED: (
                "This link has expired",
                f"Links to undo an email change work for {plural(config.email_change_undo_days, 'day')}. If you "
                f"did not change your address and cannot sign in, {ask}. If you can still sign in, change it "
                "back in the app.",
            ),
            auth_service.TAKEN: (
                "Your old address now belongs to another account",
                f"It cannot be put back on this one while it is used there. If you did not change your address, "
                f"{ask}: we can check which account is yours.",
            ),
        }.get(
            state,
            (
                "This link is not valid",
                "Check that you opened the whole link from the email. If you cannot sign in, ask for a link to "
                "choose a new password below.",
            ),
        )
        if state in (auth_service.USED, auth_service.UNKNOWN):
            links = [("/forgot-password", "Reset your password")]  # the old address is the account's, or may be
        else:
            links = (
                [(f"mailto:{config.support_email}", f"Write to {config.support_email}")] if config.support_email else []
            )
        self.message(title, text, 400, links=links)


class EmailChangeUndonePage(PageHandler):
    """GET /email-change/undo/done, where a successful undo redirects: no token, the same text to anyone."""

    openapi = {
        "get": page('"Your old email address is back"', {200: "The page"}, query_token=False),
    }

    def get(self) -> None:
        self.address_restored()


class FormsScript(PageHandler):
    """The pages' one script (forms.js): checks before sending, errors tied to fields, one submission at a time."""

    SOURCE = open(FORMS_SCRIPT, "rb").read()  # read once at start-up; it never changes while running

    def get(self) -> None:
        self.set_header("Content-Type", "application/javascript; charset=UTF-8")
        self.set_header("Cache-Control", "no-cache")
        self.finish(self.SOURCE)


class HomePage(PageHandler):
    """GET /: the service's name and where its documentation is; JSON when the client asks for JSON."""

    openapi = {
        "get": operation(
            "The service's name and where its documentation is: JSON for Accept: "
            "application/json, else a small HTML page",
            "operations",
            200,
            auth_needed=False,
            ok_content={**_json(HOME), **HTML},
            examples={"response": {"name": "Accounts", "docs": "/docs", "openapi": "/openapi.json"}},
        ),
    }

    def get(self) -> None:
        self.set_header("Vary", "Accept")
        if prefers_json(self.request.headers.get("Accept", "")):
            self.set_header("Content-Type", "application/json; charset=UTF-8")
            return self.finish({"name": self.config.app_name, "docs": "/docs", "openapi": "/openapi.json"})
        self.show("home.html", title=self.config.app_name)


def prefers_json(accept: str) -> bool:
    """True when Accept names application/json (or any JSON type) and not text/html: API clients, not browsers."""
    accept = accept.lower()
    return "json" in accept and "text/html" not in accept


class NotFoundPage(PageHandler, NotFoundHandler):
    """Any path no route knows (the application's default handler): a browser navigating to it (a mistyped or
    broken link from an email) gets a page with the ways on; API clients keep the JSON 404 envelope."""

    def set_default_headers(self) -> None:
        NotFoundHandler.set_default_headers(self)  # the page's CSP only on the page, below
        self.add_header("Vary", "Accept")  # one URL, two answers: caches must keep them apart

    def prepare(self) -> None:
        if self.request.method == "GET" and wants_html(self.request.headers.get("Accept", "")):
            # Shown by get(), once the body is read: answered here, it closed the browser's connection.
            self._limit_body()
            return None
        return super().prepare()

    def get(self, *args) -> None:
        self.set_header("Content-Security-Policy", PAGE_CSP)
        self.show("not_found.html", 404, title="This page does not exist")


def wants_html(accept: str) -> bool:
    """True for a browser's navigation (Accept names text/html, before any JSON type), not for fetch() or an
    API client, which send */* or JSON."""
    accept = accept.lower()
    html, json = accept.find("text/html"), accept.find("json")
    return html >= 0 and (json < 0 or html < json)
