"""One log record and one metrics update per request; never the query string, a body or an Authorization header."""

import logging
import re

from tornado.routing import Matcher

from services import metrics

log = logging.getLogger("accounts.access")

# Health probes that succeed are logged at DEBUG: at INFO they would drown the log, and writing the
# line was the largest cost of answering them (bench/: 13-18% of a /health request).
PROBES = ("/health", "/ready")


def log_request(handler) -> None:
    """Tornado's log_function: method, path, status, duration, request id, user id and client address.

    The values travel as the record's `fields`, which the JSON formatter (logconfig) writes as keys
    of the line; the message repeats method, path and status for plain-text handlers such as pytest's.
    The request is counted in the metrics here, after its answer was written, labelled by the route
    pattern it matched (RouteLabel), never by its path.
    """
    request = handler.request
    status = handler.get_status()
    seconds = request.request_time()
    metrics.record_request(getattr(request, "route", metrics.UNMATCHED), request.method, status, seconds)
    level = logging.ERROR if status >= 500 else logging.WARNING if status >= 400 and status != 404 else logging.INFO
    if status < 400 and request.path in PROBES:
        level = logging.DEBUG  # probes come every few seconds from nginx or an orchestrator
    if not log.isEnabledFor(level):
        return
    user = handler.current_user
    address = getattr(handler, "client_address", None)
    entry = {
        "method": request.method,
        "path": request.path,  # the query can carry reset and verify tokens (CWE-532)
        "status": status,
        "durationMs": round(seconds * 1000, 2),
        "requestId": getattr(request, "request_id", None),
        "userId": str(user["_id"]) if user else None,
        "ip": address() if address else request.remote_ip,
    }
    log.log(level, "%s %s %d", entry["method"], entry["path"], status, extra={"fields": entry})


class RouteLabel(Matcher):
    """A route's matcher that also notes its pattern on the request it matches, for the metrics' route label."""

    def __init__(self, matcher: Matcher, label: str):
        self.matcher = matcher
        self.label = label

    def match(self, request):
        params = self.matcher.match(request)
        if params is not None:
            request.route = self.label
        return params

    def reverse(self, *args):
        return self.matcher.reverse(*args)


def route_label(pattern: str) -> str:
    """A route table pattern with each group written {}: r"/users/([^/]+)/photo" is "/users/{}/photo"."""
    # routes.slash_optional adds "/?" to every pattern: the label is the route as written.
    return re.sub(r"\([^)]*\)", "{}", pattern.removesuffix("$").removesuffix("/?"))


def label_routes(app) -> None:
    """Wrap every route of the application so that the request it matches carries its pattern."""
    for rule in app.wildcard_router.rules:
        rule.matcher = RouteLabel(rule.matcher, route_label(rule.matcher.regex.pattern))
