"""The /auth endpoints."""

from handlers import openapi_examples as ex
from handlers.base import BaseHandler
from handlers.documented import JSON, _strip_extensions, alternatives, operation
from models import sessions as session_model
from models.schemas import auth as schemas
from models.schemas import responses
from models.schemas.responses import ID, NULLABLE_STRING, TIME, TOKEN_PAIR, USER, closed, success

REGISTERED = success(
    "Registration successful",
    data=closed({"accessToken": {"type": "string"}, "user": USER}),
    user=USER,
    tokens=TOKEN_PAIR,
)


class RegisterHandler(BaseHandler):
    openapi = {
        "post": operation(
            "Create an account (either client's shape); opens a session",
            "auth",
            201,
            REGISTERED,
            body=alternatives(schemas.REGISTER),
            auth_needed=False,
            errors=(429,),
            examples={
                "request": {
                    "organisationClient": (
                        "Organisation client: firstName, lastName, optional phone",
                        {
                            "firstName": "Mark",
                            "lastName": "Essien",
                            "email": "mark.essien@example.com",
                            "password": ex.PASSWORD,
                            "phone": "09001234567",
                        },
                    ),
                    "taskBoardApp": (
                        "Task-board app: name (first word becomes firstName), optional username",
                        {
                            "name": "Mark Essien",
                            "email": "mark.essien@example.com",
                            "password": ex.PASSWORD,
                            "username": "mark.essien",
                        },
                    ),
                },
                "response": ex.success(
                    "Registration successful",
                    data={"accessToken": ex.ACCESS, "user": ex.USER},
                    user=ex.USER,
                    tokens=ex.PAIR,
                ),
            },
        ),
    }

    public = True

    async def post(self) -> None:
        user, pair = await self.services.auth.register(self.json_body(schemas.REGISTER), self.device())
        self.current_user = user  # so the access log names the new user
        self.set_session_cookie(pair.cookie)
        view = self.user_view(user)
        self.send_success(
            "Registration successful",
            status=201,
            data={"accessToken": pair["access"]["token"], "user": view},
            user=view,
            tokens=pair,
        )


LOGGED_IN = success(
    "Login successful", data=closed({"accessToken": {"type": "string"}, "user": USER}), user=ID, tokens=TOKEN_PAIR
)

# 401 from a login with a right password to an account with two-factor on, when no otp was sent.
TWO_FACTOR_REQUIRED = closed(
    {
        "status": {"const": "Bad request"},
        "statusCode": {"const": 401},
        "code": {"const": 401},
        "message": {"const": "Two-factor code required"},
        "mfaRequired": {"const": True},
    }
)


def login_operation(examples=None) -> dict:
    """POST /auth/login, whose 401 is also "Two-factor code required" (with mfaRequired) when otp is missing."""
    op = operation(
        "Log in; with two-factor sign-in on, `otp` too (a current code or an unused recovery code)",
        "auth",
        200,
        LOGGED_IN,
        body=schemas.LOGIN,
        auth_needed=False,
        errors=(401, 429),
        examples=examples,
    )
    op["responses"]["401"] = {
        "description": "Wrong email, password or otp (`Authentication failed`); or a right password to an account "
        "with two-factor on and no `otp` (`Two-factor code required`, `mfaRequired: true`)",
        "headers": {"WWW-Authenticate": {"schema": {"const": "Bearer"}}},
        "content": {
            JSON: {
                "schema": {"oneOf": [_strip_extensions(responses.ERROR), TWO_FACTOR_REQUIRED]},
                "examples": {
                    "failed": {
                        "summary": "Wrong credentials",
                        "value": ex.error(401) | {"message": "Authentication failed"},
                    },
                    "mfaRequired": {"summary": "Two-factor code required", "value": ex.MFA_REQUIRED},
                },
            }
        },
    }
    return op


class LoginHandler(BaseHandler):
    openapi = {
        "post": login_operation(
            examples={
                "request": {
                    "password": ("Email and password", {"email": "mark.essien@example.com", "password": ex.PASSWORD}),
                    "twoFactor": (
                        "With two-factor sign-in on: the code from the authenticator app (or a recovery code)",
                        {"email": "mark.essien@example.com", "password": ex.PASSWORD, "otp": "492039"},
                    ),
                },
                "response": ex.success(
                    "Login successful",
                    data={"accessToken": ex.ACCESS, "user": ex.USER},
                    user=ex.MARK_ID,
                    tokens=ex.PAIR,
                ),
            }
        ),
    }

    public = True

    async def post(self) -> None:
        body = self.json_body(schemas.LOGIN)
        user, pair = await self.services.auth.login(
            body["email"],
            body["password"],
            self.client_address(),
            user_agent=self.request.headers.get("User-Agent"),
            otp=body.get("otp"),
        )
        self.current_user = user  # so the access log names who logged in
        self.set_session_cookie(pair.cookie)
        self.send_success(
            "Login successful",
            data={"accessToken": pair["access"]["token"], "user": self.user_view(user)},
            user=str(user["_id"]),
            tokens=pair,
        )


class LogoutHandler(BaseHandler):
    """Ends the session of the given refresh token, or without one the session of the bearer token or cookie."""

    openapi = {
        "post": operation(
            "End the session of a refresh token, or (without one) of the bearer token or session cookie",
            "auth",
            204,
            body=schemas.LOGOUT,
            auth_needed=False,
            body_required=False,
            errors=(401,),
            examples={"request": {"refreshToken": ex.REFRESH}},
        ),
    }

    public = True

    async def post(self) -> None:
        refresh_token = self.refresh_token()
        if refresh_token is not None:
            await self.services.auth.logout(refresh_token=refresh_token)
        else:
            await self.authenticate()
            await self.services.auth.logout(session_id=self.session_id)
        self.clear_session_cookie()
        self.no_content()

    def refresh_token(self):
        """The body's refreshToken; any other body (none, empty, a form, `{}`) is ignored, as by the web app."""
        if self.media_type() != "application/json":
            return None
        body = self.json_body(schemas.LOGOUT_BODY)
        return body.get("refreshToken") if isinstance(body, dict) else None


class RefreshTokensHandler(BaseHandler):
    openapi = {
        "post": operation(
            "Rotate a refresh token into a new pair",
            "auth",
            200,
            responses.TOKEN_PAIR,
            body=schemas.REFRESH,
            auth_needed=False,
            errors=(401,),
            examples={"request": {"refreshToken": ex.REFRESH}, "response": ex.PAIR},
        ),
    }

    public = True

    async def post(self) -> None:
        body = self.json_body(schemas.REFRESH)
        self.send_json(await self.services.auth.refresh(body["refreshToken"]))


class ForgotPasswordHandler(BaseHandler):
    openapi = {
        "post": operation(
            "Email a reset link (204 whether or not the email exists)",
            "auth",
            204,
            body=schemas.FORGOT_PASSWORD,
            auth_needed=False,
            examples={"request": {"email": "mark.essien@example.com"}},
        ),
    }

    public = True

    async def post(self) -> None:
        body = self.json_body(schemas.FORGOT_PASSWORD)
        await self.services.auth.forgot_password(body["email"])
        self.no_content()


class ResetPasswordHandler(BaseHandler):
    openapi = {
        "post": operation(
            "Set a new password with a reset token; ends every session",
            "auth",
            204,
            body=schemas.RESET_PASSWORD,
            query=schemas.TOKEN_QUERY,
            auth_needed=False,
            errors=(401,),
            examples={"request": {"password": "a brand new password"}},
        ),
    }

    public = True

    async def post(self) -> None:
        token = self.query(schemas.TOKEN_QUERY)["token"]
        body = self.json_body(schemas.RESET_PASSWORD)
        await self.services.auth.reset_password(token, body["password"])
        self.no_content()


class ChangePasswordHandler(BaseHandler):
    openapi = {
        "post": operation(
            "Change the caller's password; ends their other sessions",
            "auth",
            204,
            body=schemas.CHANGE_PASSWORD,
            errors=(429,),
            examples={
                "request": {
                    "email": "mark.essien@example.com",
                    "password": ex.PASSWORD,
                    "newPassword": "a brand new password",
                }
            },
        ),
    }

    async def post(self) -> None:
        body = self.json_body(schemas.CHANGE_PASSWORD)
        await self.services.auth.change_password(
            self.current_user,
            self.session_id,
            body["email"],
            body["password"],
            body["newPassword"],
            self.client_address(),
            access_jti=self.current_jti,
        )
        self.no_content()


class SendVerificationEmailHandler(BaseHandler):
    openapi = {
        "post": operation(
            "Email a verify link to the caller",
            "auth",
            204,
            body=schemas.EMPTY,
            body_required=False,
            examples={"request": {}},
        ),
    }

    async def post(self) -> None:
        await self.services.auth.send_verification(self.current_user)
        self.no_content()


class VerifyEmailHandler(BaseHandler):
    openapi = {
        "post": operation(
            "Mark the email as verified with a verify token",
            "auth",
            204,
            body=schemas.EMPTY,
            query=schemas.TOKEN_QUERY,
            auth_needed=False,
            body_required=False,
            errors=(401,),
            examples={"request": {}},
        ),
    }

    public = True

    async def post(self) -> None:
        token = self.query(schemas.TOKEN_QUERY)["token"]
        await self.services.auth.verify_email(token)
        self.no_content()


SESSION = closed(
    {
        "id": ID,
        "createdAt": TIME,
        "lastUsedAt": TIME,
        "expiresAt": TIME,
        "userAgent": NULLABLE_STRING,
        "ipAddress": NULLABLE_STRING,
        "current": {"type": "boolean"},
    }
)

SESSIONS = closed({"sessions": {"type": "array", "items": SESSION}})


class SessionsHandler(BaseHandler):
    """GET /auth/sessions: the caller's live sessions; DELETE: every one of them but the current one."""

    openapi = {
        "get": operation(
            "The caller's live sessions (devices), newest first; `current` marks this request's",
            "auth",
            200,
            SESSIONS,
            examples={
                "response": {
                    "sessions": [
                        {
                            "id": "665f1c2ab3e4d5f6a7b8c9f2",
                            "createdAt": "2026-01-15T09:30:00.000Z",
                            "lastUsedAt": "2026-01-15T11:02:00.000Z",
                            "expiresAt": "2026-02-14T09:30:00.000Z",
                            "userAgent": "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X)",
                            "ipAddress": "203.0.113.7",
                            "current": True,
                        },
                        {
                            "id": "665f1c2ab3e4d5f6a7b8c9f1",
                            "createdAt": "2026-01-02T18:00:00.000Z",
                            "lastUsedAt": "2026-01-14T21:40:00.000Z",
                            "expiresAt": "2026-02-13T21:40:00.000Z",
                            "userAgent": "okhttp/4.12.0",
                            "ipAddress": "198.51.100.23",
                            "current": False,
                        },
                    ]
                }
            },
        ),
        "delete": operation("End every session of the caller but the current one", "auth", 204),
    }

    async def get(self) -> None:
        sessions = await self.services.sessions.live_sessions(self.current_user)
        self.send_json({"sessions": [session_model.public_view(session, self.session_id) for session in sessions]})

    async def delete(self) -> None:
        await self.services.sessions.end_all(self.current_user["_id"], keep=self.session_id)
        self.no_content()


class SessionHandler(BaseHandler):
    """DELETE /auth/sessions/:id: end one of the caller's sessions (its tokens and cookie), at once."""

    openapi = {
        "delete": operation(
            "End one of the caller's sessions at once (its tokens and cookie); another user's or an unknown id: 404",
            "auth",
            204,
            path=("sessionId",),
        ),
    }

    async def delete(self, raw_id: str) -> None:
        session_id = self.path_id(raw_id, "Session")
        await self.services.sessions.end_mine(self.current_user["_id"], session_id)
        if session_id == self.session_id:
            self.clear_session_cookie()
        self.no_content()


TWO_FACTOR_SETUP = closed(
    {
        "secret": {"type": "string", "pattern": "^[A-Z2-7]+=*$"},
        "otpauthUrl": {"type": "string", "format": "uri", "description": "otpauth://totp/..."},
    }
)


class TwoFactorSetupHandler(BaseHandler):
    """POST /auth/2fa/setup: a new TOTP secret, pending until enabled."""

    openapi = {
        "post": operation(
            "Start setting up two-factor sign-in: a new TOTP secret (pending until enabled; replaces a pending one); "
            "the password is re-checked and counted like a login",
            "auth",
            200,
            TWO_FACTOR_SETUP,
            body=schemas.TWO_FACTOR_SETUP,
            errors=(429,),
            examples={
                "request": {"currentPassword": ex.PASSWORD},
                "response": {
                    "secret": ex.TOTP_SECRET,
                    "otpauthUrl": "otpauth://totp/Accounts:mark.essien%40example.com"
                    f"?secret={ex.TOTP_SECRET}&issuer=Accounts",
                },
            },
        ),
    }

    async def post(self) -> None:
        body = self.json_body(schemas.TWO_FACTOR_SETUP)
        self.send_json(
            await self.services.two_factor.setup(self.current_user, body["currentPassword"], self.client_address())
        )


RECOVERY_CODES = closed(
    {"recoveryCodes": {"type": "array", "items": {"type": "string"}, "minItems": 10, "maxItems": 10}}
)


class TwoFactorEnableHandler(BaseHandler):
    """POST /auth/2fa/enable: turn it on with a current code; the recovery codes, shown this once."""

    openapi = {
        "post": operation(
            "Turn two-factor sign-in on with a current code of the pending secret; returns 10 single-use recovery "
            "codes, shown this once; the caller's other sessions end; each try counts as a login attempt",
            "auth",
            200,
            RECOVERY_CODES,
            body=schemas.TWO_FACTOR_ENABLE,
            errors=(429,),
            examples={
                "request": {"code": "492039"},
                "response": {
                    "recoveryCodes": [
                        code
                        for code in (
                            "k7qm-2xwd-p4ta-vnre",
                            "b3zs-q6hy-m2lc-t7fa",
                            "w5gj-r4kp-x3ne-d6ub",
                            "h2vt-n7ca-z5qs-e4lm",
                            "p6df-y3bw-k2rx-j5gn",
                            "c4ue-m6zt-v7hq-s2ka",
                            "t3nb-g5xw-a6dp-r7jy",
                            "f7kc-w2qe-u4zm-b3hs",
                            "y5ra-d3vn-q7tg-m6wx",
                            "n2hp-s4jb-e5ka-z3cu",
                        )
                    ]
                },
            },
        ),
    }

    async def post(self) -> None:
        body = self.json_body(schemas.TWO_FACTOR_ENABLE)
        codes = await self.services.two_factor.enable(
            self.current_user,
            body["code"],
            self.client_address(),
            session_id=self.session_id,
            access_jti=self.current_jti,
        )
        self.send_json({"recoveryCodes": codes})


class TwoFactorDisableHandler(BaseHandler):
    """POST /auth/2fa/disable: turn it off with the password and a code or a recovery code."""

    openapi = {
        "post": operation(
            "Turn two-factor sign-in off with the password and a current code or an unused recovery code; the "
            "caller's other sessions end",
            "auth",
            204,
            body=schemas.TWO_FACTOR_DISABLE,
            errors=(429,),
            examples={
                "request": {
                    "totp": ("With a current code", {"currentPassword": ex.PASSWORD, "code": "492039"}),
                    "recovery": (
                        "With an unused recovery code (the device is lost)",
                        {"currentPassword": ex.PASSWORD, "code": "k7qm-2xwd-p4ta-vnre"},
                    ),
                }
            },
        ),
    }

    async def post(self) -> None:
        body = self.json_body(schemas.TWO_FACTOR_DISABLE)
        await self.services.two_factor.disable(
            self.current_user,
            body["currentPassword"],
            body["code"],
            self.client_address(),
            session_id=self.session_id,
            access_jti=self.current_jti,
        )
        self.no_content()
