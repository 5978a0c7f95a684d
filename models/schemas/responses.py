"""JSON Schemas of the response bodies several operations share (a user, a token pair, the error envelope) and
the pieces response schemas are made of; a schema one operation answers with is declared beside its handler."""

from models.users import ROLES

TIME = {"type": "string", "format": "date-time", "pattern": r"Z$"}
ID = {"type": "string", "pattern": r"^[0-9a-f]{24}$"}
NULLABLE_STRING = {"type": ["string", "null"]}


def closed(properties: dict, required=None) -> dict:
    """An object with exactly these properties, all present unless `required` says otherwise."""
    return {
        "type": "object",
        "properties": properties,
        "additionalProperties": False,
        "required": list(properties) if required is None else required,
    }


USER = closed(
    {
        "id": ID,
        "userId": ID,
        "name": {"type": "string"},
        "firstName": {"type": "string"},
        "lastName": {"type": "string"},
        "email": {"type": "string"},
        "phone": NULLABLE_STRING,
        "username": NULLABLE_STRING,
        "role": {"type": "string", "enum": list(ROLES)},
        "isEmailVerified": {"type": "boolean"},
        "twoFactorEnabled": {"type": "boolean"},
        "profilePhotoUrl": {**NULLABLE_STRING, "format": "uri"},
        "favoriteBoards": {"type": "array", "items": {"type": "string"}},
        "createdAt": TIME,
        "updatedAt": TIME,
    }
)


TOKEN = closed({"token": {"type": "string"}, "expires": TIME})
TOKEN_PAIR = closed({"access": TOKEN, "refresh": TOKEN})


def success(message: str, **properties) -> dict:
    """The organisation client's {"status": "success", "message": …} wrapper."""
    return closed({"status": {"const": "success"}, "message": {"const": message}, **properties})


ERROR = {
    "type": "object",
    "properties": {
        "status": {"type": "string", "enum": ["Bad request", "Forbidden", "Not found", "Error"]},
        "statusCode": {"type": "integer"},
        "code": {"type": "integer"},
        "message": {"type": "string"},
        "errors": {"type": "array", "items": closed({"field": {"type": "string"}, "message": {"type": "string"}})},
    },
    "required": ["status", "statusCode", "code", "message"],
    "additionalProperties": False,
}
