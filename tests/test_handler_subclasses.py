"""What BaseHandler.__init_subclass__ gives every handler, checked on handlers defined here, at test time.

Every method of a subclass, inherited 405 ones included, is wrapped so that a refusal prepare() decided
(no credentials, a body over the limit) is given only once the body is read and before the method runs.
The classes are defined inside the tests so that the class creation itself is what is tested (mutmut
changes code at call time; the service's own handlers were created at import).
"""
import json

import pytest

from handlers.base import HTTP_METHODS, BaseHandler
from tests.helpers import sign_up
from tests.test_keepalive import exchange, one_connection, run

pytestmark = pytest.mark.gen_test


def probe_classes():
    """A private handler that records each call, and a public one that inherits all but GET."""
    calls = []

    class Private(BaseHandler):
        async def post(self):
            calls.append("post")
            self.send_success("done")

    class Public(BaseHandler):
        public = True

        def get(self):  # a plain method, not a coroutine: the wrapper must run both kinds
            calls.append("get")
            self.send_success("hello")

    return Private, Public, calls


async def test_every_method_of_a_new_handler_is_wrapped_once_the_inherited_ones_included():
    Private, Public, _ = probe_classes()
    for cls in (Private, Public):
        for name in HTTP_METHODS:
            method = getattr(cls, name)
            assert method.after_body is True, (cls.__name__, name)
            assert not getattr(method.__wrapped__, "after_body", False), (cls.__name__, name)  # wrapped once
    assert Private.post.__wrapped__.__qualname__.endswith("Private.post")
    assert Public.get.__wrapped__.__qualname__.endswith("Public.get")

    class Narrower(Public):  # a subclass of a subclass inherits the wrapped methods as they are
        pass

    assert all(getattr(Narrower, name) is getattr(Public, name) for name in HTTP_METHODS)


async def test_a_refusal_comes_before_the_method_runs_and_the_connection_stays_usable(app, base_url, api):
    Private, Public, calls = probe_classes()
    app.add_handlers(r".*", [(r"/probe/private", Private), (r"/probe/public", Public)])
    token, _ = await sign_up(api, "mark@example.com")
    connection = one_connection(base_url)
    try:
        refused = await run(exchange, connection, "POST", "/probe/private", b'{"x": 1}',
                            {"Content-Type": "application/json"})
        allowed = await run(exchange, connection, "POST", "/probe/private", b"{}",
                            {"Content-Type": "application/json", "Authorization": f"Bearer {token}"})
        greeted = await run(exchange, connection, "GET", "/probe/public")
        not_allowed = await run(exchange, connection, "DELETE", "/probe/public")
    finally:
        connection.close()
    assert (refused[0], json.loads(refused[2])["code"]) == (401, 401), refused
    assert (allowed[0], json.loads(allowed[2])["message"]) == (200, "done"), allowed
    assert (greeted[0], json.loads(greeted[2])["message"]) == (200, "hello"), greeted
    assert (not_allowed[0], json.loads(not_allowed[2])["code"]) == (405, 405), not_allowed
    assert calls == ["post", "get"]  # the refused POST and the 405 never ran a method body
    assert len({refused[3], allowed[3], greeted[3], not_allowed[3]}) == 1  # one connection throughout
