"""JSON Schema (Draft 2020-12) validation, turned into the contract's 422 field errors.

Messages are written here from the failed keyword, never copied from the input, so a rejected
password is never echoed back or logged.
"""
import re
from typing import Mapping

from jsonschema import Draft202012Validator, FormatChecker

from services.errors import validation_failed

BCRYPT_MAX_BYTES = 72

_formats = FormatChecker(formats=())


@_formats.checks("password")
def _fits_bcrypt(value) -> bool:
    # bcrypt ignores bytes past 72; a longer password would be silently truncated (CWE-1284).
    return not isinstance(value, str) or len(value.encode("utf-8")) <= BCRYPT_MAX_BYTES


def compile_schema(schema: dict) -> Draft202012Validator:
    """Check a schema once and return its validator."""
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema, format_checker=_formats)


def validate(validator: Draft202012Validator, instance) -> dict:
    """Return the instance if valid; otherwise raise a 422 naming each bad field once."""
    problems = {}
    for error in validator.iter_errors(instance):
        for field, message in _describe(error):
            problems.setdefault(field, message)
    if problems:
        raise validation_failed([{"field": f, "message": m} for f, m in problems.items()])
    return instance


def trim_strings(body, validator: Draft202012Validator):
    """Trim top-level strings before validation, except writeOnly ones (passwords keep their spaces)."""
    if not isinstance(body, dict):
        return body
    secret = _write_only_fields(validator.schema)
    return {k: v.strip() if isinstance(v, str) and k not in secret else v for k, v in body.items()}


# ASCII digits, whole value (fullmatch): \d takes "١٠" and $ a trailing newline, and int() accepts both (CWE-20).
_INTEGER = re.compile(r"-?[0-9]{1,9}")


def query_instance(arguments: Mapping[str, list], validator: Draft202012Validator):
    """Query arguments as a JSON object: integers where the schema wants them, a repeated key kept as a list."""
    properties = validator.schema.get("properties", {})
    instance = {}
    for name, raw_values in arguments.items():
        values = [v.decode("utf-8", "replace") if isinstance(v, bytes) else v for v in raw_values]
        if properties.get(name, {}).get("type") == "integer":
            values = [int(v) if _INTEGER.fullmatch(v) else v for v in values]
        instance[name] = values[0] if len(values) == 1 else values
    return instance


def _write_only_fields(schema: dict) -> set:
    fields = set()
    for part in [schema, schema.get("then", {}), schema.get("else", {})]:
        for name, spec in part.get("properties", {}).items():
            if spec.get("writeOnly"):
                fields.add(name)
    return fields


def _field(path) -> str:
    return ".".join(str(p) for p in path) or "body"


def _describe(error):
    """(field, message) pairs for one jsonschema error."""
    path = list(error.absolute_path)
    kind = error.validator
    spec = error.schema if isinstance(error.schema, dict) else {}
    if kind == "required":
        present = error.instance if isinstance(error.instance, dict) else {}
        return [(_field(path + [name]), "is required") for name in error.validator_value if name not in present]
    if kind in ("additionalProperties", "unevaluatedProperties"):
        known = set(spec.get("properties", {}))
        extra = [name for name in error.instance if name not in known] if isinstance(error.instance, dict) else []
        return [(_field(path + [name]), "is not allowed") for name in extra]
    if "x-message" in spec and kind in ("pattern", "format", "minLength", "maxLength"):
        return [(_field(path), spec["x-message"])]
    return [(_field(path), _MESSAGES.get(kind, _generic)(error.validator_value))]


def _type_message(expected) -> str:
    names = expected if isinstance(expected, list) else [expected]
    words = {"string": "a string", "integer": "a whole number", "object": "an object", "array": "a list",
             "boolean": "true or false", "number": "a number", "null": "null"}
    return "must be " + " or ".join(words.get(n, n) for n in names)


def _generic(_value) -> str:
    return "is invalid"


_MESSAGES = {
    "type": _type_message,
    "minLength": lambda n: f"must be at least {n} characters",
    "maxLength": lambda n: f"must be at most {n} characters",
    "minimum": lambda n: f"must be at least {n}",
    "maximum": lambda n: f"must be at most {n}",
    "enum": lambda options: "must be one of: " + ", ".join(str(o) for o in options),
    "const": lambda value: f"must be {value}",
    "pattern": lambda _p: "has an invalid format",
    "format": lambda fmt: "must be at most 72 bytes in UTF-8" if fmt == "password" else f"must be a valid {fmt}",
    "minItems": lambda n: f"must have at least {n} items",
    "maxItems": lambda n: f"must have at most {n} items",
    "uniqueItems": lambda _v: "must not contain duplicates",
    "minProperties": lambda n: f"must have at least {n} fields",
}
