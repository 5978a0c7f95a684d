"""JSON Schema (Draft 2020-12) validation, turned into the contract's 422 field errors.

Messages are written here from the failed keyword, never copied from the input, so a rejected
password is never echoed back or logged.
"""

import functools
import itertools
import re
from collections.abc import Mapping

from email_validator import EmailNotValidError, validate_email
from jsonschema import Draft202012Validator, FormatChecker, ValidationError, validators

from services.errors import ApiError, validation_failed

BCRYPT_MAX_BYTES = 72
# No body or query of the contract has a dozen fields; a body with more is refused unexamined.
MAX_BODY_FIELDS = 64
# Values in a body, at every depth, counted: a request holds at most a few dozen.
MAX_BODY_VALUES = 1000
# Nesting a body may have: every request body of the contract is one flat object.
MAX_BODY_DEPTH = 8
# No field of the contract is longer than 2,048 characters (tokens); a longer string is refused unexamined.
MAX_STRING_CHARS = 8192
# A 422 lists at most this many field errors.
MAX_FIELD_ERRORS = 20

_formats = FormatChecker(formats=())


def is_plain_address(address) -> bool:
    """True for a plain local@domain address as email-validator accepts it, compared as it is stored (lower-case)."""
    if not isinstance(address, str) or "=?" in address:
        # An RFC 2047 encoded word is decoded by mail software into another address entirely (CWE-20).
        return False
    local_part = address.rpartition("@")[0]
    if "%" in local_part or "!" in local_part:
        # Sender-specified routing: a relay doing the "percent hack" or bang paths (Postfix does both for mail
        # from its own networks, as the service's is) delivers attacker%evil.example@our.domain and
        # evil.example!attacker@our.domain to evil.example, so a stranger would verify an address of ours (CWE-20).
        return False
    try:
        # No quoted local parts, display names or IP literals: what is stored is exactly where mail goes (CWE-20,
        # CWE-93).
        validate_email(
            address.lower(),
            check_deliverability=False,
            allow_quoted_local=False,
            allow_display_name=False,
            allow_domain_literal=False,
            allow_empty_local=False,
        )
    except EmailNotValidError:
        return False
    return True


@_formats.checks("email")
def _plain_email(value) -> bool:
    return not isinstance(value, str) or is_plain_address(value)


@_formats.checks("password")
def _fits_bcrypt(value) -> bool:
    # bcrypt ignores bytes past 72; a longer password would be silently truncated (CWE-1284).
    return not isinstance(value, str) or len(value.encode("utf-8")) <= BCRYPT_MAX_BYTES


@functools.cache
def _end_anchored(pattern: str) -> re.Pattern:
    """The pattern with `$` meaning the very end, as in ECMA-262 (the dialect the schemas are published in)."""
    # Python's `$` also matches before a final newline, and jsonschema uses re.search: "<24 hex>\n"
    # would pass an id pattern and then fail where it is used (CWE-625).
    out, index, in_class = [], 0, False
    while index < len(pattern):
        char = pattern[index]
        if char == "\\":
            out.append(pattern[index : index + 2])
            index += 2
            continue
        if in_class:
            in_class = char != "]"
        elif char == "[":
            in_class = True
            if pattern[index + 1 : index + 2] == "^":
                char, index = "[^", index + 1
        elif char == "$":
            char = r"\Z"
        out.append(char)
        index += 1
    return re.compile("".join(out))


def _pattern(validator, pattern, instance, schema):
    if validator.is_type(instance, "string") and not _end_anchored(pattern).search(instance):
        yield ValidationError("does not match its pattern")


_Validator = validators.extend(Draft202012Validator, {"pattern": _pattern})


def compile_schema(schema: dict) -> Draft202012Validator:
    """Check a schema once and return its validator."""
    Draft202012Validator.check_schema(schema)
    return _Validator(schema, format_checker=_formats)


# id(schema) -> (schema, its validator). The schema is kept in the entry so its id cannot be reused by
# another dict; the schemas are module-level constants, so this holds one entry per schema.
_compiled = {}


def validator_for(schema: dict) -> Draft202012Validator:
    """The validator of a schema, compiled on first use and cached."""
    entry = _compiled.get(id(schema))
    if entry is None or entry[0] is not schema:
        entry = _compiled[id(schema)] = (schema, compile_schema(schema))
    return entry[1]


def validate(validator: Draft202012Validator, instance) -> dict:
    """Return the instance if valid; otherwise raise a 422 naming each bad field once (at most MAX_FIELD_ERRORS)."""
    _refuse_oversized(instance)
    problems = {}
    for error in validator.iter_errors(instance):
        for field, message in _describe(error):
            problems.setdefault(field, message)
        if len(problems) >= MAX_FIELD_ERRORS:
            break  # the answer stays small whatever the body holds (CWE-400)
    if problems:
        raise validation_failed([{"field": f, "message": m} for f, m in problems.items()])
    return instance


def _refuse_oversized(instance) -> None:
    """422, before any per-field work, for more fields, nested values or characters than any request has:
    80,000 unknown keys cost ~1 s of IOLoop and a 4 MB answer; jsonschema's messages repr whole values and its
    patterns scan whole strings (CWE-770, CWE-400)."""
    if isinstance(instance, dict) and len(instance) > MAX_BODY_FIELDS:
        raise validation_failed([{"field": "body", "message": f"must have at most {MAX_BODY_FIELDS} fields"}])
    fields = instance.items() if isinstance(instance, dict) else [("body", instance)]
    counted = 0
    for name, value in fields:
        if len(name) > MAX_STRING_CHARS:
            raise validation_failed([{"field": "body", "message": "has a field name that is too long"}])
        pending = [(value, 1)]
        while pending:  # stops after MAX_BODY_VALUES values, however big or deep the body is
            item, depth = pending.pop()
            if isinstance(item, str) and len(item) > MAX_STRING_CHARS:
                raise validation_failed([{"field": name, "message": f"must be at most {MAX_STRING_CHARS} characters"}])
            if isinstance(item, (dict, list)):
                counted += len(item)  # checked before the values are looked at
                if counted > MAX_BODY_VALUES or depth > MAX_BODY_DEPTH:
                    raise validation_failed([{"field": name, "message": "has too many or too deeply nested values"}])
                # A list's items, or a dict's keys and values (key strings get their length checked too).
                pending.extend((child, depth + 1) for child in item)
                if isinstance(item, dict):
                    pending.extend((child, depth + 1) for child in item.values())


def trim_strings(body, validator: Draft202012Validator):
    """Trim top-level strings before validation, except writeOnly ones (passwords keep their spaces)."""
    if not isinstance(body, dict) or len(body) > MAX_BODY_FIELDS:
        return body  # validate refuses an oversized body before any per-field work
    secret = _write_only_fields(validator.schema)
    return {k: v.strip() if isinstance(v, str) and k not in secret else v for k, v in body.items()}


_INTEGER = re.compile(r"-?[0-9]{1,9}")


def query_instance(arguments: Mapping[str, list], validator: Draft202012Validator):
    """Query arguments as a JSON object: integers where the schema wants them, a repeated key kept as a list."""
    properties = validator.schema.get("properties", {})
    instance = {}
    for name, raw_values in arguments.items():
        values = [_query_text(v) for v in raw_values]
        if properties.get(name, {}).get("type") == "integer":
            values = [int(v) if _INTEGER.fullmatch(v) else v for v in values]
        instance[name] = values[0] if len(values) == 1 else values
    return instance


def _query_text(value) -> str:
    """A query value as text; bytes that are not UTF-8 are a 400, never silently replaced (CWE-176)."""
    if not isinstance(value, bytes):
        return value
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        raise ApiError(400, "Malformed query string") from None


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
        names = error.instance if isinstance(error.instance, dict) else []
        extra = itertools.islice((name for name in names if name not in known), MAX_FIELD_ERRORS)
        return [(_field(path + [name]), "is not allowed") for name in extra]
    if "x-message" in spec and kind in ("pattern", "format", "minLength", "maxLength", "const"):
        return [(_field(path), spec["x-message"])]
    return [(_field(path), _MESSAGES.get(kind, _generic)(error.validator_value))]


def _type_message(expected) -> str:
    names = expected if isinstance(expected, list) else [expected]
    words = {
        "string": "a string",
        "integer": "a whole number",
        "object": "an object",
        "array": "a list",
        "boolean": "true or false",
        "number": "a number",
        "null": "null",
    }
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
