"""The OpenAPI 3.1 document of the service, gathered from the route table: each handler class declares its
operations beside its code (the class attribute `openapi`, built with handlers/documented.py), from the same
schemas the handlers validate with."""

import copy
import re

from handlers import openapi_examples as examples
from handlers.documented import ERRORS, JSON, _json, _strip_extensions
from models.schemas import responses
from models.schemas.common import OBJECT_ID
from version import __version__

ROUTE_PARAMETER = re.compile(r"\([^)]*\)")


def paths(table=None) -> dict:
    """Every route and method the service answers, from the handlers' `openapi` declarations (tests/http/test_openapi.py
    holds the route table to it). A path parameter takes its name from the operation's path parameters."""
    if table is None:
        from handlers.routes import routes  # here: handlers/routes.py imports the docs handler, which imports this

        table = routes()
    found = {}
    for route in table:
        pattern, handler = route[0], route[1]
        declared = vars(handler).get("openapi")  # the class's own: a subclass documents its own route
        if not declared:
            continue
        for method, op in copy.deepcopy(declared).items():
            names = iter(p["name"] for p in op.get("parameters", []) if p["in"] == "path")
            path = ROUTE_PARAMETER.sub(lambda _, names=names: "{" + next(names) + "}", pattern)
            found.setdefault(path, {})[method] = op
    return found


# Routes this public document leaves out on purpose, and why (tests/http/test_openapi.py holds it to the route table).
UNDOCUMENTED = {
    "/metrics": "Prometheus's scrape, for operators, not clients: 404 unless METRICS_TOKEN is set, "
    "never served through nginx, and not JSON (docs/operating/metrics.md)",
}


# The sections of /docs, in the order a developer needs them: sign in first, then the two clients' calls.
TAGS = [
    {"name": "auth", "description": "Register, log in, tokens, logout, passwords and the email links"},
    {"name": "users", "description": "The task-board app's users: profile, photo, favourites, lists, search"},
    {"name": "api", "description": "The organisation client: users, organisations and invitations"},
    {"name": "pages", "description": "The HTML pages a person opens from an email (for browsers, not apps)"},
    {"name": "operations", "description": "The service itself: health, readiness, metrics, this document"},
]


def document(server_url: str = None, app_name: str = "Accounts") -> dict:
    """The whole OpenAPI 3.1 document; APP_NAME names it."""
    all_paths = paths()
    for path, methods in all_paths.items():
        for method, op in methods.items():
            name = path.strip("/").replace("/", "_").replace("{", "").replace("}", "") or "home"
            op["operationId"] = f"{method}_{name}"
            _describe_parameters(path, op)
            _add_examples(op, op.pop("x-examples", {}))
    error_responses = {}
    for code, (name, description) in ERRORS.items():
        error_responses[name] = {"description": description, "content": _json(responses.ERROR)}
        error_responses[name]["content"][JSON]["example"] = examples.error(code)
        if code == 429:
            error_responses[name]["headers"] = {
                "Retry-After": {"schema": {"type": "string"}, "description": "Seconds to wait"}
            }
        if code == 503:
            error_responses[name]["headers"] = {
                "Retry-After": {
                    "schema": {"type": "string"},
                    "required": False,
                    "description": "Seconds to wait, when too busy",
                }
            }
        if code == 401:
            error_responses[name]["headers"] = {"WWW-Authenticate": {"schema": {"const": "Bearer"}}}
    doc = {
        "openapi": "3.1.0",
        "info": {"title": f"{app_name} API", "version": __version__, "description": examples.GUIDE},
        "tags": TAGS,
        "paths": all_paths,
        "components": {
            # Only the bearer scheme: an apiKey-in-cookie scheme would put a field in Swagger UI's Authorize
            # dialog that can never work (a page's script cannot set a Cookie header). Browsers send the
            # session cookie themselves; the guide's "Browser sessions" section says how.
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "bearerFormat": "JWT",
                    "description": "tokens.access.token from register, login or refresh. "
                    "Browsers may instead rely on the session cookie that "
                    "login sets (see the guide above)",
                }
            },
            "responses": error_responses,
            "schemas": {
                "Error": _strip_extensions(responses.ERROR),
                "User": responses.USER,
                "TokenPair": responses.TOKEN_PAIR,
                "ObjectId": _strip_extensions(OBJECT_ID),
            },
        },
    }
    if server_url:
        doc["servers"] = [{"url": server_url}]
    return doc


def _describe_parameters(path: str, op: dict) -> None:
    for parameter in op.get("parameters", []):
        name = parameter["name"]
        text = examples.PARAMETERS.get((path, name)) or examples.PARAMETERS.get(name)
        if text and "description" not in parameter:
            parameter["description"] = text


def _add_examples(op: dict, given: dict) -> None:
    """The request's example(s) and the JSON success response's example, as the operation declares them."""
    request = given.get("request")
    body = op.get("requestBody", {}).get("content", {}).get(JSON)
    if body is not None and request is not None:
        if all(isinstance(value, tuple) for value in request.values()) and request:
            body["examples"] = {
                name: {"summary": summary, "value": value} for name, (summary, value) in request.items()
            }
        else:
            body["example"] = request
    for code, response in op["responses"].items():
        content = response.get("content", {}).get(JSON)
        if code.startswith("2") and content is not None and "response" in given:
            answer = given["response"]
            if isinstance(answer, dict) and answer and all(isinstance(value, tuple) for value in answer.values()):
                content["examples"] = {
                    name: {"summary": summary, "value": value} for name, (summary, value) in answer.items()
                }
            else:
                content["example"] = answer
        elif content is not None and code.isdigit() and int(code) in ERRORS:
            content["example"] = examples.error(int(code))
