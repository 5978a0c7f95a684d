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
# A re-read of the password hash and session epoch alone (has either changed since the password was checked?).
HASH_AND_EPOCH = {"passwordHash": 1, "sessionEpoch": 1}
# The session epoch alone: what a revoking write returns, for keep_current.
EPOCH_ONLY = {"sessionEpoch": 1}
# What two-factor sign-in keeps on a user ($unset when it is turned off): the sealed secret, the last time
# step used, the hashed recovery codes, a secret set up but not yet enabled, and when it was turned on.
TWO_FACTOR_STATE = {
    "totpSecret": "",
    "totpLastStep": "",
    "recoveryCodes": "",
    "totpPending": "",
    "twoFactorEnabledAt": "",
}
# When two-factor was turned on: an email-change undo turns off a second factor turned on after that change.
TWO_FACTOR_SINCE = {"twoFactorEnabled": 1, "twoFactorEnabledAt": 1}

MONTH_NAMES = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)

INDEXES = [
    # Login and registration look users up by email; unique is what makes concurrent sign-ups safe.
    IndexModel([("email", ASCENDING)], unique=True, name="email_unique"),
    # getUsers: a prefix of the email, over verified users only, in email order (one bounded range scan).
    # _id after email keeps its key pattern apart from email_unique's: servers before MongoDB 5.0 refuse
    # two indexes of one key pattern that differ only in their partial filter.
    IndexModel(
        [("email", ASCENDING), ("_id", ASCENDING)],
        partialFilterExpression={"isEmailVerified": True},
        name="verified_email",
    ),
    # Unique among string usernames only: a user without one (no field, or null should one ever be
    # written) is outside the index, so any number of them coexist. A sparse index would still hold
    # an explicit null, and a real server would then refuse the second.
    IndexModel(
        [("username", ASCENDING)],
        unique=True,
        partialFilterExpression={"username": {"$type": "string"}},
        name="username_string_unique",
    ),
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
_LIST_SCAN = (
    "GET /users, admins only: a multi-key sort or a filter plus a sort on another field, and the "
    "count under a filter, read the whole users collection (O(n) documents). Bounded by: one collection, "
    "literal escaped regexes of at most 100 characters (linear matching), and a top-k sort that keeps "
    "only skip + limit (limit <= 100) documents in memory."
)
_LIST_FILTERS = {"name": "regex", "username": "regex", "role": "eq"}

QUERY_EXCEPTIONS = [
    {
        "collection": COLLECTION,
        "why": _LIST_SCAN,
        "source": "services/pagination.py",
        "fields": {field: _LIST_FILTERS[field] for field in subset},
    }
    for size in range(len(_LIST_FILTERS) + 1)
    for subset in combinations(_LIST_FILTERS, size)
] + [
    {
        "collection": DELETIONS,
        "fields": {},
        "source": "services/users.py",
        "why": "The deletion sweep (every minute, in every process) reads the whole deletion journal, which holds "
        "only deletions in progress.",
    },
]


def revoke_sessions() -> dict:
    """The update fragment that ends every session of a user, merged into the very update that makes the change
    (password, email, role, two-factor): a session is live only while it carries its user's current epoch, so
    no failure after that one write can leave an old session alive (CWE-613)."""
    return {"$inc": {"sessionEpoch": 1}}


def session_epoch(doc: dict) -> int:
    """A user's session epoch (users from before epochs have none: 0)."""
    return doc.get("sessionEpoch", 0)


def split_name(name: str) -> tuple:
    """firstName is the first word of name, lastName the rest (possibly empty)."""
    first, _, rest = name.strip().partition(" ")
    return first, rest.strip()


def join_name(first_name: str, last_name: str) -> str:
    """name is firstName and lastName joined by one space."""
    return " ".join(part for part in (first_name.strip(), last_name.strip()) if part)


def photo_url(doc: dict, app_url: str):
    """Where the user's photo is served, absolute under APP_URL: a web app puts it in <img src> as it is, on
    its own origin. The version changes with each upload, busting caches."""
    version = doc.get("photoVersion")
    return f"{app_url}/users/{doc['_id']}/photo?v={version}" if version else None


def public_view(doc: dict, app_url: str) -> dict:
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
        "twoFactorEnabled": bool(doc.get("twoFactorEnabled", False)),
        "profilePhotoUrl": photo_url(doc, app_url),
        "favoriteBoards": list(doc.get("favoriteBoards", [])),
        "createdAt": isoformat(doc["createdAt"]),
        "updatedAt": isoformat(doc["updatedAt"]),
    }


def brief_view(doc: dict, app_url: str) -> dict:
    """The short form used by search results."""
    return {
        "id": str(doc["_id"]),
        "name": doc["name"],
        "email": doc["email"],
        "username": doc.get("username"),
        "profilePhotoUrl": photo_url(doc, app_url),
    }


def month_view(year: int, month: int, count: int) -> dict:
    """One row of sign-ups per month."""
    return {"year": year, "month": month, "monthName": MONTH_NAMES[month - 1], "count": count}


# ---- the answers as documented, or as the published web app reads them (TOTASK_WEB_COMPAT) ----------------
# The web app (khalednadam/totask-app) reads these answers as bare arrays, the shapes its own server sent; the
# choice is serialisation only: the same data, another shape (docs/using/clients.md).


def favourites_answer(doc: dict, web_app: bool):
    """The favourite boards, oldest first: {"favoriteBoards": [ids]}, or for the web app [{"id"}, ...] (it
    compares board.id; the boards themselves live in the task server)."""
    boards = list(doc.get("favoriteBoards", []))
    return [{"id": board} for board in boards] if web_app else {"favoriteBoards": boards}


def added_favourite_answer(doc: dict, board_id: str, web_app: bool):
    """addToFav: the favourite boards as favourites_answer gives them, or for the web app the one board added,
    {"id"}: its store pushes the answer onto the list it holds, as its own server answered."""
    return {"id": board_id} if web_app else favourites_answer(doc, web_app)


def search_answer(docs: list, app_url: str, web_app: bool):
    """getUsers: {"results": [brief users]}, or for the web app the array itself."""
    results = [brief_view(doc, app_url) for doc in docs]
    return results if web_app else {"results": results}


def signups_answer(rows: list, web_app: bool):
    """usersByMonth: {"results": [month_view rows]}, or for the web app [{"month": "January", "year", "count"}]
    (it labels its chart `${month} ${year}`)."""
    if web_app:
        return [{"month": row["monthName"], "year": row["year"], "count": row["count"]} for row in rows]
    return {"results": rows}
