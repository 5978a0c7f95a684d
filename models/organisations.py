"""Organisations, memberships and invitations (one document per member or invitee, so no document grows
without bound)."""

from pymongo import ASCENDING, IndexModel

from models.common import isoformat

ORGANISATIONS = "organisations"
MEMBERSHIPS = "memberships"
INVITATIONS = "invitations"

# GET /api/invitations answers the newest invitations only: anyone can invite anyone, so the list is bounded.
MAX_INVITATIONS_LISTED = 100
# Pending invitations one user may have sent in the last hour: enough to invite a whole team, and half of what
# the invitee's list shows, so one stranger cannot push a real invitation out of it in an hour (CWE-770).
MAX_INVITATIONS_PER_HOUR = 50

ORGANISATION_INDEXES = [
    IndexModel([("createdBy", ASCENDING)], name="created_by"),
]

MEMBERSHIP_INDEXES = [
    # Is this user a member of this organisation: one index lookup; unique makes adding idempotent.
    IndexModel([("orgId", ASCENDING), ("userId", ASCENDING)], unique=True, name="org_user_unique"),
    # "Do these two users share an organisation": the target's memberships among the caller's orgIds.
    IndexModel([("userId", ASCENDING), ("orgId", ASCENDING)], name="user_org"),
    # A user's organisations in the order they joined: the listing's filter and sort, with no in-memory sort.
    IndexModel([("userId", ASCENDING), ("createdAt", ASCENDING), ("_id", ASCENDING)], name="user_joined"),
]

INVITATION_INDEXES = [
    # One pending invitation per (organisation, user): inviting twice upserts the same document.
    IndexModel([("orgId", ASCENDING), ("userId", ASCENDING)], unique=True, name="org_user_unique"),
    # A user's invitations newest first (read backwards), and all of them when the account is deleted.
    IndexModel([("userId", ASCENDING), ("createdAt", ASCENDING), ("_id", ASCENDING)], name="user_invited"),
    # The invitations a deleted account had sent.
    IndexModel([("invitedBy", ASCENDING)], name="invited_by"),
    # An inviter's invitations of the last hour, counted against MAX_INVITATIONS_PER_HOUR.
    IndexModel([("invitedBy", ASCENDING), ("createdAt", ASCENDING)], name="invited_by_created"),
]


def default_organisation_name(first_name: str) -> str:
    """The name of the organisation every new user gets."""
    return f"{first_name}'s Organisation"


DEFAULT_DESCRIPTION = "Default organisation"

# What the queries read, beside the indexes above that serve them.
# A user's organisation ids: with user_org (share_one) a covered query, answered from the index alone; in join
# order (for_user) read through user_joined, which holds no orgId.
ORG_ID_ONLY = {"orgId": 1, "_id": 0}
# When an inviter's oldest invitation of the hour was sent (the 429's Retry-After), found through invited_by_created.
CREATED_AT_ONLY = {"createdAt": 1}
# What invitation_view shows of the inviter, and so all that is read of their user document.
INVITER_NAME = {"firstName": 1, "lastName": 1}
# What the invitation email reads of the invited user and of the inviter (by _id).
INVITEE_MAIL = {"email": 1, "firstName": 1, "isEmailVerified": 1}
INVITER_MAIL = {"firstName": 1, "lastName": 1, "isEmailVerified": 1}


def public_view(doc: dict) -> dict:
    """An organisation as the /api client reads it."""
    return {"orgId": str(doc["_id"]), "name": doc["name"], "description": doc.get("description", "")}


def invitation_view(invitation: dict, org: dict, inviter: dict) -> dict:
    """An invitation as the invited user reads it: the organisation, who invited them and when."""
    return {
        **public_view(org),
        "invitedBy": {
            "userId": str(inviter["_id"]),
            "firstName": inviter.get("firstName", ""),
            "lastName": inviter.get("lastName", ""),
        },
        "invitedAt": isoformat(invitation["createdAt"]),
    }
