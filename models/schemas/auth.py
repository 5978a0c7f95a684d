"""Request schemas of the /auth endpoints."""

from models.schemas.common import EMAIL, LOGIN_EMAIL, LOGIN_PASSWORD, NAME, PASSWORD, PHONE, TOKEN, USERNAME, body

# Two client families, two shapes: the task-board app sends name (+ username), the organisation
# client firstName/lastName (+ phone). A body with "name" is the first shape, anything else the
# second, so a missing field is reported by the name that client uses.
# Some organisation clients send the userId they expect the account to get; the service makes its own
# ids, so that field is accepted and dropped (services.auth.register reads only the fields it stores).
IGNORED_USER_ID = {"description": "ignored: the service assigns ids (some organisation clients send one)"}

REGISTER = {
    "type": "object",
    "if": {"type": "object", "required": ["name"]},
    "then": body(
        {"name": NAME, "email": EMAIL, "password": PASSWORD, "username": USERNAME, "userId": IGNORED_USER_ID},
        required=["name", "email", "password"],
    ),
    "else": body(
        {
            "firstName": NAME,
            "lastName": NAME,
            "email": EMAIL,
            "password": PASSWORD,
            "phone": PHONE,
            "userId": IGNORED_USER_ID,
        },
        required=["firstName", "lastName", "email", "password"],
    ),
}

# A current TOTP code (6 digits) or an unused recovery code (xxxx-xxxx-xxxx-xxxx).
# Trimmed like other text (not writeOnly): a code pasted with a space around it still works.
OTP = {
    "type": "string",
    "minLength": 1,
    "maxLength": 64,
    "pattern": r"^[A-Za-z0-9 -]+$",
    "x-message": "must be a 6-digit code or a recovery code",
}
SIX_DIGITS = {"type": "string", "pattern": r"^[0-9]{6}$", "x-message": "must be 6 digits"}

# otp: with two-factor sign-in on, the second factor (API.md "Two-factor sign-in").
LOGIN = body({"email": LOGIN_EMAIL, "password": LOGIN_PASSWORD, "otp": OTP}, required=["email", "password"])

REFRESH = body({"refreshToken": TOKEN}, required=["refreshToken"])

LOGOUT = body({"refreshToken": TOKEN})
# What POST /auth/logout validates: a JSON object with a refreshToken is checked against LOGOUT; anything
# else JSON means "no token".
LOGOUT_BODY = {"if": {"type": "object", "required": ["refreshToken"]}, "then": LOGOUT}

FORGOT_PASSWORD = body({"email": LOGIN_EMAIL}, required=["email"])

RESET_PASSWORD = body({"password": PASSWORD}, required=["password"])

CHANGE_PASSWORD = body(
    {"email": LOGIN_EMAIL, "password": LOGIN_PASSWORD, "newPassword": PASSWORD},
    required=["email", "password", "newPassword"],
)

TWO_FACTOR_SETUP = body({"currentPassword": LOGIN_PASSWORD}, required=["currentPassword"])
TWO_FACTOR_ENABLE = body({"code": SIX_DIGITS}, required=["code"])
TWO_FACTOR_DISABLE = body({"currentPassword": LOGIN_PASSWORD, "code": OTP}, required=["currentPassword", "code"])

TOKEN_QUERY = body({"token": TOKEN}, required=["token"])

EMPTY = body({})
