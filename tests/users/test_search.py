"""GET /users/getUsers: a literal, case-insensitive email prefix over verified users, with a brief view."""

from urllib.parse import quote

import pytest
from bson import ObjectId

from tests.helpers import Store, assert_error, error_fields, sign_up
from tests.index_coverage import RECORDED, served

pytestmark = pytest.mark.gen_test


async def verified(services, account):
    """Mark an account's email verified in the store (the email link flow is tested elsewhere)."""
    store = Store(services.database)
    await store.users.update_one({"_id": ObjectId(account.id)}, {"$set": {"isEmailVerified": True}})
    return account


async def sign_up_verified(api, services, email, name="Someone", **fields):
    return await verified(services, await sign_up(api, email=email, name=name, **fields))


BRIEF_KEYS = {"id", "name", "email", "username", "profilePhotoUrl"}


async def search(api, token, email, limit=None):
    query = "email=" + quote(email, safe="") + (f"&limit={limit}" if limit is not None else "")
    response = await api.get(f"/users/getUsers?{query}", token=token)
    assert response.code == 200, response
    return [user["email"] for user in response.json["results"]]


async def test_prefix_any_case_brief_view_sorted_by_email_verified_only(api, services):
    ada = await sign_up_verified(api, services, "ada@example.com", "Ada Lovelace", username="ada")
    await sign_up_verified(api, services, "ada.byron@example.org", "Byron")
    await sign_up_verified(api, services, "zed.ada@example.org", "Zed")  # contains "ada", does not start with it
    await sign_up(api, email="adam@example.com", name="Squatter")  # never verified: never shown
    response = await api.get("/users/getUsers?email=ADA", token=ada.token)
    assert response.code == 200
    results = response.json["results"]
    assert [u["email"] for u in results] == ["ada.byron@example.org", "ada@example.com"]
    assert set(results[1]) == BRIEF_KEYS and set(response.json) == {"results"}
    assert results[1] == {
        "id": ada.id,
        "name": "Ada Lovelace",
        "email": "ada@example.com",
        "username": "ada",
        "profilePhotoUrl": None,
    }
    assert await search(api, ada.token, "example.com") == []
    assert await search(api, ada.token, "ZED.") == ["zed.ada@example.org"]
    assert await search(api, ada.token, "adam") == []
    assert await search(api, ada.token, "nobody") == []


async def test_regex_metacharacters_are_literal(api, services):
    ada = await sign_up_verified(api, services, "a+b@example.com")
    # ( ) [ ] are not allowed in addresses (email-validator), so { } | * stand in for metacharacters.
    for email in ("aab@example.com", "o'brien{x}@example.com", "star*|1@example.com", "a.b@example.com"):
        await sign_up_verified(api, services, email)
    assert await search(api, ada.token, "a+b") == ["a+b@example.com"]
    assert await search(api, ada.token, ".*") == []
    assert await search(api, ada.token, "a.b") == ["a.b@example.com"]
    assert await search(api, ada.token, "a.") == ["a.b@example.com"]
    assert await search(api, ada.token, "o'brien{") == ["o'brien{x}@example.com"]
    assert await search(api, ada.token, "star*|") == ["star*|1@example.com"]
    assert await search(api, ada.token, "*|1") == []
    assert await search(api, ada.token, "(") == []
    assert await search(api, ada.token, "[") == []
    assert await search(api, ada.token, "^a") == []
    assert await search(api, ada.token, "a|s") == []
    assert await search(api, ada.token, "\\") == []
    assert await search(api, ada.token, "(?i)") == []


async def test_the_query_is_an_anchored_prefix_served_by_the_verified_email_index(api, services):
    ada = await sign_up_verified(api, services, "ada@example.com")
    before = len(RECORDED)
    assert await search(api, ada.token, "Ada+(") == []
    (query,) = [q for q in RECORDED[before:] if q.where.startswith("services/users.py")]
    assert query.fields == {"email": "prefix", "isEmailVerified": "eq"} and query.sort == [("email", 1)]
    assert served(query)


# More sign-ups from the test's one address than REGISTRATIONS_PER_ADDRESS_PER_HOUR allows: turned off, as the
# contract says suites that sign up many accounts from one address do.
@pytest.mark.parametrize("settings_env", [{"REGISTRATIONS_PER_ADDRESS_PER_HOUR": "0"}], ids=["signups unlimited"])
@pytest.mark.gen_test(timeout=30)
async def test_limit_default_5_max_20(api, services):
    ada = await sign_up_verified(api, services, "user00@example.com")
    for n in range(1, 24):
        await sign_up_verified(api, services, f"user{n:02d}@example.com", f"U {n}")
    assert await search(api, ada.token, "user") == [f"user{n:02d}@example.com" for n in range(5)]
    assert len(await search(api, ada.token, "user", limit=20)) == 20
    assert await search(api, ada.token, "user", limit=1) == ["user00@example.com"]


async def test_bad_parameters_are_422_and_a_token_required(api):
    ada = await sign_up(api)
    cases = {
        "": "email",
        "email=": "email",
        f"email={'a' * 101}": "email",
        "email=a&limit=0": "limit",
        "email=a&limit=21": "limit",
        "email=a&limit=abc": "limit",
        "email=a&name=x": "name",
        "email=a&email=b": "email",
        "email=%00": "email",
    }
    for query, field in cases.items():
        assert field in error_fields(await api.get(f"/users/getUsers?{query}", token=ada.token)), query
    assert (await api.get(f"/users/getUsers?email={'a' * 100}", token=ada.token)).code == 200
    assert_error(await api.get("/users/getUsers?email=a"), 401)


class TestSearchesPerUser:
    """The abuse review: one-letter prefixes stay (the contract's 1-100 characters, and the app searches from the first
    keystroke), but each account has an hourly budget of searches, so the verified addresses cannot be walked out
    prefix by prefix (docs/developing/security.md)."""

    @pytest.fixture
    def settings_env(self):
        # Sign-ups unlimited, so the only counters stored are the searches'.
        return {"SEARCHES_PER_USER_PER_HOUR": "3", "REGISTRATIONS_PER_ADDRESS_PER_HOUR": "0"}

    async def test_past_the_budget_a_429_per_account(self, api, services, store):
        ada = await sign_up_verified(api, services, "ada@example.com")
        bob = await sign_up_verified(api, services, "bob@example.com")
        for prefix in ("a", "b", "c"):
            await search(api, ada.token, prefix)
        refused = await api.get("/users/getUsers?email=a", token=ada.token)
        assert_error(refused, 429, "Too many searches, try again later")
        assert 1 <= int(refused.headers["Retry-After"]) <= 3600
        # Counted per account, hashed, with an expiry: another account still searches.
        assert await search(api, bob.token, "a") == ["ada@example.com"]
        counters = await store.budgets.find({}).to_list(10)
        assert sorted(c["count"] for c in counters) == [1, 4]
        assert all(ada.id not in c["_id"] and c["expiresAt"] is not None for c in counters)

    async def test_a_malformed_search_spends_nothing(self, api, services, store):
        ada = await sign_up_verified(api, services, "ada@example.com")
        for _ in range(5):
            assert error_fields(await api.get("/users/getUsers?email=", token=ada.token)) == {
                "email": "must be 1-100 characters without control characters"
            }
        assert await store.budgets.count_documents({}) == 0
        assert await search(api, ada.token, "a") == ["ada@example.com"]
