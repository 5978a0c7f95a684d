"""models/users.py's name rules without HTTP: name <-> firstName/lastName (both registration shapes use them)."""

import pytest

from models.users import join_name, split_name


@pytest.mark.parametrize(
    "name, parts",
    [
        ("Ada Lovelace", ("Ada", "Lovelace")),
        ("Ada", ("Ada", "")),  # one word: no last name
        ("  Ada   King Lovelace  ", ("Ada", "King Lovelace")),  # the rest is the last name, trimmed
        ("Ada  Lovelace", ("Ada", "Lovelace")),
        ("", ("", "")),
    ],
)
def test_split_name_takes_the_first_word_as_first_name(name, parts):
    assert split_name(name) == parts


@pytest.mark.parametrize(
    "first, last, name",
    [
        ("Ada", "Lovelace", "Ada Lovelace"),
        (" Ada ", " Lovelace ", "Ada Lovelace"),
        ("Ada", "", "Ada"),  # no trailing space
        ("", "Lovelace", "Lovelace"),
        ("", "", ""),
    ],
)
def test_join_name_joins_trimmed_parts_with_one_space(first, last, name):
    assert join_name(first, last) == name


@pytest.mark.parametrize("name", ["Ada Lovelace", "Ada", "Ada King Lovelace"])
def test_a_trimmed_single_spaced_name_survives_split_then_join(name):
    assert join_name(*split_name(name)) == name
