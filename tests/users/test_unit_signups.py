"""services/signups.py's month arithmetic without HTTP (GET /users/by-month covers it end to end)."""

import datetime as dt

import pytest

from services.errors import ApiError
from services.signups import MAX_MONTHS, month_end, month_range, month_start, parse_month


def field_of(raised) -> tuple:
    error = raised.value
    assert error.status == 422 and len(error.errors) == 1
    return error.errors[0]["field"], error.errors[0]["message"]


def test_no_range_is_none():
    assert month_range(None, None) is None


def test_a_range_lists_every_month_across_a_new_year():
    assert month_range("2023-11", "2024-02") == [(2023, 11), (2023, 12), (2024, 1), (2024, 2)]
    assert month_range("2024-05", "2024-05") == [(2024, 5)]


@pytest.mark.parametrize(
    "first, last, field, message",
    [
        (None, "2024-01", "from", "is required with to"),
        ("2024-01", None, "to", "is required with from"),
        ("2024-02", "2024-01", "from", "must not be after to"),
    ],
)
def test_half_or_backwards_ranges_are_422_on_the_field_at_fault(first, last, field, message):
    with pytest.raises(ApiError) as raised:
        month_range(first, last)
    assert field_of(raised) == (field, message)


def test_the_range_is_at_most_max_months():
    assert len(month_range("2015-01", "2024-12")) == MAX_MONTHS == 120
    with pytest.raises(ApiError) as raised:
        month_range("2015-01", "2025-01")
    assert field_of(raised) == ("to", "the range is at most 120 months")


def test_parse_month():
    assert parse_month("2024-03") == (2024, 3)
    assert parse_month("0001-12") == (1, 12)


def test_month_start_and_end_are_utc_and_the_end_is_the_last_millisecond():
    assert month_start(2024, 2) == dt.datetime(2024, 2, 1, tzinfo=dt.UTC)
    assert month_end(2024, 2) == dt.datetime(2024, 2, 29, 23, 59, 59, 999000, tzinfo=dt.UTC)  # leap year
    assert month_end(2023, 2).day == 28
    assert month_end(9999, 12) == dt.datetime(9999, 12, 31, 23, 59, 59, 999000, tzinfo=dt.UTC)
