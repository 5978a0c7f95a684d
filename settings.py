"""Configuration, read once from the environment and checked before anything starts.

Every setting of the contract lives here with its default. A bad value stops start-up with one
line naming the variable (SettingsError), never a traceback.
"""
import dataclasses
import os
import secrets
from typing import Mapping, Optional

MIB = 1024 * 1024


class SettingsError(ValueError):
    """A configuration value is missing or invalid; the message names the variable."""


@dataclasses.dataclass(frozen=True)
class Settings:
    port: int = 8000
    mongodb_uri: Optional[str] = None
    mongodb_db: str = "accounts"
    mongodb_timeout_ms: int = 3000
    jwt_secret: str = ""
    jwt_secret_generated: bool = False
    bcrypt_rounds: int = 12
    access_token_minutes: int = 30
    refresh_token_days: int = 30
    reset_token_minutes: int = 10
    verify_token_minutes: int = 60
    app_url: str = "http://localhost:8000"
    max_body_bytes: int = MIB
    max_photo_bytes: int = 5 * MIB
    login_attempts_limit: int = 10
    login_attempts_window_seconds: int = 900
    trust_proxy: bool = False
    cors_origins: tuple = ()
    admin_email: Optional[str] = None
    admin_password: Optional[str] = None
    admin_name: str = "Admin"
    smtp_host: Optional[str] = None
    smtp_port: int = 587
    smtp_username: Optional[str] = None
    smtp_password: Optional[str] = None
    smtp_starttls: bool = True
    smtp_timeout_seconds: int = 10
    email_from: str = "Accounts <no-reply@localhost>"
    email_poll_seconds: float = 5.0
    shutdown_grace_seconds: float = 20.0
    metrics_token: Optional[str] = dataclasses.field(default=None, repr=False)  # a secret: never in a log line

    @property
    def embedded(self) -> bool:
        """True when no MONGODB_URI is set: the in-process stand-in is used."""
        return not self.mongodb_uri

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ, **overrides) -> "Settings":
        """Build settings from an environment mapping; raises SettingsError on a bad value."""
        read = _Reader(env)
        port = read.integer("PORT", 8000, 0, 65535)
        mongodb_uri = read.text("MONGODB_URI") or None
        jwt_secret = read.text("JWT_SECRET")
        generated = False
        if not jwt_secret:
            if mongodb_uri:
                # Tokens signed with a per-process random key would fail on every other process (CWE-321).
                raise SettingsError("JWT_SECRET is required when MONGODB_URI is set")
            jwt_secret, generated = secrets.token_urlsafe(48), True
        elif len(jwt_secret) < 32:
            # HS256 with a short key can be brute-forced offline from any token (CWE-326).
            raise SettingsError("JWT_SECRET must be at least 32 characters")
        metrics_token = read.text("METRICS_TOKEN") or None
        if metrics_token and len(metrics_token) < 16:
            # /metrics answers whoever holds it; a short one can be guessed (CWE-521).
            raise SettingsError("METRICS_TOKEN must be at least 16 characters")
        admin_email = read.text("ADMIN_EMAIL") or None
        admin_password = read.text("ADMIN_PASSWORD") or None
        if bool(admin_email) != bool(admin_password):
            raise SettingsError("ADMIN_EMAIL and ADMIN_PASSWORD must be set together")
        if admin_password and not 8 <= len(admin_password.encode()) <= 72:
            raise SettingsError("ADMIN_PASSWORD must be 8 characters to 72 bytes")
        values = dict(
            port=port,
            mongodb_uri=mongodb_uri,
            mongodb_db=read.text("MONGODB_DB") or "accounts",
            mongodb_timeout_ms=read.integer("MONGODB_TIMEOUT_MS", 3000, 100, 60000),
            jwt_secret=jwt_secret,
            jwt_secret_generated=generated,
            bcrypt_rounds=read.integer("BCRYPT_ROUNDS", 12, 4, 31),
            access_token_minutes=read.integer("ACCESS_TOKEN_MINUTES", 30, 1, 24 * 60),
            refresh_token_days=read.integer("REFRESH_TOKEN_DAYS", 30, 1, 365),
            reset_token_minutes=read.integer("RESET_TOKEN_MINUTES", 10, 1, 24 * 60),
            verify_token_minutes=read.integer("VERIFY_TOKEN_MINUTES", 60, 1, 7 * 24 * 60),
            app_url=read.url("APP_URL", f"http://localhost:{port or 8000}"),
            max_body_bytes=read.integer("MAX_BODY_BYTES", MIB, 1024, 64 * MIB),
            max_photo_bytes=read.integer("MAX_PHOTO_BYTES", 5 * MIB, 1024, 15 * MIB),
            login_attempts_limit=read.integer("LOGIN_ATTEMPTS_LIMIT", 10, 0, 10**6),
            login_attempts_window_seconds=read.integer("LOGIN_ATTEMPTS_WINDOW_SECONDS", 900, 1, 7 * 86400),
            trust_proxy=read.boolean("TRUST_PROXY", False),
            cors_origins=read.origins("CORS_ORIGINS"),
            admin_email=admin_email,
            admin_password=admin_password,
            admin_name=read.text("ADMIN_NAME") or "Admin",
            smtp_host=read.text("SMTP_HOST") or None,
            smtp_port=read.integer("SMTP_PORT", 587, 1, 65535),
            smtp_username=read.text("SMTP_USERNAME") or None,
            smtp_password=read.text("SMTP_PASSWORD") or None,
            smtp_starttls=read.boolean("SMTP_STARTTLS", True),
            smtp_timeout_seconds=read.integer("SMTP_TIMEOUT_SECONDS", 10, 1, 300),
            email_from=read.text("EMAIL_FROM") or "Accounts <no-reply@localhost>",
            email_poll_seconds=read.number("EMAIL_POLL_SECONDS", 5.0, 0.05, 3600),
            shutdown_grace_seconds=read.number("SHUTDOWN_GRACE_SECONDS", 20.0, 0, 3600),
            metrics_token=metrics_token,
        )
        values.update(overrides)
        return cls(**values)


class _Reader:
    """Typed reads of environment variables, each failure naming its variable."""

    def __init__(self, env: Mapping[str, str]):
        self.env = env

    def text(self, name: str) -> str:
        return self.env.get(name, "").strip()

    def integer(self, name: str, default: int, low: int, high: int) -> int:
        return self._bounded(name, default, low, high, int, "a whole number")

    def number(self, name: str, default: float, low: float, high: float) -> float:
        return self._bounded(name, default, low, high, float, "a number")

    def _bounded(self, name: str, default, low, high, kind, described: str):
        raw = self.text(name)
        if not raw:
            return default
        try:
            value = kind(raw)
        except ValueError:
            raise SettingsError(f"{name} must be {described}, got {raw!r}") from None
        if not low <= value <= high:
            raise SettingsError(f"{name} must be between {low} and {high}, got {value}")
        return value

    def boolean(self, name: str, default: bool) -> bool:
        raw = self.text(name).lower()
        if not raw:
            return default
        if raw in ("1", "true", "yes", "on"):
            return True
        if raw in ("0", "false", "no", "off"):
            return False
        raise SettingsError(f"{name} must be true or false, got {raw!r}")

    def url(self, name: str, default: str) -> str:
        raw = self.text(name) or default
        if not raw.startswith(("http://", "https://")):
            raise SettingsError(f"{name} must start with http:// or https://, got {raw!r}")
        return raw.rstrip("/")

    def origins(self, name: str) -> tuple:
        origins = tuple(o.strip().rstrip("/") for o in self.text(name).split(",") if o.strip())
        for origin in origins:
            if origin == "*" or not origin.startswith(("http://", "https://")):
                # A wildcard or scheme-less origin would hand the API to any web page (CWE-942).
                raise SettingsError(f"{name} must list full origins like https://app.example.com, got {origin!r}")
        return origins
