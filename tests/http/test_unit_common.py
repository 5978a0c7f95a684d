"""models/common.py without HTTP: how times are written and which ids are ids."""

import datetime as dt

import pytest
from bson import ObjectId

from models.common import isoformat, parse_object_id, utcnow

UTC = dt.UTC


@pytest.mark.parametrize(
    "value, text",
    [
        (None, None),
        (dt.datetime(2024, 3, 5, 7, 8, 9, 123456, tzinfo=UTC), "2024-03-05T07:08:09.123Z"),  # cut, not rounded
        (dt.datetime(2024, 3, 5, 7, 8, 9, tzinfo=UTC), "2024-03-05T07:08:09.000Z"),
        (dt.datetime(2024, 3, 5, 7, 8, 9, 999999), "2024-03-05T07:08:09.999Z"),  # naive: read as UTC
        (dt.datetime(2024, 3, 5, 9, 8, 9, tzinfo=dt.timezone(dt.timedelta(hours=2))), "2024-03-05T07:08:09.000Z"),
        (dt.datetime(2024, 1, 1, 0, 30, tzinfo=dt.timezone(dt.timedelta(hours=1))), "2023-12-31T23:30:00.000Z"),
    ],
)
def test_isoformat_is_utc_with_milliseconds_and_z(value, text):
    assert isoformat(value) == text


def test_utcnow_is_aware_utc_cut_to_milliseconds():
    now = utcnow()
    assert now.tzinfo == UTC and now.microsecond % 1000 == 0
    assert abs(now - dt.datetime.now(UTC)) < dt.timedelta(seconds=5)


def test_parse_object_id_reads_24_hex_characters_either_case():
    oid = ObjectId()
    assert parse_object_id(str(oid)) == oid
    assert parse_object_id(str(oid).upper()) == oid


@pytest.mark.parametrize(
    "value",
    [
        "",
        "0" * 23,
        "0" * 25,
        "g" * 24,
        " " + "0" * 23,
        "0" * 23 + " ",
        "0" * 12,
        None,
        123,
        b"0" * 24,
        ObjectId(),  # not strings
    ],
)
def test_anything_else_is_none(value):
    assert parse_object_id(value) is None


def test_a_trailing_newline_is_not_an_id():
    assert parse_object_id("0" * 24 + "\n") is None
