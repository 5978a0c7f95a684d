"""GET /users/usersByMonth: sign-ups per calendar month (UTC), one aggregation pipeline."""

import datetime as dt

import pytest

from tests.helpers import assert_error, error_fields, sign_up
from tests.users_fixtures import make_admin, set_created_at

pytestmark = pytest.mark.gen_test

UTC = dt.UTC

SIGN_UPS = [  # createdAt of each user but the admin, across months and years
    dt.datetime(2024, 11, 3, 9, 0, tzinfo=UTC),
    dt.datetime(2024, 11, 30, 23, 59, 59, 999000, tzinfo=UTC),
    dt.datetime(2024, 12, 1, 0, 0, tzinfo=UTC),
    dt.datetime(2025, 2, 14, 12, 0, tzinfo=UTC),
    dt.datetime(2025, 2, 28, 18, 0, tzinfo=UTC),
    dt.datetime(2025, 2, 1, 0, 0, tzinfo=UTC),
    dt.datetime(2026, 1, 31, 23, 0, tzinfo=dt.timezone(dt.timedelta(hours=-5))),  # 1 February, UTC
]
ADMIN_SIGNED_UP = dt.datetime(2023, 6, 15, tzinfo=UTC)


async def populate(api, services):
    admin = await make_admin(api, services)
    await set_created_at(services, admin.id, ADMIN_SIGNED_UP)
    for n, when in enumerate(SIGN_UPS):
        user = await sign_up(api, email=f"u{n}@example.com", name=f"U {n}")
        await set_created_at(services, user.id, when)
    return admin


def row(year, month, name, count):
    return {"year": year, "month": month, "monthName": name, "count": count}


async def test_without_a_range_only_months_with_sign_ups_oldest_first(api, services):
    admin = await populate(api, services)
    response = await api.get("/users/usersByMonth", token=admin.token)
    assert response.code == 200, response
    assert response.json == {
        "results": [
            row(2023, 6, "June", 1),
            row(2024, 11, "November", 2),
            row(2024, 12, "December", 1),
            row(2025, 2, "February", 3),
            row(2026, 2, "February", 1),
        ]
    }


async def test_a_range_lists_every_month_zeros_included(api, services):
    admin = await populate(api, services)
    response = await api.get("/users/usersByMonth?from=2024-10&to=2025-03", token=admin.token)
    assert response.json == {
        "results": [
            row(2024, 10, "October", 0),
            row(2024, 11, "November", 2),
            row(2024, 12, "December", 1),
            row(2025, 1, "January", 0),
            row(2025, 2, "February", 3),
            row(2025, 3, "March", 0),
        ]
    }
    single = await api.get("/users/usersByMonth?from=2024-11&to=2024-11", token=admin.token)
    assert single.json == {"results": [row(2024, 11, "November", 2)]}
    empty_years = await api.get("/users/usersByMonth?from=1999-01&to=1999-12", token=admin.token)
    assert [r["count"] for r in empty_years.json["results"]] == [0] * 12
    assert [r["monthName"] for r in empty_years.json["results"]][::11] == ["January", "December"]


async def test_the_range_is_at_most_120_months(api, services):
    admin = await make_admin(api, services)
    ten_years = await api.get("/users/usersByMonth?from=2016-01&to=2025-12", token=admin.token)
    assert len(ten_years.json["results"]) == 120
    assert error_fields(await api.get("/users/usersByMonth?from=2016-01&to=2026-01", token=admin.token)) == {
        "to": "the range is at most 120 months"
    }
    far = await api.get("/users/usersByMonth?from=9990-01&to=9999-12", token=admin.token)
    assert far.code == 200 and len(far.json["results"]) == 120


async def test_bad_ranges_are_422(api, services):
    admin = await make_admin(api, services)
    cases = {
        "from=2025-13&to=2025-12": {"from": "must be a month as YYYY-MM"},
        "from=2025-1&to=2025-12": {"from": "must be a month as YYYY-MM"},
        "from=0000-01&to=2025-12": {"from": "must be a month as YYYY-MM"},
        "from=2025-01-01&to=2025-12": {"from": "must be a month as YYYY-MM"},
        "from=2025-01&to=abc": {"to": "must be a month as YYYY-MM"},
        "from=2025-01": {"to": "is required with from"},
        "to=2025-01": {"from": "is required with to"},
        "from=2025-02&to=2025-01": {"from": "must not be after to"},
        "month=2025-01": {"month": "is not allowed"},
    }
    for query, expected in cases.items():
        assert error_fields(await api.get(f"/users/usersByMonth?{query}", token=admin.token)) == expected, query


async def test_admins_only(api):
    user = await sign_up(api)
    assert_error(await api.get("/users/usersByMonth", token=user.token), 403)
    assert_error(await api.get("/users/usersByMonth"), 401)
