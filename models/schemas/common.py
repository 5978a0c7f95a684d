"""Field schemas shared by several request bodies."""

import sys
import unicodedata

from models.users import ROLES

# Control characters in names would let a user forge log lines or break email headers (CWE-117).
NO_CONTROL = r"^[^\u0000-\u001f\u007f]*$"


def _class_ranges(code_points) -> str:
    """A regular-expression character class body for these code points, as ranges: BMP ones as \\uXXXX (read
    alike by Python's re and ECMA-262), the few above it as the characters themselves (\\U is Python's only)."""

    def one(code_point: int) -> str:
        return f"\\u{code_point:04x}" if code_point <= 0xFFFF else chr(code_point)

    ranges, start, previous = [], None, None
    for code_point in sorted(code_points):
        if start is not None and code_point == previous + 1:
            previous = code_point
            continue
        if start is not None:
            ranges.append((start, previous))
        start = previous = code_point
    if start is not None:
        ranges.append((start, previous))
    return "".join(one(a) if a == b else f"{one(a)}-{one(b)}" for a, b in ranges)


# Characters that hide or reorder displayed text, generated from the Unicode database at import (never typed by
# hand): every format character (category Cf: bidi embeddings, overrides and isolates, zero-width characters,
# the BOM, the soft hyphen) and the line and paragraph separators. In a name an inviter or organisation shows a
# victim, they make it read as something else (CWE-451, CWE-176).
HIDDEN_CHARACTERS = _class_ranges(
    [c for c in range(sys.maxunicode + 1) if unicodedata.category(chr(c)) == "Cf"] + [0x2028, 0x2029]
)
# C0 and C1 control characters, then the hidden ones: what no name may hold.
NAME_TEXT = rf"^[^\u0000-\u001f\u007f-\u009f{HIDDEN_CHARACTERS}]*$"
NAME_RULE = (
    "no control characters, no Unicode format characters (category Cf: bidi embeddings, overrides and "
    "isolates, zero-width characters, the BOM, the soft hyphen) and no line or paragraph separator "
    "(U+2028, U+2029)"
)

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

NAME = {
    "type": "string",
    "minLength": 1,
    "maxLength": 100,
    "pattern": NAME_TEXT,
    "description": f"1-100 characters after trimming; {NAME_RULE}",
    "x-message": "must be 1-100 characters without control, invisible or reordering characters",
}

# Written without lookahead, so generators of examples (the fuzzer) can read it: three digits somewhere.
_PHONE_PUNCTUATION = r"[ +()\-.]*"
PHONE = {
    "type": ["string", "null"],
    "maxLength": 20,
    "pattern": rf"^{_PHONE_PUNCTUATION}[0-9]{_PHONE_PUNCTUATION}[0-9]{_PHONE_PUNCTUATION}[0-9][0-9 +()\-.]*$",
    "x-message": "must be at most 20 digits, spaces, +, -, (, ) or ., with at least 3 digits",
}

USERNAME = {
    "type": ["string", "null"],
    "pattern": r"^[A-Za-z0-9._]{2,30}$",
    "x-message": "must be 2-30 letters, digits, . or _",
}

ROLE = {"type": "string", "enum": list(ROLES)}

TOKEN = {"type": "string", "minLength": 1, "maxLength": 2048}

OBJECT_ID = {"type": "string", "pattern": r"^[0-9a-fA-F]{24}$", "x-message": "must be an id of 24 hex characters"}


def body(properties: dict, required=()) -> dict:
    """An object schema that rejects unknown fields."""
    return {"type": "object", "properties": properties, "required": list(required), "additionalProperties": False}
