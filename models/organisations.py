"""Organisations and memberships (one document per member, so no document grows without bound)."""
from pymongo import ASCENDING, IndexModel

ORGANISATIONS = "organisations"
MEMBERSHIPS = "memberships"

ORGANISATION_INDEXES = [
    IndexModel([("createdBy", ASCENDING)], name="created_by"),
]

MEMBERSHIP_INDEXES = [
    # Is this user a member of this organisation: one index lookup; unique makes adding idempotent.
    IndexModel([("orgId", ASCENDING), ("userId", ASCENDING)], unique=True, name="org_user_unique"),
    # "Do these two users share an organisation": the target's memberships among the caller's orgIds.
    IndexModel([("userId", ASCENDING), ("orgId", ASCENDING)], name="user_org"),
    # A user's organisations in the order they joined: the listing's $match and $sort, with no in-memory sort.
    IndexModel([("userId", ASCENDING), ("createdAt", ASCENDING), ("_id", ASCENDING)], name="user_joined"),
]


def default_organisation_name(first_name: str) -> str:
    """The name of the organisation every new user gets."""
    return f"{first_name}'s Organisation"


DEFAULT_DESCRIPTION = "Default organisation"


def public_view(doc: dict) -> dict:
    """An organisation as the /api client reads it."""
    return {"orgId": str(doc["_id"]), "name": doc["name"], "description": doc.get("description", "")}
