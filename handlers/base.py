"""BaseHandler: body limits, JSON parsing and validation, authentication, and the one error envelope."""
import json
import logging
import os
import re

from tornado import httputil
from tornado.web import HTTPError, RequestHandler, stream_request_body

from models.common import parse_object_id
from models.database import is_unavailable
from services import metrics
from services.errors import ApiError, not_found, unauthenticated
from services.validation import query_instance, trim_strings, validate

log = logging.getLogger("accounts.http")

# A declared body this much over the limit is refused before it is read; smaller ones are read
# and dropped first, so ordinary clients see the 413 rather than a reset connection.
DISCARD_FACTOR = 8

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


def error_status(status: int) -> str:
    """The envelope's status word for an HTTP status."""
    if status == 403:
        return "Forbidden"
    if status == 404:
        return "Not found"
    if status >= 500:
        return "Error"
    return "Bad request"


def error_envelope(status: int, message: str, errors=None) -> dict:
    """The body of every error response; both client families find the keys they read."""
    body = {"status": error_status(status), "statusCode": status, "code": status, "message": message}
    if errors is not None:
        body["errors"] = errors
    return body


@stream_request_body
class BaseHandler(RequestHandler):
    """Every handler of the service derives from this."""

    # "required": prepare() rejects a request without a valid bearer token; "none": the handler decides.
    authentication = "required"
    # The largest body this handler accepts, by settings attribute.
    body_limit_setting = "max_body_bytes"

    def initialize(self) -> None:
        self.current_user = None
        self.session_id = None
        self._chunks = []
        self._received = 0
        self._too_large = False
        self.application.in_flight += 1
        self._counted = True

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
            self.request.request_id = given if _REQUEST_ID.match(given) else os.urandom(16).hex()
        return self.request.request_id

    def set_default_headers(self) -> None:
        self.set_header("X-Request-ID", self.request_id)
        self.set_header("X-Content-Type-Options", "nosniff")
        self.set_header("X-Frame-Options", "DENY")
        self.set_header("Referrer-Policy", "no-referrer")
        self.set_header("Cache-Control", "no-store")
        self.set_header("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'")
        if self.cors_allowed():
            # Only listed origins, echoed one at a time; never "*" (CWE-942).
            self.set_header("Access-Control-Allow-Origin", self.request.headers["Origin"])
            self.set_header("Access-Control-Expose-Headers", "Retry-After, X-Request-ID, ETag")
            self.add_header("Vary", "Origin")

    def cors_allowed(self) -> bool:
        """True when the request comes from a web origin listed in CORS_ORIGINS."""
        origin = self.request.headers.get("Origin")
        return bool(origin) and origin in self.config.cors_origins

    async def prepare(self) -> None:
        self._limit_body()
        if self.request.method != "OPTIONS" and self.authentication == "required":
            await self.authenticate()

    def options(self, *args) -> None:
        """CORS preflight: allowed origins get the methods and headers they may use."""
        if self.cors_allowed():
            self.set_header("Access-Control-Allow-Methods", "GET, POST, PUT, PATCH, DELETE, OPTIONS")
            self.set_header("Access-Control-Allow-Headers", "Authorization, Content-Type, X-Request-ID, If-None-Match")
            self.set_header("Access-Control-Max-Age", "600")
        self.set_status(204)
        self.finish()

    # ---- request bodies -------------------------------------------------------------------------

    def body_limit(self) -> int:
        return getattr(self.config, self.body_limit_setting)

    def _limit_body(self) -> None:
        limit = self.body_limit()
        declared = self.request.headers.get("Content-Length")
        declared = int(declared) if declared and declared.isdigit() else None
        if declared is not None and declared > limit:
            self._too_large = True
            if declared > limit * DISCARD_FACTOR:
                raise ApiError(413, "Request body too large")
        # Bounds chunked bodies too: past this the connection is dropped (CWE-400).
        self.request.connection.set_max_body_size(max(declared or 0, limit) if self._too_large else limit * DISCARD_FACTOR)

    def data_received(self, chunk: bytes) -> None:
        self._received += len(chunk)
        if self._received > self.body_limit():
            self._too_large = True
            self._chunks = []
        elif not self._too_large:
            self._chunks.append(chunk)

    def raw_body(self) -> bytes:
        """The request body; 413 when it was over the limit."""
        if self._too_large:
            raise ApiError(413, "Request body too large")
        return b"".join(self._chunks)

    def media_type(self) -> str:
        return self.request.headers.get("Content-Type", "").split(";")[0].strip().lower()

    def json_body(self, validator) -> dict:
        """The JSON body checked against a schema: 413, 415, 400 or 422 when it is not acceptable."""
        raw = self.raw_body()
        if not raw.strip():
            data = {}
        else:
            if self.media_type() != "application/json":
                raise ApiError(415, "Content-Type must be application/json")
            data = parse_json(raw)
        return validate(validator, trim_strings(data, validator))

    def query(self, validator) -> dict:
        """The query string as an object checked against a schema (422 when it is not acceptable)."""
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
        """Resolve the caller from the bearer token (401 if missing or not valid) and return the user."""
        scheme, _, token = self.request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise unauthenticated()
        self.current_user, self.session_id = await self.services.sessions.authenticate(token.strip())
        return self.current_user

    def client_address(self) -> str:
        """The client's IP: from nginx's headers only when TRUST_PROXY says they can be believed."""
        if self.config.trust_proxy:
            # Anyone can send these headers; believed only behind our own proxy (CWE-348).
            real_ip = self.request.headers.get("X-Real-IP", "").strip()
            if real_ip:
                return real_ip
            forwarded = self.request.headers.get("X-Forwarded-For", "")
            if forwarded.strip():
                return forwarded.split(",")[-1].strip()
        return self.request.remote_ip

    # ---- responses ------------------------------------------------------------------------------

    def send_json(self, body: dict, status: int = 200) -> None:
        self.set_status(status)
        self.finish(body)

    def no_content(self) -> None:
        self.set_status(204)
        self.finish()

    def write_error(self, status_code: int, **kwargs) -> None:
        """The one place where any failure becomes the contract's error envelope."""
        error = kwargs.get("exc_info", (None, None, None))[1]
        errors = None
        if isinstance(error, ApiError):
            status, message, errors = error.status, error.message, error.errors
            for name, value in error.headers.items():
                self.set_header(name, value)
        elif error is not None and is_unavailable(error):
            status, message = 503, "Database unavailable"
        elif isinstance(error, HTTPError):
            status = error.status_code
            message = error.reason or httputil.responses.get(status, "Error")
        elif self.application.shutting_down and status_code >= 500:
            # Past SIGTERM's grace period the executor and MongoDB are closing under this request.
            status, message = 503, "Service is shutting down"
        else:
            status = status_code
            message = "Internal server error" if status >= 500 else httputil.responses.get(status, "Error")
        self.set_status(status)
        self.set_header("Content-Type", "application/json; charset=UTF-8")
        self.finish(json.dumps(error_envelope(status, message, errors)))

    def log_exception(self, typ, value, tb) -> None:
        metrics.record_mongodb_error(value)
        if isinstance(value, ApiError):
            return  # a client error, already answered; the access log has its status
        if is_unavailable(value):
            log.warning("database unavailable request_id=%s error=%s", self.request_id, typ.__name__)
        elif isinstance(value, HTTPError):
            if value.log_message:
                log.warning("%d %s request_id=%s", value.status_code, value.log_message % value.args, self.request_id)
        else:
            log.error("unexpected error request_id=%s %s %s", self.request_id, self.request.method,
                      self.request.path, exc_info=(typ, value, tb))

    def on_finish(self) -> None:
        self._uncount()

    def on_connection_close(self) -> None:
        super().on_connection_close()
        self._uncount()

    def _uncount(self) -> None:
        if self._counted:
            self._counted = False
            self.application.in_flight -= 1


def parse_json(raw: bytes):
    """Decode a JSON document strictly (UTF-8, no NaN or Infinity); 400 when it is malformed."""
    try:
        return json.loads(raw.decode("utf-8"), parse_constant=_reject_constant)
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise ApiError(400, "Malformed JSON body") from None


def _reject_constant(name: str):
    raise ValueError(f"{name} is not JSON")


class NotFoundHandler(BaseHandler):
    """Unknown routes answer 404 in the envelope, whatever the method."""

    authentication = "none"

    def prepare(self) -> None:
        self._limit_body()
        raise ApiError(404, "Not found")
