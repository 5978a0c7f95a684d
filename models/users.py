"""The user document shared by both client families, its indexes and its public views."""
from itertools import combinations

from pymongo import ASCENDING, IndexModel

from models.common import isoformat

COLLECTION = "users"
# Journal of account deletions in progress, keyed by user id (see services.users.Users.erase).
DELETIONS = "deletions"

ROLES = ("user", "admin")

# The fields GET /users may sort by. email is unique, so it needs no tie-breaker.
SORT_FIELDS = ("name", "email", "username", "role", "createdAt")
UNIQUE_SORT_FIELDS = ("email",)

MAX_FAVOURITES = 500
# A re-read of the password hash alone (has it changed since it was checked?): nothing else of the user.
PASSWORD_HASH_ONLY = {"passwordHash": 1}

MONTH_NAMES = ("January", "February", "March", "April", "May", "June", "July", "August", "September",
               "October", "November", "December")

INDEXES = [
    # Login and registration look users up by email; unique is what makes concurrent sign-ups safe.
    IndexModel([("email", ASCENDING)], unique=True, name="email_unique"),
    # getUsers: a prefix of the email, over verified users only, in email order (one bounded range scan).
    # _id after email keeps its key pattern apart from email_unique's: servers before MongoDB 5.0 refuse
    # two indexes of one key pattern that differ only in their partial filter.
    IndexModel([("email", ASCENDING), ("_id", ASCENDING)], partialFilterExpression={"isEmailVerified": True},
               name="verified_email"),
    # Unique among string usernames only: a user without one (no field, or null should one ever be
    # written) is outside the index, so any number of them coexist. A sparse index would still hold
    # an explicit null, and a real server would then refuse the second.
    IndexModel([("username", ASCENDING)], unique=True, partialFilterExpression={"username": {"$type": "string"}},
               name="username_string_unique"),
    # Sign-ups per month and the createdAt sort.
    IndexModel([("createdAt", ASCENDING), ("_id", ASCENDING)], name="created_at"),
    # GET /users sorts: each sort key followed by the _id tie-breaker (scanned backwards for :desc).
    # They also serve the name / username substring filters as index-key scans: an unanchored,
    # case-insensitive regex cannot seek, so such a filter walks every key of that index (a full scan, as
    # QUERY_EXCEPTIONS below records); what bounds it: a literal, escaped needle of at most 100 characters
    # (linear matching), on an admin-only route.
    IndexModel([("name", ASCENDING), ("_id", ASCENDING)], name="name_sort"),
    # Not partial: the unique username index skips users without one, so it cannot sort them all.
    IndexModel([("username", ASCENDING), ("_id", ASCENDING)], name="username_sort"),
    # The role filter (exact) and the role sort.
    IndexModel([("role", ASCENDING), ("_id", ASCENDING)], name="role_sort"),
]

# Indexes earlier versions created and this one no longer declares: python run.py --sync-indexes drops them.
RETIRED_INDEXES = (
    "username_unique",  # sparse unique: replaced by username_string_unique, which also skips null
)

# GET /users shapes no index serves (listed in models.indexes.QUERY_EXCEPTIONS): a sortBy of several
# keys, or one combined with a filter on another field, and the filtered count for totalResults.
# Indexing every filter x sort combination would cost more on each write than it saves on this page.
_LIST_SCAN = ("GET /users, admins only: a multi-key sort or a filter plus a sort on another field, and the "
              "count under a filter, read the whole users collection (O(n) documents). Bounded by: one collection, "
              "literal escaped regexes of at most 100 characters (linear matching), and a top-k sort that keeps "
              "only skip + limit (limit <= 100) documents in memory.")
_LIST_FILTERS = {"name": "regex", "username": "regex", "role": "eq"}

QUERY_EXCEPTIONS = [
    {"collection": COLLECTION, "why": _LIST_SCAN, "source": "services/pagination.py",
     "fields": {field: _LIST_FILTERS[field] for field in subset}}
    for size in range(len(_LIST_FILTERS) + 1) for subset in combinations(_LIST_FILTERS, size)
] + [
    {"collection": DELETIONS, "fields": {}, "source": "services/users.py",
     "why": "The start-up replay reads the whole deletion journal, which holds only deletions in progress."},
]


def revoke_sessions() -> dict:
    return {"$inc": {"sessionEpoch": 1}}


def split_name(name: str) -> tuple:
    """firstName is the first word of name, lastName the rest (possibly empty)."""
    first, _, rest = name.strip().partition(" ")
    return first, rest.strip()


def join_name(first_name: str, last_name: str) -> str:
    """name is firstName and lastName joined by one space."""
    return " ".join(part for part in (first_name.strip(), last_name.strip()) if part)


def photo_url(doc: dict):
    """Where the user's photo is served; the version changes with each upload, busting caches."""
    version = doc.get("photoVersion")
    return f"/users/{doc['_id']}/photo?v={version}" if version else None


def public_view(doc: dict) -> dict:
    """The user as every endpoint returns it: no password hash, id and userId the same."""
    user_id = str(doc["_id"])
    return {
        "id": user_id,
        "userId": user_id,
        "name": doc["name"],
        "firstName": doc["firstName"],
        "lastName": doc["lastName"],
        "email": doc["email"],
        "phone": doc.get("phone"),
        "username": doc.get("username"),
        "role": doc["role"],
        "isEmailVerified": doc.get("isEmailVerified", False),
        "profilePhotoUrl": photo_url(doc),
        "favoriteBoards": list(doc.get("favoriteBoards", [])),
        "createdAt": isoformat(doc["createdAt"]),
        "updatedAt": isoformat(doc["updatedAt"]),
    }


def brief_view(doc: dict) -> dict:
    """The short form used by search results."""
    return {
        "id": str(doc["_id"]),
        "name": doc["name"],
        "email": doc["email"],
        "username": doc.get("username"),
        "profilePhotoUrl": photo_url(doc),
    }


def favourites_view(doc: dict) -> dict:
    """The favourite boards, oldest first."""
    return {"favoriteBoards": list(doc.get("favoriteBoards", []))}


def month_view(year: int, month: int, count: int) -> dict:
    """One row of sign-ups per month."""
    return {"year": year, "month": month, "monthName": MONTH_NAMES[month - 1], "count": count}
