"""Found by the abuse review of many accounts from one address: names that lie. An inviter's or an organisation's name
holding U+202E (right-to-left override), U+2028, a zero-width character or the BOM displayed as something else in the
victim's app.

Every name field (name, firstName, lastName, an organisation's name and description) now refuses Unicode format
characters (category Cf) and the line and paragraph separators, with a 422 on the field and nothing stored; the
rule is one pattern in models/schemas/common.py, so the OpenAPI document shows it too.
"""

import json
import re
import unicodedata

import pytest
from bson import ObjectId

from handlers.openapi import document
from tests.helpers import PASSWORD, error_fields, sign_up
from tests.users_fixtures import make_admin, multipart

# One of each kind the red team used or the category holds: a bidi override, a bidi isolate, a zero-width
# space, the BOM, the line and paragraph separators, the soft hyphen (Cf too), a zero-width joiner, an
# invisible tag character above the BMP.
HIDDEN = {
    "RLO": "\u202e",
    "LRI": "\u2066",
    "ZWSP": "\u200b",
    "BOM": "\ufeff",
    "LSEP": "\u2028",
    "PSEP": "\u2029",
    "SHY": "\u00ad",
    "ZWJ": "\u200d",
    "TAG": "\U000e0041",
}
NAME_RULE = "must be 1-100 characters without control, invisible or reordering characters"
DESCRIPTION_RULE = "must be at most 500 characters without control, invisible or reordering characters"
# Characters a real name holds, which must stay accepted: accents, combining marks, other scripts, an emoji.
REAL_NAMES = ["Zoë Ñúñez", "Jose\u0301", "李小龍", "Ngũgĩ wa Thiong'o", "محمد", "Ana 👩🏽"]


def hidden(char: str) -> str:
    """A name with char inside it (trimming would take a separator off either end)."""
    return f"Mark{char}Essien"


def assert_refused(response, field: str, rule: str = NAME_RULE):
    assert response.code == 422, response
    assert error_fields(response) == {field: rule}, response


@pytest.mark.parametrize("char", HIDDEN.values(), ids=HIDDEN.keys())
class TestEveryNameFieldRefusesEachKind:
    @pytest.mark.gen_test(timeout=30)
    async def test_registration_both_shapes(self, api, store, char):
        for field, body in [
            ("name", {"name": hidden(char)}),
            ("firstName", {"firstName": hidden(char), "lastName": "Essien"}),
            ("lastName", {"firstName": "Mark", "lastName": hidden(char)}),
        ]:
            response = await api.post(
                "/auth/register", json={**body, "email": "mark@example.com", "password": PASSWORD}
            )
            assert_refused(response, field)
        assert await store.users.count_documents({}) == 0
        assert await store.organisations.count_documents({}) == 0

    @pytest.mark.gen_test(timeout=30)
    async def test_update_json_and_multipart(self, api, store, char):
        account = await sign_up(api, "ada@example.com", name="Ada Lovelace")
        before = await store.users.find_one({"_id": ObjectId(account.id)})
        for field in ("name", "firstName", "lastName"):
            for method in ("PUT", "PATCH"):
                response = await api.request(
                    method, f"/users/{account.id}", json={field: hidden(char)}, token=account.token
                )
                assert_refused(response, field)
            response = await api.put(f"/users/{account.id}", token=account.token, **multipart({field: hidden(char)}))
            assert_refused(response, field)
        assert await store.users.find_one({"_id": ObjectId(account.id)}) == before

    @pytest.mark.gen_test(timeout=30)
    async def test_admin_creating_a_user(self, api, services, store, char):
        admin = await make_admin(api, services)
        for field in ("name", "firstName", "lastName"):
            body = {"name": "Made User", "email": "made@example.com", "password": PASSWORD, field: hidden(char)}
            assert_refused(await api.post("/users", json=body, token=admin.token), field)
        assert await store.users.find_one({"email": "made@example.com"}) is None

    @pytest.mark.gen_test(timeout=30)
    async def test_organisation_name_and_description(self, api, store, char):
        account = await sign_up(api, "ada@example.com")
        assert_refused(await api.post("/api/organisations", json={"name": hidden(char)}, token=account.token), "name")
        response = await api.post(
            "/api/organisations", json={"name": "Acme", "description": f"Our{char}team"}, token=account.token
        )
        assert_refused(response, "description", DESCRIPTION_RULE)
        assert await store.organisations.count_documents({}) == 1  # the default one only


@pytest.mark.gen_test(timeout=30)
async def test_real_names_and_multi_line_descriptions_are_still_accepted(api, store):
    for n, name in enumerate(REAL_NAMES):
        account = await sign_up(api, f"person{n}@example.com", name=name)
        assert account.user["name"] == name
    response = await api.post(
        "/api/organisations", json={"name": "Équipe 東京", "description": "Line one\r\n\tTwo"}, token=account.token
    )
    assert response.code == 201, response
    assert response.json["data"]["description"] == "Line one\r\n\tTwo"


def test_the_rule_is_every_format_character_generated_not_typed():
    """The class is built from the Unicode database: every Cf code point (and U+2028/9) fails the published
    pattern, read back from the OpenAPI document as a client would, and no other character of a sample does."""
    doc = json.loads(json.dumps(document()))  # through JSON, as served
    name_patterns = set()

    def walk(node):
        if isinstance(node, dict):
            for key, value in node.get("properties", {}).items():
                if key in ("name", "firstName", "lastName") and "pattern" in value:
                    name_patterns.add(value["pattern"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(doc["paths"])
    organisation = doc["paths"]["/api/organisations"]["post"]["requestBody"]["content"]["application/json"]
    # Register (both shapes), POST /users, PUT /users/:id (JSON and form), organisations: one rule.
    assert name_patterns == {organisation["schema"]["properties"]["name"]["pattern"]}
    pattern = re.compile(organisation["schema"]["properties"]["name"]["pattern"].replace("$", r"\Z"))
    description = re.compile(organisation["schema"]["properties"]["description"]["pattern"].replace("$", r"\Z"))
    assert "\\U" not in pattern.pattern  # ECMA-262 has no \U escape: above the BMP the characters themselves
    refused = [chr(c) for c in range(0x110000) if unicodedata.category(chr(c)) == "Cf"] + ["\u2028", "\u2029"]
    assert len(refused) > 150
    for char in refused:
        assert not pattern.search(hidden(char)) and not description.search(hidden(char)), hex(ord(char))
    for name in REAL_NAMES + ["a-b", "O'Brien", "^[]\\$"]:
        assert pattern.search(name), name
    assert "format characters" in organisation["schema"]["properties"]["name"]["description"]
