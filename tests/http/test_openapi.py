"""/openapi.json describes exactly the routes the service has, and /docs serves Swagger UI offline."""

import inspect
import re

import jsonschema
import pytest
from selenium.webdriver.common.by import By
from tornado.web import RequestHandler

from handlers.openapi import UNDOCUMENTED, document
from handlers.routes import routes
from tests.browser import wait_until
from tests.service_process import running

JSON = "application/json"
METHODS = ("get", "post", "put", "patch", "delete")
# Files, not API operations: Swagger UI's own assets and the page's start-up script.
NOT_OPERATIONS = {"/docs/assets/{}", "/docs/init.js", "/pages/forms.js"}


def route_operations() -> set:
    """(path with {} for each parameter, method) of every route in the table."""
    found = set()
    for route in routes():
        pattern, handler = route[0], route[1]
        path = re.sub(r"\([^)]*\)", "{}", pattern)
        if path in NOT_OPERATIONS or path in UNDOCUMENTED:
            continue
        for method in METHODS:
            # unwrap: BaseHandler wraps every method so it runs after the body is read (handlers/base.py).
            if inspect.unwrap(getattr(handler, method)) is not getattr(RequestHandler, method):
                found.add((path, method))
    return found


def document_operations() -> set:
    return {
        (re.sub(r"\{[^}]+\}", "{}", path), method)
        for path, methods in document()["paths"].items()
        for method in methods
    }


@pytest.mark.heavy
def test_document_is_valid_openapi_3_1():
    from openapi_spec_validator import validate  # here: a fifth of a second to import, in every xdist worker

    doc = document()
    assert doc["openapi"].startswith("3.1")
    validate(doc)


def test_every_route_is_documented_and_every_documented_route_exists():
    in_routes, in_document = route_operations(), document_operations()
    assert in_routes - in_document == set(), "routes missing from the OpenAPI document"
    assert in_document - in_routes == set(), "documented operations the service does not have"


def operations():
    for path, methods in document()["paths"].items():
        for method, op in methods.items():
            yield f"{method.upper()} {path}", op


def resolve(doc: dict, response: dict) -> dict:
    if "$ref" in response:
        return doc["components"]["responses"][response["$ref"].rsplit("/", 1)[1]]
    return response


def examples_of(content: dict) -> list:
    if "example" in content:
        return [content["example"]]
    return [named["value"] for named in content.get("examples", {}).values()]


def test_every_json_request_and_response_has_examples_that_validate_against_their_schema():
    doc = document()
    checked = 0
    for name, op in operations():
        bodies = (
            [("request", op["requestBody"]["content"][JSON])]
            if JSON in op.get("requestBody", {}).get("content", {})
            else []
        )
        bodies += [
            (code, resolve(doc, response)["content"][JSON])
            for code, response in op["responses"].items()
            if JSON in resolve(doc, response).get("content", {})
        ]
        for where, content in bodies:
            found = examples_of(content)
            assert found, f"{name} {where}: no example"
            for example in found:
                jsonschema.Draft202012Validator(content["schema"]).validate(example)
                checked += 1
    assert checked > 100


def test_every_error_example_carries_its_own_status():
    doc = document()
    for name, op in operations():
        for code, response in op["responses"].items():
            if code.startswith(("4", "5")) and JSON in resolve(doc, response).get("content", {}):
                for example in examples_of(resolve(doc, response)["content"][JSON]):
                    assert example["statusCode"] == example["code"] == int(code), (name, code, example)


def test_registration_shows_both_shapes_as_named_examples_and_alternatives():
    content = document()["paths"]["/auth/register"]["post"]["requestBody"]["content"][JSON]
    shapes = content["schema"]["oneOf"]
    assert [set(shape["required"]) for shape in shapes] == [
        {"name", "email", "password"},
        {"firstName", "lastName", "email", "password"},
    ]
    assert set(content["examples"]) == {"organisationClient", "taskBoardApp"}
    for example in content["examples"].values():  # each validates against exactly one shape
        assert sum(jsonschema.Draft202012Validator(shape).is_valid(example["value"]) for shape in shapes) == 1


def test_parameters_and_flows_are_described():
    doc = document()
    for name, op in operations():
        for parameter in op.get("parameters", []):
            assert parameter.get("description"), (name, parameter["name"])
    sort_by = next(p for p in doc["paths"]["/users"]["get"]["parameters"] if p["name"] == "sortBy")
    assert "createdAt:desc" in sort_by["description"]
    guide = doc["info"]["description"]
    for topic in (
        "## Tokens",
        "rotates",
        "Reuse detection",
        "## Browser sessions",
        "SameSite=Lax",
        "## Email links",
        "RESET_TOKEN_MINUTES",
        "## Organisations and invitations",
        "WWW-Authenticate",
    ):
        assert topic in guide, topic


def test_undocumented_routes_exist_and_stay_out_of_the_document():
    patterns = {route[0] for route in routes()}
    for path, reason in UNDOCUMENTED.items():
        assert path in patterns and reason, path
        assert path not in document()["paths"], path


def test_request_bodies_are_the_schemas_the_handlers_validate_with():
    from models.schemas import auth

    body = document()["paths"]["/auth/login"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert body["required"] == auth.LOGIN["required"]
    assert set(body["properties"]) == set(auth.LOGIN["properties"])
    assert body["additionalProperties"] is False


@pytest.mark.gen_test
async def test_openapi_json_is_served(api):
    response = await api.get("/openapi.json")
    assert response.code == 200 and response.headers["Content-Type"].startswith("application/json")
    assert response.json == document()


@pytest.mark.gen_test
async def test_docs_page_and_its_assets_are_served_without_a_cdn(api):
    page = await api.get("/docs")
    assert page.code == 200 and page.headers["Content-Type"].startswith("text/html")
    html = page.body.decode()
    assets = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert assets and all(a.startswith("/") and not a.startswith("//") for a in assets), assets
    for asset in assets:
        response = await api.get(asset)
        assert response.code == 200, asset
    script = await api.get("/docs/assets/swagger-ui-bundle.js")
    assert "SwaggerUIBundle" in script.body.decode()[:5000] or b"SwaggerUIBundle" in script.body
    assert "script-src 'self'" in page.headers["Content-Security-Policy"]
    missing = await api.get("/docs/assets/no-such-file.js")
    assert missing.code == 404 and missing.json["statusCode"] == 404


@pytest.mark.slow
def test_docs_page_renders_every_operation_from_local_files_only(browser):
    with running(APP_NAME="Task Board") as service:
        browser.get(service.url + "/docs")
        body = lambda driver: driver.find_element(By.TAG_NAME, "body").text  # noqa: E731
        wait_until(browser, lambda driver: "/auth/login" in body(driver))
        text = body(browser)
        assert browser.title == "Task Board API" and "Task Board API" in text
        # The sections in the order a developer needs them: signing in first.
        sections = [h.get_attribute("data-tag") for h in browser.find_elements(By.CSS_SELECTOR, "h3.opblock-tag")]
        assert sections == ["auth", "users", "api", "pages", "operations"]
        # Authorize offers the bearer token only: no cookie field, which no page could fill.
        browser.find_element(By.CSS_SELECTOR, "button.authorize").click()
        dialog = wait_until(browser, lambda driver: driver.find_element(By.CSS_SELECTOR, ".auth-container")).text
        assert "bearer  (http, Bearer)" in dialog and "apiKey" not in dialog and dialog.count("Value:") == 1
        for path in ("/auth/register", "/users/{userId}", "/api/organisations/{orgId}/users"):
            assert path in text
        loaded = browser.execute_script("return performance.getEntriesByType('resource').map(e => e.name)")
        assert any(url.endswith("/openapi.json") for url in loaded)
        # Swagger UI's scripts, styles and the document itself all came from the service: no CDN.
        assert loaded and all(url.startswith(service.url + "/") for url in loaded), loaded


def test_the_answers_totask_web_compat_reshapes_show_both_shapes_and_name_the_setting():
    doc = document()
    # addToFav's web-app answer is the one board added (the app pushes it onto its list), the rest arrays.
    web_app = {
        "getFav": ("get", [{"id": "board-42"}]),
        "addToFav": ("put", {"id": "board-42"}),
        "removeFromFav": ("put", [{"id": "board-42"}]),
        "getUsers": (
            "get",
            [
                {
                    "id": "665f1c2ab3e4d5f6a7b8c9d0",
                    "name": "Mark",
                    "email": "mark@example.com",
                    "username": None,
                    "profilePhotoUrl": None,
                }
            ],
        ),
        "usersByMonth": ("get", [{"month": "January", "year": 2026, "count": 3}]),
    }
    for name, (method, bare_array) in web_app.items():
        op = doc["paths"][f"/users/{name}"][method]
        content = op["responses"]["200"]["content"][JSON]
        documented, reshaped = content["schema"]["oneOf"]
        assert "TOTASK_WEB_COMPAT off" in documented["title"] and "TOTASK_WEB_COMPAT=true" in reshaped["title"]
        assert documented["type"] == "object" and reshaped["type"] == ("object" if name == "addToFav" else "array")
        assert "TOTASK_WEB_COMPAT" in op["summary"], name
        assert jsonschema.Draft202012Validator(reshaped).is_valid(bare_array), name
        assert not jsonschema.Draft202012Validator(documented).is_valid(bare_array), name
        assert set(content["examples"]) == {"documented", "webApp"}, name
        for key, shape in (("documented", documented), ("webApp", reshaped)):
            assert jsonschema.Draft202012Validator(shape).is_valid(content["examples"][key]["value"]), (name, key)
    current = doc["paths"]["/users/user"]["get"]
    assert {} in current["security"] and "401" in current["responses"]
    assert "empty body" in current["summary"] and "TOTASK_WEB_COMPAT" in current["summary"]
    assert current["responses"]["200"]["content"][JSON]["examples"]["signedOut"]["value"] is None
    assert "TOTASK_WEB_COMPAT" in doc["info"]["description"]


@pytest.mark.gen_test
@pytest.mark.parametrize("settings_env", [{"APP_NAME": "Task Board"}])
async def test_the_served_document_mails_only_example_com_and_reads_as_a_guide(api, settings_env):
    response = await api.get("/openapi.json")
    served = response.body.decode()
    doc = response.json

    # "Try it out" sends the examples as they are: any other domain would mail a real person (RFC 2606).
    addresses = re.findall(r"[A-Za-z0-9._%+-]+@([A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+)", served)
    assert addresses and set(addresses) == {"example.com"}, set(addresses)
    assert doc["info"]["title"] == "Task Board API"
    assert [tag["name"] for tag in doc["tags"]] == ["auth", "users", "api", "pages", "operations"]
    used = {tag for methods in doc["paths"].values() for op in methods.values() for tag in op["tags"]}
    assert used == {tag["name"] for tag in doc["tags"]}
    # No cookie scheme in the Authorize dialog: a page cannot set a Cookie header. The guide says what works.
    assert list(doc["components"]["securitySchemes"]) == ["bearer"]
    assert all(
        requirement in ({"bearer": []}, {})
        for methods in doc["paths"].values()
        for op in methods.values()
        for requirement in op.get("security", [])
    )
    guide = " ".join(doc["info"]["description"].split())
    assert "which is why **Authorize** offers no cookie field" in guide
    assert "opening it verifies" not in guide
    assert "Opening it shows a page with a **Confirm my email address** button, and the click verifies" in guide
    page = await api.get("/docs")
    assert "<title>Task Board API</title>" in page.body.decode()


@pytest.mark.gen_test
@pytest.mark.parametrize("settings_env", [{"APP_NAME": "<Board & Co>"}])
async def test_the_docs_title_escapes_app_name(api, settings_env):
    page = await api.get("/docs")
    assert "<title>&lt;Board &amp; Co&gt; API</title>" in page.body.decode()
    assert (await api.get("/openapi.json")).json["info"]["title"] == "<Board & Co> API"
