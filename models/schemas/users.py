"""Request schemas of the /users endpoints: bodies and query strings."""

from models.photos import SIZES
from models.schemas.common import EMAIL, LOGIN_PASSWORD, NAME, NO_CONTROL, PASSWORD, PHONE, ROLE, USERNAME, body
from models.schemas.paging import paged_query
from models.users import SORT_FIELDS

CREATE = body(
    {
        "name": NAME,
        "email": EMAIL,
        "password": PASSWORD,
        "role": ROLE,
        "username": USERNAME,
        "firstName": NAME,
        "lastName": NAME,
        "phone": PHONE,
    },
    required=["name", "email", "password"],
)

# PUT / PATCH: every field optional; a multipart form sends the same fields as text parts.
# twoFactorEnabled: an admin may turn it off for someone who lost their device; nobody turns it on this way.
UPDATE = body(
    {
        "name": NAME,
        "firstName": NAME,
        "lastName": NAME,
        "email": EMAIL,
        "password": PASSWORD,
        "currentPassword": LOGIN_PASSWORD,
        "role": ROLE,
        "username": USERNAME,
        "phone": PHONE,
        "twoFactorEnabled": {
            "const": False,
            "x-message": "must be false: it is turned on with /auth/2fa/setup and /auth/2fa/enable",
        },
    }
)

# The multipart form of an update, as documented (handlers/openapi.py): UPDATE's fields as text parts plus
# the photo. The handler checks the text parts against UPDATE itself and the file by its content.
UPDATE_FORM = body(
    {
        **UPDATE["properties"],
        "file": {
            "type": "string",
            "contentMediaType": "application/octet-stream",
            "description": "a JPEG, PNG, WebP or GIF image, at most MAX_PHOTO_BYTES and "
            "MAX_PHOTO_PIXELS; stored redrawn: upright, at most 512 px, no metadata",
        },
    }
)

# Self-deletion re-checks the password; an admin deleting someone else sends nothing.
DELETE = body({"password": LOGIN_PASSWORD})

BOARD_ID = {
    "type": "string",
    "minLength": 1,
    "maxLength": 64,
    "pattern": NO_CONTROL,
    "x-message": "must be 1-64 characters without control characters",
}

BOARD = body({"boardId": BOARD_ID}, required=["boardId"])


# No control characters: a NUL inside a $regex is a server error, never a match (CWE-20).
SUBSTRING = {
    "type": "string",
    "minLength": 1,
    "maxLength": 100,
    "pattern": NO_CONTROL,
    "x-message": "must be 1-100 characters without control characters",
}

LIST_QUERY = paged_query({"name": SUBSTRING, "username": SUBSTRING, "role": ROLE}, sort_fields=SORT_FIELDS)

# Not a page: at most `limit` results of a prefix search.
SEARCH_QUERY = body({"email": SUBSTRING, "limit": {"type": "integer", "minimum": 1, "maximum": 20}}, required=["email"])

# (?!\n): jsonschema uses re.search, whose $ also matches before a final newline (CWE-20).
MONTH = {
    "type": "string",
    "pattern": r"^[1-9][0-9]{3}-(0[1-9]|1[0-2])(?!\n)$",
    "x-message": "must be a month as YYYY-MM",
}

BY_MONTH_QUERY = body({"from": MONTH, "to": MONTH})

# GET /users/:id/photo?v=<version>&size=<px>: any v is checked against the photo's (a wrong one is a 404).
PHOTO_QUERY = body(
    {
        "v": {
            "type": "string",
            "description": "the photo's version, from profilePhotoUrl; without it a bearer "
            "token of the user or an admin is needed",
        },
        "size": {
            "type": "integer",
            "enum": list(SIZES),
            "description": "the longest side at most this many pixels (default 512)",
        },
    }
)
