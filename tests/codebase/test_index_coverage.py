"""Every query the services send is served by an index declared in models/.

tests/conftest.py's autouse fixture `queries_use_declared_indexes` checks each test's queries as it ends
(tests/index_coverage.py records them); these tests check the checker.
"""

import os

import pytest
from pymongo import IndexModel, MongoClient, ReturnDocument

from models import users
from models.indexes import INDEXES
from tests import index_coverage
from tests.helpers import sign_up
from tests.index_coverage import RECORDED, Query, check_return_document, equalities, served, shape, unserved


@pytest.mark.gen_test
async def test_a_query_no_declared_index_serves_is_reported_with_the_line_that_sent_it(api, monkeypatch):
    await sign_up(api, "mark@example.com")
    assert unserved(RECORDED) == []
    monkeypatch.setitem(INDEXES, users.COLLECTION, [])  # as if models/users.py declared none
    problems = unserved(RECORDED)
    RECORDED.clear()  # the test's own verdict, not the fixture's
    assert any(
        p.startswith("users filter={'email': 'eq'} sort=[] sent by services/users.py:")
        and p.endswith("; declare its index in models/users.py")
        for p in problems
    ), problems


@pytest.mark.gen_test
async def test_a_paged_listing_is_named_by_its_service_function_not_the_shared_pagination(services, monkeypatch):
    # The filter and sort were written in Users.list_page; services/pagination.py only sent them.
    monkeypatch.setitem(INDEXES, users.COLLECTION, [])
    monkeypatch.setattr(index_coverage, "QUERY_EXCEPTIONS", [])
    await services.users.list_page({"role": "user"})
    problems = [p for p in unserved(RECORDED) if p.startswith("users ")]
    RECORDED.clear()
    assert problems and all(" Users.list_page (through services/pagination.py:" in p for p in problems), problems
    assert all(
        p.startswith("users filter={'role': 'eq'} sort=[] sent by services/users.py:")  # the count
        and p.endswith("declare its index in models/users.py")
        for p in problems
    ), problems


@pytest.mark.gen_test
async def test_a_query_a_handler_sends_is_reported_even_when_an_index_serves_it(services):
    # Handlers call one service method; a handler that reached a collection is caught at run time too (the
    # static check is tests/codebase/test_layering.py). The code is compiled as if it were a module in handlers/.
    source = "async def get(collection):\n    return await collection.find_one({'email': 'ada@example.com'})\n"
    namespace = {}
    exec(compile(source, os.path.join(index_coverage.ROOT, "handlers", "reached_in.py"), "exec"), namespace)
    await namespace["get"](services.database[users.COLLECTION])
    problems = unserved(RECORDED)
    RECORDED.clear()
    assert problems == [
        "users filter={'email': 'eq'} sort=[] sent by a handler, handlers/reached_in.py:2 get: "
        "handlers call one service method, the service sends the query"
    ]


@pytest.mark.parametrize(
    "fields, sort, expected",
    [
        ({"email": "eq"}, [], True),  # unique email index
        ({"_id": "eq", "favoriteBoards.499": "range"}, [], True),  # _id lookups always
        ({"status": "eq", "nextAttemptAt": "range"}, [("nextAttemptAt", 1)], True),
        ({"userId": "eq"}, [], True),  # prefix of (userId, orgId)
        ({"orgId": "eq", "userId": "eq"}, [], True),
        ({"nickname": "eq"}, [], False),  # no such index
        ({}, [], False),  # a collection scan
        ({"status": "eq"}, [("createdAt", 1)], False),  # sort not after the prefix
        ({"$or": "unsupported"}, [], False),
        ({"email": "prefix"}, [("email", 1)], True),  # an anchored prefix: index bounds
        ({"email": "prefix"}, [], True),
        ({"email": "regex"}, [], False),  # unanchored: every key is read
        ({"email": "regex"}, [("email", 1)], False),  # ... even in index order
        ({"name": "regex"}, [("name", 1), ("_id", 1)], False),
        ({"status": "eq"}, [("_id", 1)], False),  # _id's index orders, never filters
        ({}, [("_id", -1)], True),  # ... but a whole listing in id order
    ],
)
def test_the_checker_tells_served_from_unserved(fields, sort, expected):
    collection = (
        "memberships"
        if "orgId" in fields or fields == {"userId": "eq"}
        else "outbox"
        if "status" in fields
        else "users"
    )
    assert served(Query(collection, fields, sort, "test")) is expected


@pytest.mark.parametrize(
    "condition, kind",
    [
        ({"$regex": "^ada"}, "prefix"),
        ({"$regex": "^a\\+b\\(\\.x"}, "prefix"),  # re.escape's output: escaped punctuation is literal
        ({"$regex": "ada"}, "regex"),  # unanchored
        ({"$regex": "^ada", "$options": "i"}, "regex"),  # case-insensitive cannot bound an index scan
        ({"$regex": "^a.b"}, "regex"),  # a wildcard
        ({"$regex": "^a|b"}, "regex"),  # alternation: not all of it is anchored
        ({"$regex": "^\\d"}, "regex"),  # an escaped letter is a class
        ({"$regex": "^"}, "regex"),
    ],
)
def test_regexes_are_prefixes_only_when_anchored_literal_and_case_sensitive(condition, kind):
    assert shape({"email": condition}) == {"email": kind}


def test_a_partial_index_serves_only_queries_that_imply_its_filter(monkeypatch):
    monkeypatch.setitem(INDEXES, "things", [IndexModel([("x", 1)], partialFilterExpression={"flag": True})])

    def query(flag):
        return Query("things", {"x": "prefix", "flag": "eq"}, [("x", 1)], "test", equalities({"flag": flag}))

    assert served(query(True))
    assert not served(query(False))
    assert not served(Query("things", {"x": "prefix"}, [("x", 1)], "test"))
    assert equalities({"$and": [{"a": 1}, {"b": {"$gt": 1}}], "c": None}) == {"a": 1, "c": None}


def test_filter_shapes():
    assert shape({"a": 1, "b": {"$gt": 2}, "c": {"$in": [1]}, "d": {"$regex": "x"}, "e": None}) == {
        "a": "eq",
        "b": "range",
        "c": "eq",
        "d": "regex",
        "e": "eq",
    }
    assert shape({"$and": [{"a": 1}, {"b": {"$lt": 1}}]}) == {"a": "eq", "b": "range"}


@pytest.mark.parametrize("value", [None, 1, "after"])
def test_the_recording_collections_refuse_a_return_document_as_pymongo_does(value):
    # pymongo checks the argument before it selects a server, so a client that can reach none still answers.
    real = MongoClient("mongodb://127.0.0.1:9", connect=False, serverSelectionTimeoutMS=1)["db"]["c"]
    with pytest.raises(TypeError) as pymongo_refusal:
        real.find_one_and_update({}, {"$set": {"a": 1}}, return_document=value)
    real.database.client.close()
    with pytest.raises(TypeError) as shim_refusal:
        check_return_document(value)
    assert str(shim_refusal.value) == str(pymongo_refusal.value)
    check_return_document(ReturnDocument.BEFORE)
    check_return_document(ReturnDocument.AFTER)
