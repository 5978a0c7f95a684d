"""The README's recipe "Adding an endpoint", followed for its example at test time: a paged list,
GET /api/organisations/{orgId}/members, written in the four places the recipe names (gathered here in one
module, each marked with the file it would go in). It must be served, documented in /openapi.json and its
query covered by the index it declares; if the recipe's pieces change, this test changes with them."""

import contextlib
import datetime as dt

import jsonschema
import pytest
from bson import ObjectId
from pymongo import ASCENDING, IndexModel

from handlers import openapi_examples as ex
from handlers import routes
from handlers.docs import openapi_json
from handlers.documented import operation
from handlers.organisations import ApiHandler
from models import organisations as org_model
from models.indexes import INDEXES
from models.schemas.paging import page_of, paged_query
from models.schemas.responses import ID, closed
from services import metrics, pagination
from services.organisations import Organisations
from tests.helpers import assert_error, sign_up
from tests.index_coverage import RECORDED, unserved

PATH = "/api/organisations/{orgId}/members"

# 1. models/organisations.py, in MEMBERSHIP_INDEXES: what serves the list (its filter, then its order).
MEMBERS_INDEX = IndexModel([("orgId", ASCENDING), ("_id", ASCENDING)], name="org_members")


# 2. services/organisations.py, a method of Organisations: the rule, then one page over the shared pagination.
async def members_page(self, org_id: ObjectId, caller_id: ObjectId, query: dict) -> dict:
    await self.require_member(org_id, caller_id)
    return await pagination.fetch_page(self.memberships, {"orgId": org_id}, pagination.page_request(query))


# 3. handlers/organisations.py: the query schema, the operation's documentation and the handler, together.
MEMBERS_QUERY = paged_query()
MEMBER = closed({"userId": ID})


class OrganisationMembersHandler(ApiHandler):
    openapi = {
        "get": operation(
            "A page of an organisation's members (members only)",
            "api",
            200,
            page_of(MEMBER),
            path=("orgId",),
            query=MEMBERS_QUERY,
            errors=(403,),
            examples={
                "response": {
                    "results": [{"userId": ex.MARK_ID}],
                    "page": 1,
                    "limit": 10,
                    "totalPages": 1,
                    "totalResults": 1,
                }
            },
        )
    }

    async def get(self, org_id: str) -> None:
        page = await self.services.organisations.members_page(
            self.path_id(org_id, "Organisation"), self.caller_id, self.query(MEMBERS_QUERY)
        )
        self.send_page(page, lambda member: {"userId": str(member["userId"])})


# 4. handlers/routes.py, in routes(): the route.
ROUTE = (r"/api/organisations/([^/]+)/members", OrganisationMembersHandler)


@pytest.fixture
def recipe_followed(monkeypatch):
    """The four steps in place: the index declared, the service method, the route (the handler is above)."""
    table = routes.routes()
    monkeypatch.setattr(routes, "routes", lambda: [*table, ROUTE])
    monkeypatch.setitem(INDEXES, org_model.MEMBERSHIPS, [*INDEXES[org_model.MEMBERSHIPS], MEMBERS_INDEX])
    monkeypatch.setattr(Organisations, "members_page", members_page, raising=False)
    openapi_json.cache_clear()  # the served document is built once per process: once more with the route
    yield
    openapi_json.cache_clear()
    forget_request_series("/members")


def forget_request_series(route_part: str) -> None:
    """The request metrics of the route this module added, removed: /metrics lists only the service's routes
    (tests/operations/test_metrics.py checks that, in whichever process ran this module)."""
    for key in [key for key in metrics._bound_requests if route_part in key[0]]:
        route, method, status = key
        del metrics._bound_requests[key]
        metrics.HTTP_REQUESTS.remove(route, method, str(status))
        with contextlib.suppress(KeyError):  # one duration series per (route, method), for every status
            metrics.HTTP_DURATION.remove(route, method)


@pytest.fixture(autouse=True)
def queries_use_declared_indexes(recipe_followed, queries_use_declared_indexes):
    """tests/conftest.py's index coverage, checked while the recipe's index is still declared."""
    yield


@pytest.fixture
def app(services, config, recipe_followed):
    return routes.make_app(services, config)


async def an_organisation_of_five(api, store):
    """Ada's default organisation with four more members (arranged in the store: invitations are not the point)."""
    ada = await sign_up(api, "ada@example.com")
    org = await store.memberships.find_one({"userId": ObjectId(ada.id)})
    others = [ObjectId() for _ in range(4)]
    now = dt.datetime.now(dt.UTC)
    await store.memberships.insert_many([{"orgId": org["orgId"], "userId": user, "createdAt": now} for user in others])
    return ada, str(org["orgId"]), [ada.id] + [str(user) for user in others]


@pytest.mark.gen_test
async def test_the_recipe_s_list_serves_its_pages_in_order(api, store):
    ada, org_id, members = await an_organisation_of_five(api, store)
    first = await api.get(f"/api/organisations/{org_id}/members?limit=2", token=ada.token)
    assert first.code == 200, first
    assert first.json == {
        "results": [{"userId": member} for member in members[:2]],
        "page": 1,
        "limit": 2,
        "totalPages": 3,
        "totalResults": 5,
    }
    assert list(first.json) == ["results", "page", "limit", "totalPages", "totalResults"]  # the fixed order
    last = await api.get(f"/api/organisations/{org_id}/members?limit=2&page=3", token=ada.token)
    assert last.json["results"] == [{"userId": members[4]}]


@pytest.mark.gen_test
async def test_the_recipe_s_list_refuses_strangers_and_bad_queries(api, store):
    ada, org_id, _ = await an_organisation_of_five(api, store)
    mark = await sign_up(api, "mark@example.com")
    before = await store.memberships.count_documents({})
    assert_error(await api.get(f"/api/organisations/{org_id}/members", token=mark.token), 403)
    assert_error(await api.get(f"/api/organisations/{org_id}/members"), 401)
    for query in ("limit=0", "limit=101", "page=0", "sortBy=userId:asc", "role=admin"):
        assert_error(await api.get(f"/api/organisations/{org_id}/members?{query}", token=ada.token), 422)
    assert await store.memberships.count_documents({}) == before


@pytest.mark.gen_test
async def test_the_recipe_s_list_is_documented_with_a_valid_example(api):
    doc = (await api.get("/openapi.json")).json
    op = doc["paths"][PATH]["get"]
    assert op["operationId"] == "get_api_organisations_orgId_members" and op["tags"] == ["api"]
    assert [(p["name"], p["in"]) for p in op["parameters"]] == [
        ("orgId", "path"),
        ("limit", "query"),
        ("page", "query"),
    ]
    assert all(p.get("description") for p in op["parameters"])
    content = op["responses"]["200"]["content"]["application/json"]
    jsonschema.Draft202012Validator(content["schema"]).validate(content["example"])
    assert set(op["responses"]) == {"200", "401", "403", "404", "422", "503"}


@pytest.mark.gen_test
async def test_the_recipe_s_index_serves_the_list_and_without_it_coverage_names_the_models_file(
    api, store, monkeypatch
):
    ada, org_id, _ = await an_organisation_of_five(api, store)
    RECORDED.clear()
    assert (await api.get(f"/api/organisations/{org_id}/members", token=ada.token)).code == 200
    assert unserved(RECORDED) == []  # with step 1's index
    monkeypatch.setitem(
        INDEXES, org_model.MEMBERSHIPS, [i for i in INDEXES[org_model.MEMBERSHIPS] if i is not MEMBERS_INDEX]
    )
    problems = unserved(RECORDED)
    RECORDED.clear()
    assert problems == [
        "memberships filter={'orgId': 'eq'} sort=[('_id', 1)] sent by services/pagination.py:"
        f"{problems[0].split('services/pagination.py:')[1].split(';')[0]}; "
        "declare its index in models/organisations.py"
    ]
