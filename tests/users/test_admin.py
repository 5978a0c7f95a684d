"""Admin user management: POST /users and GET /users (filters, sorts, pagination)."""

import datetime as dt
from urllib.parse import quote

import pytest
from bson import ObjectId

from tests.helpers import PASSWORD, USER_KEYS, assert_error, error_fields, sign_up
from tests.users_fixtures import make_admin, set_created_at, stored

pytestmark = pytest.mark.gen_test


# ---- POST /users --------------------------------------------------------------------------------


async def test_admin_creates_a_user_with_a_role(api, services, store):
    admin = await make_admin(api, services)
    response = await api.post(
        "/users",
        token=admin.token,
        json={
            "name": "Linus Admin",
            "email": " Linus@Example.COM ",
            "password": PASSWORD,
            "role": "admin",
            "username": "Linus.T",
            "phone": "+44 20 7946 0000",
        },
    )
    assert response.code == 201, response
    user = response.json
    assert set(user) == USER_KEYS
    assert user["id"] == user["userId"]
    assert (user["name"], user["firstName"], user["lastName"]) == ("Linus Admin", "Linus", "Admin")
    assert (user["email"], user["username"], user["role"]) == ("linus@example.com", "linus.t", "admin")
    assert user["isEmailVerified"] is False and user["profilePhotoUrl"] is None and user["favoriteBoards"] == []
    doc = await stored(services, user["id"])
    assert doc["role"] == "admin" and doc["passwordHash"].startswith("$2")
    # The new account works, and got its default organisation like any sign-up.
    assert (await api.login("linus@example.com", PASSWORD))["user"] == user["id"]
    assert await store.memberships.count_documents({"userId": ObjectId(user["id"])}) == 1


async def test_created_user_defaults_to_role_user_and_names_can_be_given(api, services):
    admin = await make_admin(api, services)
    response = await api.post(
        "/users",
        token=admin.token,
        json={
            "name": "Jean-Luc Picard",
            "firstName": "Jean-Luc",
            "lastName": "Picard",
            "email": "jl@example.com",
            "password": PASSWORD,
        },
    )
    assert response.code == 201, response
    assert response.json["role"] == "user"
    assert (response.json["firstName"], response.json["lastName"]) == ("Jean-Luc", "Picard")
    assert response.json["username"] is None and response.json["phone"] is None


async def test_create_rejects_duplicates_bad_fields_and_missing_fields(api, services, store):
    admin = await make_admin(api, services)
    await sign_up(api, email="taken@example.com", username="taken")
    duplicate = await api.post(
        "/users", token=admin.token, json={"name": "X", "email": "TAKEN@example.com", "password": PASSWORD}
    )
    assert error_fields(duplicate) == {"email": "is already taken"}
    duplicate = await api.post(
        "/users",
        token=admin.token,
        json={"name": "X", "email": "new@example.com", "password": PASSWORD, "username": "Taken"},
    )
    assert error_fields(duplicate) == {"username": "is already taken"}
    missing = await api.post("/users", token=admin.token, json={})
    assert error_fields(missing) == {"name": "is required", "email": "is required", "password": "is required"}
    bad = await api.post(
        "/users",
        token=admin.token,
        json={"name": "X", "email": "x@example.com", "password": "short", "role": "root", "isAdmin": True},
    )
    assert set(error_fields(bad)) == {"password", "role", "isAdmin"}
    assert await store.users.count_documents({}) == 2


async def test_only_admins_create_and_list(api):
    user = await sign_up(api)
    body = {"name": "X", "email": "x@example.com", "password": PASSWORD}
    assert_error(await api.post("/users", token=user.token, json=body), 403)
    assert_error(await api.get("/users", token=user.token), 403)
    # 403 comes before validation: a non-admin learns nothing about the parameters.
    assert_error(await api.get("/users?limit=abc", token=user.token), 403)
    assert_error(await api.post("/users", json=body), 401)
    assert_error(await api.get("/users"), 401)


# ---- GET /users: pagination ---------------------------------------------------------------------


async def populate(api, count: int) -> list:
    """count users named User 01..; returns their ids in creation order."""
    return [
        (await sign_up(api, email=f"user{n:02d}@example.com", name=f"User {n:02d}")).id for n in range(1, count + 1)
    ]


# More sign-ups from the test's one address than REGISTRATIONS_PER_ADDRESS_PER_HOUR allows: turned off, as the
# contract says suites that sign up many accounts from one address do.
@pytest.mark.parametrize("settings_env", [{"REGISTRATIONS_PER_ADDRESS_PER_HOUR": "0"}], ids=["signups unlimited"])
@pytest.mark.gen_test(timeout=30)
async def test_pagination_arithmetic_and_the_last_partial_page(api, services):
    admin = await make_admin(api, services)
    ids = [admin.id] + await populate(api, 22)  # 23 users in all
    first = (await api.get("/users", token=admin.token)).json
    assert (first["page"], first["limit"], first["totalPages"], first["totalResults"]) == (1, 10, 3, 23)
    assert [u["id"] for u in first["results"]] == ids[:10]  # default order: by id, i.e. creation
    assert set(first["results"][0]) == USER_KEYS
    third = (await api.get("/users?page=3&limit=10", token=admin.token)).json
    assert [u["id"] for u in third["results"]] == ids[20:]
    assert (third["page"], third["totalPages"]) == (3, 3)
    beyond = (await api.get("/users?page=4", token=admin.token)).json
    assert beyond["results"] == [] and beyond["totalPages"] == 3 and beyond["totalResults"] == 23
    exact = (await api.get("/users?limit=23", token=admin.token)).json
    assert exact["totalPages"] == 1 and len(exact["results"]) == 23
    one = (await api.get("/users?limit=1&page=23", token=admin.token)).json
    assert one["totalPages"] == 23 and [u["id"] for u in one["results"]] == [ids[22]]
    # Every page together: each user exactly once.
    seen = []
    for page in (1, 2, 3, 4, 5):
        seen += [u["id"] for u in (await api.get(f"/users?limit=5&page={page}", token=admin.token)).json["results"]]
    assert seen == ids


async def test_no_results_means_no_pages(api, services):
    admin = await make_admin(api, services)
    body = (await api.get("/users?name=nobody-by-that-name", token=admin.token)).json
    assert body == {"results": [], "page": 1, "limit": 10, "totalPages": 0, "totalResults": 0}


# ---- GET /users: filters ------------------------------------------------------------------------


async def test_name_and_username_filters_are_case_insensitive_substrings(api, services):
    admin = await make_admin(api, services)
    ada = await sign_up(api, email="ada@example.com", name="Ada Lovelace", username="countess_ada")
    await sign_up(api, email="alan@example.com", name="Alan Turing", username="alan")
    await sign_up(api, email="adam@example.com", name="Adam Smith")
    by_name = (await api.get("/users?name=LOVE", token=admin.token)).json
    assert [u["id"] for u in by_name["results"]] == [ada.id] and by_name["totalResults"] == 1
    by_name = (await api.get("/users?name=ad", token=admin.token)).json
    assert {u["name"] for u in by_name["results"]} == {"Ada Lovelace", "Adam Smith", "Grace Admin"}
    by_username = (await api.get("/users?username=ADA", token=admin.token)).json
    assert [u["username"] for u in by_username["results"]] == ["countess_ada"]
    both = (await api.get("/users?name=a&username=al", token=admin.token)).json
    assert [u["name"] for u in both["results"]] == ["Alan Turing"]


async def test_role_filter_is_exact(api, services):
    admin = await make_admin(api, services)
    await sign_up(api, email="u1@example.com")
    await sign_up(api, email="u2@example.com")
    admins = (await api.get("/users?role=admin", token=admin.token)).json
    assert [u["id"] for u in admins["results"]] == [admin.id]
    users = (await api.get("/users?role=user", token=admin.token)).json
    assert users["totalResults"] == 2 and {u["role"] for u in users["results"]} == {"user"}
    assert error_fields(await api.get("/users?role=adm", token=admin.token)) == {"role": "must be one of: user, admin"}


async def test_filters_match_regex_metacharacters_literally(api, services):
    admin = await make_admin(api, services)
    odd = await sign_up(api, email="odd@example.com", name="Mr. (Odd) [Name]+*")
    await sign_up(api, email="plain@example.com", name="Mr X Plain")
    for needle, expected in (
        (".", [odd.id]),
        ("(odd)", [odd.id]),
        ("[", [odd.id]),
        ("]+*", [odd.id]),
        (".*", []),
        ("M.", []),
        ("(", [odd.id]),
        ("\\", []),
    ):
        response = await api.get("/users?name=" + quote(needle, safe=""), token=admin.token)
        assert response.code == 200, (needle, response)
        assert [u["id"] for u in response.json["results"]] == expected, needle


# ---- GET /users: sorting ------------------------------------------------------------------------


@pytest.mark.gen_test(timeout=30)
async def test_each_sort_field_both_ways(api, services):
    admin = await make_admin(api, services, email="m-admin@example.com", name="Mike Admin")
    b = await sign_up(api, email="z-bob@example.com", name="Bob Brown", username="zed")
    c = await sign_up(api, email="a-cat@example.com", name="Cat Crane", username="alpha")
    await set_created_at(services, b.id, dt.datetime(2020, 1, 1, tzinfo=dt.UTC))
    await set_created_at(services, admin.id, dt.datetime(2030, 1, 1, tzinfo=dt.UTC))

    async def order(sort_by):
        response = await api.get(f"/users?sortBy={sort_by}", token=admin.token)
        assert response.code == 200, response
        return [u["id"] for u in response.json["results"]]

    assert await order("name:asc") == [b.id, c.id, admin.id]
    assert await order("name:desc") == [admin.id, c.id, b.id]
    assert await order("email:asc") == [c.id, admin.id, b.id]
    assert await order("email:desc") == [b.id, admin.id, c.id]
    # No username sorts first ascending (MongoDB orders a missing field before any string).
    assert await order("username:asc") == [admin.id, c.id, b.id]
    assert await order("username:desc") == [b.id, c.id, admin.id]
    assert await order("role:asc") == [admin.id, b.id, c.id]  # "admin" < "user"; ties by id, ascending
    assert await order("role:desc") == [c.id, b.id, admin.id]  # ties by id in the last key's direction
    assert await order("createdAt:asc") == [b.id, c.id, admin.id]
    assert await order("createdAt:desc") == [admin.id, c.id, b.id]
    assert await order("role:desc,name:desc") == [c.id, b.id, admin.id]


@pytest.mark.gen_test(timeout=30)
async def test_ties_are_broken_by_id_so_pages_never_overlap(api, services):
    admin = await make_admin(api, services)
    ids = []
    for n in range(7):
        ids.append((await sign_up(api, email=f"same{n}@example.com", name="Same Name")).id)
    ids.sort()
    seen = []
    for page in (1, 2, 3):
        response = await api.get(f"/users?name=same&sortBy=name:asc&limit=3&page={page}", token=admin.token)
        seen += [u["id"] for u in response.json["results"]]
    assert seen == ids
    descending = (await api.get("/users?name=same&sortBy=name:desc&limit=10", token=admin.token)).json
    assert [u["id"] for u in descending["results"]] == ids[::-1]


# ---- GET /users: bad query strings --------------------------------------------------------------


async def test_bad_query_parameters_are_422_naming_the_parameter(api, services):
    admin = await make_admin(api, services)
    cases = {
        "limit=abc": "limit",
        "limit=0": "limit",
        "limit=101": "limit",
        "limit=1.5": "limit",
        "limit=99999999999999999999": "limit",
        "limit=1&limit=2": "limit",
        "page=0": "page",
        "page=-1": "page",
        "page=x": "page",
        "sortBy=password:asc": "sortBy",
        "sortBy=passwordHash:asc": "sortBy",
        "sortBy=name:sideways": "sortBy",
        "sortBy=name": "sortBy",
        "sortBy=name:asc,name:desc": "sortBy",
        "sortBy=": "sortBy",
        "sortBy=name:asc,": "sortBy",
        "name=": "name",
        "name=%00": "name",
        "email=a@b.c": "email",
        "isAdmin=true": "isAdmin",
        "name[$ne]=x": "name[$ne]",
    }
    for query, field in cases.items():
        response = await api.get(f"/users?{query}", token=admin.token)
        assert field in error_fields(response), (query, response)
    assert (await api.get("/users?limit=100&page=1&sortBy=name:asc,createdAt:desc", token=admin.token)).code == 200
