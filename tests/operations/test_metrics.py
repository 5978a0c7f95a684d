"""GET /metrics in one process: the token, the route labels, and exact counter deltas after known traffic.

Metrics are process-wide and the suite runs many applications in one process, so every test reads
the scrape before and after its traffic and asserts the difference. Scrapes are parsed with
prometheus_client's own parser. tests/operations/test_metrics_processes.py covers run.py's workers.
"""

import asyncio
import time

import pytest
from bson import ObjectId
from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_openmetrics
from prometheus_client.parser import text_string_to_metric_families
from pymongo.errors import AutoReconnect, ExecutionTimeout, OperationFailure, ServerSelectionTimeoutError

from handlers.access_log import route_label
from handlers.routes import routes
from models import outbox
from services.metrics import mongodb_error_kind
from settings import Settings, SettingsError
from tests.helpers import PASSWORD, REQUESTS, Scrape, assert_error
from version import __version__

TOKEN = "metrics-token-0123456789abcdef"
AUTHORIZED = {"Authorization": f"Bearer {TOKEN}"}
DURATION_COUNT = "accounts_http_request_duration_seconds_count"
LOGINS = "accounts_logins_total"
EMAILS = "accounts_emails_total"
QUEUE = "accounts_email_queue_depth"
MONGODB_ERRORS = "accounts_mongodb_errors_total"


@pytest.fixture
def settings_env():
    return {"METRICS_TOKEN": TOKEN, "LOGIN_ATTEMPTS_LIMIT": "2"}


async def scrape(api) -> Scrape:
    response = await api.get("/metrics", headers=AUTHORIZED)
    assert response.code == 200, response
    return Scrape(response.body.decode())


async def scrape_until(api, condition, timeout: float = 10.0) -> Scrape:
    """Scrape until condition(scrape) holds (the email sender records after its SMTP exchange)."""
    deadline = time.monotonic() + timeout
    while True:
        current = await scrape(api)
        if condition(current):
            return current
        assert time.monotonic() < deadline, "the metrics never reached the expected values"
        await asyncio.sleep(0.05)


# ---- the token ----------------------------------------------------------------------------------


@pytest.mark.gen_test
async def test_the_scrape_has_the_process_metrics_and_the_version(api):
    before = await scrape(api)
    assert before.value("accounts_build_info", version=__version__) == 1
    assert before.labels("accounts_build_info", "version") == {__version__}
    # This process's own figures (the in-process application has one process: no pid label).
    assert 20e6 < before.value("process_resident_memory_bytes") < 4e9
    assert before.value("process_open_fds") >= 3 and before.value("process_max_fds") >= before.value("process_open_fds")
    assert before.value("process_start_time_seconds") <= time.time()
    sum(i * i for i in range(2_000_000))  # CPU spent in this process between the scrapes
    after = await scrape(api)
    assert after.value("process_cpu_seconds_total") > before.value("process_cpu_seconds_total")


@pytest.mark.gen_test
async def test_metrics_need_the_bearer_token(api):
    for headers in (
        {},
        {"Authorization": "Bearer wrong-token-0123456789abcdef"},
        {"Authorization": f"Basic {TOKEN}"},
        {"Authorization": TOKEN},
        {"Authorization": f"Bearer {TOKEN}x"},
        {"Authorization": "Bearer"},
    ):
        response = await api.get("/metrics", headers=headers)
        assert_error(response, 401)
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
        assert b"accounts_" not in response.body
    response = await api.get("/metrics", headers=AUTHORIZED)
    assert response.code == 200
    assert response.headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
    assert response.headers["Cache-Control"] == "no-store"
    assert Scrape(response.body.decode()).has(QUEUE)


@pytest.mark.gen_test
async def test_scrapers_asking_for_openmetrics_get_it_and_a_malformed_accept_is_no_500(api):
    response = await api.get(
        "/metrics", headers={**AUTHORIZED, "Accept": "application/openmetrics-text; version=1.0.0"}
    )
    assert response.code == 200 and response.headers["Content-Type"].startswith("application/openmetrics-text")
    assert response.body.endswith(b"# EOF\n")
    assert {family.name for family in parse_openmetrics(response.body.decode())} >= {  # the whole exposition parses
        "accounts_http_requests",
        "accounts_http_request_duration_seconds",
        "accounts_email_queue_depth",
        "process_cpu_seconds",
        "process_resident_memory_bytes",
        "accounts_build_info",
    }
    plain = (await api.get("/metrics", headers=AUTHORIZED)).body.decode()
    assert {family.name for family in text_string_to_metric_families(plain)} >= {
        "accounts_http_requests",
        "accounts_http_request_duration_seconds",
        "accounts_email_queue_depth",
    }
    for accept in ("text/plain; version=1..0", "application/openmetrics-text; version=abc", ";;,"):
        response = await api.get("/metrics", headers={**AUTHORIZED, "Accept": accept})
        assert response.code == 200 and response.headers["Content-Type"].startswith("text/plain"), accept
        assert Scrape(response.body.decode()).has(QUEUE)


class TestWithoutToken:
    @pytest.fixture
    def settings_env(self):
        return {}

    @pytest.mark.gen_test
    async def test_metrics_is_not_there_at_all(self, api):
        unknown = await api.get("/no-such-route")
        for headers in ({}, AUTHORIZED, {"Authorization": "Bearer "}):
            response = await api.get("/metrics", headers=headers)
            assert_error(response, 404, "Not found")
            assert response.json == unknown.json  # indistinguishable from a route that does not exist


def test_metrics_token_setting():
    assert Settings.from_env({}).metrics_token is None
    assert Settings.from_env({"METRICS_TOKEN": "  "}).metrics_token is None
    settings = Settings.from_env({"METRICS_TOKEN": TOKEN})
    assert settings.metrics_token == TOKEN and TOKEN not in repr(settings)
    with pytest.raises(SettingsError, match="METRICS_TOKEN"):
        Settings.from_env({"METRICS_TOKEN": "short"})


# ---- requests, by route pattern ----------------------------------------------------------------


@pytest.mark.gen_test
async def test_requests_are_counted_under_their_route_pattern_never_their_path(api):
    body = await api.register()
    user_id, token = body["user"]["id"], body["tokens"]["access"]["token"]
    unknown_id = str(ObjectId())
    before = await scrape(api)
    own = await api.get(f"/users/{user_id}", token=token)
    other = await api.get(f"/users/{unknown_id}", token=token)
    garbage = await api.get("/users/garbage-xyz", token=token)
    photo = await api.get(f"/users/{unknown_id}/photo")
    missing = await api.get("/no/such/route-xyz")
    odd_method = await api.request("FROB", "/health")
    assert own.code == 200 and other.code in (403, 404) and garbage.code in (403, 404)
    assert missing.code == 404 and odd_method.code == 405 and photo.code in (401, 404)
    after = await scrape(api)

    user_route = {"route": "/users/{}", "method": "GET"}
    if other.code == garbage.code:
        assert after.delta(before, REQUESTS, status=str(other.code), **user_route) == 2
    else:
        assert after.delta(before, REQUESTS, status=str(other.code), **user_route) == 1
        assert after.delta(before, REQUESTS, status=str(garbage.code), **user_route) == 1
    assert after.delta(before, REQUESTS, status="200", **user_route) == 1
    assert after.delta(before, DURATION_COUNT, **user_route) == 3
    assert after.delta(before, REQUESTS, route="/users/{}/photo", method="GET", status=str(photo.code)) == 1
    assert after.delta(before, REQUESTS, route="unmatched", method="GET", status="404") == 1
    assert after.delta(before, REQUESTS, route="/health", method="other", status="405") == 1
    # The earlier scrape is counted too, once it has been answered.
    assert after.delta(before, REQUESTS, route="/metrics", method="GET", status="200") == 1
    # No id, path or unknown method ever becomes a label value (CWE-400: unbounded series).
    for raw in (user_id, unknown_id, "garbage-xyz", "route-xyz", "/no/such", "FROB"):
        assert raw not in after.text, raw
    patterns = {route_label(route[0]) for route in routes()} | {"unmatched"}
    assert after.labels(REQUESTS, "route") <= patterns
    assert after.labels(REQUESTS, "method") <= {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "other"}


def test_route_labels_are_the_route_table_patterns():
    assert route_label(r"/users/([^/]+)/photo") == "/users/{}/photo"
    assert route_label(r"/users/deleteProfilePic/([^/]+)") == "/users/deleteProfilePic/{}"
    assert route_label(r"/health$") == "/health"
    labels = [route_label(route[0]) for route in routes()]
    assert len(labels) == len(set(labels))  # each route its own label


@pytest.mark.gen_test
async def test_duration_histogram_buckets_add_up(api):
    before = await scrape(api)
    for _ in range(3):
        assert (await api.get("/health")).code == 200
    after = await scrape(api)
    labels = {"route": "/health", "method": "GET"}
    assert after.delta(before, DURATION_COUNT, **labels) == 3
    assert after.delta(before, "accounts_http_request_duration_seconds_bucket", le="+Inf", **labels) == 3
    assert after.delta(before, "accounts_http_request_duration_seconds_sum", **labels) > 0


# ---- logins ------------------------------------------------------------------------------------


@pytest.mark.gen_test
async def test_login_outcomes_are_counted_exactly(api):
    await api.register(email="alice@example.com")
    await api.register(email="bob@example.com")
    login = {"route": "/auth/login", "method": "POST"}
    start = await scrape(api)
    for _ in range(2):
        assert_error(
            await api.post("/auth/login", json={"email": "alice@example.com", "password": "wrong password"}), 401
        )
    failed = await scrape(api)
    assert failed.delta(start, LOGINS, result="failed") == 2
    assert failed.delta(start, LOGINS, result="success") == 0 and failed.delta(start, LOGINS, result="limited") == 0
    assert failed.delta(start, REQUESTS, status="401", **login) == 2

    # LOGIN_ATTEMPTS_LIMIT=2: the third try is refused before the password is even checked.
    assert_error(await api.post("/auth/login", json={"email": "alice@example.com", "password": PASSWORD}), 429)
    limited = await scrape(api)
    assert limited.delta(failed, LOGINS, result="limited") == 1
    assert limited.delta(failed, LOGINS, result="failed") == 0 and limited.delta(failed, LOGINS, result="success") == 0
    assert limited.delta(failed, REQUESTS, status="429", **login) == 1

    await api.login(email="bob@example.com")
    success = await scrape(api)
    assert success.delta(limited, LOGINS, result="success") == 1
    assert (
        success.delta(limited, LOGINS, result="failed") == 0 and success.delta(limited, LOGINS, result="limited") == 0
    )
    assert success.delta(limited, REQUESTS, status="200", **login) == 1


# ---- emails and the outbox ---------------------------------------------------------------------


class TestEmails:
    @pytest.fixture
    def settings_env(self, smtp_env):
        return {**smtp_env, "METRICS_TOKEN": TOKEN}

    @pytest.mark.gen_test(timeout=30)
    async def test_a_delivered_email_counts_as_sent(self, api, mailbox, store):
        before = await scrape(api)
        await api.register(email="new@example.com")
        (message,) = await mailbox.wait_for(1)
        assert message["To"] == "new@example.com"
        after = await scrape_until(api, lambda now: now.delta(before, EMAILS, state="sent") >= 1)
        assert after.delta(before, EMAILS, state="sent") == 1
        assert after.delta(before, EMAILS, state="retried") == 0 and after.delta(before, EMAILS, state="failed") == 0
        pending = await store.outbox.count_documents({"status": outbox.PENDING})
        assert after.value(QUEUE) == pending == 0

    @pytest.mark.gen_test(timeout=30)
    async def test_a_refused_send_counts_as_retried_and_stays_in_the_queue(self, api, mailbox, store):
        async def refuse(server, session, envelope):
            return "451 4.3.0 Try again later"

        mailbox.handle_DATA = refuse  # the SMTP server answers DATA with a temporary failure
        before = await scrape(api)
        assert before.value(QUEUE) == 0
        await api.register(email="new@example.com")
        after = await scrape_until(api, lambda now: now.delta(before, EMAILS, state="retried") >= 1)
        assert after.delta(before, EMAILS, state="retried") == 1
        assert after.delta(before, EMAILS, state="sent") == 0 and after.delta(before, EMAILS, state="failed") == 0
        assert mailbox.messages == []
        # Retried 10 s later: until then it waits in the outbox, and the gauge says so.
        stored = await store.outbox.find_one({"to": "new@example.com"})
        assert stored["status"] == outbox.PENDING and stored["attempts"] == 1
        assert after.value(QUEUE) == 1


@pytest.mark.gen_test
async def test_queue_depth_is_the_number_of_pending_messages(api, store):
    collection = store.outbox
    before = await scrape(api)
    assert before.value(QUEUE) == await collection.count_documents({"status": outbox.PENDING})
    await collection.insert_many(
        [
            {"to": f"q{i}@example.com", "status": status, "attempts": 0}
            for i, status in enumerate((outbox.PENDING, outbox.PENDING, outbox.SENT, outbox.FAILED))
        ]
    )
    after = await scrape(api)
    assert after.value(QUEUE) - before.value(QUEUE) == 2


# ---- MongoDB errors ----------------------------------------------------------------------------


@pytest.mark.heavy
@pytest.mark.gen_test
async def test_mongodb_errors_that_reach_handlers_are_counted_by_kind(api, services, monkeypatch):
    injected = [
        ("unavailable", ServerSelectionTimeoutError("No servers found yet, Timeout: 3.0s")),
        ("timeout", ExecutionTimeout("operation exceeded time limit", code=50)),  # MaxTimeMSExpired
        ("unavailable", AutoReconnect("connection closed")),
    ]
    for number, (kind, error) in enumerate(injected):

        async def fail(*args, error=error, **kwargs):
            raise error

        before = await scrape(api)
        monkeypatch.setattr(services.users.collection, "find_one", fail)
        response = await api.post("/auth/login", json={"email": f"u{number}@example.com", "password": PASSWORD})
        monkeypatch.undo()
        assert_error(response, 503)
        after = await scrape(api)
        assert after.delta(before, MONGODB_ERRORS, kind=kind) == 1, kind
        assert sum(after.delta(before, MONGODB_ERRORS, kind=k) for k in ("unavailable", "timeout", "other")) == 1
        assert after.delta(before, LOGINS, result="failed") == 0  # not a wrong password


@pytest.mark.gen_test
async def test_a_scrape_while_mongodb_fails_still_answers_without_the_queue_gauge(api, services, monkeypatch):
    async def fail(*args, **kwargs):
        raise ServerSelectionTimeoutError("No servers found yet")

    before = await scrape(api)
    monkeypatch.setattr(services.outbox.collection, "count_documents", fail)
    during = await scrape(api)
    assert not during.has(QUEUE)  # absent, so absent() alerts, rather than a wrong 0
    assert during.delta(before, MONGODB_ERRORS, kind="unavailable") == 1


def test_mongodb_error_kinds():
    assert mongodb_error_kind(ServerSelectionTimeoutError("x")) == "unavailable"
    assert mongodb_error_kind(AutoReconnect("x")) == "unavailable"
    assert mongodb_error_kind(ExecutionTimeout("x", code=50)) == "timeout"
    assert mongodb_error_kind(OperationFailure("bad value", code=2)) == "other"
    assert mongodb_error_kind(ValueError("x")) is None
