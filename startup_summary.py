"""The first lines a person reads after `python run.py`: what runs, where it answers, what it uses."""

import logging

from settings import Settings
from version import __version__


def store_hosts(uri: str) -> str:
    """The host list of a MongoDB connection string and nothing else: never its user or password (CWE-532).
    Split as the driver splits it: up to the first "/", then what follows the last "@"."""
    scheme_free = uri.split("://", 1)[1]
    host_part = scheme_free.partition("/")[0]
    if "@" not in host_part and "@" in scheme_free.partition("?")[0]:
        return "(hosts not shown: the connection string's user part is not escaped)"
    return host_part.rpartition("@")[2] or "(no host)"


def lines(settings: Settings, port: int, processes: int, pid: int) -> list:
    """(level, message, fields) for each start-up line, in the order they are logged."""
    url = f"http://localhost:{port}"
    out = [
        (logging.INFO, f"accounts service {__version__} starting (pid {pid})", {"version": __version__}),
        (
            logging.INFO,
            f"listening on {url} (port {port} on every interface"
            + (f", {processes} worker processes)" if processes > 1 else ")"),
            {"url": url},
        ),
        (logging.INFO, f"APP_URL (links in emails, cookies, CSRF origin): {settings.app_url}", {}),
        (logging.INFO, f"API documentation: {settings.app_url}/docs", {}),
    ]
    if settings.embedded:
        out.append(
            (
                logging.WARNING,
                "store: no MONGODB_URI: using the embedded in-memory MongoDB stand-in "
                "(mongomock-motor); data lives in this process only and is lost when it exits",
                {},
            )
        )
    else:
        out.append(
            (
                logging.INFO,
                f"store: using MongoDB from MONGODB_URI, database {settings.mongodb_db}, at "
                f"{store_hosts(settings.mongodb_uri)}",
                {},
            )
        )
    if settings.smtp_host:
        out.append((logging.INFO, f"email: sent through SMTP at {settings.smtp_host}:{settings.smtp_port}", {}))
    else:
        out.append(
            (logging.WARNING, "email: no SMTP_HOST: every email is written to the log instead of being sent", {})
        )
    if not settings.client_url:
        out.append(
            (
                logging.WARNING,
                'CLIENT_URL is unset: the pages\' "back to the app" and "sign in" links '
                "have nowhere to go; set it to the web app's address",
                {},
            )
        )
    if settings.jwt_secret_generated:
        out.append(
            (
                logging.WARNING,
                "no JWT_SECRET: generated a random one; tokens stop working when the process restarts",
                {},
            )
        )
    return out


def log_summary(log: logging.Logger, settings: Settings, port: int, processes: int, pid: int) -> None:
    for level, message, fields in lines(settings, port, processes, pid):
        log.log(level, message, extra={"fields": fields})
