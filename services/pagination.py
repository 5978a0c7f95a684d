"""Pagination, written once for every listing: sortBy parsing, skip/limit and the page envelope.

A listing's query schema is models/schemas/paging.py's paged_query (its filters, `sortBy` when it offers a
choice of order, `limit`, `page`); this module turns them into a MongoDB sort and one page of results, in
the fixed order of page_of. A list's service method is then one line:
`return await fetch_page(collection, filter, page_request(query, SORT_FIELDS))`.
"""

import math
from collections.abc import Iterable

from models.schemas.paging import DEFAULT_LIMIT
from services.errors import field_error

ASCENDING, DESCENDING = 1, -1
_DIRECTIONS = {"asc": ASCENDING, "desc": DESCENDING}


class Page:
    """Which page of a listing to read, how many per page, and in what order."""

    def __init__(self, number: int, limit: int, sort: list):
        self.number = number
        self.limit = limit
        self.sort = sort

    @property
    def skip(self) -> int:
        return (self.number - 1) * self.limit

    def answer(self, results: list, total: int) -> dict:
        """The page envelope, in its one fixed order (models/schemas/paging.py page_of)."""
        return {
            "results": results,
            "page": self.number,
            "limit": self.limit,
            "totalPages": total_pages(total, self.limit),
            "totalResults": total,
        }


def page_request(
    query: dict, sort_fields: Iterable[str] = (), unique: Iterable[str] = (), default_limit: int = DEFAULT_LIMIT
) -> Page:
    """The Page a validated query string asks for (page and limit already range-checked by its schema); a list
    that offers no choice of order (no sort_fields, no sortBy in its schema) is read in id order."""
    sort = parse_sort(query.get("sortBy"), sort_fields, unique)
    return Page(query.get("page", 1), query.get("limit", default_limit), sort)


def parse_sort(sort_by: str | None, fields: Iterable[str], unique: Iterable[str] = ()) -> list:
    """sortBy ("field:asc|desc", comma-joined) as a MongoDB sort ending in an _id tie-breaker; 422 if malformed."""
    fields = tuple(fields)
    keys = []
    for part in sort_by.split(",") if sort_by else []:
        field, _, direction = part.strip().partition(":")
        # Only listed fields: sorting on passwordHash would leak its order (CWE-200).
        if field not in fields or direction not in _DIRECTIONS or field in dict(keys):
            raise field_error(
                "sortBy",
                "must be field:asc or field:desc, comma-separated, each field once, fields: " + ", ".join(fields),
            )
        keys.append((field, _DIRECTIONS[direction]))
    if not any(field in unique for field, _ in keys):
        # Ties broken by id make the order stable; in the last key's direction so one index
        # (key, _id), read forwards or backwards, serves the whole sort.
        keys.append(("_id", keys[-1][1] if keys else ASCENDING))
    return keys


def total_pages(total: int, limit: int) -> int:
    """How many pages `total` results fill; no results, no pages."""
    return math.ceil(total / limit)


async def fetch_page(collection, query: dict, page: Page) -> dict:
    """Count the matches and read one page of them, in the contract's envelope (results are documents)."""
    # With no filter the collection's own count is exact enough for a page count and costs no scan.
    total = await (collection.count_documents(query) if query else collection.estimated_document_count())
    results = []
    if page.skip < total:
        cursor = collection.find(query).sort(page.sort).skip(page.skip).limit(page.limit)
        results = await cursor.to_list(page.limit)
    return page.answer(results, total)
