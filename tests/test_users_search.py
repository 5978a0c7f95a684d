"""GET /users/getUsers: literal, case-insensitive email substring search with a brief view."""
from urllib.parse import quote

import pytest

from tests.helpers import assert_error, error_fields
from tests.users_fixtures import sign_up

BRIEF_KEYS = {"id", "name", "email", "username", "profilePhotoUrl"}


async def search(api, token, email, limit=None):
    query = "email=" + quote(email, safe="") + (f"&limit={limit}" if limit is not None else "")
    response = await api.get(f"/users/getUsers?{query}", token=token)
    assert response.code == 200, response
    return [user["email"] for user in response.json["results"]]


@pytest.mark.gen_test
async def test_substring_any_case_brief_view_sorted_by_email(api):
    ada = await sign_up(api, email="ada@example.com", username="ada")
    await sign_up(api, email="zed.ada@example.org", name="Zed")
    await sign_up(api, email="bob@example.com", name="Bob")
    response = await api.get("/users/getUsers?email=ADA", token=ada.token)
    assert response.code == 200
    results = response.json["results"]
    assert [u["email"] for u in results] == ["ada@example.com", "zed.ada@example.org"]
    assert set(results[0]) == BRIEF_KEYS and set(response.json) == {"results"}
    assert results[0] == {"id": ada.id, "name": "Ada Lovelace", "email": "ada@example.com", "username": "ada",
                          "profilePhotoUrl": None}
    assert await search(api, ada.token, "EXAMPLE.COM") == ["ada@example.com", "bob@example.com"]
    assert await search(api, ada.token, "nobody") == []


@pytest.mark.gen_test
async def test_regex_metacharacters_are_literal(api):
    ada = await sign_up(api, email="a+b@example.com")
    await sign_up(api, email="aab@example.com", name="Aab")
    await sign_up(api, email="o'brien{x}@example.com", name="O")  # ( ) [ ] are not allowed in addresses
    await sign_up(api, email="star*|1@example.com", name="Star")
    assert await search(api, ada.token, "a+b") == ["a+b@example.com"]
    assert await search(api, ada.token, ".*") == []
    assert await search(api, ada.token, "a.b") == []
    assert await search(api, ada.token, "{x") == ["o'brien{x}@example.com"]
    assert await search(api, ada.token, "(") == []
    assert await search(api, ada.token, "[") == []
    assert await search(api, ada.token, "*|1") == ["star*|1@example.com"]
    assert await search(api, ada.token, "^a") == []
    assert await search(api, ada.token, "com$") == []
    assert await search(api, ada.token, "\\") == []
    assert await search(api, ada.token, "(?i)") == []


@pytest.mark.gen_test(timeout=30)
async def test_limit_default_5_max_20(api):
    ada = await sign_up(api, email="user00@example.com")
    for n in range(1, 24):
        await sign_up(api, email=f"user{n:02d}@example.com", name=f"U {n}")
    assert await search(api, ada.token, "user") == [f"user{n:02d}@example.com" for n in range(5)]
    assert len(await search(api, ada.token, "user", limit=20)) == 20
    assert await search(api, ada.token, "user", limit=1) == ["user00@example.com"]


@pytest.mark.gen_test
async def test_bad_parameters_are_422_and_a_token_required(api):
    ada = await sign_up(api)
    cases = {"": "email", "email=": "email", f"email={'a' * 101}": "email", "email=a&limit=0": "limit",
             "email=a&limit=21": "limit", "email=a&limit=abc": "limit", "email=a&name=x": "name",
             "email=a&email=b": "email", "email=%00": "email"}
    for query, field in cases.items():
        assert field in error_fields(await api.get(f"/users/getUsers?{query}", token=ada.token)), query
    assert (await api.get(f"/users/getUsers?email={'a' * 100}", token=ada.token)).code == 200
    assert_error(await api.get("/users/getUsers?email=a"), 401)
