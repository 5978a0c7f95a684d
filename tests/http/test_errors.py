"""The one error path: every failure, Tornado's own included, leaves in the contract's envelope."""

import asyncio
import json
from urllib.parse import urlparse

import pytest

from tests.helpers import PASSWORD, assert_error, error_fields

pytestmark = pytest.mark.gen_test


async def test_unknown_route_is_404_in_the_envelope(api):
    for method in ("GET", "POST", "DELETE"):
        response = await api.request(method, "/no/such/route", body=b"" if method != "GET" else None)
        assert_error(response, 404, "Not found")
        assert response.headers["Content-Type"].startswith("application/json")


async def test_unsupported_method_is_405(api):
    assert_error(await api.delete("/auth/login"), 405)
    assert_error(await api.get("/auth/register"), 405)
    assert_error(await api.request("BREW", "/health"), 405)


async def test_malformed_json_is_400(api):
    for raw in (b"{bad", b'{"email": "a@b.co",}', b"\xff\xfe", b'{"a": NaN}', b"[" * 100000):
        response = await api.post("/auth/login", body=raw, headers={"Content-Type": "application/json"})
        assert_error(response, 400, "Malformed JSON body")


async def test_json_that_is_not_an_object_is_422(api):
    for raw in (b"[]", b'"text"', b"42", b"null"):
        response = await api.post("/auth/login", body=raw, headers={"Content-Type": "application/json"})
        assert error_fields(response) == {"body": "must be an object"}


async def test_wrong_content_type_is_415(api):
    response = await api.post(
        "/auth/login", body=b"email=a@b.co&password=x", headers={"Content-Type": "application/x-www-form-urlencoded"}
    )
    assert_error(response, 415)
    response = await api.post("/auth/login", body=b'{"email": "a@b.co"}', headers={"Content-Type": "text/plain"})
    assert_error(response, 415)
    response = await api.post(
        "/auth/login",
        body=b'{"email": "a@b.co", "password": "x"}',
        headers={"Content-Type": "application/json; charset=UTF-8"},
    )
    assert_error(response, 401)


@pytest.mark.gen_test(timeout=30)
async def test_body_over_the_limit_is_413_and_nothing_is_written(api, store):
    padding = "x" * (3 * 1024 * 1024)
    response = await api.post(
        "/auth/register",
        json={"firstName": "Big", "lastName": padding, "email": "big@example.com", "password": PASSWORD},
    )
    assert_error(response, 413, "Request body too large")
    assert await store.users.count_documents({}) == 0

    # Chunked, with no Content-Length: counted as it arrives.
    async def chunks(write):
        for _ in range(3):
            await write(b"x" * (1024 * 1024))

    response = await api.post("/auth/register", body_producer=chunks, headers={"Content-Type": "application/json"})
    assert_error(response, 413, "Request body too large")
    # The server is still fine afterwards.
    assert (await api.get("/health")).code == 200


@pytest.mark.gen_test(timeout=30)
async def test_body_far_over_the_limit_is_413_before_a_byte_of_it_is_read(http_server, base_url, services, store):
    # A raw connection that sends only the headers: the 413 must come without the body being sent, and
    # the server then closes the connection rather than read 9 MiB. (An HTTP client still pushing such a
    # body can see that close as a reset before it reads the answer; that is TCP, not a server choice.)
    reader, writer = await asyncio.open_connection("127.0.0.1", urlparse(base_url).port)
    writer.write(
        b"POST /auth/register HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
        b"Content-Length: %d\r\n\r\n" % (9 * 1024 * 1024)
    )
    await writer.drain()
    answer = await asyncio.wait_for(reader.read(-1), 20)  # read(-1) returns only once the server closes
    writer.close()
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 413 "), answer[:300]
    assert json.loads(body) == {
        "status": "Bad request",
        "statusCode": 413,
        "code": 413,
        "message": "Request body too large",
    }
    assert await store.users.count_documents({}) == 0


@pytest.mark.gen_test
async def test_every_response_has_security_headers_and_a_request_id(api):
    registered = await api.post(
        "/auth/register", json={"name": "Mark Essien", "email": "mark@example.com", "password": PASSWORD}
    )
    # API answers of every kind: JSON successes, an empty 204, and errors in the envelope.
    answers = (
        registered,
        await api.get("/health"),
        await api.get("/nope"),
        await api.post("/auth/login", json={"email": "mark@example.com", "password": PASSWORD}),
        await api.post("/auth/forgot-password", json={"email": "mark@example.com"}),
        await api.post("/auth/login", json={"email": "mark@example.com", "password": "wrong password"}),
        await api.post("/auth/login", json={}),
    )
    assert [r.code for r in answers] == [201, 200, 404, 200, 204, 401, 422]
    for response in answers:
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["X-Frame-Options"] == "DENY"
        assert response.headers["Cache-Control"] == "no-store"
        assert response.headers["Referrer-Policy"] == "no-referrer"
        assert response.headers["Content-Security-Policy"] == "default-src 'none'; frame-ancestors 'none'"
        assert len(response.headers["X-Request-ID"]) == 32
    given = await api.get("/health", headers={"X-Request-ID": "abc-123"})
    assert given.headers["X-Request-ID"] == "abc-123"
    forged = await api.get("/health", headers={"X-Request-ID": "bad id <script>"})
    assert forged.headers["X-Request-ID"] != "bad id <script>"


async def test_no_cors_headers_without_configured_origins(api):
    response = await api.request(
        "OPTIONS",
        "/auth/login",
        headers={"Origin": "https://evil.example.com", "Access-Control-Request-Method": "POST"},
    )
    assert response.code == 204
    assert "Access-Control-Allow-Origin" not in response.headers


class TestCors:
    @pytest.fixture
    def settings_env(self):
        return {"CORS_ORIGINS": "https://app.example.com, https://admin.example.com"}

    async def test_listed_origins_get_preflight_and_response_headers(self, api):
        # What Chromium asks before the task-board app's requests: its own names, lower-case, comma-joined.
        asked = "access-control-allow-origin,authorization,content-type,x-csrf-token"
        preflight = await api.request(
            "OPTIONS",
            "/auth/change-password",
            headers={
                "Origin": "https://app.example.com",
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": asked,
            },
        )
        assert preflight.code == 204
        assert preflight.headers["Access-Control-Allow-Origin"] == "https://app.example.com"
        assert preflight.headers["Access-Control-Allow-Headers"] == asked
        assert preflight.headers["Access-Control-Allow-Methods"] == "GET, POST, PUT, PATCH, DELETE"
        assert preflight.headers["Access-Control-Allow-Credentials"] == "true"
        response = await api.get("/health", headers={"Origin": "https://admin.example.com"})
        assert response.headers["Access-Control-Allow-Origin"] == "https://admin.example.com"
        # A cache must key this answer on Origin: the header is on every response, the token itself.
        assert "Origin" in [v.strip() for v in response.headers["Vary"].split(",")]
        assert [v.strip() for v in (await api.get("/health")).headers["Vary"].split(",")] == ["Origin"]
        assert response.headers["Access-Control-Allow-Credentials"] == "true"
        error = await api.get("/users/getFav", headers={"Origin": "https://admin.example.com"})
        assert error.code == 401 and error.headers["Access-Control-Allow-Credentials"] == "true"
        for other in (
            await api.get("/health", headers={"Origin": "https://evil.example.com"}),
            await api.request(
                "OPTIONS",
                "/users/user",
                headers={
                    "Origin": "https://evil.example.com",
                    "Access-Control-Request-Method": "GET",
                    "Access-Control-Request-Headers": asked,
                },
            ),
        ):
            assert not [name for name in other.headers if name.lower().startswith("access-control-")], other.headers

    async def test_preflight_without_requested_headers_allows_none_and_varies_on_them(self, api):
        preflight = await api.request(
            "OPTIONS",
            "/users/user",
            headers={"Origin": "https://app.example.com", "Access-Control-Request-Method": "DELETE"},
        )
        assert preflight.code == 204 and "Access-Control-Allow-Headers" not in preflight.headers
        assert preflight.headers["Access-Control-Allow-Methods"] == "GET, POST, PUT, PATCH, DELETE"
        assert preflight.headers["Access-Control-Max-Age"] == "600"
        # Caches must key the preflight on the headers asked for too, not only on the Origin.
        assert preflight.headers.get_list("Vary") == ["Origin", "Access-Control-Request-Headers"]

    async def test_requested_headers_that_are_not_header_names_are_not_echoed(self, api):
        for asked in ("x-a\tb", "x-a;evil", "a,,b", "x" * 0):
            preflight = await api.request(
                "OPTIONS",
                "/users/user",
                headers={
                    "Origin": "https://app.example.com",
                    "Access-Control-Request-Method": "GET",
                    "Access-Control-Request-Headers": asked,
                },
            )
            assert preflight.code == 204 and "Access-Control-Allow-Headers" not in preflight.headers, asked
