"""Field schemas shared by several request bodies."""
from models.users import ROLES

# Control characters in names would let a user forge log lines or break email headers (CWE-117).
NO_CONTROL = r"^[^\u0000-\u001f\u007f]*$"

# Checked by email-validator (services/validation.py): no quoted local parts, comments, encoded words,
# display names, IP literals, control characters or whitespace, so mail goes exactly where it says (CWE-20, CWE-93).
EMAIL = {
    "type": "string",
    "maxLength": 254,
    "format": "email",
    "x-message": "must be a valid email address",
}

# Login accepts any string: rules that changed since sign-up must not lock anyone out.
LOGIN_EMAIL = {"type": "string", "minLength": 1, "maxLength": 254}
LOGIN_PASSWORD = {"type": "string", "minLength": 1, "maxLength": 1024, "writeOnly": True}

PASSWORD = {"type": "string", "minLength": 8, "format": "password", "writeOnly": True}

NAME = {"type": "string", "minLength": 1, "maxLength": 100, "pattern": NO_CONTROL,
        "x-message": "must be 1-100 characters without control characters"}

# Written without lookahead, so generators of examples (the fuzzer) can read it: three digits somewhere.
_PHONE_PUNCTUATION = r"[ +()\-.]*"
PHONE = {"type": ["string", "null"], "maxLength": 20,
         "pattern": rf"^{_PHONE_PUNCTUATION}[0-9]{_PHONE_PUNCTUATION}[0-9]{_PHONE_PUNCTUATION}[0-9][0-9 +()\-.]*$",
         "x-message": "must be at most 20 digits, spaces, +, -, (, ) or ., with at least 3 digits"}

USERNAME = {"type": ["string", "null"], "pattern": r"^[A-Za-z0-9._]{2,30}$",
            "x-message": "must be 2-30 letters, digits, . or _"}

ROLE = {"type": "string", "enum": list(ROLES)}

TOKEN = {"type": "string", "minLength": 1, "maxLength": 2048}

OBJECT_ID = {"type": "string", "pattern": r"^[0-9a-fA-F]{24}$", "x-message": "must be an id of 24 hex characters"}


def body(properties: dict, required=()) -> dict:
    """An object schema that rejects unknown fields."""
    return {"type": "object", "properties": properties, "required": list(required), "additionalProperties": False}
