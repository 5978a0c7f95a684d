"""Sign-ups per month: one aggregation pipeline over createdAt (UTC)."""

import calendar
import datetime as dt

from models import users as model
from services import deadlines
from services.errors import field_error

MAX_MONTHS = 120


class Signups:
    """Counts of new users by calendar month."""

    def __init__(self, database, admin_query_seconds: float = 30.0):
        self.collection = database[model.COLLECTION]
        self.admin_query_seconds = admin_query_seconds

    async def by_month(self, first: str | None, last: str | None) -> list:
        """Sign-ups per calendar month (UTC), oldest first; with a range, every month of it, zeros included."""
        months = month_range(first, last)
        pipeline = []
        if months:
            start, end = month_start(*months[0]), month_end(*months[-1])
            pipeline.append({"$match": {"createdAt": {"$gte": start, "$lte": end}}})
        pipeline += [
            # Ordered by createdAt first so the created_at index feeds the group: a walk of its keys,
            # never of the documents (the group needs nothing else).
            {"$sort": {"createdAt": 1}},
            {
                "$group": {
                    "_id": {"year": {"$year": "$createdAt"}, "month": {"$month": "$createdAt"}},
                    "count": {"$sum": 1},
                }
            },
            {"$sort": {"_id.year": 1, "_id.month": 1}},
        ]
        # An admin report: without a range it walks the whole created_at index (docs/using/users.md, "What admin
        # queries cost"), so it has ADMIN_QUERY_TIMEOUT_MS instead of the request's budget.
        with deadlines.budget(self.admin_query_seconds):
            counts = {
                (row["_id"]["year"], row["_id"]["month"]): row["count"]
                async for row in self.collection.aggregate(pipeline)
            }
        return [model.month_view(year, month, counts.get((year, month), 0)) for year, month in months or counts]


def month_range(first: str | None, last: str | None) -> list | None:
    """Every (year, month) from first to last ("YYYY-MM", already well-formed); None with neither."""
    if first is None and last is None:
        return None
    if first is None or last is None:
        raise field_error("from" if first is None else "to", "is required with " + ("to" if first is None else "from"))
    year, month = parse_month(first)
    end = parse_month(last)
    months = []
    while (year, month) <= end:
        if len(months) == MAX_MONTHS:
            raise field_error("to", f"the range is at most {MAX_MONTHS} months")
        months.append((year, month))
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    if not months:
        raise field_error("from", "must not be after to")
    return months


def parse_month(text: str) -> tuple:
    year, month = text.split("-")
    return int(year), int(month)


def month_start(year: int, month: int) -> dt.datetime:
    return dt.datetime(year, month, 1, tzinfo=dt.UTC)


def month_end(year: int, month: int) -> dt.datetime:
    """The last millisecond of the month (MongoDB's precision); computed this way, 9999-12 does not overflow."""
    last_day = calendar.monthrange(year, month)[1]
    return dt.datetime(year, month, last_day, 23, 59, 59, 999000, tzinfo=dt.UTC)
