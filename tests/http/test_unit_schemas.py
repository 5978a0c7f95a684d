"""Every JSON Schema in models/schemas/ and beside the handlers (handlers/<area>.py) compiles: handlers compile theirs
on first use (services.validation.validator_for), so a broken schema is caught here rather than by the first request
that needs it."""

import importlib
import pkgutil

import pytest
from jsonschema.exceptions import SchemaError

import handlers
import models.schemas
from services.validation import validator_for


def module_schemas() -> dict:
    """name -> schema for every module-level dict of every models.schemas module."""
    found = {}
    for module_info in pkgutil.iter_modules(models.schemas.__path__):
        module = importlib.import_module(f"models.schemas.{module_info.name}")
        for name, value in vars(module).items():
            if isinstance(value, dict) and not name.startswith("_"):
                found[f"{module_info.name}.{name}"] = value
    # Response schemas one operation answers with are declared beside its handler.
    seen = {id(value) for value in found.values()}
    for module_info in pkgutil.iter_modules(handlers.__path__):
        module = importlib.import_module(f"handlers.{module_info.name}")
        for name, value in vars(module).items():
            if (
                isinstance(value, dict)
                and ("type" in value or "oneOf" in value)
                and not name.startswith("_")
                and id(value) not in seen
            ):  # each once, where it is declared (not where it is imported)
                seen.add(id(value))
                found[f"handlers.{module_info.name}.{name}"] = value
    return found


def test_the_schema_modules_are_found():
    names = module_schemas()
    assert {"auth.LOGIN", "auth.LOGOUT_BODY", "users.UPDATE", "organisations.ADD_MEMBER"} <= set(names)


@pytest.mark.parametrize("name", sorted(module_schemas()))
def test_every_schema_compiles(name):
    schema = module_schemas()[name]
    validator = validator_for(schema)
    assert validator.schema is schema


def test_a_schema_is_compiled_once():
    from models.schemas import auth

    assert validator_for(auth.LOGIN) is validator_for(auth.LOGIN)
    assert validator_for(auth.LOGIN) is not validator_for(auth.REFRESH)


def test_distinct_schemas_get_their_own_validators():
    first, second = {"type": "string"}, {"type": "integer"}
    assert validator_for(first).schema is first
    assert validator_for(second).schema is second
    assert validator_for(first).is_valid("text") and not validator_for(second).is_valid("text")


def test_a_broken_schema_is_refused():
    with pytest.raises(SchemaError):
        validator_for({"type": "no-such-type"})
