"""One log record per request; never the query string, a body or an Authorization header."""
import logging

log = logging.getLogger("accounts.access")

# Health probes that succeed are logged at DEBUG: at INFO they would drown the log, and writing the
# line was the largest cost of answering them (bench/: 13-18% of a /health request).
PROBES = ("/health", "/ready")


def log_request(handler) -> None:
    """Tornado's log_function: method, path, status, duration, request id, user id and client address.

    The values travel as the record's `fields`, which the JSON formatter (logconfig) writes as keys
    of the line; the message repeats method, path and status for plain-text handlers such as pytest's.
    """
    status = handler.get_status()
    level = logging.ERROR if status >= 500 else logging.WARNING if status >= 400 and status != 404 else logging.INFO
    if status < 400 and handler.request.path in PROBES:
        level = logging.DEBUG  # probes come every few seconds from nginx or an orchestrator
    if not log.isEnabledFor(level):
        return
    user = handler.current_user
    address = getattr(handler, "client_address", None)
    entry = {
        "method": handler.request.method,
        "path": handler.request.path,  # the query can carry reset and verify tokens (CWE-532)
        "status": status,
        "durationMs": round(handler.request.request_time() * 1000, 2),
        "requestId": getattr(handler.request, "request_id", None),
        "userId": str(user["_id"]) if user else None,
        "ip": address() if address else handler.request.remote_ip,
    }
    log.log(level, "%s %s %d", entry["method"], entry["path"], status, extra={"fields": entry})
