"""The one error class. Handlers turn it into the contract's envelope in a single place."""


class ApiError(Exception):
    """A failure the client can act on: an HTTP status, a human message, optional field errors."""

    def __init__(
        self,
        status: int,
        message: str,
        errors: list | None = None,
        headers: dict | None = None,
        extra: dict | None = None,
    ):
        super().__init__(message)
        self.status = status
        self.message = message
        self.errors = errors
        self.headers = headers or {}
        self.extra = extra or {}  # more keys of the envelope (mfaRequired)


def validation_failed(errors: list) -> ApiError:
    """422 with one entry per bad field."""
    return ApiError(422, "Validation failed", errors=errors)


def field_error(field: str, message: str) -> ApiError:
    """422 for a single field, e.g. a uniqueness rule."""
    return validation_failed([{"field": field, "message": message}])


def unauthenticated(message: str = "Please authenticate") -> ApiError:
    return ApiError(401, message)


def authentication_failed() -> ApiError:
    """401 for wrong credentials: one message whether the email or the password was wrong (CWE-204)."""
    return ApiError(401, "Authentication failed")


def two_factor_required() -> ApiError:
    """401 after a right password, when the account has two-factor on and the login sent no `otp`."""
    return ApiError(401, "Two-factor code required", extra={"mfaRequired": True})


def forbidden(message: str = "Forbidden") -> ApiError:
    return ApiError(403, message)


def not_found(message: str = "Not found") -> ApiError:
    return ApiError(404, message)
