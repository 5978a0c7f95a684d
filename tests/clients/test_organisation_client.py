"""An organisation client written for the HNG stage-two task, replayed over one keep-alive connection.

Such clients register with {userId, firstName, lastName, email, password, phone} (the task's user model
has a userId, and its examples use short local numbers like "080419"), read `data.accessToken`, and send
it as a bearer token to /api. They keep no cookie.
"""

import json

import pytest
from bson import ObjectId

from tests.client_replay import BrowserPage
from tests.helpers import PASSWORD

pytestmark = pytest.mark.gen_test

JSON = {"Content-Type": "application/json", "Accept": "application/json"}


@pytest.fixture
def client(http_server, base_url):
    connection = BrowserPage(base_url, origin=None)  # no browser: raw requests only
    yield connection
    connection.close()


async def call(client, method, path, body=None, token=None):
    headers = dict(JSON) if body is not None else {"Accept": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return await client.raw(method, path, json.dumps(body).encode() if body is not None else None, headers)


@pytest.mark.gen_test(timeout=60)
async def test_register_with_a_short_phone_and_a_user_id_then_use_the_organisations(client, store):
    sent_id = "a-client-made-id"
    registered = await call(
        client,
        "POST",
        "/auth/register",
        {
            "userId": sent_id,
            "firstName": "John",
            "lastName": "Doe",
            "email": "john@example.com",
            "password": PASSWORD,
            "phone": "080419",
        },
    )
    assert registered.code == 201, registered
    user = registered.json["data"]["user"]
    assert user["phone"] == "080419" and user["userId"] == user["id"] != sent_id
    stored = await store.users.find_one({"email": "john@example.com"})
    assert "userId" not in stored and stored["phone"] == "080419"
    assert (
        await call(
            client,
            "POST",
            "/auth/register",
            {"firstName": "Jane", "lastName": "Roe", "email": "jane@example.com", "password": PASSWORD, "phone": "12"},
        )
    ).code == 422  # fewer than three digits

    logged_in = await call(client, "POST", "/auth/login", {"email": "john@example.com", "password": PASSWORD})
    assert logged_in.code == 200
    token = logged_in.json["data"]["accessToken"]
    me = await call(client, "GET", f"/api/users/{user['userId']}", token=token)
    assert me.code == 200 and me.json["data"]["phone"] == "080419"
    listed = await call(client, "GET", "/api/organisations", token=token)
    (default,) = listed.json["data"]["organisations"]
    assert default["name"] == "John's Organisation"
    assert (await call(client, "GET", f"/api/organisations/{default['orgId']}", token=token)).code == 200
    created = await call(client, "POST", "/api/organisations", {"name": "Acme", "description": "Tools"}, token)
    assert created.code == 201
    # A refusal on the way (someone else's organisation id, an unknown route), then on as before.
    assert (await call(client, "GET", f"/api/organisations/{ObjectId()}", token=token)).code in (403, 404)
    assert (await call(client, "GET", "/api/organisation", token=token)).code == 404
    assert (await call(client, "GET", "/api/organisations/", token=token)).json["data"]["organisations"][1][
        "name"
    ] == "Acme"
    assert (await call(client, "GET", "/api/organisations", token="expired.or.junk")).code == 401
    assert (await call(client, "GET", "/api/organisations", token=token)).code == 200
    assert len(client.local_ports) == 1, client.wire
