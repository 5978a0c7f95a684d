"""Admin reports (usersByMonth) and admin listings run their database calls under ADMIN_QUERY_TIMEOUT_MS,
everything else under the request's MONGODB_OPERATION_TIMEOUT_MS. The budget each call ran under is read
where the service hands it to its collection (the gate below turns it into pymongo.timeout and the slot wait)."""

import pytest

from services import deadlines
from tests.users_fixtures import make_admin

pytestmark = pytest.mark.gen_test


@pytest.fixture
def settings_env():
    return {"ADMIN_QUERY_TIMEOUT_MS": "45000", "MONGODB_OPERATION_TIMEOUT_MS": "4000"}


class Budgets:
    """A service's collection, noting the budget each call of `methods` ran under."""

    def __init__(self, collection, *methods):
        self._collection = collection
        self.seen = []
        for name in methods:
            setattr(self, name, self._noting(getattr(collection, name)))

    def _noting(self, method):
        def call(*args, **kwargs):
            self.seen.append(deadlines.current_budget())
            return method(*args, **kwargs)

        return call

    def __getattr__(self, name):
        return getattr(self._collection, name)


async def test_users_by_month_runs_under_the_admin_bound(api, services, monkeypatch):
    admin = await make_admin(api, services)
    noted = Budgets(services.signups.collection, "aggregate")
    monkeypatch.setattr(services.signups, "collection", noted)
    assert (await api.get("/users/usersByMonth", token=admin.token)).code == 200
    assert noted.seen == [45.0]


async def test_the_admin_listing_and_its_count_run_under_the_admin_bound(api, services, monkeypatch):
    admin = await make_admin(api, services)
    noted = Budgets(services.users.collection, "find", "count_documents", "find_one", "find_one_and_update")
    monkeypatch.setattr(services.users, "collection", noted)
    response = await api.get("/users?name=Grace&sortBy=email:desc", token=admin.token)
    assert response.code == 200 and response.json["totalResults"] == 1
    assert noted.seen and set(noted.seen) == {45.0}
    # Any other request of the same admin: the request's own budget.
    noted.seen.clear()
    assert (await api.get(f"/users/{admin.id}", token=admin.token)).code == 200
    assert (await api.put(f"/users/{admin.id}", json={"phone": "+44 20 7946 0000"}, token=admin.token)).code == 200
    assert set(noted.seen) == {4.0}
