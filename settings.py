"""Configuration, read once from the environment and checked before anything starts.

Each setting is declared once, below, with its variable, reader (type and bounds), default and
meaning; the README's configuration table is generated from these declarations
(`python settings.py`). A bad value stops start-up with one line naming the variable
(SettingsError), never a traceback.
"""

import dataclasses
import os
import secrets
from collections.abc import Callable, Mapping
from typing import Any

MIB = 1024 * 1024


class SettingsError(ValueError):
    """A configuration value is missing or invalid; the message names the variable."""


# ---- readers: each turns the variable's non-empty text into a value, or raises naming it ----------------------


def text(name: str, raw: str) -> str:
    return raw


def integer(low: int, high: int) -> Callable[[str, str], int]:
    return _bounded(int, "a whole number", low, high)


def number(low: float, high: float) -> Callable[[str, str], float]:
    return _bounded(float, "a number", low, high)


def _bounded(kind, described: str, low, high):
    def read(name: str, raw: str):
        try:
            value = kind(raw)
        except ValueError:
            raise SettingsError(f"{name} must be {described}, got {raw!r}") from None
        if not low <= value <= high:
            raise SettingsError(f"{name} must be between {low} and {high}, got {value}")
        return value

    read.bounds = f"{low}-{high}"
    return read


def boolean(name: str, raw: str) -> bool:
    lowered = raw.lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise SettingsError(f"{name} must be true or false, got {raw!r}")


def url(name: str, raw: str) -> str:
    if not raw.startswith(("http://", "https://")):
        raise SettingsError(f"{name} must start with http:// or https://, got {raw!r}")
    return raw.rstrip("/")


def origins(name: str, raw: str) -> tuple:
    listed = tuple(o.strip().rstrip("/") for o in raw.split(",") if o.strip())
    for origin in listed:
        if origin == "*" or not origin.startswith(("http://", "https://")):
            # A wildcard or scheme-less origin would hand the API to any web page (CWE-942).
            raise SettingsError(f"{name} must list full origins like https://app.example.com, got {origin!r}")
    return listed


def mongodb_uri(name: str, raw: str) -> str:
    """A MongoDB connection string, checked as the driver will read it (never echoed: it may hold a
    password). A mongodb+srv:// one is resolved through DNS only when the service connects."""
    if not raw.startswith(("mongodb://", "mongodb+srv://")):
        raise SettingsError(f"{name} must start with mongodb:// or mongodb+srv://")
    if raw.startswith("mongodb://"):
        from pymongo import uri_parser
        from pymongo.errors import InvalidURI

        try:
            uri_parser.parse_uri(raw, validate=True, warn=False)
        except (InvalidURI, ValueError) as error:
            raise SettingsError(f"{name} is not a valid connection string: {str(error).splitlines()[0]}") from None
    return raw


def choice(*allowed: str) -> Callable[[str, str], str]:
    def read(name: str, raw: str) -> str:
        if raw.lower() not in allowed:
            raise SettingsError(f"{name} must be one of {', '.join(allowed)}, got {raw!r}")
        return raw.lower()

    read.bounds = " or ".join(allowed)
    return read


def secret(minimum: int) -> Callable[[str, str], str]:
    """A secret of at least `minimum` characters: a short one can be guessed or brute-forced offline."""

    def read(name: str, raw: str) -> str:
        if len(raw) < minimum:
            raise SettingsError(f"{name} must be at least {minimum} characters")
        return raw

    return read


def display_name(name: str, raw: str) -> str:
    # It goes into email headers and page titles: no control characters (header injection, CWE-93).
    if len(raw) > 60 or any(ord(c) < 32 or ord(c) == 127 for c in raw):
        raise SettingsError(f"{name} must be at most 60 characters without control characters")
    return raw


def plain_address(name: str, raw: str) -> str:
    from services.validation import is_plain_address

    if not is_plain_address(raw):
        # The same rule as every sign-up: the admin's mail must go exactly where it says (CWE-20).
        raise SettingsError(f"{name} must be a plain email address like admin@example.com")
    return raw


def bcrypt_password(name: str, raw: str) -> str:
    if not 8 <= len(raw.encode("utf-8")) <= 72:
        raise SettingsError(f"{name} must be 8 characters to 72 bytes")
    return raw


@dataclasses.dataclass(frozen=True)
class Variable:
    """How one setting is read from the environment, and what it means (for the README's table)."""

    env: str
    read: Callable[[str, str], Any]
    doc: str
    shown_default: str | None = None


def setting(env: str, read, default, doc: str, shown_default: str | None = None, secret: bool = False):
    """Declare a setting: a dataclass field read from `env` by `read`, `default` when unset or empty.
    A secret one is left out of the settings' printed form, so it never reaches a log line (CWE-532)."""
    return dataclasses.field(
        default=default, repr=not secret, metadata={"variable": Variable(env, read, doc, shown_default)}
    )


@dataclasses.dataclass(frozen=True)
class Settings:
    port: int = setting("PORT", integer(0, 65535), 8000, "listening port (`--port` overrides)")
    mongodb_uri: str | None = setting(
        "MONGODB_URI", mongodb_uri, None, "MongoDB connection string", "*(none: embedded store)*"
    )
    mongodb_db: str = setting("MONGODB_DB", text, "accounts", "database name")
    mongodb_timeout_ms: int = setting(
        "MONGODB_TIMEOUT_MS", integer(100, 60000), 3000, "server selection / connect timeout"
    )
    mongodb_operation_timeout_ms: int = setting(
        "MONGODB_OPERATION_TIMEOUT_MS",
        integer(100, 600000),
        5000,
        "a request's one database deadline: its time waiting for the database (for a slot, a thread, the "
        "server) in total; past it the request is a 503",
    )
    mongodb_max_in_flight: int = setting(
        "MONGODB_MAX_IN_FLIGHT",
        integer(1, 10000),
        0,
        "database calls in flight per process; more wait for a slot, within their deadline (at most Motor's threads)",
        "*(Motor's threads: 5 × cores)*",
    )
    mongodb_index_build_timeout_ms: int = setting(
        "MONGODB_INDEX_BUILD_TIMEOUT_MS",
        integer(1000, 86_400_000),
        3_600_000,
        "the longest one index build may take (start-up, `--sync-indexes`); past it the build is abandoned and retried",
    )
    admin_query_timeout_ms: int = setting(
        "ADMIN_QUERY_TIMEOUT_MS",
        integer(100, 600000),
        30_000,
        "the database deadline of admin reports (`usersByMonth`) and filtered admin listings, instead of "
        "`MONGODB_OPERATION_TIMEOUT_MS`",
    )
    max_organisations_per_user: int = setting(
        "MAX_ORGANISATIONS_PER_USER",
        integer(1, 100_000),
        1000,
        "organisations one user may belong to; creating or accepting past it is a 422",
    )
    # Short HS256 keys can be brute-forced offline from any token (CWE-326).
    jwt_secret: str = setting(
        "JWT_SECRET",
        secret(32),
        "",
        "HS256 key, at least 32 characters; required with `MONGODB_URI`",
        "*(random in embedded mode)*",
        secret=True,
    )
    # The key two-factor secrets are encrypted with (HKDF-derived); apart from JWT_SECRET so either can rotate alone.
    totp_encryption_key: str | None = setting(
        "TOTP_ENCRYPTION_KEY",
        secret(32),
        None,
        "key the two-factor secrets are encrypted with at rest, at least 32 characters; unset, derived from "
        "`JWT_SECRET` (changing that then leaves only the recovery codes working)",
        "*(from `JWT_SECRET`)*",
        secret=True,
    )
    bcrypt_rounds: int = setting("BCRYPT_ROUNDS", integer(4, 31), 12, "bcrypt cost")
    bcrypt_queue_max: int = setting(
        "BCRYPT_QUEUE_MAX",
        integer(1, 10**6),
        64,
        "password hashes and checks waiting or running per process; past it a login or other password check "
        "answers 503 with `Retry-After` at once, and a sign-up or other new hash past half of it",
    )
    access_token_minutes: int = setting("ACCESS_TOKEN_MINUTES", integer(1, 24 * 60), 30, "access JWT lifetime")
    refresh_token_days: int = setting(
        "REFRESH_TOKEN_DAYS", integer(1, 365), 30, "refresh token, session and session cookie lifetime"
    )
    refresh_reuse_grace_seconds: int = setting(
        "REFRESH_REUSE_GRACE_SECONDS",
        integer(0, 300),
        10,
        "a refresh token presented again this soon after its rotation gets a new pair (two tabs); later, "
        "reuse ends the session",
    )
    reset_token_minutes: int = setting("RESET_TOKEN_MINUTES", integer(1, 24 * 60), 10, "reset-password link lifetime")
    verify_token_minutes: int = setting(
        "VERIFY_TOKEN_MINUTES", integer(1, 7 * 24 * 60), 60, "verify-email link lifetime"
    )
    app_url: str = setting(
        "APP_URL",
        url,
        "",
        "public base URL of the service: the links in emails, the session cookie's `Secure`, the CSRF origin",
        "`http://localhost:PORT`",
    )
    app_name: str = setting(
        "APP_NAME", display_name, "Accounts", "the product's name in emails (sender, subjects) and on the pages"
    )
    client_url: str | None = setting(
        "CLIENT_URL", url, None, 'where the pages\' "back to the app" and "sign in" links go', "*(none)*"
    )
    max_body_bytes: int = setting("MAX_BODY_BYTES", integer(1024, 64 * MIB), MIB, "largest JSON body (413 above)")
    max_photo_bytes: int = setting("MAX_PHOTO_BYTES", integer(1024, 15 * MIB), 5 * MIB, "largest profile photo")
    max_photo_pixels: int = setting(
        "MAX_PHOTO_PIXELS",
        integer(10_000, 80_000_000),
        40_000_000,
        "largest photo in pixels, read from its header before decoding (a "
        "decompression bomb is a 422, never a memory spike)",
    )
    max_photo_decode_bytes: int = setting(
        "MAX_PHOTO_DECODE_BYTES",
        integer(MIB, 1024 * MIB),
        128 * MIB,
        "largest decoded photo in bytes (width × height × bytes per pixel, read from its header before "
        "decoding); over it a 422",
    )
    login_attempts_limit: int = setting(
        "LOGIN_ATTEMPTS_LIMIT",
        integer(0, 10**6),
        10,
        "login attempts per email and client address per window (a success clears them); `0` turns it off",
    )
    login_attempts_window_seconds: int = setting(
        "LOGIN_ATTEMPTS_WINDOW_SECONDS", integer(1, 7 * 86400), 900, "that window"
    )
    login_attempts_per_address: int = setting(
        "LOGIN_ATTEMPTS_PER_ADDRESS",
        integer(0, 10**6),
        100,
        "login attempts (and password re-checks) per client address per window, across all emails; `0` turns it off",
    )
    emails_per_address_per_hour: int = setting(
        "EMAILS_PER_ADDRESS_PER_HOUR",
        integer(0, 10**6),
        5,
        "reset, verification and invitation emails to one address an hour; past it the calls still answer 204 "
        "(account notices are never held back); `0` turns it off",
    )
    registrations_per_address_per_hour: int = setting(
        "REGISTRATIONS_PER_ADDRESS_PER_HOUR",
        integer(0, 10**6),
        20,
        "sign-ups (`POST /auth/register`) per client address an hour; past it a 429, before any bcrypt work; "
        "accounts an admin creates are not counted; `0` turns it off",
    )
    invitations_per_address_per_hour: int = setting(
        "INVITATIONS_PER_ADDRESS_PER_HOUR",
        integer(0, 10**6),
        100,
        "new invitations per client address an hour, across every account there (beside the 50 per inviter); "
        "past it a 429; `0` turns it off",
    )
    searches_per_user_per_hour: int = setting(
        "SEARCHES_PER_USER_PER_HOUR",
        integer(0, 10**6),
        600,
        "`GET /users/getUsers` searches per account an hour (typing in an invite box sends one a keystroke); "
        "past it a 429, so the verified addresses cannot be walked out letter by letter; `0` turns it off",
    )
    trust_proxy: bool = setting(
        "TRUST_PROXY",
        boolean,
        False,
        "take the client address from `X-Real-IP` / `X-Forwarded-For` (only behind nginx)",
    )
    cors_origins: tuple = setting(
        "CORS_ORIGINS",
        origins,
        (),
        "comma-separated web origins allowed to call the API with credentials (`*` is refused)",
        "*(none)*",
    )
    session_cookie: bool = setting(
        "SESSION_COOKIE", boolean, True, "login and registration set the browser session cookie"
    )
    totask_web_compat: bool = setting(
        "TOTASK_WEB_COMPAT",
        boolean,
        False,
        "answer getFav, addToFav, removeFromFav, getUsers, usersByMonth and a signed-out /users/user in the shapes "
        "the published task-board web app reads (docs/using/clients.md); off, as documented",
    )
    admin_email: str | None = setting(
        "ADMIN_EMAIL",
        plain_address,
        None,
        "at start-up, make sure this admin exists (created, or taken over)",
        "*(none)*",
    )
    admin_password: str | None = setting(
        "ADMIN_PASSWORD",
        bcrypt_password,
        None,
        "that admin's password (set together with `ADMIN_EMAIL`)",
        "*(none)*",
        secret=True,
    )
    admin_name: str = setting("ADMIN_NAME", text, "Admin", "name of a newly created admin")
    smtp_host: str | None = setting("SMTP_HOST", text, None, "SMTP server", "*(none: emails go to the log)*")
    smtp_port: int = setting("SMTP_PORT", integer(1, 65535), 587, "SMTP port; `465` means implicit TLS")
    smtp_username: str | None = setting("SMTP_USERNAME", text, None, "SMTP login", "*(none)*")
    smtp_password: str | None = setting("SMTP_PASSWORD", text, None, "SMTP password", "*(none)*", secret=True)
    smtp_starttls: bool = setting("SMTP_STARTTLS", boolean, True, "upgrade with STARTTLS (ignored on port 465)")
    smtp_timeout_seconds: int = setting("SMTP_TIMEOUT_SECONDS", integer(1, 300), 10, "per-send timeout")
    email_from: str = setting("EMAIL_FROM", text, "Accounts <no-reply@localhost>", "sender")
    support_email: str | None = setting(
        "SUPPORT_EMAIL",
        plain_address,
        None,
        "where people write for help: every email's `Reply-To`, and the contact "
        "the account notices and the undo page name",
        "*(none)*",
    )
    email_change_undo_days: int = setting(
        "EMAIL_CHANGE_UNDO_DAYS",
        integer(1, 90),
        7,
        "how long the link in an email-change notice can put the old address back",
    )
    email_poll_seconds: float = setting(
        "EMAIL_POLL_SECONDS",
        number(0.05, 3600),
        5.0,
        "how often a process looks for due emails (it is also woken when it queues one)",
    )
    # /metrics answers whoever holds the token: a short one can be guessed (CWE-521).
    metrics_token: str | None = setting(
        "METRICS_TOKEN",
        secret(16),
        None,
        "bearer token Prometheus sends to `/metrics`, at least 16 characters; unset, `/metrics` answers 404",
        "*(none)*",
        secret=True,
    )
    log_format: str = setting(
        "LOG_FORMAT",
        choice("json", "text"),
        "json",
        "log lines as JSON objects (for a collector) or as readable text (for a terminal)",
    )
    shutdown_grace_seconds: float = setting(
        "SHUTDOWN_GRACE_SECONDS", number(0, 3600), 20.0, "how long SIGTERM waits for requests in flight"
    )
    # Derived, not read: True when JWT_SECRET was unset and a random one was made.
    jwt_secret_generated: bool = False

    @property
    def embedded(self) -> bool:
        """True when no MONGODB_URI is set: the in-process stand-in is used."""
        return not self.mongodb_uri

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ, **overrides) -> "Settings":
        """Build settings from an environment mapping (then `overrides`); raises SettingsError on a bad value."""
        values = {}
        for field, variable in declared():
            if field.name in overrides:
                continue  # a command-line flag decides: its variable is not read (nor refused)
            raw = env.get(variable.env, "").strip()
            values[field.name] = variable.read(variable.env, raw) if raw else field.default
        values.update(overrides)
        return cls(**_derive(values))

    @classmethod
    def documentation(cls) -> str:
        """The README's configuration table, one row per declared setting."""
        rows = ["| variable | default | meaning |", "|---|---|---|"]
        for field, variable in declared():
            default = variable.shown_default or f"`{field.default}`"
            bounds = getattr(variable.read, "bounds", None)
            meaning = f"{variable.doc} ({bounds})" if bounds else variable.doc
            rows.append(f"| `{variable.env}` | {default} | {meaning} |")
        return "\n".join(rows)


def reader_of(name: str) -> Callable[[str, str], Any]:
    """The reader of one declared setting (by field name), for a command-line flag that overrides it: the
    same rule and bounds, with the flag's name in the error."""
    return next(variable.read for field, variable in declared() if field.name == name)


def declared():
    """(field, Variable) for every setting read from the environment."""
    for field in dataclasses.fields(Settings):
        if "variable" in field.metadata:
            yield field, field.metadata["variable"]


def _derive(values: dict) -> dict:
    """The rules that tie settings together, applied after reading (so `--port` feeds APP_URL too)."""
    if not values["app_url"]:
        values["app_url"] = f"http://localhost:{values['port'] or 8000}"
    if not values["jwt_secret"]:
        if values["mongodb_uri"]:
            # Tokens signed with a per-process random key would fail on every other process (CWE-321).
            raise SettingsError("JWT_SECRET is required when MONGODB_URI is set")
        values["jwt_secret"], values["jwt_secret_generated"] = secrets.token_urlsafe(48), True
    if bool(values["admin_email"]) != bool(values["admin_password"]):
        raise SettingsError("ADMIN_EMAIL and ADMIN_PASSWORD must be set together")
    return values


if __name__ == "__main__":
    print(Settings.documentation())
