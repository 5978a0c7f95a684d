"""The OpenAPI 3.1 document of the service, built from the same schemas the handlers validate with."""
import copy

from models.schemas import auth, organisations, responses, users
from models.schemas.common import OBJECT_ID

JSON = "application/json"

ERRORS = {
    400: ("BadRequest", "Malformed JSON body"),
    401: ("Unauthenticated", "Missing, malformed, expired or revoked token, or wrong credentials"),
    403: ("Forbidden", "Authenticated but not allowed"),
    404: ("NotFound", "Unknown or malformed id"),
    413: ("TooLarge", "Body over the size limit"),
    415: ("UnsupportedMediaType", "Wrong Content-Type"),
    422: ("ValidationFailed", "Body or query parameters fail validation, or a uniqueness rule is broken"),
    429: ("TooManyAttempts", "Too many failed logins; see Retry-After"),
    503: ("Unavailable", "Database unavailable"),
}

BODY_ERRORS = (400, 413, 415, 422)

# Routes this public document leaves out on purpose, and why (tests/test_openapi.py holds it to the route table).
UNDOCUMENTED = {
    "/metrics": "Prometheus's scrape, for operators, not clients: 404 unless METRICS_TOKEN is set, "
                "never served through nginx, and not JSON (docs/metrics.md)",
}


def _strip_extensions(schema):
    """The schema without the service's x- keywords and with JSON-Schema-only parts kept."""
    if isinstance(schema, dict):
        return {k: _strip_extensions(v) for k, v in schema.items() if not k.startswith("x-")}
    if isinstance(schema, list):
        return [_strip_extensions(v) for v in schema]
    return schema


def _json(schema) -> dict:
    return {JSON: {"schema": _strip_extensions(copy.deepcopy(schema))}}


def operation(summary: str, tag: str, ok: int, ok_schema=None, *, body=None, query=None, path=(), auth_needed=True,
              errors=(), ok_content=None, ok_headers=None, body_required=True, form=None) -> dict:
    """One operation: its parameters, body, success response and the errors it can answer."""
    op = {"summary": summary, "tags": [tag], "operationId": None}
    parameters = [{"name": name, "in": "path", "required": True, "schema": {"type": "string"}} for name in path]
    if query:
        for name, schema in query["properties"].items():
            parameters.append({"name": name, "in": "query", "required": name in query.get("required", []),
                               "schema": _strip_extensions(schema)})
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
    return op


HTML = {"text/html": {"schema": {"type": "string"}}}


def page(summary: str, statuses: dict, query_token=True, form=None) -> dict:
    """An operation answering a person with HTML (the pages behind email links)."""
    op = {"summary": summary, "tags": ["pages"], "operationId": None, "security": [],
          "responses": {str(code): {"description": text, "content": HTML} for code, text in statuses.items()}}
    if query_token:
        op["parameters"] = [{"name": "token", "in": "query", "required": False, "schema": {"type": "string"}}]
    if form is not None:
        op["requestBody"] = {"required": True, "content": {"application/x-www-form-urlencoded": {"schema": form}}}
        for code in (400, 413, 415):  # a malformed, oversized or non-form body gets the JSON envelope
            response = op["responses"].setdefault(str(code), {"description": ERRORS[code][1], "content": {}})
            response["content"].update(_json(responses.ERROR))
    op["responses"]["503"] = {"$ref": "#/components/responses/Unavailable"}
    return op


RESET_FORM = {"type": "object", "properties": {name: {"type": "string"} for name in ("token", "password", "confirm",
                                                                                     "_xsrf")}}


def paths() -> dict:
    """Every route and method the service answers (tests/test_openapi.py holds the route table to it)."""
    r = responses
    none = auth.EMPTY
    user_id = ("userId",)
    return {
        "/health": {"get": operation("Liveness: 200 while the process runs", "operations", 200, r.HEALTH,
                                     auth_needed=False)},
        "/ready": {"get": operation("Readiness: MongoDB answers and indexes exist", "operations", 200, r.READY,
                                    auth_needed=False)},
        "/openapi.json": {"get": operation("This document", "operations", 200, {"type": "object"},
                                           auth_needed=False)},
        "/docs": {"get": operation("The interactive API page (Swagger UI)", "operations", 200, auth_needed=False,
                                   ok_content=HTML)},
        "/verify-email": {"get": page("The verify-email link: verifies, and says so",
                                      {200: "Verified", 400: "Invalid or used link"})},
        "/reset-password": {
            "get": page("The reset-password link: a form (the token is not used up by opening it)",
                        {200: "The form", 400: "Invalid link"}),
            "post": page("The form's submission: sets the password", {
                200: "Password changed", 400: "Invalid or used link", 403: "Missing or wrong xsrf token",
                422: "The form again, with the problem"}, query_token=False, form=RESET_FORM),
        },
        "/auth/register": {"post": operation(
            "Create an account (either client's shape); opens a session", "auth", 201, r.REGISTERED,
            body=auth.REGISTER, auth_needed=False)},
        "/auth/login": {"post": operation("Log in", "auth", 200, r.LOGGED_IN, body=auth.LOGIN, auth_needed=False,
                                          errors=(401, 429))},
        "/auth/logout": {"post": operation(
            "End the session of a refresh token, or (no body) of the bearer token", "auth", 204,
            body=auth.LOGOUT, auth_needed=False, body_required=False, errors=(401,))},
        "/auth/refresh-tokens": {"post": operation("Rotate a refresh token into a new pair", "auth", 200,
                                                   r.TOKEN_PAIR, body=auth.REFRESH, auth_needed=False, errors=(401,))},
        "/auth/forgot-password": {"post": operation("Email a reset link (204 whether or not the email exists)",
                                                    "auth", 204, body=auth.FORGOT_PASSWORD, auth_needed=False)},
        "/auth/reset-password": {"post": operation("Set a new password with a reset token; ends every session",
                                                   "auth", 204, body=auth.RESET_PASSWORD, query=auth.TOKEN_QUERY,
                                                   auth_needed=False, errors=(401,))},
        "/auth/change-password": {"post": operation("Change the caller's password; ends their other sessions",
                                                    "auth", 204, body=auth.CHANGE_PASSWORD)},
        "/auth/send-verification-email": {"post": operation("Email a verify link to the caller", "auth", 204,
                                                            body=none, body_required=False)},
        "/auth/verify-email": {"post": operation("Mark the email as verified with a verify token", "auth", 204,
                                                 body=none, query=auth.TOKEN_QUERY, auth_needed=False,
                                                 body_required=False, errors=(401,))},
        "/users": {
            "post": operation("Create a user (admin)", "users", 201, r.USER, body=users.CREATE, errors=(403,)),
            "get": operation("List users (admin)", "users", 200, r.USER_PAGE, query=users.LIST_QUERY, errors=(403,)),
        },
        "/users/user": {"get": operation("The caller", "users", 200, r.USER)},
        "/users/addToFav": {"put": operation("Add a favourite board", "users", 200, r.FAVORITES, body=users.BOARD)},
        "/users/removeFromFav": {"put": operation("Remove a favourite board", "users", 200, r.FAVORITES,
                                                  body=users.BOARD)},
        "/users/getFav": {"get": operation("The caller's favourite boards", "users", 200, r.FAVORITES)},
        "/users/getUsers": {"get": operation("Search users by email substring", "users", 200, r.BRIEF_USERS,
                                             query=users.SEARCH_QUERY)},
        "/users/usersByMonth": {"get": operation("Sign-ups per month (admin)", "users", 200, r.MONTHLY_SIGNUPS,
                                                 query=users.BY_MONTH_QUERY, errors=(403,))},
        "/users/deleteProfilePic/{userId}": {"put": operation(
            "Remove a profile photo (self or admin)", "users", 200, r.USER, path=user_id, errors=(403,))},
        "/users/{userId}/photo": {"get": operation(
            "A profile photo", "users", 200, path=user_id,
            ok_content={t: {"schema": {"type": "string", "contentEncoding": "binary"}}
                        for t in ("image/jpeg", "image/png", "image/webp", "image/gif")},
            ok_headers={"ETag": {"schema": {"type": "string"}}})},
        "/users/{userId}": {
            "get": operation("A user (self or admin)", "users", 200, r.USER, path=user_id, errors=(403,)),
            "put": operation("Update a user (self or admin); JSON or multipart with a photo `file`", "users", 200,
                             r.USER, path=user_id, body=users.UPDATE, form=users.UPDATE_FORM, errors=(403,)),
            "patch": operation("Update a user (same as PUT)", "users", 200, r.USER, path=user_id, body=users.UPDATE,
                               form=users.UPDATE_FORM, errors=(403,)),
            "post": operation("Delete a user (self with password, or admin)", "users", 204, path=user_id,
                              body=users.DELETE, body_required=False, errors=(403,)),
            "delete": operation("Delete a user (same as POST)", "users", 204, path=user_id, body=users.DELETE,
                                body_required=False, errors=(403,)),
        },
        "/api/users/{id}": {"get": operation("A user: the caller or someone sharing an organisation", "api", 200,
                                             r.API_USER, path=("id",), errors=(403,))},
        "/api/organisations": {
            "get": operation("The caller's organisations", "api", 200, r.ORGANISATIONS),
            "post": operation("Create an organisation; the caller becomes a member", "api", 201,
                              r.ORGANISATION_CREATED, body=organisations.CREATE),
        },
        "/api/organisations/{orgId}": {"get": operation("An organisation (members only)", "api", 200,
                                                        r.ORGANISATION_FOUND, path=("orgId",), errors=(403,))},
        "/api/organisations/{orgId}/users": {"post": operation(
            "Add a user to an organisation (members only)", "api", 200, r.MEMBER_ADDED, path=("orgId",),
            body=organisations.ADD_MEMBER, errors=(403,))},
    }


def document(server_url: str = None) -> dict:
    """The whole OpenAPI 3.1 document."""
    all_paths = paths()
    for path, methods in all_paths.items():
        for method, op in methods.items():
            op["operationId"] = f"{method}_{path.strip('/').replace('/', '_').replace('{', '').replace('}', '')}"
    error_responses = {}
    for code, (name, description) in ERRORS.items():
        error_responses[name] = {"description": description, "content": _json(responses.ERROR)}
        if code == 429:
            error_responses[name]["headers"] = {"Retry-After": {"schema": {"type": "string"}}}
    doc = {
        "openapi": "3.1.0",
        "info": {"title": "Accounts service", "version": "1.0.0",
                 "description": "Users, authentication and organisations for the task-board product. "
                                "Every error has the body {status, statusCode, code, message} (+ errors on 422)."},
        "paths": all_paths,
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}},
            "responses": error_responses,
            "schemas": {"Error": _strip_extensions(responses.ERROR), "User": responses.USER,
                        "TokenPair": responses.TOKEN_PAIR, "ObjectId": _strip_extensions(OBJECT_ID)},
        },
    }
    if server_url:
        doc["servers"] = [{"url": server_url}]
    return doc
