"""The pieces every operation's OpenAPI entry is built from, declared beside its handler as the class
attribute `openapi` ({method: operation(...)}): its summary, tag, parameters, request and response schemas,
examples and the errors it can answer. handlers/openapi.py gathers them from the route table."""

import copy

from handlers import openapi_examples as ex
from models.schemas import responses

JSON = "application/json"


ERRORS = {
    400: ("BadRequest", "Malformed JSON body"),
    401: ("Unauthenticated", "Missing, malformed, expired or revoked token, or wrong credentials"),
    403: ("Forbidden", "Authenticated but not allowed"),
    404: ("NotFound", "Unknown or malformed id"),
    413: ("TooLarge", "Body over the size limit"),
    415: ("UnsupportedMediaType", "Wrong Content-Type"),
    422: ("ValidationFailed", "Body or query parameters fail validation, or a uniqueness rule is broken"),
    429: (
        "TooManyAttempts",
        "Too many password attempts (logins and re-checks), sign-ups or invitations from "
        "one client address, or searches by one account; see Retry-After",
    ),
    503: (
        "Unavailable",
        "Database unavailable, or this process's queue of password checks is full (then with Retry-After)",
    ),
}


BODY_ERRORS = (400, 413, 415, 422)


def _strip_extensions(schema):
    """The schema without the service's x- keywords and with JSON-Schema-only parts kept."""
    if isinstance(schema, dict):
        return {k: _strip_extensions(v) for k, v in schema.items() if not k.startswith("x-")}
    if isinstance(schema, list):
        return [_strip_extensions(v) for v in schema]
    return schema


def _json(schema) -> dict:
    return {JSON: {"schema": _strip_extensions(copy.deepcopy(schema))}}


def operation(
    summary: str,
    tag: str,
    ok: int,
    ok_schema=None,
    *,
    body=None,
    query=None,
    path=(),
    auth_needed=True,
    errors=(),
    ok_content=None,
    ok_headers=None,
    body_required=True,
    form=None,
    examples=None,
) -> dict:
    """One operation: its parameters, body, success response and the errors it can answer; examples are
    {"request": example or {name: (summary, example)}, "response": the same}, validated by
    tests/http/test_openapi.py."""
    op = {"summary": summary, "tags": [tag], "operationId": None}
    parameters = [{"name": name, "in": "path", "required": True, "schema": {"type": "string"}} for name in path]
    if query:
        for name, schema in query["properties"].items():
            parameter = {
                "name": name,
                "in": "query",
                "required": name in query.get("required", []),
                "schema": _strip_extensions(schema),
            }
            if "x-parameter" in schema:  # the paged list's own words (models/schemas/paging.py)
                parameter["description"] = schema["x-parameter"]
            parameters.append(parameter)
    if parameters:
        op["parameters"] = parameters
    codes = set(errors) | {503}
    if body is not None:
        content = _json(body)
        if form is not None:
            content["multipart/form-data"] = {"schema": _strip_extensions(form)}
        op["requestBody"] = {"required": body_required, "content": content}
        codes |= set(BODY_ERRORS)
    if query:
        codes.add(422)
    if path:
        codes.add(404)
    if auth_needed:
        codes.add(401)
        # The session cookie works too (the guide says how), but is no scheme here: see document().
        op["security"] = [{"bearer": []}]
    else:
        op["security"] = []
    success = {"description": "Success"}
    if ok_content is not None:
        success["content"] = ok_content
    elif ok_schema is not None:
        success["content"] = _json(ok_schema)
    if ok_headers:
        success["headers"] = ok_headers
    op["responses"] = {str(ok): success}
    for code in sorted(codes):
        op["responses"][str(code)] = {"$ref": f"#/components/responses/{ERRORS[code][0]}"}
    if examples:
        op["x-examples"] = examples  # handlers/openapi.py places them in the document
    return op


HTML = {"text/html": {"schema": {"type": "string"}}}


def page(summary: str, statuses: dict, query_token=True, form=None) -> dict:
    """An operation answering a person with HTML (the pages a person sees; docs/using/pages.md)."""
    op = {
        "summary": summary,
        "tags": ["pages"],
        "operationId": None,
        "security": [],
        # Each its own copy: the error bodies added below must not leak into every other HTML response.
        "responses": {
            str(code): {"description": text, "content": copy.deepcopy(HTML)} for code, text in statuses.items()
        },
    }
    for code, text in statuses.items():
        if code == 303:  # Post/Redirect/Get: the outcome is a page of its own
            op["responses"]["303"] = {"description": text, "headers": {"Location": {"schema": {"type": "string"}}}}
    if query_token:
        op["parameters"] = [{"name": "token", "in": "query", "required": False, "schema": {"type": "string"}}]
    if form is not None:
        op["requestBody"] = {"required": True, "content": {"application/x-www-form-urlencoded": {"schema": form}}}
        for code in (400, 413, 415):  # a malformed, oversized or non-form body gets the JSON envelope
            response = op["responses"].setdefault(str(code), {"description": ERRORS[code][1], "content": {}})
            response["content"].update(_json(responses.ERROR))
    op["responses"]["503"] = {"$ref": "#/components/responses/Unavailable"}
    return op


def new_link_form(link: str, when: str) -> dict:
    """The GET and POST of a page's form for a new emailed link (answered alike whatever the address)."""
    return {
        "get": page(f"The form for a new {link} link", NEW_LINK_GET, query_token=False),
        "post": page(f"Send a new {link} link {when}", NEW_LINK_POST, query_token=False, form=EMAIL_FORM),
    }


RESET_FORM = {
    "type": "object",
    "properties": {name: {"type": "string"} for name in ("token", "password", "confirm", "_xsrf")},
}


VERIFY_FORM = {"type": "object", "properties": {"token": {"type": "string"}, "_xsrf": {"type": "string"}}}


EMAIL_FORM = {"type": "object", "properties": {"email": {"type": "string"}, "_xsrf": {"type": "string"}}}


HOME = {
    "type": "object",
    "properties": {"name": {"type": "string"}, "docs": {"const": "/docs"}, "openapi": {"const": "/openapi.json"}},
    "required": ["name", "docs", "openapi"],
    "additionalProperties": False,
}


NEW_LINK_GET = {200: 'The form asking for an email address; with `sent`, the "check your email" page'}


NEW_LINK_POST = {
    303: "Sent (or not: the answer is the same whether or not the address has an account): to `?sent=1`",
    403: "Missing or wrong xsrf token",
    422: "The form again, with the problem",
}


def either(documented: dict, web_app: dict) -> dict:
    """An answer whose shape the TOTASK_WEB_COMPAT setting picks: the documented one, or the web app's."""
    return {"oneOf": [{"title": ex.DOCUMENTED, **documented}, {"title": ex.WEB_APP, **web_app}]}


def alternatives(schema: dict) -> dict:
    """REGISTER's if/then/else as the oneOf it is equivalent to (each branch forbids the other's key
    fields), which Swagger UI shows as two named shapes instead of "If / Then / Else"."""
    return {
        "oneOf": [
            {"title": "Task-board app (name)", **schema["then"]},
            {"title": "Organisation client (firstName, lastName)", **schema["else"]},
        ]
    }
