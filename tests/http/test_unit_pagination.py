"""services/pagination.py without HTTP: sortBy parsing and the page arithmetic (GET /users covers them end to end)."""

import pytest

from services.errors import ApiError
from services.pagination import ASCENDING, DESCENDING, Page, page_request, parse_sort, total_pages

FIELDS = ("name", "email", "createdAt")


@pytest.mark.parametrize(
    "sort_by, expected",
    [
        (None, [("_id", ASCENDING)]),  # no sortBy: by id
        ("", [("_id", ASCENDING)]),
        ("name:asc", [("name", ASCENDING), ("_id", ASCENDING)]),
        ("name:desc", [("name", DESCENDING), ("_id", DESCENDING)]),  # the tie-breaker follows the last key
        ("name:asc,createdAt:desc", [("name", ASCENDING), ("createdAt", DESCENDING), ("_id", DESCENDING)]),
        (" name:asc , email:asc", [("name", ASCENDING), ("email", ASCENDING), ("_id", ASCENDING)]),
    ],
)
def test_sort_by_becomes_a_mongodb_sort_ending_in_an_id_tie_breaker(sort_by, expected):
    assert parse_sort(sort_by, FIELDS) == expected


def test_a_unique_field_needs_no_tie_breaker():
    assert parse_sort("email:desc", FIELDS, unique=("email",)) == [("email", DESCENDING)]
    assert parse_sort("name:asc,email:desc", FIELDS, unique=("email",)) == [("name", ASCENDING), ("email", DESCENDING)]


@pytest.mark.parametrize(
    "sort_by",
    [
        "passwordHash:asc",  # not a listed field (CWE-200: its order would leak)
        "name",  # no direction
        "name:up",  # unknown direction
        "name:ASC",  # directions are lower case
        "name:asc,name:desc",  # a field twice
        "name:asc,",  # an empty part
        ",",
        "_id:asc",  # the tie-breaker is not sortable by itself
    ],
)
def test_malformed_sort_by_is_a_422_on_sort_by_naming_the_fields(sort_by):
    with pytest.raises(ApiError) as raised:
        parse_sort(sort_by, FIELDS)
    error = raised.value
    assert error.status == 422 and error.message == "Validation failed"
    assert [entry["field"] for entry in error.errors] == ["sortBy"]
    assert error.errors[0]["message"].endswith("fields: name, email, createdAt")


def test_page_request_reads_page_limit_and_sort_with_defaults():
    page = page_request({}, FIELDS)
    assert (page.number, page.limit, page.sort, page.skip) == (1, 10, [("_id", ASCENDING)], 0)
    page = page_request({"page": 3, "limit": 7, "sortBy": "email:desc"}, FIELDS, default_limit=5)
    assert (page.number, page.limit, page.sort, page.skip) == (3, 7, [("email", DESCENDING), ("_id", DESCENDING)], 14)
    assert page_request({}, FIELDS, default_limit=5).limit == 5


@pytest.mark.parametrize("number, limit, skip", [(1, 10, 0), (2, 10, 10), (5, 3, 12)])
def test_skip_is_the_results_on_the_pages_before(number, limit, skip):
    assert Page(number, limit, []).skip == skip


@pytest.mark.parametrize("total, limit, pages", [(0, 10, 0), (1, 10, 1), (10, 10, 1), (11, 10, 2), (21, 5, 5)])
def test_total_pages_rounds_up_and_no_results_is_no_pages(total, limit, pages):
    assert total_pages(total, limit) == pages
