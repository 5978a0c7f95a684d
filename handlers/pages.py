"""The pages behind the links in emails: GET /verify-email, GET and POST /reset-password.

Plain server-rendered HTML for a person on a phone; the JSON API under /auth does the same
work for apps. The reset form is protected by Tornado's xsrf cookie, checked here only: the
JSON API authenticates with bearer tokens and must not need a cookie.
"""
import logging
import os
import re
from typing import Optional

from tornado import httputil
from tornado.web import HTTPError

from handlers.base import BaseHandler
from models.schemas import auth as schemas
from services.errors import ApiError
from services.validation import compile_schema, validate

log = logging.getLogger("accounts.pages")

TEMPLATES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "templates")

RESET_PASSWORD = compile_schema(schemas.RESET_PASSWORD)

# Inline styles only: no script, no outside resource, forms post back here, no framing (CWE-79, CWE-1021).
PAGE_CSP = "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'"

# The shape of what services.sessions issues (secrets.token_urlsafe); anything else is refused unread (CWE-20).
_TOKEN = re.compile(rb"[A-Za-z0-9_-]{16,256}")

INVALID_LINK = "This link is invalid or has expired"
FORM_MEDIA_TYPE = "application/x-www-form-urlencoded"


def xsrf_cookie_kwargs(config) -> dict:
    """Flags of the _xsrf cookie: hidden from scripts, sent by same-site requests only, HTTPS-only when served so."""
    # CWE-1004 (HttpOnly), CWE-1275 (SameSite), CWE-614 (Secure).
    return {"httponly": True, "samesite": "Strict", "secure": config.app_url.startswith("https://")}


class PageHandler(BaseHandler):
    """HTML pages: their own CSP, the token from a link, and the outcome pages."""

    authentication = "none"

    def set_default_headers(self) -> None:
        super().set_default_headers()  # Referrer-Policy: no-referrer keeps the token out of Referer (CWE-598)
        self.set_header("Content-Security-Policy", PAGE_CSP)

    def show(self, template: str, status: int = 200, **values) -> None:
        self.set_status(status)
        self.render(template, **values)

    def invalid_link(self) -> None:
        self.show("message.html", 400, title=INVALID_LINK,
                  text="Links in our emails work once and expire after a while. Ask for a new email and use "
                       "the link in the newest one.")

    @staticmethod
    def well_formed(values: Optional[list]) -> Optional[str]:
        """The token when exactly one well-formed value was given, else None."""
        if not values or len(values) != 1 or not _TOKEN.fullmatch(values[0]):
            return None
        return values[0].decode("ascii")

    def link_token(self) -> Optional[str]:
        return self.well_formed(self.request.query_arguments.get("token"))


class VerifyEmailPage(PageHandler):
    """Opening the link verifies the address (the contract: clicking verifies)."""

    async def get(self) -> None:
        token = self.link_token()
        if token is None:
            return self.invalid_link()
        try:
            await self.services.auth.verify_email(token)
        except ApiError as error:
            if error.status != 401:
                raise
            return self.invalid_link()
        self.show("message.html", title="Your email address is verified",
                  text="Thank you. You can close this page and go back to the app.")


class ResetPasswordPage(PageHandler):
    """GET shows the form without using the token (mail scanners open links); POST sets the password."""

    def get(self) -> None:
        token = self.link_token()
        if token is None:
            return self.invalid_link()
        self.show_form(token)

    async def post(self) -> None:
        form = self.read_form()
        try:
            self.check_xsrf_cookie()  # a form posted from another site, or without our cookie (CWE-352)
        except HTTPError as error:
            log.warning("reset form refused request_id=%s: %s", self.request_id, error.log_message)
            return self.show("message.html", 403, title="This form has expired",
                             text="Open the link in the email again to choose a new password.")
        token = self.well_formed(form.get("token"))
        if token is None:
            return self.invalid_link()
        password, confirm = self.field(form, "password"), self.field(form, "confirm")
        if password != confirm:
            return self.show_form(token, "The two passwords are not the same.", status=422)
        try:
            validate(RESET_PASSWORD, {"password": password})
            await self.services.auth.reset_password(token, password)
        except ApiError as error:
            if error.status == 422:
                return self.show_form(token, f"The password {error.errors[0]['message']}.", status=422)
            if error.status != 401:
                raise
            return self.invalid_link()
        self.show("message.html", title="Your password has been changed",
                  text="Sign in with your new password. Every device that was signed in has been signed out.")

    def show_form(self, token: str, error: Optional[str] = None, status: int = 200) -> None:
        self.show("reset_password.html", status, title="Choose a new password", token=token, error=error)

    def read_form(self) -> dict:
        """The url-encoded body as name -> [bytes]; also where check_xsrf_cookie looks for _xsrf."""
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
