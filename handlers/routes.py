"""The Application and its whole route table, in one place."""
from tornado.web import Application

from handlers import auth, health
from handlers.access_log import log_request
from handlers.base import NotFoundHandler


def routes() -> list:
    """Every route of the service. Order matters where a word could be mistaken for an id."""
    return [
        (r"/health", health.HealthHandler),
        (r"/ready", health.ReadyHandler),
        (r"/auth/register", auth.RegisterHandler),
        (r"/auth/login", auth.LoginHandler),
        (r"/auth/logout", auth.LogoutHandler),
        (r"/auth/refresh-tokens", auth.RefreshTokensHandler),
        (r"/auth/forgot-password", auth.ForgotPasswordHandler),
        (r"/auth/reset-password", auth.ResetPasswordHandler),
        (r"/auth/change-password", auth.ChangePasswordHandler),
        (r"/auth/send-verification-email", auth.SendVerificationEmailHandler),
        (r"/auth/verify-email", auth.VerifyEmailHandler),
        # -- /users routes --
        # -- /api routes --
        # -- pages --
    ]


class AccountsApplication(Application):
    """The Tornado application, counting requests in flight so SIGTERM can wait for them."""

    in_flight = 0


def make_app(services, config) -> AccountsApplication:
    """Build the application around one set of services."""
    return AccountsApplication(
        routes(),
        default_handler_class=NotFoundHandler,
        services=services,
        config=config,
        log_function=log_request,
    )
