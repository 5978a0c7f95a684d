"""What BaseHandler.__init_subclass__ gives every handler, checked on handlers defined here, at test time.

Every method of a subclass, inherited 405 ones included, is wrapped so that a refusal prepare() decided
(no credentials, a body over the limit) is given only once the body is read and before the method runs.
The classes are defined inside the tests so that the class creation itself is what is tested (mutmut
changes code at call time; the service's own handlers were created at import).
"""

import asyncio
import json

import pytest
from tornado.web import HTTPError

from handlers.base import HTTP_METHODS, BaseHandler
from tests.helpers import sign_up
from tests.wire import exchange, one_connection, run

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
        refused = await run(
            exchange, connection, "POST", "/probe/private", b'{"x": 1}', {"Content-Type": "application/json"}
        )
        allowed = await run(
            exchange,
            connection,
            "POST",
            "/probe/private",
            b"{}",
            {"Content-Type": "application/json", "Authorization": f"Bearer {token}"},
        )
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


# ---- failures no route of the service gives today, answered in the envelope all the same ----------------


def public_handler(method):
    """A public handler class whose GET is method."""
    return type("Probe", (BaseHandler,), {"public": True, "get": method})


async def test_an_http_error_of_a_status_without_a_name_or_reason_is_the_envelope_with_a_plain_message(app, api):
    def get(self):
        raise HTTPError(499)  # no reason given, and httputil.responses has no name for 499

    app.add_handlers(r".*", [(r"/probe/odd", public_handler(get))])
    response = await api.get("/probe/odd")
    assert response.code == 499
    assert response.headers["Content-Type"] == "application/json; charset=UTF-8"
    assert response.json == {"status": "Bad request", "statusCode": 499, "code": 499, "message": "Error"}


async def test_a_handler_whose_own_task_is_cancelled_answers_the_500_envelope(app, api, caplog):
    async def get(self):
        asyncio.current_task().cancel()  # Tornado then sends send_error(500) without exc_info
        await asyncio.sleep(0)

    app.add_handlers(r".*", [(r"/probe/cancelled", public_handler(get))])
    response = await api.get("/probe/cancelled")
    assert response.code == 500
    assert response.json == {"status": "Error", "statusCode": 500, "code": 500, "message": "Internal server error"}
    assert not [r for r in caplog.records if "write_error" in r.getMessage()]  # write_error itself did not fail
