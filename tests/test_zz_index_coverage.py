"""Every query the services sent while the suite ran is served by an index declared in models/.

Named to run last: it reads what the other tests recorded (tests/index_coverage.py).
"""
import pytest

from tests.index_coverage import RECORDED, Query, served, shape, unserved


def test_every_recorded_query_is_served_by_a_declared_index():
    if len(RECORDED) < 50:
        pytest.skip("run with the whole suite: only the queries of the tests that ran are recorded")
    assert unserved() == []


@pytest.mark.parametrize("fields, sort, expected", [
    ({"email": "eq"}, [], True),                                           # unique email index
    ({"_id": "eq", "favoriteBoards.499": "range"}, [], True),               # _id lookups always
    ({"status": "eq", "nextAttemptAt": "range"}, [("nextAttemptAt", 1)], True),
    ({"userId": "eq"}, [], True),                                           # prefix of (userId, orgId)
    ({"orgId": "eq", "userId": "eq"}, [], True),
    ({"nickname": "eq"}, [], False),                                        # no such index
    ({}, [], False),                                                        # a collection scan
    ({"status": "eq"}, [("createdAt", 1)], False),                          # sort not after the prefix
    ({"$or": "unsupported"}, [], False),
])
def test_the_checker_tells_served_from_unserved(fields, sort, expected):
    collection = "memberships" if "orgId" in fields or fields == {"userId": "eq"} else \
        "outbox" if "status" in fields else "users"
    assert served(Query(collection, fields, sort, "test")) is expected


def test_filter_shapes():
    assert shape({"a": 1, "b": {"$gt": 2}, "c": {"$in": [1]}, "d": {"$regex": "x"}, "e": None}) == {
        "a": "eq", "b": "range", "c": "eq", "d": "regex", "e": "eq"}
    assert shape({"$and": [{"a": 1}, {"b": {"$lt": 1}}]}) == {"a": "eq", "b": "range"}
