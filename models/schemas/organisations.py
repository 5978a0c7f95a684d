"""Request schemas of the /api endpoints."""

from models.schemas.common import HIDDEN_CHARACTERS, NAME, NAME_RULE, OBJECT_ID, body

# A description may run over several lines, so tab, CR and LF are allowed; other control characters
# are not, as in names (CWE-117), nor the characters that hide or reorder text (CWE-451). null means
# "no description", stored as "".
DESCRIPTION = {
    "type": ["string", "null"],
    "maxLength": 500,
    "pattern": rf"^[^\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f{HIDDEN_CHARACTERS}]*$",
    "description": f"at most 500 characters, tab and line breaks allowed; otherwise {NAME_RULE}",
    "x-message": "must be at most 500 characters without control, invisible or reordering characters",
}

CREATE = body({"name": NAME, "description": DESCRIPTION}, required=["name"])

ADD_MEMBER = body({"userId": OBJECT_ID}, required=["userId"])
