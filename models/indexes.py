"""Every index the service declares, by collection, and the query shapes no index serves: model data,
applied to the server by services/database.py (Database.ensure_indexes / sync_indexes)."""

from models import budgets, login_attempts, organisations, outbox, sessions, users

# Every index the service relies on, by collection. Declared here once; created at start-up.
INDEXES = {
    users.COLLECTION: users.INDEXES,
    sessions.SESSIONS: sessions.SESSION_INDEXES,
    sessions.TOKENS: sessions.TOKEN_INDEXES,
    organisations.ORGANISATIONS: organisations.ORGANISATION_INDEXES,
    organisations.MEMBERSHIPS: organisations.MEMBERSHIP_INDEXES,
    organisations.INVITATIONS: organisations.INVITATION_INDEXES,
    outbox.COLLECTION: outbox.INDEXES,
    outbox.SEND_COUNTS: outbox.SEND_COUNT_INDEXES,
    login_attempts.COLLECTION: login_attempts.INDEXES,
    budgets.COLLECTION: budgets.INDEXES,
}

# Indexes this service created in earlier versions and no longer declares, by collection: still there,
# they keep the service not ready, and python run.py --sync-indexes drops them.
RETIRED_INDEXES = {
    users.COLLECTION: users.RETIRED_INDEXES,
}

# Query shapes that no index can serve, each declared beside its model's indexes with why and what
# bounds its cost. The index-coverage fixture (queries_use_declared_indexes in tests/conftest.py) fails the test
# during which the services send any other unserved shape. fields: field -> "eq" | "range" | "regex", as
# tests/index_coverage.py classifies a filter; source: the only file allowed to send that shape.
QUERY_EXCEPTIONS = list(users.QUERY_EXCEPTIONS)
