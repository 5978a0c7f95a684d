"""JSON Schemas of response bodies, for the OpenAPI document (and so for its consumers and fuzzers)."""
from models.organisations import MAX_INVITATIONS_LISTED
from models.schemas.paging import page_of
from models.users import MONTH_NAMES, ROLES


TIME = {"type": "string", "format": "date-time", "pattern": r"Z$"}
ID = {"type": "string", "pattern": r"^[0-9a-f]{24}$"}
NULLABLE_STRING = {"type": ["string", "null"]}


def closed(properties: dict, required=None) -> dict:
    """An object with exactly these properties, all present unless `required` says otherwise."""
    return {"type": "object", "properties": properties, "additionalProperties": False,
            "required": list(properties) if required is None else required}


USER = closed({
    "id": ID, "userId": ID, "name": {"type": "string"}, "firstName": {"type": "string"},
    "lastName": {"type": "string"}, "email": {"type": "string"}, "phone": NULLABLE_STRING,
    "username": NULLABLE_STRING, "role": {"type": "string", "enum": list(ROLES)},
    "isEmailVerified": {"type": "boolean"}, "twoFactorEnabled": {"type": "boolean"},
    "profilePhotoUrl": {**NULLABLE_STRING, "format": "uri"},
    "favoriteBoards": {"type": "array", "items": {"type": "string"}}, "createdAt": TIME, "updatedAt": TIME,
})

BRIEF_USER = closed({"id": ID, "name": {"type": "string"}, "email": {"type": "string"},
                     "username": NULLABLE_STRING, "profilePhotoUrl": {**NULLABLE_STRING, "format": "uri"}})

TOKEN = closed({"token": {"type": "string"}, "expires": TIME})
TOKEN_PAIR = closed({"access": TOKEN, "refresh": TOKEN})


def success(message: str, **properties) -> dict:
    """The organisation client's {"status": "success", "message": …} wrapper."""
    return closed({"status": {"const": "success"}, "message": {"const": message}, **properties})


REGISTERED = success("Registration successful",
                     data=closed({"accessToken": {"type": "string"}, "user": USER}), user=USER, tokens=TOKEN_PAIR)
LOGGED_IN = success("Login successful",
                    data=closed({"accessToken": {"type": "string"}, "user": USER}), user=ID, tokens=TOKEN_PAIR)

USER_PAGE = page_of(USER)
BRIEF_USERS = closed({"results": {"type": "array", "items": BRIEF_USER}})
FAVORITES = closed({"favoriteBoards": {"type": "array", "items": {"type": "string"}, "maxItems": 500}})
MONTHLY_SIGNUPS = closed({"results": {"type": "array", "items": closed({
    "year": {"type": "integer"}, "month": {"type": "integer", "minimum": 1, "maximum": 12},
    "monthName": {"type": "string"}, "count": {"type": "integer", "minimum": 0}})}})

# The same answers as the published task-board web app reads them (TOTASK_WEB_COMPAT=true): bare arrays.
WEB_FAVOURITE = closed({"id": {"type": "string"}})
WEB_FAVOURITES = {"type": "array", "items": WEB_FAVOURITE, "maxItems": 500}
WEB_BRIEF_USERS = {"type": "array", "items": BRIEF_USER}
WEB_MONTHLY_SIGNUPS = {"type": "array", "items": closed({
    "month": {"type": "string", "enum": list(MONTH_NAMES)}, "year": {"type": "integer"},
    "count": {"type": "integer", "minimum": 0}})}

ORGANISATION = closed({"orgId": ID, "name": {"type": "string"}, "description": {"type": "string"}})
API_USER = success("User retrieved successfully", data=USER, user=USER)
ORGANISATIONS = success("Organisations retrieved successfully",
                        data=closed({"organisations": {"type": "array", "items": ORGANISATION}}))
ORGANISATION_FOUND = success("Organisation retrieved successfully", data=ORGANISATION)
ORGANISATION_CREATED = success("Organisation created successfully", data=ORGANISATION)
MEMBER_ADDED = success("User added to organisation successfully")
INVITATION = closed({"orgId": ID, "name": {"type": "string"}, "description": {"type": "string"},
                     "invitedBy": closed({"userId": ID, "firstName": {"type": "string"},
                                          "lastName": {"type": "string"}}),
                     "invitedAt": TIME})
INVITATIONS = success("Invitations retrieved successfully",
                      data=closed({"invitations": {"type": "array", "items": INVITATION, "maxItems": MAX_INVITATIONS_LISTED}}))
INVITATION_ACCEPTED = success("Invitation accepted", data=ORGANISATION)

TWO_FACTOR_SETUP = closed({"secret": {"type": "string", "pattern": "^[A-Z2-7]+=*$"},
                           "otpauthUrl": {"type": "string", "format": "uri", "description": "otpauth://totp/..."}})
RECOVERY_CODES = closed({"recoveryCodes": {"type": "array", "items": {"type": "string"}, "minItems": 10,
                                           "maxItems": 10}})
# 401 from a login with a right password to an account with two-factor on, when no otp was sent.
TWO_FACTOR_REQUIRED = closed({"status": {"const": "Bad request"}, "statusCode": {"const": 401},
                              "code": {"const": 401}, "message": {"const": "Two-factor code required"},
                              "mfaRequired": {"const": True}})

SESSION = closed({"id": ID, "createdAt": TIME, "lastUsedAt": TIME, "expiresAt": TIME,
                  "userAgent": NULLABLE_STRING, "ipAddress": NULLABLE_STRING, "current": {"type": "boolean"}})
SESSIONS = closed({"sessions": {"type": "array", "items": SESSION}})

HEALTH = closed({"status": {"const": "ok"}})
READY = closed({"status": {"const": "ready"}})

ERROR = {
    "type": "object",
    "properties": {
        "status": {"type": "string", "enum": ["Bad request", "Forbidden", "Not found", "Error"]},
        "statusCode": {"type": "integer"}, "code": {"type": "integer"}, "message": {"type": "string"},
        "errors": {"type": "array", "items": closed({"field": {"type": "string"}, "message": {"type": "string"}})},
    },
    "required": ["status", "statusCode", "code", "message"],
    "additionalProperties": False,
}
