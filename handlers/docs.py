"""The OpenAPI document and the interactive API page, served from installed files: no CDN, works offline."""

import functools
import html
import importlib.util
import json
import os

from tornado import httputil
from tornado.web import HTTPError, StaticFileHandler

from handlers.base import BaseHandler, error_envelope
from handlers.documented import HTML, operation
from handlers.openapi import document

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOCS_DIR = os.path.join(ROOT, "static", "docs")
# Swagger UI's own build, shipped inside the swagger-ui-py package (only its static files are used).
SWAGGER_ASSETS = os.path.join(importlib.util.find_spec("swagger_ui").submodule_search_locations[0], "static")

# Scripts and styles from this origin only; Swagger UI sets inline styles, so those are allowed.
DOCS_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "connect-src 'self'; frame-ancestors 'none'"
)


@functools.lru_cache(maxsize=4)
def openapi_json(app_name: str) -> str:
    """The document as served, built once per process (APP_NAME is its title)."""
    return json.dumps(document(app_name=app_name))


def _read(name: str) -> bytes:
    with open(os.path.join(DOCS_DIR, name), "rb") as handle:
        return handle.read()


class OpenApiHandler(BaseHandler):
    openapi = {
        "get": operation(
            "This document",
            "operations",
            200,
            {"type": "object"},
            auth_needed=False,
            examples={"response": {"openapi": "3.1.0", "info": {"title": "Accounts service"}}},
        ),
    }

    public = True

    def get(self) -> None:
        self.set_header("Content-Type", "application/json; charset=UTF-8")
        self.finish(openapi_json(self.config.app_name))


class DocsPageHandler(BaseHandler):
    """The page, or its start-up script, read once at start-up."""

    public = True
    FILES = {
        "index.html": ("text/html; charset=UTF-8", _read("index.html")),
        "init.js": ("application/javascript; charset=UTF-8", _read("init.js")),
    }

    def initialize(self, name: str) -> None:
        super().initialize()
        self.content_type, self.content = self.FILES[name]

    def get(self) -> None:
        self.set_header("Content-Type", self.content_type)
        self.set_header("Content-Security-Policy", DOCS_POLICY)
        # The page's title names the product (APP_NAME is checked for control characters; escaped for HTML).
        self.finish(self.content.replace(b"{{title}}", html.escape(f"{self.config.app_name} API").encode()))


class DocsIndexHandler(DocsPageHandler):
    """GET /docs: the page (documented; its script, served by DocsPageHandler, is not an operation)."""

    openapi = {
        "get": operation(
            "The interactive API page (Swagger UI)", "operations", 200, auth_needed=False, ok_content=HTML
        ),
    }


class DocsAssetHandler(StaticFileHandler):
    """Swagger UI's CSS, JavaScript and icons."""

    def set_default_headers(self) -> None:
        self.clear_header("Server")  # no product/version banner for scanners (CWE-200)
        self.set_header("X-Content-Type-Options", "nosniff")
        self.set_header("Content-Security-Policy", DOCS_POLICY)

    def validate_absolute_path(self, root: str, absolute_path: str):
        if "\x00" in absolute_path:
            raise HTTPError(404)  # a NUL byte names no file, and os.path raises on it (CWE-158)
        return super().validate_absolute_path(root, absolute_path)

    def write_error(self, status_code: int, **kwargs) -> None:
        self.set_header("Content-Type", "application/json; charset=UTF-8")
        self.finish(json.dumps(error_envelope(status_code, httputil.responses.get(status_code, "Error"))))
