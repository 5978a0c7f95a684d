"""A paged list, written once: the query string's filters then sortBy, limit and page, and the answer's shape.

services/pagination.py reads the same query (page_request) and builds the answer (Page.answer); a handler
sends it with BaseHandler.send_page. The `x-parameter` texts become the parameters' descriptions in
/openapi.json (handlers/documented.py)."""

from models.schemas.common import body

PAGE = {"type": "integer", "minimum": 1, "x-parameter": "Page number, 1 or more (default 1)."}

# Defaults of every paged list (services.pagination.page_request uses the same).
DEFAULT_LIMIT = 10
MAX_LIMIT = 100


def limit(maximum: int = MAX_LIMIT, default: int = DEFAULT_LIMIT) -> dict:
    """A page size from 1 to maximum."""
    return {
        "type": "integer",
        "minimum": 1,
        "maximum": maximum,
        "x-parameter": f"Page size, 1-{maximum} (default {default}).",
    }


def sort_by(fields) -> dict:
    """`field:asc|desc`, comma-joined, over these fields; the format is checked where it is parsed
    (services.pagination.parse_sort, a 422 naming the fields)."""
    return {
        "type": "string",
        "minLength": 1,
        "maxLength": 200,
        "x-parameter": f"`field:asc` or `field:desc`, several joined by commas, e.g. `{fields[-1]}:desc,"
        f"{fields[0]}:asc`. Fields: {', '.join(fields)}. Ties are broken by id, so pages never "
        "overlap. Default: by id (oldest first).",
    }


def paged_query(
    filters: dict = None, sort_fields=(), maximum: int = MAX_LIMIT, default: int = DEFAULT_LIMIT, required=()
) -> dict:
    """The query string of a paged list: its own filters, then sortBy (only when it offers a choice of order),
    limit and page; unknown parameters are a 422."""
    properties = dict(filters or {})
    if sort_fields:
        properties["sortBy"] = sort_by(tuple(sort_fields))
    properties.update(limit=limit(maximum, default), page=PAGE)
    return body(properties, required)


def page_of(item: dict, maximum: int = MAX_LIMIT) -> dict:
    """The answer of a paged list: one page of items and where it stands, in this fixed order."""
    return {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "results": {"type": "array", "items": item},
            "page": {"type": "integer", "minimum": 1},
            "limit": {"type": "integer", "minimum": 1, "maximum": maximum},
            "totalPages": {"type": "integer", "minimum": 0},
            "totalResults": {"type": "integer", "minimum": 0},
        },
        "required": ["results", "page", "limit", "totalPages", "totalResults"],
    }
