"""The one error path: every failure, Tornado's own included, leaves in the contract's envelope."""

import asyncio
import json
import logging
from urllib.parse import urlparse

import pytest
from pymongo.errors import ServerSelectionTimeoutError

from tests.helpers import PASSWORD, assert_error, caller, error_fields
from tests.wire import raw_exchange

pytestmark = pytest.mark.gen_test

API_CSP = "default-src 'none'; frame-ancestors 'none'"
ACCESS_CONTROL = "access-control-"


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


@pytest.mark.gen_test
async def test_json_media_type_is_matched_without_case_or_spacing(api):
    """Guard held by mutation testing: kills media_type's lower() or strip() dropped, or the 415 message altered
    (mutmut)."""
    body = b'{"email": "ada@example.com", "password": "wrong password"}'
    for content_type in ("Application/JSON", " application/json ; charset=utf-8", "application/json;charset=UTF-8"):
        assert_error(await api.post("/auth/login", body=body, headers={"Content-Type": content_type}), 401)
    for content_type in ("application/jsonp", "text/json", ""):
        assert_error(
            await api.post("/auth/login", body=body, headers={"Content-Type": content_type}),
            415,
            "Content-Type must be application/json",
        )
    # No body at all needs no content type.
    assert_error(await api.post("/auth/login", body=b"  ", headers={"Content-Type": "text/plain"}), 422)


@pytest.mark.gen_test(timeout=30)
async def test_body_over_the_limit_is_413_and_nothing_is_written(python_api, store):
    api = python_api  # it streams the chunked body below
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


class TestBodyLimit:
    LIMIT = 2048

    @pytest.fixture
    def settings_env(self):
        return {"MAX_BODY_BYTES": str(self.LIMIT)}

    @staticmethod
    def body_of(size: int) -> bytes:
        """A login body of exactly size bytes (JSON, padded with spaces)."""
        core = b'{"email": "ada@example.com", "password": "wrong password"}'
        return core + b" " * (size - len(core))

    @pytest.mark.gen_test
    async def test_a_body_of_exactly_the_limit_is_read_and_one_byte_more_is_413(self, api):
        """Guard held by mutation testing: kills the body limit's `>` made `>=` or off by one (data_received)."""
        json_type = {"Content-Type": "application/json"}
        at_limit = await api.post("/auth/login", body=self.body_of(self.LIMIT), headers=json_type)
        assert_error(at_limit, 401, "Authentication failed")
        assert_error(
            await api.post("/auth/login", body=self.body_of(self.LIMIT + 1), headers=json_type),
            413,
            "Request body too large",
        )

    @pytest.mark.gen_test
    async def test_the_same_holds_for_chunked_bodies(self, python_api):
        """Guard held by mutation testing: kills the body limit miscounted across the chunks of a chunked body."""
        api = python_api  # it streams the chunked bodies

        def chunked(body: bytes):
            async def produce(write):
                for start in range(0, len(body), 500):
                    await write(body[start : start + 500])

            return produce

        json_type = {"Content-Type": "application/json"}
        at_limit = await api.post("/auth/login", body_producer=chunked(self.body_of(self.LIMIT)), headers=json_type)
        assert_error(at_limit, 401, "Authentication failed")
        over = await api.post("/auth/login", body_producer=chunked(self.body_of(self.LIMIT + 1)), headers=json_type)
        assert_error(over, 413, "Request body too large")

    @pytest.mark.gen_test
    async def test_a_body_up_to_eight_times_the_limit_is_read_before_the_413_and_past_that_is_not(self, api, http_port):
        """Guard held by mutation testing: kills `declared > limit * 8` made `>=` in _limit_body (mutmut)."""

        async def post(size: int) -> tuple:
            body = self.body_of(size)
            return await raw_exchange(
                http_port,
                (
                    b"POST /auth/login HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                    b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body
                ),
            )

        # Read and dropped first (DISCARD_FACTOR = 8): the 413 keeps the keep-alive connection usable.
        status, headers, body = await post(8 * self.LIMIT)
        assert (status, json.loads(body)["message"]) == (413, "Request body too large")
        assert "connection" not in headers
        # One byte more is refused unread, and the answer says the connection ends.
        status, headers, body = await post(8 * self.LIMIT + 1)
        assert (status, json.loads(body)["message"]) == (413, "Request body too large")
        assert headers["connection"] == "close"


@pytest.mark.gen_test
async def test_an_unexpected_exception_is_a_500_envelope_without_a_traceback(api, services, monkeypatch):
    """Guard held by mutation testing: kills `500` in tools/guard_mutations.py (write_error answering the unexpected
    with a 200)."""

    async def broken(email):
        raise RuntimeError("boom: internal detail that must not leak")

    monkeypatch.setattr(services.auth, "forgot_password", broken)
    response = await api.post("/auth/forgot-password", json={"email": "mark@example.com"})
    body = assert_error(response, 500, "Internal server error")
    assert body == {"status": "Error", "statusCode": 500, "code": 500, "message": "Internal server error"}
    assert response.headers["Content-Type"] == "application/json; charset=UTF-8"
    text = response.body.decode()
    assert "Traceback" not in text and "boom" not in text and "RuntimeError" not in text


@pytest.mark.gen_test
async def test_an_unexpected_exception_is_logged_once_with_its_request_and_traceback(
    api, services, monkeypatch, caplog
):
    """Guard held by mutation testing: kills log_exception's unexpected-error line altered or left without its
    traceback (mutmut)."""

    async def broken(email):
        raise RuntimeError("boom")

    monkeypatch.setattr(services.auth, "forgot_password", broken)
    caplog.clear()
    response = await api.post("/auth/forgot-password", json={"email": "mark@example.com"})
    assert_error(response, 500, "Internal server error")
    [line] = [r for r in caplog.records if r.name == "accounts.http"]
    assert line.levelno == logging.ERROR
    assert (
        line.getMessage()
        == f"unexpected error request_id={response.headers['X-Request-ID']} POST /auth/forgot-password"
    )
    assert line.exc_info[0] is RuntimeError


@pytest.mark.gen_test
async def test_an_unexpected_exception_while_shutting_down_is_a_503(api, app, services, monkeypatch):
    """Guard held by mutation testing: kills write_error's shutting-down branch (503) dropped or reworded."""

    async def broken(email):
        raise RuntimeError("executor closed")

    monkeypatch.setattr(services.auth, "forgot_password", broken)
    monkeypatch.setattr(app, "shutting_down", True)
    response = await api.post("/auth/forgot-password", json={"email": "mark@example.com"})
    assert_error(response, 503, "Service is shutting down")


@pytest.mark.gen_test
async def test_database_unavailable_is_503_in_the_envelope(api, services, monkeypatch, caplog):
    """Guard held by mutation testing: kills a database outage answered or logged like a bug (not a 503, an ERROR
    with a traceback)."""

    async def unreachable(email):
        raise ServerSelectionTimeoutError("no server")

    monkeypatch.setattr(services.auth, "forgot_password", unreachable)
    with caplog.at_level(logging.INFO, logger="accounts.http"):
        response = await api.post("/auth/forgot-password", json={"email": "ada@example.com"})
    body = assert_error(response, 503, "Database unavailable")
    assert set(body) == {"status", "statusCode", "code", "message"}
    (record,) = [r for r in caplog.records if r.name == "accounts.http"]
    assert record.levelno == logging.WARNING and "database unavailable" in record.getMessage()
    assert record.exc_info is None and response.headers["X-Request-ID"] in record.getMessage()


@pytest.mark.gen_test
async def test_unexpected_errors_are_logged_with_their_traceback_and_client_errors_are_not(
    api, services, monkeypatch, caplog
):
    """Guard held by mutation testing: kills log_exception logging client errors, or the unexpected without its
    traceback."""

    async def broken(email):
        raise RuntimeError("boom")

    with caplog.at_level(logging.INFO, logger="accounts.http"):
        assert_error(await api.post("/auth/login", json={}), 422)
        assert_error(await api.get("/users/getFav"), 401)
        assert not [r for r in caplog.records if r.name == "accounts.http"]
        monkeypatch.setattr(services.auth, "forgot_password", broken)
        response = await api.post("/auth/forgot-password", json={"email": "ada@example.com"})
    assert_error(response, 500)
    (record,) = [r for r in caplog.records if r.name == "accounts.http"]
    assert record.levelno == logging.ERROR and record.exc_info[0] is RuntimeError
    message = record.getMessage()
    assert response.headers["X-Request-ID"] in message and "POST /auth/forgot-password" in message


@pytest.mark.gen_test
async def test_tornado_s_own_errors_keep_their_reason(api, caplog):
    """Guard held by mutation testing: kills write_error dropping the reason of Tornado's own HTTPError, or logging
    it as an error."""
    with caplog.at_level(logging.INFO, logger="accounts.http"):
        assert_error(await api.delete("/auth/login"), 405, "Method Not Allowed")
    assert not [r for r in caplog.records if r.name == "accounts.http" and r.levelno >= logging.ERROR]


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


@pytest.mark.gen_test
async def test_api_answers_carry_every_security_header_including_csp(api):
    """Guard held by mutation testing: kills `csp` in tools/guard_mutations.py (the Content-Security-Policy header
    deleted)."""
    registered = await api.post(
        "/auth/register",
        json={"firstName": "Mark", "lastName": "Essien", "email": "mark@example.com", "password": PASSWORD},
    )
    token = registered.json["tokens"]["access"]["token"]
    answers = {
        "json 201": registered,
        "json 200": await caller(api, token),
        "204": await api.post("/auth/forgot-password", json={"email": "mark@example.com"}),
        "401": await caller(api, "not.a.token"),
        "404": await api.get("/no/such/route"),
        "422": await api.post("/auth/login", json={}),
        "400": await api.post("/auth/login", body=b"{bad", headers={"Content-Type": "application/json"}),
    }
    assert [(name, r.code) for name, r in answers.items()] == [
        ("json 201", 201),
        ("json 200", 200),
        ("204", 204),
        ("401", 401),
        ("404", 404),
        ("422", 422),
        ("400", 400),
    ]
    for name, response in answers.items():
        headers = response.headers
        assert headers.get("Content-Security-Policy") == API_CSP, name
        assert headers.get("X-Content-Type-Options") == "nosniff", name
        assert headers.get("X-Frame-Options") == "DENY", name
        assert headers.get("Referrer-Policy") == "no-referrer", name
        assert headers.get("Cache-Control") == "no-store", name


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


class TestCorsPreflight:
    @pytest.fixture
    def settings_env(self):
        return {"CORS_ORIGINS": "https://app.example.com"}

    @pytest.mark.gen_test
    async def test_the_preflight_allows_the_contract_s_methods_and_headers_and_says_for_how_long(self, api):
        """Guard held by mutation testing: kills the preflight's methods, headers or Max-Age dropped, or given to an
        unlisted origin."""
        preflight = await api.request(
            "OPTIONS",
            "/users/user",
            headers={
                "Origin": "https://app.example.com",
                "Access-Control-Request-Method": "PUT",
                "Access-Control-Request-Headers": "authorization, content-type",
            },
        )
        assert preflight.code == 204 and preflight.body == b""
        methods = {m.strip() for m in preflight.headers["Access-Control-Allow-Methods"].split(",")}
        assert {"GET", "POST", "PUT", "PATCH", "DELETE"} <= methods
        allowed = {h.strip().lower() for h in preflight.headers["Access-Control-Allow-Headers"].split(",")}
        assert {"authorization", "content-type"} <= allowed
        assert int(preflight.headers["Access-Control-Max-Age"]) > 0
        exposed = {h.strip().lower() for h in preflight.headers["Access-Control-Expose-Headers"].split(",")}
        assert {"retry-after", "x-request-id"} <= exposed
        # An unlisted origin's preflight gets none of it.
        other = await api.request(
            "OPTIONS",
            "/users/user",
            headers={"Origin": "https://evil.example.com", "Access-Control-Request-Method": "PUT"},
        )
        assert other.code == 204
        assert not [name for name in other.headers if name.lower().startswith("access-control-")]


class TestCorsExactOrigin:
    @pytest.fixture
    def settings_env(self):
        return {"CORS_ORIGINS": "https://app.example.com"}

    # handlers/base.py BaseHandler.cors_allowed: a prefix, suffix, substring or host-only match (say
    # `origin.startswith(listed)`, or CORS_ORIGINS kept as its raw string) would hand the signed-in user's
    # data to pages on other origins (CWE-942).
    @pytest.mark.parametrize(
        "origin",
        [
            "https://app.example.com.evil.net",
            "https://app.example.com:8443",
            "http://app.example.com",
            "https://app.example.co",
            "https://evil.app.example.com",
            "https://app.example.com/",
            "https://APP.example.com.evil.net",
        ],
    )
    async def test_only_the_listed_origin_itself_gets_cors_headers(self, api, origin):
        """Guard held by mutation testing: kills `cors-exact` in tools/guard_mutations.py."""
        listed = await api.get("/health", headers={"Origin": "https://app.example.com"})
        assert listed.headers["Access-Control-Allow-Origin"] == "https://app.example.com"  # the control
        answers = [
            await api.get("/users/user", headers={"Origin": origin}),
            await api.request(
                "OPTIONS",
                "/auth/login",
                headers={
                    "Origin": origin,
                    "Access-Control-Request-Method": "POST",
                    "Access-Control-Request-Headers": "content-type",
                },
            ),
        ]
        for answer in answers:
            assert not [name for name in answer.headers if name.lower().startswith(ACCESS_CONTROL)], answer.headers
