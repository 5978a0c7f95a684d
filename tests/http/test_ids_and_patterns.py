"""Found by the red-team pass (docs/history/attack-findings.md): an id, or any patterned field, with a trailing newline
is refused, never a 500.

Before: GET /users/<24 hex>%0A was a 500, because `$` in the id pattern also matches before a final
"\\n" and ObjectId() then raised; jsonschema's `pattern` (re.search) had the same hole everywhere.
"""

import importlib
import pkgutil
import re

import hypothesis
import pytest
from hypothesis import strategies as st

import handlers
import models.schemas
from models.common import parse_object_id
from services.validation import compile_schema
from tests.helpers import assert_error, error_fields
from tests.users_fixtures import make_admin, sign_up, stored

TRAILING = ["%0A", "%0D%0A", "%0D", "%20", "%09", "%0B", "%0C", "%00", "%C2%A0"]


def all_patterns(schema, found=None) -> set:
    """Every `pattern` string anywhere in a schema."""
    found = set() if found is None else found
    if isinstance(schema, dict):
        if isinstance(schema.get("pattern"), str):
            found.add(schema["pattern"])
        for value in schema.values():
            all_patterns(value, found)
    elif isinstance(schema, list):
        for value in schema:
            all_patterns(value, found)
    return found


def schema_patterns() -> set:
    """Every pattern of models/schemas/ and of the schemas declared beside the handlers (handlers/<area>.py)."""
    patterns = set()
    modules = [f"models.schemas.{m.name}" for m in pkgutil.iter_modules(models.schemas.__path__)]
    for module_name in modules + [f"handlers.{m.name}" for m in pkgutil.iter_modules(handlers.__path__)]:
        module = importlib.import_module(module_name)
        for value in vars(module).values():
            if isinstance(value, (dict, str)) and not isinstance(value, type):
                all_patterns(value if isinstance(value, dict) else {}, patterns)
    return patterns


def test_parse_object_id_takes_exactly_24_hex():
    good = "0123456789abcdefABCDEF01"
    assert parse_object_id(good) is not None
    for bad in (good + "\n", good + " ", " " + good, good + "\r\n", good[:-1], good + "0", "\n" + good):
        assert parse_object_id(bad) is None, repr(bad)


@pytest.mark.parametrize("pattern", sorted(schema_patterns()))
@hypothesis.settings(max_examples=10, deadline=None, database=None)
@hypothesis.given(data=st.data())
def test_no_schema_pattern_accepts_a_trailing_newline(pattern, data):
    validator = compile_schema({"type": "string", "pattern": pattern})
    sample = data.draw(st.from_regex(pattern, fullmatch=True).filter(lambda s: "\n" not in s))
    assert not list(validator.iter_errors(sample)), (pattern, sample)
    if re.fullmatch(pattern.lstrip("^").rstrip("$"), "\n"):
        return  # a newline is one of its characters (a description's line breaks)
    assert list(validator.iter_errors(sample + "\n")), (pattern, sample)


def test_the_schemas_have_patterns_to_check():
    assert len(schema_patterns()) >= 5


@pytest.mark.heavy
@pytest.mark.gen_test(timeout=60)
async def test_ids_with_trailing_whitespace_are_404_everywhere(api, services):
    ada = await sign_up(api)
    admin = await make_admin(api, services)
    org = (await api.post("/api/organisations", token=admin.token, json={"name": "Org"})).json["data"]["orgId"]
    before = await stored(services, ada.id)
    for suffix in TRAILING:
        for token in (ada.token, admin.token):
            user_path = f"/users/{ada.id}{suffix}"
            assert_error(await api.get(user_path, token=token), 404)
            assert_error(await api.patch(user_path, token=token, json={"name": "Changed"}), 404)
            assert_error(await api.delete(user_path, token=token, json={"password": "x"}), 404)
            assert_error(await api.put(f"/users/deleteProfilePic/{ada.id}{suffix}", token=token), 404)
            assert_error(await api.get(f"/api/users/{ada.id}{suffix}", token=token), 404)
        assert_error(await api.get(f"/users/{ada.id}/photo{suffix}", token=admin.token), 404)
        assert_error(await api.get(f"/users/{ada.id}{suffix}/photo", token=admin.token), 404)
        assert_error(await api.get(f"/api/organisations/{org}{suffix}", token=admin.token), 404)
        assert_error(
            await api.post(f"/api/organisations/{org}{suffix}/users", token=admin.token, json={"userId": ada.id}), 404
        )
    assert await stored(services, ada.id) == before


@pytest.mark.gen_test
async def test_a_body_id_with_a_newline_inside_is_422(api, services):
    admin = await make_admin(api, services)
    ada = await sign_up(api)
    org = (await api.post("/api/organisations", token=admin.token, json={"name": "Org"})).json["data"]["orgId"]
    path = f"/api/organisations/{org}/users"
    for user_id in (ada.id + "\n0", ada.id[:12] + "\n" + ada.id[12:], ada.id + "\u0000", "\n" + ada.id[1:]):
        response = await api.post(path, token=admin.token, json={"userId": user_id})
        assert "userId" in error_fields(response), (user_id, response)
    # Outer whitespace is trimmed like in every body field, so this is the id itself.
    assert (await api.post(path, token=admin.token, json={"userId": ada.id + "\n"})).code in (200, 404)


@pytest.mark.gen_test
async def test_query_values_with_a_trailing_newline_are_422(api, services):
    admin = await make_admin(api, services)
    assert error_fields(await api.get("/users/usersByMonth?from=2026-01%0A&to=2026-03", token=admin.token)) == {
        "from": "must be a month as YYYY-MM"
    }
    assert "name" in error_fields(await api.get("/users?name=ada%0A", token=admin.token))
    assert "limit" in error_fields(await api.get("/users?limit=5%0A", token=admin.token))
    assert (await api.get("/users/usersByMonth?from=2026-01&to=2026-03", token=admin.token)).code == 200
