"""Found by the red-team pass (docs/history/attack-findings.md): lone UTF-16 surrogates and bytes that are not UTF-8 are
a 400, on every endpoint.

Before: {"password": "\\ud800"} on login (and 10 other endpoints) was a 500; on a real server the
string would also have failed inside BSON encoding.
"""

import pytest

from handlers.openapi import document
from tests.helpers import PASSWORD, assert_error
from tests.users_fixtures import make_admin, multipart, sign_up, stored

MALFORMED = [
    b'{"email": "\\ud800", "password": "x"}',  # a lone high surrogate as a value
    b'{"password": "\\udfff"}',  # a lone low surrogate
    b'{"name": "ok \\ud83d"}',  # half of a pair, at the end of a string
    b'{"\\ud800": "a key"}',  # in a key
    b'{"a": [{"b": {"c": "\\udc00x"}}]}',  # nested deep inside
    b'{"name": "\xff\xfe"}',  # not UTF-8
    b'{"name": "\xed\xa0\x80"}',  # a surrogate encoded as UTF-8 bytes (CESU-8), not UTF-8 either
    b'\xef\xbb\xbf{"name": "x"}',  # a UTF-8 byte order mark is not JSON
]


def json_body_operations():
    """(method, path template, operation) of every operation of the OpenAPI document that takes a JSON body."""
    for path, methods in document()["paths"].items():
        for method, op in methods.items():
            schema = op.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema")
            if schema is not None:
                yield method.upper(), path, schema


def concrete(path: str, ids: dict) -> str:
    for name, value in ids.items():
        path = path.replace("{" + name + "}", value)
    return path + ("?token=some-token-value" if path in ("/auth/reset-password", "/auth/verify-email") else "")


def test_the_operations_are_all_found():
    found = {(method, path) for method, path, _ in json_body_operations()}
    assert ("POST", "/auth/login") in found and ("PATCH", "/users/{userId}") in found
    assert len([op for op in found if op[1] != "/auth/send-verification-email"]) >= 11


@pytest.mark.heavy
@pytest.mark.gen_test(timeout=120)
async def test_every_json_endpoint_answers_400_and_changes_nothing(api, services, store):
    admin = await make_admin(api, services)
    org = await api.post("/api/organisations", token=admin.token, json={"name": "Admins"})
    ids = {"userId": admin.id, "id": admin.id, "orgId": org.json["data"]["orgId"]}
    before = await stored(services, admin.id)
    users_before = await store.users.count_documents({})
    checked = []
    for method, path, schema in json_body_operations():
        takes_a_body = bool(schema.get("properties") or schema.get("then"))
        for raw in MALFORMED:
            response = await api.request(
                method, concrete(path, ids), body=raw, token=admin.token, headers={"Content-Type": "application/json"}
            )
            if takes_a_body:
                assert response.code == 400, (method, path, raw, response)
                assert_error(response, 400, "Malformed JSON body")
            else:  # an endpoint that takes no body may ignore it; it never fails
                assert response.code < 500, (method, path, raw, response)
        checked.append((method, path))
    assert len(checked) >= 12
    assert await stored(services, admin.id) == before
    assert await store.users.count_documents({}) == users_before
    await api.login("admin@example.com", PASSWORD)


@pytest.mark.gen_test
async def test_login_with_a_lone_surrogate_is_400_not_500(api):
    await sign_up(api)
    response = await api.post(
        "/auth/login",
        body=b'{"email": "ada@example.com", "password": "\\ud800"}',
        headers={"Content-Type": "application/json"},
    )
    assert_error(response, 400, "Malformed JSON body")
    # A proper pair is one character, and fine.
    response = await api.post(
        "/auth/login",
        body=b'{"email": "ada@example.com", "password": "\\ud83d\\ude00"}',
        headers={"Content-Type": "application/json"},
    )
    assert_error(response, 401, "Authentication failed")


@pytest.mark.gen_test
async def test_query_strings_that_are_not_utf8_are_400(api, services):
    ada = await sign_up(api)
    admin = await make_admin(api, services)
    for path in (
        "/users/getUsers?email=%FF",
        "/users/getUsers?email=%ED%A0%80",
        "/users?name=%C3",
        "/users/usersByMonth?from=%FF",
    ):
        assert_error(await api.get(path, token=admin.token), 400, "Malformed query string")
    assert_error(
        await api.post("/auth/reset-password?token=%FF%FE", json={"password": "long enough password"}),
        400,
        "Malformed query string",
    )
    # Correct UTF-8 in a query is fine.
    assert (await api.get("/users/getUsers?email=%C3%A9", token=ada.token)).code == 200


@pytest.mark.gen_test
async def test_multipart_text_that_is_not_utf8_is_400_and_changes_nothing(api, services):
    ada = await sign_up(api)
    before = await stored(services, ada.id)
    form = multipart({"name": "placeholder"})
    form["body"] = form["body"].replace(b"placeholder", b"\xed\xa0\x80")
    assert_error(await api.put(f"/users/{ada.id}", token=ada.token, **form), 400)
    assert await stored(services, ada.id) == before


@pytest.mark.gen_test
async def test_paths_that_are_not_utf8_are_4xx(api, services):
    admin = await make_admin(api, services)
    for path in ("/users/%ED%A0%80", "/users/%FF", "/api/users/%ED%A0%80", "/api/organisations/%FF"):
        response = await api.get(path, token=admin.token)
        assert response.code in (400, 404), (path, response)


class TestHeaders:
    """Headers arrive as Latin-1 text, so they cannot hold surrogates; odd bytes in the ones the service uses
    (the bearer token, and the client address behind a proxy, which keys the login limits) are no 500."""

    @pytest.fixture
    def settings_env(self):
        return {"TRUST_PROXY": "true"}

    @pytest.mark.gen_test
    async def test_odd_bytes_in_headers_the_service_reads(self, api):
        await sign_up(api)
        for token in ("\xff\xfe", "abc.\xe9.def", "\xa0"):
            assert_error(await api.get("/users/user", headers={"Authorization": f"Bearer {token}"}), 401)
        for address in ("\xff\xfe", "1.2.3.4\xe9", "::1%\xa0"):
            response = await api.post(
                "/auth/login",
                json={"email": "ada@example.com", "password": PASSWORD},
                headers={"X-Real-IP": address, "X-Forwarded-For": address},
            )
            assert response.code == 200, (address, response)
