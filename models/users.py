"""The user document shared by both client families, its indexes and its public views."""
from pymongo import ASCENDING, IndexModel

from models.common import isoformat

COLLECTION = "users"

ROLES = ("user", "admin")

INDEXES = [
    # Login and registration look users up by email; unique is what makes concurrent sign-ups safe.
    IndexModel([("email", ASCENDING)], unique=True, name="email_unique"),
    # Sparse: users without a username carry no such field, so they never collide on null.
    IndexModel([("username", ASCENDING)], unique=True, sparse=True, name="username_unique"),
    # Sign-ups per month and the createdAt sort.
    IndexModel([("createdAt", ASCENDING), ("_id", ASCENDING)], name="created_at"),
]


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
