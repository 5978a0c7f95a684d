"""The README stays true: its settings table is the one settings.py declares, and its links (and those between
the documents in docs/) resolve."""

import os
import re

from settings import Settings

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def readme() -> str:
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as file:
        return file.read()


def test_the_settings_table_is_generated_from_settings_py():
    found = re.search(r"<!-- settings-table:[^>]*-->\n(.*?)\n<!-- /settings-table -->", readme(), re.S)
    assert found, "README.md lost its settings-table markers"
    assert found.group(1).strip() == Settings.documentation(), "run `python settings.py` and paste its table"


def test_every_linked_document_exists():
    for target in re.findall(r"\]\(((?:docs/)[^)#]+)\)", readme()):
        assert os.path.exists(os.path.join(ROOT, target)), target


def test_every_link_between_documents_resolves():
    for folder, _, names in os.walk(os.path.join(ROOT, "docs")):
        for name in (n for n in names if n.endswith(".md")):
            with open(os.path.join(folder, name), encoding="utf-8") as file:
                text = file.read()
            for target in re.findall(r"\]\(([^)#:]+\.md)(?:#[^)]*)?\)", text):
                assert os.path.exists(os.path.join(folder, target)), (name, target)
