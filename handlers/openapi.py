"""The OpenAPI 3.1 document of the service, built from the same schemas the handlers validate with."""

import copy

from handlers import openapi_examples as examples
from models.schemas import auth, organisations, responses, users
from models.schemas.common import OBJECT_ID
from version import __version__

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
) -> dict:
    """One operation: its parameters, body, success response and the errors it can answer."""
    op = {"summary": summary, "tags": [tag], "operationId": None}
    parameters = [{"name": name, "in": "path", "required": True, "schema": {"type": "string"}} for name in path]
    if query:
        for name, schema in query["properties"].items():
            parameters.append(
                {
                    "name": name,
                    "in": "query",
                    "required": name in query.get("required", []),
                    "schema": _strip_extensions(schema),
                }
            )
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
    return op


HTML = {"text/html": {"schema": {"type": "string"}}}


def page(summary: str, statuses: dict, query_token=True, form=None) -> dict:
    """An operation answering a person with HTML (the pages a person sees; docs/pages.md)."""
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


def photo_operation(user_id: tuple) -> dict:
    """GET /users/{userId}/photo: public with `v` (an <img src> sends no token), else a token of self or an admin."""
    op = operation(
        "A profile photo: with `v` (from profilePhotoUrl) public and cacheable for good, a wrong or outdated `v` "
        "a 404; without `v` the current photo, for the user or an admin",
        "users",
        200,
        path=user_id,
        query=users.PHOTO_QUERY,
        errors=(403,),
        ok_content={
            t: {"schema": {"type": "string", "contentEncoding": "binary"}} for t in ("image/jpeg", "image/png")
        },
        ok_headers={
            "ETag": {"schema": {"type": "string"}},
            "Cache-Control": {
                "schema": {"type": "string"},
                "description": "with v: public, max-age=31536000, immutable; without: private, no-cache",
            },
        },
    )
    op["security"] = [{}, *op["security"]]  # {}: no credentials needed (with v)
    op["responses"]["304"] = {"description": "Not modified: If-None-Match named the ETag"}
    return op


def current_user_operation() -> dict:
    """GET /users/user: the caller; signed out, null (the web app's route guard reads it), never a 401 unless an
    Authorization header fails."""
    op = operation(
        "The caller. With no Authorization header and no live session cookie: 200 null (a stale cookie is "
        "cleared); with TOTASK_WEB_COMPAT=true that answer is 200 with an empty body instead, as the task-board web "
        "app's own server sent it. A failing Authorization header: 401",
        "users",
        200,
        {
            "oneOf": [
                {"title": "Signed in", **responses.USER},
                {"title": "Signed out (TOTASK_WEB_COMPAT=true: an empty body instead)", "type": "null"},
            ]
        },
    )
    op["security"] = [{}, *op["security"]]  # {}: no credentials needed (the answer is then null)
    return op


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
    return {"oneOf": [{"title": examples.DOCUMENTED, **documented}, {"title": examples.WEB_APP, **web_app}]}


def alternatives(schema: dict) -> dict:
    """REGISTER's if/then/else as the oneOf it is equivalent to (each branch forbids the other's key
    fields), which Swagger UI shows as two named shapes instead of "If / Then / Else"."""
    return {
        "oneOf": [
            {"title": "Task-board app (name)", **schema["then"]},
            {"title": "Organisation client (firstName, lastName)", **schema["else"]},
        ]
    }


def login_operation(r) -> dict:
    """POST /auth/login, whose 401 is also "Two-factor code required" (with mfaRequired) when otp is missing."""
    op = operation(
        "Log in; with two-factor sign-in on, `otp` too (a current code or an unused recovery code)",
        "auth",
        200,
        r.LOGGED_IN,
        body=auth.LOGIN,
        auth_needed=False,
        errors=(401, 429),
    )
    op["responses"]["401"] = {
        "description": "Wrong email, password or otp (`Authentication failed`); or a right password to an account "
        "with two-factor on and no `otp` (`Two-factor code required`, `mfaRequired: true`)",
        "headers": {"WWW-Authenticate": {"schema": {"const": "Bearer"}}},
        "content": {
            JSON: {
                "schema": {"oneOf": [_strip_extensions(r.ERROR), r.TWO_FACTOR_REQUIRED]},
                "examples": {
                    "failed": {
                        "summary": "Wrong credentials",
                        "value": examples.error(401) | {"message": "Authentication failed"},
                    },
                    "mfaRequired": {"summary": "Two-factor code required", "value": examples.MFA_REQUIRED},
                },
            }
        },
    }
    return op


def paths() -> dict:
    """Every route and method the service answers (tests/test_openapi.py holds the route table to it)."""
    r = responses
    none = auth.EMPTY
    user_id = ("userId",)
    favourites = either(r.FAVORITES, r.WEB_FAVOURITES)
    return {
        "/health": {
            "get": operation("Liveness: 200 while the process runs", "operations", 200, r.HEALTH, auth_needed=False)
        },
        "/ready": {
            "get": operation(
                "Readiness: MongoDB answers and indexes exist", "operations", 200, r.READY, auth_needed=False
            )
        },
        "/openapi.json": {"get": operation("This document", "operations", 200, {"type": "object"}, auth_needed=False)},
        "/": {
            "get": operation(
                "The service's name and where its documentation is: JSON for Accept: "
                "application/json, else a small HTML page",
                "operations",
                200,
                auth_needed=False,
                ok_content={**_json(HOME), **HTML},
            )
        },
        "/docs": {
            "get": operation(
                "The interactive API page (Swagger UI)", "operations", 200, auth_needed=False, ok_content=HTML
            )
        },
        "/verify-email": {
            "get": page(
                "The verify-email link: checked (not used up) on opening, as mail scanners open links; "
                'a "Confirm my email address" button, or already verified, or a new-link form',
                {
                    200: 'The confirm button; or "already verified"',
                    400: "Unknown or expired link: the page offers the form for a new link",
                },
            ),
            "post": page(
                "The confirm button's submission: verifies",
                {
                    303: "Verified (also for a second click): to /verify-email/done",
                    400: "Invalid or expired link: the form for a new link",
                    403: "Missing or wrong xsrf token",
                },
                query_token=False,
                form=VERIFY_FORM,
            ),
        },
        "/verify-email/done": {"get": page('"Your email address is verified"', {200: "The page"}, query_token=False)},
        "/verify-email/resend": new_link_form("verify-email", "if the address has an unverified account"),
        "/reset-password": {
            "get": page(
                "The reset-password link: checked (not used up) on opening; the form, or why not",
                {
                    200: 'The form; or, in the browser that already used this link, "password changed"',
                    400: "Used, expired or unknown link: the page offers the form for a new link",
                },
            ),
            "post": page(
                "The form's submission: sets the password",
                {
                    303: "Changed (also for a repeat of a submission that already worked): to /reset-password/done",
                    400: "Invalid or used link",
                    403: "Missing or wrong xsrf token",
                    422: "The form again, with the problem",
                },
                query_token=False,
                form=RESET_FORM,
            ),
        },
        "/reset-password/done": {"get": page('"Your password has been changed"', {200: "The page"}, query_token=False)},
        "/forgot-password": new_link_form("reset-password", "if the address has an account"),
        "/email-change/undo": {
            "get": page(
                'The link in an email-change notice: checked (not used up) on opening; a "Put my old '
                'address back" button, or why not',
                {
                    200: 'The button; or, in the browser that already used this link, "address back"',
                    400: "Used, expired or unknown link, the old address taken by another account, or the "
                    "account's address changed again: which, and what to do",
                },
            ),
            "post": page(
                "The button's submission: the old address back (verified), every session and link ended, "
                "a reset link mailed to the old address",
                {
                    303: "Done (also for a second click in the same browser): to /email-change/undo/done",
                    400: "Used, expired, unknown, taken or changed again: which, and what to do",
                    403: "Missing or wrong xsrf token",
                },
                query_token=False,
                form=VERIFY_FORM,
            ),
        },
        "/email-change/undo/done": {
            "get": page('"Your old email address is back"', {200: "The page"}, query_token=False)
        },
        "/auth/register": {
            "post": operation(
                "Create an account (either client's shape); opens a session",
                "auth",
                201,
                r.REGISTERED,
                body=alternatives(auth.REGISTER),
                auth_needed=False,
                errors=(429,),
            )
        },
        "/auth/login": {"post": login_operation(r)},
        "/auth/logout": {
            "post": operation(
                "End the session of a refresh token, or (without one) of the bearer token or session cookie",
                "auth",
                204,
                body=auth.LOGOUT,
                auth_needed=False,
                body_required=False,
                errors=(401,),
            )
        },
        "/auth/refresh-tokens": {
            "post": operation(
                "Rotate a refresh token into a new pair",
                "auth",
                200,
                r.TOKEN_PAIR,
                body=auth.REFRESH,
                auth_needed=False,
                errors=(401,),
            )
        },
        "/auth/forgot-password": {
            "post": operation(
                "Email a reset link (204 whether or not the email exists)",
                "auth",
                204,
                body=auth.FORGOT_PASSWORD,
                auth_needed=False,
            )
        },
        "/auth/reset-password": {
            "post": operation(
                "Set a new password with a reset token; ends every session",
                "auth",
                204,
                body=auth.RESET_PASSWORD,
                query=auth.TOKEN_QUERY,
                auth_needed=False,
                errors=(401,),
            )
        },
        "/auth/change-password": {
            "post": operation(
                "Change the caller's password; ends their other sessions",
                "auth",
                204,
                body=auth.CHANGE_PASSWORD,
                errors=(429,),
            )
        },
        "/auth/send-verification-email": {
            "post": operation("Email a verify link to the caller", "auth", 204, body=none, body_required=False)
        },
        "/auth/verify-email": {
            "post": operation(
                "Mark the email as verified with a verify token",
                "auth",
                204,
                body=none,
                query=auth.TOKEN_QUERY,
                auth_needed=False,
                body_required=False,
                errors=(401,),
            )
        },
        "/auth/2fa/setup": {
            "post": operation(
                "Start setting up two-factor sign-in: a new TOTP secret (pending until enabled; replaces a pending one); "
                "the password is re-checked and counted like a login",
                "auth",
                200,
                r.TWO_FACTOR_SETUP,
                body=auth.TWO_FACTOR_SETUP,
                errors=(429,),
            )
        },
        "/auth/2fa/enable": {
            "post": operation(
                "Turn two-factor sign-in on with a current code of the pending secret; returns 10 single-use recovery "
                "codes, shown this once; the caller's other sessions end; each try counts as a login attempt",
                "auth",
                200,
                r.RECOVERY_CODES,
                body=auth.TWO_FACTOR_ENABLE,
                errors=(429,),
            )
        },
        "/auth/2fa/disable": {
            "post": operation(
                "Turn two-factor sign-in off with the password and a current code or an unused recovery code; the "
                "caller's other sessions end",
                "auth",
                204,
                body=auth.TWO_FACTOR_DISABLE,
                errors=(429,),
            )
        },
        "/auth/sessions": {
            "get": operation(
                "The caller's live sessions (devices), newest first; `current` marks this request's",
                "auth",
                200,
                r.SESSIONS,
            ),
            "delete": operation("End every session of the caller but the current one", "auth", 204),
        },
        "/auth/sessions/{sessionId}": {
            "delete": operation(
                "End one of the caller's sessions at once (its tokens and cookie); another user's or an unknown id: 404",
                "auth",
                204,
                path=("sessionId",),
            )
        },
        "/users": {
            "post": operation("Create a user (admin)", "users", 201, r.USER, body=users.CREATE, errors=(403,)),
            "get": operation("List users (admin)", "users", 200, r.USER_PAGE, query=users.LIST_QUERY, errors=(403,)),
        },
        "/users/user": {"get": current_user_operation()},
        "/users/addToFav": {
            "put": operation(
                "Add a favourite board (shape: TOTASK_WEB_COMPAT; the web app's is the board added)",
                "users",
                200,
                either(r.FAVORITES, r.WEB_FAVOURITE),
                body=users.BOARD,
            )
        },
        "/users/removeFromFav": {
            "put": operation(
                "Remove a favourite board (shape: TOTASK_WEB_COMPAT)", "users", 200, favourites, body=users.BOARD
            )
        },
        "/users/getFav": {
            "get": operation("The caller's favourite boards (shape: TOTASK_WEB_COMPAT)", "users", 200, favourites)
        },
        "/users/getUsers": {
            "get": operation(
                "Search verified users by email prefix (shape: TOTASK_WEB_COMPAT)",
                "users",
                200,
                either(r.BRIEF_USERS, r.WEB_BRIEF_USERS),
                query=users.SEARCH_QUERY,
                errors=(429,),
            )
        },
        "/users/usersByMonth": {
            "get": operation(
                "Sign-ups per month, admin (shape: TOTASK_WEB_COMPAT)",
                "users",
                200,
                either(r.MONTHLY_SIGNUPS, r.WEB_MONTHLY_SIGNUPS),
                query=users.BY_MONTH_QUERY,
                errors=(403,),
            )
        },
        "/users/deleteProfilePic/{userId}": {
            "put": operation(
                "Remove a profile photo (self or admin)", "users", 200, r.USER, path=user_id, errors=(403,)
            )
        },
        "/users/{userId}/photo": {"get": photo_operation(user_id)},
        "/users/{userId}": {
            "get": operation("A user (self or admin)", "users", 200, r.USER, path=user_id, errors=(403,)),
            "put": operation(
                "Update a user (self or admin); JSON or multipart with a photo `file`",
                "users",
                200,
                r.USER,
                path=user_id,
                body=users.UPDATE,
                form=users.UPDATE_FORM,
                errors=(403, 429),
            ),
            "patch": operation(
                "Update a user (same as PUT)",
                "users",
                200,
                r.USER,
                path=user_id,
                body=users.UPDATE,
                form=users.UPDATE_FORM,
                errors=(403, 429),
            ),
            "post": operation(
                "Delete a user (self with password, or admin)",
                "users",
                204,
                path=user_id,
                body=users.DELETE,
                body_required=False,
                errors=(403, 429),
            ),
            "delete": operation(
                "Delete a user (same as POST)",
                "users",
                204,
                path=user_id,
                body=users.DELETE,
                body_required=False,
                errors=(403, 429),
            ),
        },
        "/api/users/{id}": {
            "get": operation(
                "A user: the caller or someone sharing an organisation",
                "api",
                200,
                r.API_USER,
                path=("id",),
                errors=(403,),
            )
        },
        "/api/organisations": {
            "get": operation("The caller's organisations", "api", 200, r.ORGANISATIONS),
            "post": operation(
                "Create an organisation; the caller becomes a member (a 422 past MAX_ORGANISATIONS_PER_USER)",
                "api",
                201,
                r.ORGANISATION_CREATED,
                body=organisations.CREATE,
            ),
        },
        "/api/organisations/{orgId}": {
            "get": operation(
                "An organisation (members only)", "api", 200, r.ORGANISATION_FOUND, path=("orgId",), errors=(403,)
            )
        },
        "/api/organisations/{orgId}/users": {
            "post": operation(
                "Add a user to an organisation (members only)",
                "api",
                200,
                r.MEMBER_ADDED,
                path=("orgId",),
                body=organisations.ADD_MEMBER,
                errors=(403, 429),
            )
        },
        "/api/organisations/{orgId}/users/{userId}": {
            "delete": operation(
                "Leave an organisation (userId must be the caller's own id)",
                "api",
                204,
                path=("orgId", "userId"),
                errors=(403,),
            )
        },
        "/api/invitations": {
            "get": operation("The caller's pending invitations, newest first (at most 100)", "api", 200, r.INVITATIONS)
        },
        "/api/invitations/{orgId}/accept": {
            "post": operation(
                "Accept an invitation: the caller becomes a member (a 422 past MAX_ORGANISATIONS_PER_USER, the "
                "invitation kept)",
                "api",
                200,
                r.INVITATION_ACCEPTED,
                path=("orgId",),
                errors=(422,),
            )
        },
        "/api/invitations/{orgId}": {"delete": operation("Decline an invitation", "api", 204, path=("orgId",))},
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
            _add_examples(op, examples.OPERATIONS.get((method, path), {}))
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
        if text:
            parameter["description"] = text


def _add_examples(op: dict, given: dict) -> None:
    """The request's example(s) and the JSON success response's example, from handlers/openapi_examples.py."""
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
