"""Records the filter and sort of every query the services send to MongoDB during the suite, and
checks each against the indexes declared in models/.

This is how the service stays O(log n) on real MongoDB while CI runs on the in-process stand-in,
which has no query planner to complain. A shape is served when an index's leading keys are the
query's equality fields (in any order), followed by its sort fields (in order, or all reversed);
range conditions may follow. A point lookup on a unique index needs no sort support. A partial
index serves only queries whose filter has its partialFilterExpression's equalities.

A $regex is a range only when it is an anchored, case-sensitive prefix (`^` then literal text, no
options), which MongoDB turns into index bounds; any other regex ("regex") reads every key.
"""

import dataclasses
import os
import re
import sys

from models.indexes import INDEXES, QUERY_EXCEPTIONS
from services.database import Database

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SERVICE_DIRS = tuple(os.path.join(ROOT, d) + os.sep for d in ("services", "models"))
HANDLER_DIR = os.path.join(ROOT, "handlers") + os.sep
# Helpers every service shares: a query they send is named by the service function that called them, which is
# where its filter and sort were written.
SHARED_HELPERS = tuple(os.path.join(ROOT, "services", f) for f in ("pagination.py", "counters.py", "database.py"))

EQUALITY_OPERATORS = {"$eq", "$in"}
# `^` then characters that are literal, or escaped non-alphanumerics, and no alternation: what MongoDB
# can bound an index scan by (an escaped letter such as \d is a class, not a literal).
LITERAL_PREFIX = re.compile(r"\^(?:[^\\.^$|?*+()\[\]{}]|\\[^A-Za-z0-9])+")


@dataclasses.dataclass
class Query:
    collection: str
    fields: dict  # field -> "eq" | "range" | "prefix" | "regex"
    sort: list  # [(field, direction)]
    where: str  # file:line of the service code that sent it
    equalities: dict = dataclasses.field(default_factory=dict)  # field -> value of its plain equality
    caller: str = ""  # file:line function of the code that wrote the query (past the shared helpers)

    @property
    def from_handler(self) -> bool:
        return (self.caller or self.where).startswith("handlers" + os.sep)

    def describe(self) -> str:
        sent = self.caller or self.where
        if self.caller and not self.caller.startswith(self.where):
            sent += f" (through {self.where})"
        if self.from_handler:
            return (
                f"{self.collection} filter={self.fields} sort={self.sort} sent by a handler, {sent}: "
                "handlers call one service method, the service sends the query"
            )
        return (
            f"{self.collection} filter={self.fields} sort={self.sort} sent by {sent}; "
            f"declare its index in {declared_in(self.collection)}"
        )


RECORDED: list = []  # the queries of the running test (tests/conftest.py empties it before each)


def shape(filter_doc: dict | None) -> dict:
    """field -> kind of condition, for a MongoDB filter document."""
    fields = {}
    for key, value in (filter_doc or {}).items():
        if key == "$and":
            for part in value:
                fields.update(shape(part))
        elif key.startswith("$"):
            fields[key] = "unsupported"  # $or, $expr, $where: checked by hand, so flagged here
        elif isinstance(value, dict) and any(k.startswith("$") for k in value):
            operators = set(value)
            if operators <= EQUALITY_OPERATORS:
                fields[key] = "eq"
            elif "$regex" in operators:
                fields[key] = regex_kind(value)
            else:
                fields[key] = "range"
        else:
            fields[key] = "eq"
    return fields


def regex_kind(condition: dict) -> str:
    """ "prefix" for an anchored case-sensitive literal prefix (index bounds), else "regex" (a full scan)."""
    pattern, options = condition["$regex"], condition.get("$options", "")
    if isinstance(pattern, str) and not options and LITERAL_PREFIX.fullmatch(pattern):
        return "prefix"
    return "regex"


def equalities(filter_doc: dict | None) -> dict:
    """field -> value of each plain equality in a filter (what a partial index's filter is matched against)."""
    found = {}
    for key, value in (filter_doc or {}).items():
        if key == "$and":
            for part in value:
                found.update(equalities(part))
        elif not key.startswith("$") and not isinstance(value, dict):
            found[key] = value
    return found


def normalise_sort(sort) -> list:
    if not sort:
        return []
    if isinstance(sort, str):
        return [(sort, 1)]
    if isinstance(sort, dict):
        return list(sort.items())
    if isinstance(sort, tuple) and len(sort) == 2 and isinstance(sort[0], str):
        return [sort]
    return [tuple(item) if not isinstance(item, str) else (item, 1) for item in sort]


def declared_indexes(collection: str) -> list:
    """(keys, unique, partial filter) of every index declared for a collection, _id's included."""
    indexes = [([("_id", 1)], True, {})]
    for model in INDEXES.get(collection, []):
        spec = model.document
        indexes.append((list(spec["key"].items()), bool(spec.get("unique")), spec.get("partialFilterExpression", {})))
    return indexes


def served(query: Query) -> bool:
    """True when a declared index serves the query's equality fields and then its sort."""
    if any(kind in ("unsupported", "regex") for kind in query.fields.values()):
        return False  # $or and the like are checked by hand; an unanchored regex reads every key
    equal = {f for f, kind in query.fields.items() if kind == "eq"}
    ranged = {f for f, kind in query.fields.items() if kind in ("range", "prefix")}
    if query.fields.get("_id") == "eq":
        return True
    for keys, unique, partial in declared_indexes(query.collection):
        if any(query.equalities.get(field, object()) != value for field, value in partial.items()):
            continue  # the partial index leaves out documents this query may want
        names = [k for k, _ in keys]
        prefix = 0
        while prefix < len(names) and names[prefix] in equal:
            prefix += 1
        if unique and prefix == len(names):
            return True  # a point lookup: at most one document, nothing to sort
        rest = keys[prefix:]
        if query.sort:
            wanted = query.sort
            if len(rest) < len(wanted) or [k for k, _ in rest[: len(wanted)]] != [k for k, _ in wanted]:
                continue
            same = all(d == w for (_, d), (_, w) in zip(rest, wanted, strict=False))
            reversed_ = all(d == -w for (_, d), (_, w) in zip(rest, wanted, strict=False))
            # An index that only orders (no equality field leads it) would read every key to find the matches.
            if (same or reversed_) and (prefix or not equal - set(partial)):
                return True
        elif prefix or (names and names[0] in ranged):
            return True
    return False


def excepted(query: Query) -> bool:
    """True when the shape is one of the documented exceptions in models/indexes.py."""
    for exception in QUERY_EXCEPTIONS:
        sources = {query.where.split(":")[0], query.caller.split(":")[0]}
        if "source" in exception and exception["source"] not in sources:
            continue  # an exception covers only the code it was written for
        if (
            exception["collection"] == query.collection
            and set(exception["fields"]) == set(query.fields)
            and all(query.fields[f] == kind for f, kind in exception["fields"].items())
        ):
            return True
    return False


def unserved(queries) -> list:
    """Every shape among these queries that no declared index serves and no exception documents."""
    seen, problems = set(), []
    for query in queries:
        key = (query.collection, tuple(sorted(query.fields.items())), tuple(query.sort), query.from_handler)
        if key in seen:
            continue
        seen.add(key)
        if query.from_handler or (not served(query) and not excepted(query)):
            problems.append(query.describe())
    return problems


def declared_in(collection: str) -> str:
    """The models/<area>.py file that names a collection (its upper-case constant), where its indexes belong."""
    for name, module in sorted(sys.modules.items()):
        if (
            name.startswith("models.")
            and name.count(".") == 1
            and any(key.isupper() and value == collection for key, value in vars(module).items())
        ):
            return name.replace(".", "/") + ".py"
    return f"models/<area>.py (and register {collection!r} in models/indexes.py)"


def _relative(frame) -> str:
    return f"{frame.f_code.co_filename[len(ROOT) + 1 :]}:{frame.f_lineno}"  # the project's files are under ROOT


def _caller() -> tuple | None:
    """(where, caller) for a query the project's code sends: where is file:line of the services/, models/ or
    handlers/ code that sent it; caller is file:line and function of the code that wrote it, past the shared
    helpers (pagination, counters). None when a test sends it."""
    frame = sys._getframe(2)
    where = None
    while frame is not None:
        filename = frame.f_code.co_filename
        if filename == __file__ or os.sep + "site-packages" + os.sep in filename:
            frame = frame.f_back
            continue
        if not filename.startswith(SERVICE_DIRS + (HANDLER_DIR,)):
            return None if where is None else (where, where)  # a test called the shared helper itself
        where = where or _relative(frame)
        if filename not in SHARED_HELPERS:
            return where, f"{_relative(frame)} {frame.f_code.co_qualname}"
        frame = frame.f_back
    return None if where is None else (where, where)


def _record(collection: str, filter_doc, sort=None) -> Query | None:
    found = _caller()
    if found is None:
        return None
    where, caller = found
    query = Query(collection, shape(filter_doc), normalise_sort(sort), where, equalities(filter_doc), caller)
    RECORDED.append(query)
    return query


def check_return_document(value) -> None:
    """pymongo refuses a return_document that is not ReturnDocument.BEFORE/AFTER before anything is sent
    (pymongo/asynchronous/collection.py, __find_and_modify); the stand-in takes anything and returns the document
    before, so code that fails on every call in production would pass the suite without this."""
    if not isinstance(value, bool):
        raise TypeError(f"return_document must be ReturnDocument.BEFORE or ReturnDocument.AFTER, not {type(value)}")


class RecordingCursor:
    """A cursor that adds a later .sort() to the recorded query."""

    def __init__(self, cursor, query: Query | None):
        self._cursor = cursor
        self._query = query

    def sort(self, key_or_list, direction=None):
        sort = [(key_or_list, direction)] if direction is not None else key_or_list
        if self._query is not None:
            self._query.sort = normalise_sort(sort)
        self._cursor = (
            self._cursor.sort(key_or_list, direction) if direction is not None else self._cursor.sort(key_or_list)
        )
        return self

    def __getattr__(self, name):
        attribute = getattr(self._cursor, name)
        if not callable(attribute):
            return attribute

        def chained(*args, **kwargs):
            result = attribute(*args, **kwargs)
            if result is self._cursor:
                return self
            return result

        return chained

    def __aiter__(self):
        return self._cursor.__aiter__()


class RecordingCollection:
    """A collection whose reads and writes record their filter and sort."""

    FILTERED = (
        "find_one",
        "find_one_and_update",
        "find_one_and_delete",
        "find_one_and_replace",
        "update_one",
        "update_many",
        "delete_one",
        "delete_many",
        "replace_one",
        "count_documents",
    )

    def __init__(self, collection, name: str):
        self._collection = collection
        self._name = name

    def find(self, filter=None, *args, **kwargs):
        query = _record(self._name, filter, kwargs.get("sort"))
        return RecordingCursor(self._collection.find(filter, *args, **kwargs), query)

    def aggregate(self, pipeline, *args, **kwargs):
        stages = list(pipeline)
        first = stages[0] if stages else {}
        match = first.get("$match") if "$match" in first else None
        following = stages[1] if match is not None and len(stages) > 1 else (first if match is None else {})
        _record(self._name, match if match is not None else {}, following.get("$sort"))
        for stage in stages:
            lookup = stage.get("$lookup")
            if lookup and "foreignField" in lookup:
                _record(lookup["from"], {lookup["foreignField"]: "x"})
        return self._collection.aggregate(pipeline, *args, **kwargs)

    def distinct(self, key, filter=None, *args, **kwargs):
        _record(self._name, filter)
        return self._collection.distinct(key, filter, *args, **kwargs)

    def __getattr__(self, name):
        attribute = getattr(self._collection, name)
        if name not in self.FILTERED:
            return attribute

        def recorded(filter=None, *args, **kwargs):
            _record(self._name, filter, kwargs.get("sort"))
            if name in ("find_one_and_update", "find_one_and_replace"):
                check_return_document(kwargs.get("return_document", False))
            return attribute(filter, *args, **kwargs)

        return recorded


class RecordingDatabase(Database):
    """The service's Database, handing out recording collections."""

    def __getitem__(self, collection: str):
        return RecordingCollection(super().__getitem__(collection), collection)
