"""Keep-alive holds after every answer, errors included (HTTP/1.1 pools, OkHttp, URLSession, nginx upstreams).

Tornado closes a connection it answered before reading the request body, without saying so; the next
request on it then meets a reset. Each refusal is therefore given once the body is read; the answers that
cannot wait (a body declared far over the limit) say `Connection: close`.
"""

import json

import pytest

from tests.helpers import PASSWORD
from tests.wire import exchange, one_connection, run

pytestmark = pytest.mark.gen_test

LIMIT = 2048  # MAX_BODY_BYTES here, so a body just over it is cheap to send


@pytest.fixture
def settings_env():
    return {"MAX_BODY_BYTES": str(LIMIT)}


def error_and_success_rounds(connection, token: str) -> list:
    bearer = {"Authorization": f"Bearer {token}"}
    as_json = {"Content-Type": "application/json"}
    errors = [
        ("GET", "/users/getFav", None, {}, 401),
        ("PUT", "/users/addToFav", b'{"boardId": "b"}', as_json, 401),  # refused with a body to drop
        ("GET", "/users/user", None, {"Authorization": "Bearer nonsense"}, 401),
        ("GET", "/no/such/route", None, {}, 404),
        ("POST", "/no/such/route", b"x" * 500, {"Content-Type": "text/plain"}, 404),
        ("POST", "/auth/login", b"email=a", {"Content-Type": "text/plain"}, 415),
        ("POST", "/auth/register", b"{}", as_json, 422),
        ("POST", "/auth/register", b"x" * (LIMIT + 100), as_json, 413),  # small-over-limit: read, then refused
        ("DELETE", "/health", None, {}, 405),
        ("POST", "/auth/login", b"{not json", as_json, 400),
    ]
    successes = [
        ("GET", "/health", None, {}, 200),
        ("GET", "/users/user/", None, bearer, 200),
        ("POST", "/auth/login", json.dumps({"email": "mark@example.com", "password": PASSWORD}).encode(), as_json, 200),
        ("PUT", "/users/addToFav", b'{"boardId": "b"}', {**as_json, **bearer}, 200),
        ("POST", "/auth/forgot-password", b'{"email": "nobody@example.com"}', as_json, 204),
    ]
    seen = []
    for index, (method, path, body, headers, expected) in enumerate(errors):
        for request in ((method, path, body, headers, expected), successes[index % len(successes)]):
            status, response_headers, _, port = exchange(connection, *request[:4])
            seen.append((request[0], request[1], status, response_headers.get("Connection"), port))
            assert status == request[4], seen
    return seen


@pytest.mark.gen_test(timeout=60)
async def test_twenty_alternating_errors_and_successes_share_one_connection(http_server, base_url, api):
    token = (await api.register())["tokens"]["access"]["token"]
    connection = one_connection(base_url)
    try:
        seen = await run(error_and_success_rounds, connection, token)
    finally:
        connection.close()
    assert len(seen) == 20
    assert {port for *_, port in seen} == {seen[0][-1]}, seen  # never reconnected
    assert all(connection_header is None for *_, connection_header, _ in seen), seen


def declared_far_too_large(connection) -> tuple:
    """Headers of a body eight times over the limit, and no body: the answer cannot wait for it."""
    connection.putrequest("POST", "/auth/register")
    connection.putheader("Content-Type", "application/json")
    connection.putheader("Content-Length", str(LIMIT * 8 + 1))
    connection.endheaders()
    response = connection.getresponse()
    return response.status, response.headers.get("Connection"), response.read()


@pytest.mark.gen_test(timeout=60)
async def test_a_body_declared_far_over_the_limit_is_refused_at_once_and_says_connection_close(http_server, base_url):
    connection = one_connection(base_url)
    try:
        status, connection_header, body = await run(declared_far_too_large, connection)
        assert (status, connection_header) == (413, "close")
        assert json.loads(body)["message"] == "Request body too large"
        # http.client honours the header: the next request opens a new connection and is served.
        status, *_ = await run(exchange, connection, "GET", "/health")
        assert status == 200
    finally:
        connection.close()


def unknown_method(connection) -> tuple:
    status, headers, _, _ = exchange(connection, "BREW", "/health")
    return status, headers.get("Connection")


@pytest.mark.gen_test(timeout=60)
async def test_a_method_tornado_refuses_before_the_body_says_connection_close(http_server, base_url):
    connection = one_connection(base_url)
    try:
        assert await run(unknown_method, connection) == (405, "close")
        status, *_ = await run(exchange, connection, "GET", "/health")
        assert status == 200
    finally:
        connection.close()
