"""The layering rule: run -> handlers -> services -> models, nothing imports upward.

Reads every module's imports with ast (no import side effects), including imports inside functions.
"""

import ast
import pathlib
import re

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]

# Each layer and the layers above it, which it must never import.
FORBIDDEN = {
    "models": ("services", "handlers", "run"),
    "services": ("handlers", "run"),
    "handlers": ("run",),
}


# A handler reaches MongoDB only through a service method: no driver import, no collection, database or client
# object (attributes by these names), no `database[...]`. pymongo.errors is the driver's exception classes only.
DRIVER_MODULES = ("motor", "pymongo")
ALLOWED_DRIVER_MODULES = ("pymongo.errors",)
STORE_ATTRIBUTES = {"collection", "db", "client", "get_collection", "get_database", "delegate"}


def store_access(path: pathlib.Path) -> list:
    """line: what, for every place a module reaches the MongoDB driver, a collection or a database."""
    found = [
        (line, f"imports {module}")
        for line, module in imported_modules(path)
        if module.split(".")[0] in DRIVER_MODULES and module not in ALLOWED_DRIVER_MODULES
    ]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Attribute) and node.attr in STORE_ATTRIBUTES:
            found.append((node.lineno, f"uses .{node.attr}"))
        elif (
            isinstance(node, ast.Subscript)
            and isinstance(node.value, (ast.Attribute, ast.Name))
            and getattr(node.value, "attr", getattr(node.value, "id", "")) in ("database", "db")
        ):
            found.append((node.lineno, "indexes a database"))
    return sorted(found)


def test_no_handler_reaches_a_collection_or_database():
    problems = [
        f"{path.relative_to(ROOT)}:{line} {what}"
        for path in sorted((ROOT / "handlers").rglob("*.py"))
        for line, what in store_access(path)
    ]
    assert problems == [], "handlers call one service method; the service sends the query"


def test_the_handler_check_finds_each_way_to_a_collection(tmp_path):
    module = tmp_path / "handler.py"
    module.write_text(
        "from motor.motor_asyncio import AsyncIOMotorClient\n"
        "from pymongo.errors import PyMongoError\n"
        "async def get(self):\n"
        "    await self.services.outbox.collection.count_documents({})\n"
        "    await self.services.database['users'].find_one({})\n"
        "    await self.services.database.db.users.find_one({})\n",
        encoding="utf-8",
    )
    assert store_access(module) == [
        (1, "imports motor.motor_asyncio"),
        (4, "uses .collection"),
        (5, "indexes a database"),
        (6, "uses .db"),
    ]


TEST_MODULE_IMPORT = re.compile(r"\s*(from|import)\s+tests\.(\w+\.)?test_")


def imported_modules(path: pathlib.Path) -> list:
    """(line, module) for every absolute import in a file."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module))
    return found


def upward_imports(layer: str) -> list:
    problems = []
    for path in sorted((ROOT / layer).rglob("*.py")):
        for line, module in imported_modules(path):
            if module.split(".")[0] in FORBIDDEN[layer]:
                problems.append(f"{path.relative_to(ROOT)}:{line} imports {module}")
    return problems


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_no_layer_imports_a_layer_above_it(layer):
    assert upward_imports(layer) == []


def test_the_check_sees_imports_inside_functions(tmp_path):
    # A guard against a check that cannot fail: a nested upward import is found.
    module = tmp_path / "sample.py"
    module.write_text("def f():\n    from handlers.base import BaseHandler\n", encoding="utf-8")
    assert imported_modules(module) == [(2, "handlers.base")]


def test_no_test_module_imports_another():
    # Shared helpers live in helper modules (tests/helpers.py, tests/wire.py, ...): importing a test module
    # from another would run its module-level setup and collect its tests' names twice over. A line search,
    # not ast: the suite's own files, each read once.
    problems = [
        f"{path.relative_to(ROOT)}:{number} {line.strip()}"
        for path in sorted((ROOT / "tests").rglob("*.py"))
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if TEST_MODULE_IMPORT.match(line)
    ]
    assert problems == []
    assert TEST_MODULE_IMPORT.match("    from tests.test_keepalive import exchange")  # the search can find one
    assert TEST_MODULE_IMPORT.match("import tests.test_metrics as metrics")
    assert TEST_MODULE_IMPORT.match("from tests.operations.test_metrics import scrape")
