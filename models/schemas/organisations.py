"""Request schemas of the /api endpoints."""
from models.schemas.common import NAME, OBJECT_ID, body

# A description may run over several lines, so tab, CR and LF are allowed; other control characters
# are not, as in names (CWE-117). null means "no description", stored as "".
DESCRIPTION = {"type": ["string", "null"], "maxLength": 500,
               "pattern": r"^[^\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f]*$",
               "x-message": "must be at most 500 characters without control characters"}

CREATE = body({"name": NAME, "description": DESCRIPTION}, required=["name"])

ADD_MEMBER = body({"userId": OBJECT_ID}, required=["userId"])
