"""One JSON line per request; never the query string, a body or an Authorization header."""
import json
import logging

log = logging.getLogger("accounts.access")


def log_request(handler) -> None:
    """Tornado's log_function: method, path, status, duration, request id and user id."""
    status = handler.get_status()
    user = handler.current_user
    entry = {
        "method": handler.request.method,
        "path": handler.request.path,  # the query can carry reset and verify tokens (CWE-532)
        "status": status,
        "durationMs": round(handler.request.request_time() * 1000, 2),
        "requestId": getattr(handler.request, "request_id", None),
        "userId": str(user["_id"]) if user else None,
        "ip": handler.request.remote_ip,
    }
    level = logging.ERROR if status >= 500 else logging.WARNING if status >= 400 and status != 404 else logging.INFO
    log.log(level, json.dumps(entry))
