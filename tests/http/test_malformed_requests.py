"""Attack findings: malformed or unusual HTTP that gets a 500, a contract violation, or an information leak.

- A Content-Length of thousands of digits was a 500: Python's int() refuses strings over 4,300 digits."""

import json
import logging
import time

import pytest

from tests.helpers import assert_error, sign_up
from tests.wire import raw_exchange


@pytest.mark.gen_test
@pytest.mark.parametrize(
    "length",
    [b"\xb2", b"\xb3", b"\xb9", b"9" * 5000, b"0" * 4999 + b"5"],
    ids=["superscript-2", "superscript-3", "superscript-1", "huge", "zero-padded"],
)
async def test_a_content_length_int_cannot_read_is_a_400_not_a_500(api, store, http_port, length):
    # str.isdigit() takes "²", which int() refuses; and int() refuses any string over 4,300 digits.
    status, headers, body = await raw_exchange(
        http_port,
        (
            b"POST /auth/login HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            b"Content-Length: " + length + b"\r\n\r\n"
        ),
    )
    assert status == 400, (status, body)
    assert json.loads(body)["message"] == "Malformed Content-Length"  # the service's envelope, not Tornado's bare 400
    assert headers["connection"] == "close"
    # Nothing was logged in: no session was opened.
    assert await store.sessions.count_documents({}) == 0


@pytest.mark.gen_test
@pytest.mark.parametrize("method", ["GET", "HEAD"])
async def test_a_nul_byte_in_a_docs_asset_path_is_a_404(api, method):
    response = await api.request(method, "/docs/assets/%00")
    assert response.code == 404, response
    if method == "GET":
        assert_error(response, 404)


@pytest.mark.gen_test
async def test_responses_do_not_advertise_the_server_version(api):
    for path in ("/health", "/nope", "/auth/login"):
        response = await api.get(path)
        server = response.headers.get("Server", "")
        assert not any(ch.isdigit() for ch in server), (path, server)


async def registered(api):
    body = await api.register(email="mark@example.com")
    return body["tokens"]["access"]["token"], body["user"]["id"]


@pytest.mark.gen_test
@pytest.mark.parametrize(
    "body,content_type", [(b"x", "text/plain"), (b'{"a": 1}', "application/json"), (b"[]", "application/json")]
)
async def test_a_body_sent_to_a_no_body_endpoint_is_ignored(api, store, body, content_type):
    token, user_id = await registered(api)
    headers = {"Content-Type": content_type}
    sent = await api.post("/auth/send-verification-email", token=token, body=body, headers=headers)
    assert sent.code == 204, sent
    removed = await api.put(f"/users/deleteProfilePic/{user_id}", token=token, body=body, headers=headers)
    assert removed.code == 200 and removed.json["profilePhotoUrl"] is None, removed
    # verify-email with a bad token: the token decides (401), not the ignored body.
    assert_error(await api.post("/auth/verify-email?token=nonsense", body=body, headers=headers), 401)
    # Two verification emails are queued now (registration and the request above).
    assert await store.outbox.count_documents({"to": "mark@example.com"}) == 2


@pytest.mark.gen_test
@pytest.mark.parametrize("query", ["limit=%D9%A1%D9%A0", "limit=1%0A", "page=%EF%BC%91"])
async def test_query_integers_are_ascii_digits_only(api, services, query):
    await services.users.ensure_admin("admin@example.com", "admin password 1", "Admin")
    token = (await api.login("admin@example.com", "admin password 1"))["tokens"]["access"]["token"]
    response = await api.get(f"/users?{query}", token=token)
    assert response.code == 422, response


@pytest.mark.gen_test
async def test_a_month_with_a_trailing_newline_is_a_422(api, services):
    await services.users.ensure_admin("admin@example.com", "admin password 1", "Admin")
    token = (await api.login("admin@example.com", "admin password 1"))["tokens"]["access"]["token"]
    response = await api.get("/users/usersByMonth?from=2026-01%0A&to=2026-03", token=token)
    assert response.code == 422, response


@pytest.mark.heavy
@pytest.mark.gen_test(timeout=60)
async def test_a_body_of_many_unknown_fields_gets_a_short_answer(api, store):
    body = json.dumps({f"k{number}": 1 for number in range(80000)})
    assert len(body) < 1024 * 1024  # under MAX_BODY_BYTES: it is read and validated
    response = await api.post("/auth/forgot-password", body=body, headers={"Content-Type": "application/json"})
    assert_error(response, 422, "Validation failed")
    # The answer is bounded whatever the body holds: a few field errors, not one per unknown key.
    assert len(response.json["errors"]) <= 100
    assert len(response.body) < 64 * 1024
    assert await store.outbox.estimated_document_count() == 0


@pytest.mark.gen_test
@pytest.mark.parametrize("declared", [b"abc", b"12a", b"-1", b"+5", b"0x10", b"1_0", b"\xd9\xa1"])
async def test_a_content_length_that_is_not_ascii_digits_is_a_400(api, store, http_port, declared):
    # Whether Tornado or the service refuses it, it is a 400 (the service's in the envelope), never a 500.
    status, headers, body = await raw_exchange(
        http_port,
        (
            b"POST /auth/login HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            b"Content-Length: " + declared + b"\r\n\r\n"
        ),
    )
    assert status == 400, (status, body)
    # The service refuses it before Tornado reads a body: its envelope, and the connection is not reused.
    assert json.loads(body) == {
        "status": "Bad request",
        "statusCode": 400,
        "code": 400,
        "message": "Malformed Content-Length",
    }
    assert headers["connection"] == "close"
    assert await store.sessions.count_documents({}) == 0


def _nested(depth: int):
    value = 1
    for _ in range(depth):
        value = [value]
    return value


# Shapes that once cost tens to hundreds of ms of IOLoop CPU in jsonschema (its messages repr whole values,
# its patterns scan whole strings); every one is refused before that work.
EXPENSIVE_BODIES = {
    "80,000 keys in a nested object": {"email": {f"k{number}": 1 for number in range(80000)}},
    "100,000 items in an array": {"email": list(range(100000))},
    "50,000 arrays in an array": {"email": [[number] for number in range(50000)]},
    "900 levels of arrays": {"email": _nested(900)},
    "900 levels of arrays as the body": _nested(900),
    "a 1 MiB string": {"email": "a@" * 500000},
    "a 1 MiB key": {"k" * 1000000: 1},
}


@pytest.mark.heavy
@pytest.mark.gen_test(timeout=60)
@pytest.mark.parametrize("shape", list(EXPENSIVE_BODIES))
async def test_no_body_shape_makes_validation_expensive(api, store, shape):
    body = json.dumps(EXPENSIVE_BODIES[shape])
    assert len(body) < 1024 * 1024
    response = await api.post("/auth/forgot-password", body=body, headers={"Content-Type": "application/json"})
    assert_error(response, 422, "Validation failed")
    assert len(response.body) < 1024, response.body[:200]
    assert await store.outbox.estimated_document_count() == 0


@pytest.mark.parametrize("shape", list(EXPENSIVE_BODIES))
def test_validation_cpu_is_bounded_for_every_body_shape(shape):
    from models.schemas.auth import FORGOT_PASSWORD, REGISTER
    from services.errors import ApiError
    from services.validation import trim_strings, validate, validator_for

    instance = EXPENSIVE_BODIES[shape]
    for validator in (validator_for(FORGOT_PASSWORD), validator_for(REGISTER)):
        started = time.thread_time()  # CPU of this thread: not inflated by other processes on a loaded machine
        with pytest.raises(ApiError) as refused:
            validate(validator, trim_strings(instance, validator))
        assert refused.value.status == 422
        assert time.thread_time() - started < 0.02, shape  # was 0.05 to 0.9 s before the bound


@pytest.mark.gen_test
async def test_a_path_that_is_not_utf_8_is_400_and_logged_as_a_warning(api, caplog):
    """Guard held by mutation testing: kills log_exception's line for Tornado's own 400 altered, or logged as an
    error."""
    ada = await sign_up(api)
    with caplog.at_level(logging.INFO, logger="accounts.http"):
        response = await api.get("/users/%FF%FE", token=ada.token)
    assert_error(response, 400, "Bad Request")
    (record,) = [r for r in caplog.records if r.name == "accounts.http"]
    assert record.levelno == logging.WARNING
    request_id = response.headers["X-Request-ID"]
    assert record.getMessage() == f"400 Invalid unicode in url: b'\\xff\\xfe' request_id={request_id}"
