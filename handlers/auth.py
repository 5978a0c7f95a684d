"""The /auth endpoints."""

from handlers.base import BaseHandler
from models import sessions as session_model
from models.schemas import auth as schemas


class RegisterHandler(BaseHandler):
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


class LoginHandler(BaseHandler):
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
    public = True

    async def post(self) -> None:
        body = self.json_body(schemas.REFRESH)
        self.send_json(await self.services.auth.refresh(body["refreshToken"]))


class ForgotPasswordHandler(BaseHandler):
    public = True

    async def post(self) -> None:
        body = self.json_body(schemas.FORGOT_PASSWORD)
        await self.services.auth.forgot_password(body["email"])
        self.no_content()


class ResetPasswordHandler(BaseHandler):
    public = True

    async def post(self) -> None:
        token = self.query(schemas.TOKEN_QUERY)["token"]
        body = self.json_body(schemas.RESET_PASSWORD)
        await self.services.auth.reset_password(token, body["password"])
        self.no_content()


class ChangePasswordHandler(BaseHandler):
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
    async def post(self) -> None:
        await self.services.auth.send_verification(self.current_user)
        self.no_content()


class VerifyEmailHandler(BaseHandler):
    public = True

    async def post(self) -> None:
        token = self.query(schemas.TOKEN_QUERY)["token"]
        await self.services.auth.verify_email(token)
        self.no_content()


class SessionsHandler(BaseHandler):
    """GET /auth/sessions: the caller's live sessions; DELETE: every one of them but the current one."""

    async def get(self) -> None:
        sessions = await self.services.sessions.live_sessions(self.current_user)
        self.send_json({"sessions": [session_model.public_view(session, self.session_id) for session in sessions]})

    async def delete(self) -> None:
        await self.services.sessions.end_all(self.current_user["_id"], keep=self.session_id)
        self.no_content()


class SessionHandler(BaseHandler):
    """DELETE /auth/sessions/:id: end one of the caller's sessions (its tokens and cookie), at once."""

    async def delete(self, raw_id: str) -> None:
        session_id = self.path_id(raw_id, "Session")
        await self.services.sessions.end_mine(self.current_user["_id"], session_id)
        if session_id == self.session_id:
            self.clear_session_cookie()
        self.no_content()


class TwoFactorSetupHandler(BaseHandler):
    """POST /auth/2fa/setup: a new TOTP secret, pending until enabled."""

    async def post(self) -> None:
        body = self.json_body(schemas.TWO_FACTOR_SETUP)
        self.send_json(
            await self.services.two_factor.setup(self.current_user, body["currentPassword"], self.client_address())
        )


class TwoFactorEnableHandler(BaseHandler):
    """POST /auth/2fa/enable: turn it on with a current code; the recovery codes, shown this once."""

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
