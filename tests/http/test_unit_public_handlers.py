"""Which routes skip BaseHandler's authentication (`public = True`): exactly the listed ones. A new public
route, or one made public by mistake, fails here until it is added to the list on purpose."""

from handlers.base import BaseHandler
from handlers.routes import routes

PUBLIC_ROUTES = {
    r"/",
    r"/health",
    r"/ready",
    r"/metrics",
    r"/openapi.json",
    r"/docs",
    r"/docs/init.js",
    r"/auth/register",
    r"/auth/login",
    r"/auth/logout",
    r"/auth/refresh-tokens",
    r"/auth/forgot-password",
    r"/auth/reset-password",
    r"/auth/verify-email",
    r"/users/([^/]+)/photo",
    r"/users/user",  # signed out it answers null; get() authenticates
    r"/verify-email",
    r"/verify-email/done",
    r"/verify-email/resend",
    r"/forgot-password",
    r"/reset-password",
    r"/reset-password/done",
    r"/pages/forms.js",
    # The email-change undo: the person who lost the account has only the link.
    r"/email-change/undo",
    r"/email-change/undo/done",
}


def api_routes() -> list:
    """(pattern, handler class) of every route served by a BaseHandler."""
    return [(route[0], route[1]) for route in routes() if issubclass(route[1], BaseHandler)]


def test_only_the_listed_routes_are_public():
    public = {pattern for pattern, handler in api_routes() if handler.public}
    assert public == PUBLIC_ROUTES


def test_public_is_a_boolean_and_off_by_default():
    assert BaseHandler.public is False
    for pattern, handler in api_routes():
        assert handler.public in (True, False), pattern
        assert not hasattr(handler, "authentication"), pattern  # the old string attribute is gone
