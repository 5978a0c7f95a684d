"""What /docs teaches beyond the schemas: the flows (info.description), parameter descriptions, the error
examples and the example values the operations' own examples are made of (each operation declares its examples
beside its handler, in its `openapi` attribute). tests/http/test_openapi.py checks that every example validates
against its schema and that each error example carries its own status."""

GUIDE = """\
Users, sign-in and organisations for the task-board product: one user collection and one login for the
task-board app (`/auth`, `/users`) and the organisation client (`/auth`, `/api`). Every call here can be
tried from this page ("Try it out"); for calls that need a user, log in, copy `tokens.access.token` and
press **Authorize**.

## Conventions
- JSON in and out (`Content-Type: application/json`). Unknown body fields are a 422 (except `userId` on
  registration). A trailing slash is ignored. Ids are 24 hex characters; a malformed id is answered as an
  unknown one (404). Times are ISO 8601 UTC with a trailing `Z`.
- **Every error** has one body: `{"status", "statusCode", "code", "message"}`, where `statusCode` and
  `code` are the HTTP status, and a 422 adds `errors: [{"field", "message"}]`, one per bad field.
  A 401 carries `WWW-Authenticate: Bearer`; a 429 carries `Retry-After` (seconds).

## Tokens: sign in, stay signed in, sign out
1. `POST /auth/register` or `POST /auth/login` returns `tokens`:
   `{"access": {"token", "expires"}, "refresh": {"token", "expires"}}`.
2. Send the **access token** as `Authorization: Bearer <token>`. It is a JWT (HS256) that lives
   `ACCESS_TOKEN_MINUTES` (30); its claims `sub`/`userId`, `email`, `role`, `sid` (session id) can be read,
   but the server checks every request against the session, so logout takes effect at once.
3. Before (or when) it expires, `POST /auth/refresh-tokens {"refreshToken"}` returns a **new pair**. The
   refresh token lives `REFRESH_TOKEN_DAYS` (30), is stored only as a hash, and **rotates**: each one works
   once. Keep only the newest.
4. **Reuse detection**: presenting a retired refresh token again ends the whole session (both tokens stop
   working: somebody copied it), except within `REFRESH_REUSE_GRACE_SECONDS` (10) of its rotation, where two
   tabs refreshing at once both get a pair. A mobile app should refresh from one place and store the new
   pair before using it.
5. `POST /auth/logout` with `{"refreshToken"}` (or no body, with the bearer token or the session cookie)
   ends that session. A password reset, a password change and account deletion end sessions too; so do an
   email or role change and two-factor turned on or off (the caller's own session is kept where they made
   the change).
6. **Your devices**: `GET /auth/sessions` lists the caller's sessions (`current` marks this one);
   `DELETE /auth/sessions/{sessionId}` ends one at once, `DELETE /auth/sessions` all but the current one.

## Two-factor sign-in (TOTP)
`POST /auth/2fa/setup {"currentPassword"}` returns a `secret` and its `otpauthUrl` (show it as a QR code);
`POST /auth/2fa/enable {"code"}` with the app's current code turns it on and returns 10 single-use
`recoveryCodes` (shown once). Then `POST /auth/login` needs `otp` too: without it, a right password gets
401 with `"mfaRequired": true` (ask for the code, send the login again with `otp`); a wrong code is
`Authentication failed` and counts as a failed attempt. `POST /auth/2fa/disable {"currentPassword", "code"}`
turns it off (a current code or an unused recovery code).

## Browser sessions (cookie)
Login and registration also set `session=<opaque>; HttpOnly; SameSite=Lax; Path=/` (`Secure` on https),
living `REFRESH_TOKEN_DAYS`, naming the same server-side session as the tokens. A web app may keep no
token and send `withCredentials` (`credentials: "include"`) instead: the browser sends the cookie itself,
which is why **Authorize** offers no cookie field (no page can set one). On this page too: after "Try it
out" on a login, later calls carry its cookie without Authorize. A cookie-authenticated POST, PUT, PATCH
or DELETE must carry an `Origin` (or `Referer`) of `APP_URL` or one of `CORS_ORIGINS`, else 403. A bearer
header wins over the cookie and is never origin-checked.

## Email links
- `POST /auth/forgot-password {"email"}` answers 204 whether or not the address has an account, and
  emails `APP_URL/reset-password?token=…`, valid `RESET_TOKEN_MINUTES` (10). An app may take the token and
  call `POST /auth/reset-password?token=… {"password"}`; a person gets a page with the form. A reset ends
  every session of the user.
- Registration and `POST /auth/send-verification-email` (bearer) email `APP_URL/verify-email?token=…`,
  valid `VERIFY_TOKEN_MINUTES` (60). Opening it shows a page with a **Confirm my email address** button,
  and the click verifies (opening alone does not: mail scanners open every link); an app may instead call
  `POST /auth/verify-email?token=…`.
- Each link works once, only while the address is still the user's, and a newer link replaces the older.
  A used or expired link is a 401 from the API; its page says what happened and offers a form for a new
  link (`/verify-email/resend`, `/forgot-password`), which answers alike whatever the address.
- At most `EMAILS_PER_ADDRESS_PER_HOUR` (5) such emails go to one address an hour; past that the calls
  still answer 204.
- Notices go to the account's verified address after a password change or reset, two-factor on or off,
  and an email change (to the old address), outside that limit. The email-change notice carries
  `APP_URL/email-change/undo?token=…`, valid `EMAIL_CHANGE_UNDO_DAYS` (7): a page whose one click puts the
  old address back, ends every session and emails a reset link there. Replies go to `SUPPORT_EMAIL`.

## Organisations and invitations
Every registration creates the user's default organisation. `GET /api/organisations` lists those the
caller belongs to. A member adding someone (`POST /api/organisations/{orgId}/users {"userId"}`) **invites**
them: the invited user sees it in `GET /api/invitations`, then accepts
(`POST /api/invitations/{orgId}/accept`) or declines (`DELETE /api/invitations/{orgId}`), and may leave
later (`DELETE /api/organisations/{orgId}/users/{their own userId}`). Only shared memberships (not
invitations) let one user read another with `GET /api/users/{id}`.

## The task-board web app as published
`GET /users/user` with no `Authorization` header and no live session cookie answers 200 `null` (a stale
cookie is cleared); a failing `Authorization` header is still a 401. `profilePhotoUrl` is absolute, under
`APP_URL`. With the setting `TOTASK_WEB_COMPAT=true` (off by default) the answers that app reads as bare
arrays are bare arrays: `getFav`, `addToFav`, `removeFromFav` answer `[{"id": "<boardId>"}]`, `getUsers`
the array of results, `usersByMonth` `[{"month": "January", "year", "count"}]`; and signed out,
`GET /users/user` answers an empty body, as that app's own server did. Each such operation shows both shapes.

## Lists
`GET /users` pages with `limit` (1-100, default 10) and `page` (1+), sorted by `sortBy`; ties are broken by
id, so pages never overlap. `GET /users/getUsers?email=` is a prefix search over verified addresses.
"""

OBJECT_ID_TEXT = "24 hex characters; a malformed id is answered like an unknown one (404)."

# name -> description, or (path, name) -> description where one name means different things.
PARAMETERS = {
    "size": "A smaller square bound for the photo, in pixels: 64, 128, 256 or 512 (default: 512, the stored size).",
    "token": "The token of the emailed link, as it appears after `?token=`.",
    "userId": OBJECT_ID_TEXT,
    "id": OBJECT_ID_TEXT,
    "orgId": OBJECT_ID_TEXT,
    "sessionId": "A session's `id` from `GET /auth/sessions` (24 hex characters); not a credential.",
    "name": "Case-insensitive substring of the name, matched literally (never as a pattern).",
    "username": "Case-insensitive substring of the username, matched literally.",
    "role": "Exactly this role.",
    ("/users/getUsers", "limit"): "At most this many results, 1-20 (default 5).",
    "email": "1-100 characters, matched as a literal, case-insensitive **prefix** of the address (`mark@` "
    "finds `mark@example.com`); only users whose email is verified are listed.",
    "from": "First month, `YYYY-MM` (UTC). With `to`, every month in the range is listed, zeros included "
    "(at most 120 months); without both, only months that have sign-ups.",
    "to": "Last month, `YYYY-MM` (UTC); see `from`.",
    "v": "The photo's version, from `profilePhotoUrl`; a wrong or outdated one is a 404. Without it, a bearer "
    "token gets the user's current photo.",
}

T0 = "2026-01-15T09:30:00Z"
MARK_ID = "665f1c2ab3e4d5f6a7b8c9d0"
ORG_ID = "665f1c2ab3e4d5f6a7b8c9e1"
PASSWORD = "correct horse battery"
ACCESS = (
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiI2NjVmMWMyYWIzZTRkNWY2YTdiOGM5ZDAiLCJ0eXBlIjoiYWNjZXNzIn0"
    ".c2lnbmF0dXJl"
)
REFRESH = "3q2-7wEXAMPLE-opaque-refresh-token-43-chars"

USER = {
    "id": MARK_ID,
    "userId": MARK_ID,
    "name": "Mark Essien",
    "firstName": "Mark",
    "lastName": "Essien",
    "email": "mark.essien@example.com",
    "phone": "09001234567",
    "username": None,
    "role": "user",
    "isEmailVerified": False,
    "twoFactorEnabled": False,
    "profilePhotoUrl": None,
    "favoriteBoards": [],
    "createdAt": T0,
    "updatedAt": T0,
}
VERIFIED_USER = {
    **USER,
    "username": "mark.essien",
    "isEmailVerified": True,
    "profilePhotoUrl": f"https://accounts.example.com/users/{MARK_ID}/photo?v=3f9c2a7be41d08c56e7f1a2b9c0d4e8f",
    "favoriteBoards": ["board-42"],
    "updatedAt": "2026-01-16T08:00:00Z",
}
PAIR = {
    "access": {"token": ACCESS, "expires": "2026-01-15T10:00:00Z"},
    "refresh": {"token": REFRESH, "expires": "2026-02-14T09:30:00Z"},
}
ORGANISATION = {"orgId": ORG_ID, "name": "Mark's Organisation", "description": "Default organisation"}
FAVOURITES = {"favoriteBoards": ["board-42", "roadmap-2026"]}
DOCUMENTED = "As documented (TOTASK_WEB_COMPAT off, the default)"
WEB_APP = "As the published task-board web app reads it (TOTASK_WEB_COMPAT=true)"


def shapes(documented, web_app) -> dict:
    """A response example in each shape TOTASK_WEB_COMPAT picks between."""
    return {"documented": (DOCUMENTED, documented), "webApp": (WEB_APP, web_app)}


def web_favourites(answer: dict) -> list:
    return [{"id": board} for board in answer["favoriteBoards"]]


SEARCH_RESULT = {
    "id": MARK_ID,
    "name": "Mark Essien",
    "email": "mark.essien@example.com",
    "username": "mark.essien",
    "profilePhotoUrl": VERIFIED_USER["profilePhotoUrl"],
}
SIGNUPS = [
    {"year": 2026, "month": 1, "monthName": "January", "count": 3},
    {"year": 2026, "month": 2, "monthName": "February", "count": 0},
]


def success(message: str, **fields) -> dict:
    return {"status": "success", "message": message, **fields}


ERRORS = {
    400: "Malformed JSON body",
    401: "Please authenticate",
    403: "Forbidden",
    404: "Not found",
    413: "Request body too large",
    415: "Content-Type must be application/json",
    422: "Validation failed",
    429: "Too many login attempts, try again later",
    503: "Database unavailable",
}


def error(code: int) -> dict:
    """The error envelope of this status, as the service sends it."""
    word = {403: "Forbidden", 404: "Not found"}.get(code, "Error" if code >= 500 else "Bad request")
    body = {"status": word, "statusCode": code, "code": code, "message": ERRORS[code]}
    if code == 422:
        body["errors"] = [{"field": "email", "message": "must be a valid email address"}]
    return body


MFA_REQUIRED = {
    "status": "Bad request",
    "statusCode": 401,
    "code": 401,
    "message": "Two-factor code required",
    "mfaRequired": True,
}
TOTP_SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
