"""BaseHandler: body limits, JSON parsing and validation, authentication, and the one error envelope.

Every answer is given after the request body has been read (or with `Connection: close`): Tornado
drops a keep-alive connection answered while its body is still unread, without saying so, and the
client's next request on it then meets a reset (an nginx upstream turns that into a 502).
"""

import functools
import ipaddress
import json
import logging
import os
import re
from urllib.parse import urlsplit

from tornado import httputil
from tornado.escape import json_encode
from tornado.web import HTTPError, RequestHandler, stream_request_body

from models import users as user_model
from models.common import parse_object_id
from services import deadlines, metrics
from services.database import describe_error, driver_error_answer
from services.errors import ApiError, forbidden, not_found, unauthenticated
from services.validation import query_instance, trim_strings, validate, validator_for

log = logging.getLogger("accounts.http")

# A declared body this much over the limit is refused before it is read; smaller ones are read
# and dropped first, so ordinary clients see the 413 rather than a reset connection.
DISCARD_FACTOR = 8

_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")
# RFC 9110 8.6: ASCII digits only; str.isdigit() also takes "²", which int() then refuses (CWE-20). At most 18,
# which no real body comes near: int() refuses over 4,300 digits, a 500 before this bound (CWE-20).
_CONTENT_LENGTH = re.compile(r"[0-9]{1,18}")
# What a browser puts in Access-Control-Request-Headers: header names and commas, nothing to inject (CWE-113).
_REQUESTED_HEADERS = re.compile(r"^[A-Za-z0-9!#$%&'*+.^_`|~-]+( *, *[A-Za-z0-9!#$%&'*+.^_`|~-]+)*$")

HTTP_METHODS = ("get", "head", "post", "put", "patch", "delete", "options")
# Methods that change state: with the session cookie they must come from a trusted origin (CWE-352).
UNSAFE_METHODS = ("POST", "PUT", "PATCH", "DELETE")
SESSION_COOKIE = "session"
# On every answer. An API answer is never a page: nothing in it may run, be framed, be sniffed into another
# type, leak the URL onward or be kept by a cache (its bodies hold tokens and personal data).
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",  # CWE-1021
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",  # CWE-525
    "Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'",
}
# CORS, only for the origins listed in CORS_ORIGINS (cors_allowed). On every answer to them, beside their
# echoed Origin: credentials, and the headers the web client reads (when to retry, the id for a bug report,
# a photo's version).
CORS_HEADERS = {
    "Access-Control-Allow-Credentials": "true",
    "Access-Control-Expose-Headers": "Retry-After, X-Request-ID, ETag",
}
# And on their preflights, beside the request headers echoed back; a browser may reuse the answer 10 minutes.
CORS_PREFLIGHT_HEADERS = {
    "Access-Control-Allow-Methods": "GET, POST, PUT, PATCH, DELETE",
    "Access-Control-Max-Age": "600",
}


def error_status(status: int) -> str:
    """The envelope's status word for an HTTP status."""
    if status == 403:
        return "Forbidden"
    if status == 404:
        return "Not found"
    if status >= 500:
        return "Error"
    return "Bad request"


def error_envelope(status: int, message: str, errors=None, extra=None) -> dict:
    """The body of every error response; both client families find the keys they read."""
    body = {"status": error_status(status), "statusCode": status, "code": status, "message": message}
    if errors is not None:
        body["errors"] = errors
    body.update(extra or {})
    return body


def after_body(method):
    """Run a handler method as Tornado does once the body is in, first giving the answer prepare() decided."""

    @functools.wraps(method)
    async def run(self, *args, **kwargs):
        self._body_read = True
        if self._refusal is not None:
            raise self._refusal
        result = method(self, *args, **kwargs)
        if result is not None:
            await result

    run.after_body = True
    return run


@stream_request_body
class BaseHandler(RequestHandler):
    """Every handler of the service derives from this."""

    # False: a request without valid credentials (bearer token or session cookie) is refused with 401.
    # True on handlers anyone may call (they authenticate themselves where they need to). A boolean
    # defaulting to the safe value, so a misspelt attribute still leaves authentication on (CWE-306).
    public = False

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        # Every HTTP method, the inherited 405 ones included, answers a refusal found by prepare() only
        # after the body is read, so the connection stays usable.
        for name in HTTP_METHODS:
            method = getattr(cls, name)
            if not hasattr(method, "after_body"):
                setattr(cls, name, after_body(method))

    def initialize(self) -> None:
        self.current_user = None
        self.session_id = None
        self.current_jti = None  # the access token's jti (None for the session cookie): see Sessions.keep_current
        self._chunks = []
        self._received = 0
        self._too_large = False
        self._refusal = None
        self._body_read = False
        self.application.requests.add(self)

    @property
    def services(self):
        return self.application.settings["services"]

    @property
    def config(self):
        return self.application.settings["config"]

    @property
    def request_id(self) -> str:
        """The caller's X-Request-ID when it is sane, else a new one."""
        if not hasattr(self.request, "request_id"):
            given = self.request.headers.get("X-Request-ID", "")
            self.request.request_id = given if _REQUEST_ID.fullmatch(given) else os.urandom(16).hex()
        return self.request.request_id

    def set_default_headers(self) -> None:
        self.clear_header("Server")  # no product/version banner for scanners (CWE-200)
        self.set_header("X-Request-ID", self.request_id)
        self.set_headers(SECURITY_HEADERS)
        self.add_header("Vary", "Origin")
        if self.cors_allowed():
            # Only listed origins, echoed one at a time; never "*" (CWE-942).
            self.set_header("Access-Control-Allow-Origin", self.request.headers["Origin"])
            self.set_headers(CORS_HEADERS)

    def set_headers(self, headers: dict) -> None:
        """set_header for each name and value of a table (SECURITY_HEADERS, CORS_HEADERS, ...)."""
        for name, value in headers.items():
            self.set_header(name, value)

    def cors_allowed(self) -> bool:
        """True when the request comes from a web origin listed in CORS_ORIGINS."""
        origin = self.request.headers.get("Origin")
        return bool(origin) and origin in self.config.cors_origins

    async def prepare(self) -> None:
        """Decide early answers (body far too large, 401) without giving them: see after_body."""
        # The request's one database budget, MONGODB_OPERATION_TIMEOUT_MS, spent while it waits for the
        # database: an outage is a 503 within it, however many requests queue (docs/operating/mongodb.md, CWE-400).
        deadlines.start_request(self.config.mongodb_operation_timeout_ms / 1000)
        self._limit_body()
        if self.request.method != "OPTIONS" and not self.public:
            try:
                await self.authenticate()
            except Exception as error:  # answered once the body is read; nothing of it is kept meanwhile
                self.refuse(error)

    def refuse(self, error: Exception) -> None:
        """Answer this request with error once its body has been read (and dropped)."""
        self._refusal = error
        self._chunks.clear()

    def options(self, *args) -> None:
        """CORS preflight: allowed origins may use these methods, the headers they ask for, and credentials."""
        if self.cors_allowed():
            self.set_headers(CORS_PREFLIGHT_HEADERS)
            requested = self.request.headers.get("Access-Control-Request-Headers", "").strip()
            if _REQUESTED_HEADERS.match(requested):
                # Echoed, as the usual CORS middlewares do: only listed origins get any CORS header, and
                # their cookie-authenticated changes are still checked by Origin (check_origin).
                self.set_header("Access-Control-Allow-Headers", requested)
            self.add_header("Vary", "Access-Control-Request-Headers")
        self.set_status(204)
        self.finish()

    def finish(self, chunk=None):
        if not self._body_read:
            # Answered before the body was read (a body far too large, a method Tornado refuses itself):
            # Tornado closes the connection after this answer, so the answer says so (RFC 9112 9.6).
            self.set_header("Connection", "close")
        return super().finish(chunk)

    # ---- request bodies -------------------------------------------------------------------------

    def body_limit(self) -> int:
        """The largest body this request may have (MAX_BODY_BYTES); a handler taking uploads overrides it."""
        return self.config.max_body_bytes

    def _limit_body(self) -> None:
        limit = self.body_limit()
        declared = self.request.headers.get("Content-Length")
        # Both refusals come before the body is read, so finish() adds Connection: close to them.
        if declared is not None and not _CONTENT_LENGTH.fullmatch(declared):
            raise ApiError(400, "Malformed Content-Length")
        if declared is not None and int(declared) > limit * DISCARD_FACTOR:
            raise ApiError(413, "Request body too large")
        # Smaller bodies over the limit are read and dropped by data_received, then answered 413. This also
        # bounds chunked bodies: past it the connection is dropped (CWE-400).
        self.request.connection.set_max_body_size(limit * DISCARD_FACTOR)

    def data_received(self, chunk: bytes) -> None:
        self._received += len(chunk)
        if self._received > self.body_limit():
            self._too_large = True
            self._chunks.clear()
        elif self._refusal is None:
            self._chunks.append(chunk)

    def raw_body(self) -> bytes:
        """The request body; 413 when it was over the limit."""
        if self._too_large:
            raise ApiError(413, "Request body too large")
        body = b"".join(self._chunks)  # one chunk comes back as it is, not copied
        self._chunks = [body]  # of several, only the joined copy is kept: a 5 MiB photo form is held once, not twice
        return body

    def release_body(self) -> None:
        """Forget the body once parsed: a photo form waiting for a free core holds only the photo."""
        self._chunks.clear()

    def media_type(self) -> str:
        return self.request.headers.get("Content-Type", "").split(";")[0].strip().lower()

    def json_body(self, schema: dict) -> dict:
        """The JSON body checked against a schema (a models.schemas constant): 413, 415, 400 or 422 when it is
        not acceptable."""
        validator = validator_for(schema)
        raw = self.raw_body()
        if not raw.strip():
            data = {}
        else:
            if self.media_type() != "application/json":
                raise ApiError(415, "Content-Type must be application/json")
            data = parse_json(raw)
        return validate(validator, trim_strings(data, validator))

    def query(self, schema: dict) -> dict:
        """The query string as an object checked against a schema (a models.schemas constant); 422 when it is
        not acceptable."""
        validator = validator_for(schema)
        return validate(validator, query_instance(self.request.query_arguments, validator))

    @staticmethod
    def path_id(value: str, what: str):
        """The ObjectId a path names; a malformed one is answered like an unknown one (404)."""
        parsed = parse_object_id(value)
        if parsed is None:
            raise not_found(f"{what} not found")
        return parsed

    # ---- authentication -------------------------------------------------------------------------

    async def authenticate(self) -> dict:
        """Resolve the caller from the bearer token, or without one the session cookie; 401 if neither is valid."""
        if "Authorization" in self.request.headers:
            # The bearer header wins: a request that sends one is judged by it alone.
            scheme, _, token = self.request.headers["Authorization"].partition(" ")
            if scheme.lower() != "bearer" or not token.strip():
                raise unauthenticated()
            self.current_user, self.session_id, self.current_jti = await self.services.sessions.authenticate(
                token.strip()
            )
            return self.current_user
        cookie = self.session_cookie()
        if cookie is None:
            raise unauthenticated()
        try:
            self.current_user, self.session_id, self.current_jti = await self.services.sessions.authenticate_cookie(
                cookie
            )
        except ApiError:
            self.clear_session_cookie()  # ended or expired: the browser may drop it
            raise
        self.check_origin()
        return self.current_user

    async def caller_or_none(self):
        """The caller, or None when the request brings no Authorization header and no live session cookie (a
        stale cookie is cleared); a failing Authorization header is still a 401, a database error a 503."""
        try:
            return await self.authenticate()
        except ApiError as error:
            if error.status != 401 or "Authorization" in self.request.headers:
                raise
            return None

    def session_cookie(self):
        """The session cookie's value, or None when there is none or cookies are off."""
        if not self.config.session_cookie:
            return None
        return self.get_cookie(SESSION_COOKIE) or None

    def check_origin(self) -> None:
        """A cookie-authenticated change must come from a page of a trusted origin: 403 otherwise (CWE-352)."""
        if self.request.method not in UNSAFE_METHODS:
            return
        origin = self.request.headers.get("Origin") or origin_of(self.request.headers.get("Referer"))
        if origin not in trusted_origins(self.config):
            raise forbidden("Cross-site request refused: Origin is not trusted")

    def set_session_cookie(self, value) -> None:
        """The browser's session cookie for a session just started (login, registration)."""
        if value is None:  # SESSION_COOKIE=false
            return
        self.set_cookie(
            SESSION_COOKIE,
            value,
            path="/",
            httponly=True,
            samesite="Lax",
            secure=self.config.app_url.startswith("https://"),
            max_age=self.config.refresh_token_days * 86400,
        )

    def clear_session_cookie(self) -> None:
        if self.config.session_cookie and self.get_cookie(SESSION_COOKIE) is not None:
            self.clear_cookie(
                SESSION_COOKIE,
                path="/",
                httponly=True,
                samesite="Lax",
                secure=self.config.app_url.startswith("https://"),
            )

    def device(self) -> dict:
        """What a new session records of the client, for the session list: its User-Agent and address."""
        return {"user_agent": self.request.headers.get("User-Agent"), "ip_address": self.client_address()}

    def client_address(self) -> str:
        """The client's IP: from nginx's headers only when TRUST_PROXY says they can be believed."""
        if self.config.trust_proxy:
            # Anyone can send these headers; believed only behind our own proxy (CWE-348), and only when they
            # hold an IP address: anything else would reach the limiter keys, the session list and the log line
            # as it came (`1.2.3.4 userId=… status=200` forging fields of a text log line, CWE-117).
            for candidate in (
                self.request.headers.get("X-Real-IP", ""),
                self.request.headers.get("X-Forwarded-For", "").split(",")[-1],
            ):
                address = ip_address_or_none(candidate.strip())
                if address is not None:
                    return address
        return self.request.remote_ip

    # ---- responses ------------------------------------------------------------------------------

    def send_json(self, body, status: int = 200) -> None:
        """Any JSON value: an object, or an array or null (the answers the web app reads; TOTASK_WEB_COMPAT)."""
        self.set_status(status)
        if isinstance(body, dict):
            self.finish(body)
            return
        # Tornado writes objects only, against JSON hijacking by <script src> in very old browsers (CWE-352);
        # nosniff and this JSON content type make a browser refuse to run the answer as a script.
        self.set_header("Content-Type", "application/json; charset=UTF-8")
        self.finish(json_encode(body))

    def user_view(self, user: dict) -> dict:
        """The user as every endpoint returns it, its photo URL absolute under APP_URL."""
        return user_model.public_view(user, self.config.app_url)

    def send_page(self, page: dict, view) -> None:
        """One page of a paged list (services/pagination.py), each result through its public view."""
        self.send_json({**page, "results": [view(result) for result in page["results"]]})

    def send_success(self, message: str, status: int = 200, **fields) -> None:
        """The contract's success envelope: {"status": "success", "message": ..., then fields (data, ...)}."""
        self.send_json({"status": "success", "message": message, **fields}, status)

    def no_content(self) -> None:
        self.set_status(204)
        self.finish()

    def write_error(self, status_code: int, **kwargs) -> None:
        """The one place where any failure becomes the contract's error envelope."""
        error = kwargs.get("exc_info", (None, None, None))[1]
        errors, extra = None, None
        if isinstance(error, ApiError):
            status, message, errors, extra = error.status, error.message, error.errors, error.extra
            for name, value in error.headers.items():
                self.set_header(name, value)
        elif (
            answer := driver_error_answer(error)
        ) is not None:  # a driver error is never a 500 (docs/operating/mongodb.md)
            status, message, errors = answer.status, answer.message, answer.errors
        elif isinstance(error, HTTPError):
            status = error.status_code
            message = error.reason or httputil.responses.get(status, "Error")
        elif self.application.shutting_down:
            # Past SIGTERM's grace period the executor and MongoDB are closing under this request.
            status, message = 503, "Service is shutting down"
        else:
            # Anything else is a bug or a cancelled handler: Tornado sends both as 500, with nothing of the error.
            status, message = 500, "Internal server error"
        if status == 401:
            self.set_header("WWW-Authenticate", "Bearer")  # RFC 6750 3: how to authenticate, for every 401
        self.set_status(status)
        self.set_header("Content-Type", "application/json; charset=UTF-8")
        self.finish(json.dumps(error_envelope(status, message, errors, extra)))

    def log_exception(self, typ, value, tb) -> None:
        metrics.record_mongodb_error(value)
        if isinstance(value, ApiError):
            return  # a client error, already answered; the access log has its status
        answer = driver_error_answer(value)
        if answer is not None:
            failed = answer.status >= 500 and not answer.transient  # the database failed, not the request
            (log.error if failed else log.warning)(
                "database %s request_id=%s status=%d error=%s",
                "unavailable" if answer.transient else "error",
                self.request_id,
                answer.status,
                describe_error(value),
            )
        elif isinstance(value, HTTPError):
            if value.log_message:
                log.warning("%d %s request_id=%s", value.status_code, value.log_message % value.args, self.request_id)
        else:
            log.error(
                "unexpected error request_id=%s %s %s",
                self.request_id,
                self.request.method,
                self.request.path,
                exc_info=(typ, value, tb),
            )

    def on_finish(self) -> None:
        self.application.requests.discard(self)

    def on_connection_close(self) -> None:
        super().on_connection_close()
        self.application.requests.discard(self)  # a hang-up mid-request; on_finish may follow, and finds it gone


def ip_address_or_none(raw: str) -> str | None:
    """raw as an IP address in its normal form, or None when it is not one."""
    try:
        address = ipaddress.ip_address(raw)
    except ValueError:
        return None
    # An IPv6 zone (`fe80::1%<any text>`) is taken as it comes by ipaddress, and names no client's address.
    return None if getattr(address, "scope_id", None) else str(address)


def origin_of(url: str | None):
    """scheme://host[:port] of an absolute http(s) URL, or None (for None too)."""
    if not url:
        return None
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return None
    return f"{parts.scheme}://{parts.netloc}".lower()


def trusted_origins(config) -> set:
    """The web origins whose pages may make cookie-authenticated changes: APP_URL's and CORS_ORIGINS."""
    return {origin_of(config.app_url), *(o.lower() for o in config.cors_origins)}


def parse_json(raw: bytes):
    """Decode a JSON document strictly (UTF-8, no NaN or Infinity, no lone surrogates); 400 when it is malformed."""
    try:
        data = json.loads(raw.decode(), parse_constant=_reject_constant)  # bytes.decode's default is UTF-8
        # A "\ud800" escape decodes to a lone surrogate, which is not text: it fails later in BSON, in
        # logs, in email, anywhere. Re-encoding the whole document (keys and values) finds any (CWE-176).
        json.dumps(data, ensure_ascii=False).encode()
        return data
    except (UnicodeError, ValueError, RecursionError):
        raise ApiError(400, "Malformed JSON body") from None


def _reject_constant(name: str):
    raise ValueError(f"{name} is not JSON")


class NotFoundHandler(BaseHandler):
    """Unknown routes answer 404 in the envelope, whatever the method (once the body is read). A preflight
    is answered as on any route, so a page of a listed origin can read that 404."""

    public = True

    def prepare(self) -> None:
        self._limit_body()
        if self.request.method != "OPTIONS":
            self.refuse(not_found())
