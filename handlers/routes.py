"""The Application and its whole route table, in one place."""

from tornado.web import Application

from handlers import auth, docs, health, metrics, organisations, pages, users
from handlers.access_log import label_routes, log_request


def routes() -> list:
    """Every route of the service. Order matters where a word could be mistaken for an id."""
    return [
        (r"/", pages.HomePage),
        (r"/health", health.HealthHandler),
        (r"/ready", health.ReadyHandler),
        (r"/metrics", metrics.MetricsHandler),
        (r"/openapi.json", docs.OpenApiHandler),
        (r"/docs", docs.DocsIndexHandler, {"name": "index.html"}),
        (r"/docs/init.js", docs.DocsPageHandler, {"name": "init.js"}),
        (r"/docs/assets/(.*)", docs.DocsAssetHandler, {"path": docs.SWAGGER_ASSETS}),
        (r"/auth/register", auth.RegisterHandler),
        (r"/auth/login", auth.LoginHandler),
        (r"/auth/logout", auth.LogoutHandler),
        (r"/auth/refresh-tokens", auth.RefreshTokensHandler),
        (r"/auth/forgot-password", auth.ForgotPasswordHandler),
        (r"/auth/reset-password", auth.ResetPasswordHandler),
        (r"/auth/change-password", auth.ChangePasswordHandler),
        (r"/auth/send-verification-email", auth.SendVerificationEmailHandler),
        (r"/auth/verify-email", auth.VerifyEmailHandler),
        (r"/auth/2fa/setup", auth.TwoFactorSetupHandler),
        (r"/auth/2fa/enable", auth.TwoFactorEnableHandler),
        (r"/auth/2fa/disable", auth.TwoFactorDisableHandler),
        (r"/auth/sessions", auth.SessionsHandler),
        (r"/auth/sessions/([^/]+)", auth.SessionHandler),
        # /users: the fixed words come first, since none of them is a user id.
        (r"/users", users.UsersHandler),
        (r"/users/user", users.CurrentUserHandler),
        (r"/users/getFav", users.FavouritesHandler),
        (r"/users/getUsers", users.SearchHandler),
        (r"/users/usersByMonth", users.SignupsByMonthHandler),
        (r"/users/addToFav", users.AddFavouriteHandler),
        (r"/users/removeFromFav", users.RemoveFavouriteHandler),
        (r"/users/deleteProfilePic/([^/]+)", users.DeletePhotoHandler),
        (r"/users/([^/]+)/photo", users.PhotoHandler),
        # Anything else is an id; parse_object_id answers 404 for a malformed one.
        (r"/users/([^/]+)", users.UserHandler),
        # /api
        (r"/api/users/([^/]+)", organisations.ApiUserHandler),
        (r"/api/organisations", organisations.OrganisationsHandler),
        (r"/api/organisations/([^/]+)", organisations.OrganisationHandler),
        (r"/api/organisations/([^/]+)/users", organisations.OrganisationUsersHandler),
        (r"/api/organisations/([^/]+)/users/([^/]+)", organisations.MembershipHandler),
        (r"/api/invitations", organisations.InvitationsHandler),
        (r"/api/invitations/([^/]+)/accept", organisations.AcceptInvitationHandler),
        (r"/api/invitations/([^/]+)", organisations.InvitationHandler),
        # The pages behind the links in emails.
        (r"/verify-email", pages.VerifyEmailPage),
        (r"/verify-email/resend", pages.ResendVerificationPage),
        (r"/verify-email/done", pages.EmailVerifiedPage),
        (r"/reset-password", pages.ResetPasswordPage),
        (r"/reset-password/done", pages.PasswordChangedPage),
        (r"/forgot-password", pages.ForgotPasswordPage),
        (r"/email-change/undo", pages.EmailChangeUndoPage),
        (r"/email-change/undo/done", pages.EmailChangeUndonePage),
        (r"/pages/forms.js", pages.FormsScript),
    ]


def slash_optional(table: list) -> list:
    """The same routes, each also answering with one trailing slash: `/users/` is `/users` (the task-board
    app calls both). Served, not redirected: a redirected POST or PUT would lose its body in some clients."""
    return [(pattern + "/?", *rest) for pattern, *rest in table]


class AccountsApplication(Application):
    """The Tornado application, knowing its requests in flight so SIGTERM can wait for them."""

    shutting_down = False

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # The handlers of the requests in flight: a set, so a request is counted once however it ends.
        self.requests = set()

    @property
    def in_flight(self) -> int:
        return len(self.requests)


def make_app(services, config) -> AccountsApplication:
    """Build the application around one set of services."""
    app = AccountsApplication(
        slash_optional(routes()),
        default_handler_class=pages.NotFoundPage,  # a page for browsers, the JSON 404 for API clients
        services=services,
        config=config,
        log_function=log_request,
        template_path=pages.TEMPLATES,
        # Only the HTML form pages use the xsrf cookie; the JSON API never checks it.
        xsrf_cookie_kwargs=pages.xsrf_cookie_kwargs(config),
    )
    label_routes(app)
    return app
