"""Found by the abuse review of many accounts from one address: 200 concurrent sign-ups at BCRYPT_ROUNDS=10 pushed an
ordinary login from 0.065 s to a median of 3.1 s: every password check waited behind every other in one unbounded queue.

Now at most BCRYPT_QUEUE_MAX hashes wait (or run) per process; past it a login, a registration or any other
password check answers 503 with Retry-After at once, having changed nothing, and /health stays fast. Here
the queue is held full by an executor that takes work and runs none of it until released.
"""

import asyncio
import concurrent.futures

import bcrypt
import pytest
from bson import ObjectId

from models import sessions as session_model
from settings import Settings, SettingsError
from tests.helpers import PASSWORD, assert_error, sign_up

BUSY = "Too busy checking passwords, try again shortly"


class PausedExecutor(concurrent.futures.Executor):
    """Takes work and runs none of it until release(): the bcrypt workers all busy, for as long as a test needs."""

    def __init__(self):
        self.jobs = []

    def submit(self, fn, *args, **kwargs):
        future = concurrent.futures.Future()
        self.jobs.append((future, fn, args, kwargs))
        return future

    def release(self) -> None:
        for future, fn, args, kwargs in self.jobs:
            try:
                future.set_result(fn(*args, **kwargs))
            except Exception as error:  # noqa: BLE001 - handed to the waiting request, as a pool would
                future.set_exception(error)
        self.jobs.clear()


async def until(condition, timeout: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "never happened"
        await asyncio.sleep(0.005)


def assert_busy(response):
    assert_error(response, 503, BUSY)
    assert response.json["status"] == "Error"
    assert int(response.headers["Retry-After"]) >= 1


@pytest.fixture
def settings_env():
    return {"BCRYPT_QUEUE_MAX": "2"}


def pause_bcrypt(services, monkeypatch) -> PausedExecutor:
    """From now on, password work queues and waits for release() (only the password service's executor is
    swapped), one hash at a time as on a one-core machine, whatever this one has."""
    paused = PausedExecutor()
    monkeypatch.setattr(services.passwords, "executor", paused)
    monkeypatch.setattr(services.passwords, "workers", 1)
    return paused


async def finish(held_queue, *requests) -> list:
    """Release the held work until every request has its answer; returns the answers."""
    while not all(request.done() for request in requests):
        held_queue.release()
        await asyncio.sleep(0.005)
    return [request.result() for request in requests]


def login(api):
    return asyncio.ensure_future(api.post("/auth/login", json={"email": "ada@example.com", "password": PASSWORD}))


@pytest.mark.gen_test(timeout=30)
async def test_a_full_queue_answers_503_at_once_and_changes_nothing(api, services, store, monkeypatch):
    ada = await sign_up(api, "ada@example.com")
    # A reset link, as forgot-password would mail it (the email flow is tested elsewhere).
    reset_token, _ = await services.sessions.issue_single_use(
        await store.users.find_one({"_id": ObjectId(ada.id)}), session_model.RESET, 10
    )
    held_queue = pause_bcrypt(services, monkeypatch)
    waiting = [login(api) for _ in range(2)]
    await until(lambda: services.passwords.pending == 2)
    before = {
        name: await getattr(store, name).count_documents({})
        for name in ("users", "organisations", "memberships", "sessions", "outbox", "login_attempts", "budgets")
    }

    # A sign-up: no user, no organisation, no email, and its address's budget not spent.
    assert_busy(
        await api.post("/auth/register", json={"name": "Bob Builder", "email": "bob@example.com", "password": PASSWORD})
    )
    assert await store.users.find_one({"email": "bob@example.com"}) is None
    # A login, and a wrong one: refused before the attempt is counted, so a busy server locks nobody out.
    assert_busy(await api.post("/auth/login", json={"email": "ada@example.com", "password": PASSWORD}))
    assert_busy(await api.post("/auth/login", json={"email": "nobody@example.com", "password": "wrong password"}))
    # Other password checks: change-password, and deleting one's own account.
    assert_busy(
        await api.post(
            "/auth/change-password",
            token=ada.token,
            json={"email": "ada@example.com", "password": PASSWORD, "newPassword": "another good password"},
        )
    )
    assert_busy(await api.delete(f"/users/{ada.id}", token=ada.token, json={"password": PASSWORD}))
    # A reset: refused before its single-use link is spent.
    assert_busy(await api.post(f"/auth/reset-password?token={reset_token}", json={"password": "a new good password"}))
    after = {name: await getattr(store, name).count_documents({}) for name in before}
    assert after == before
    assert await store.users.find_one({"_id": ObjectId(ada.id)}) is not None
    assert services.passwords.pending == 2 and len(held_queue.jobs) == 1  # nothing more was queued

    # The process still answers what needs no bcrypt.
    health = await api.get("/health")
    assert health.code == 200 and health.json == {"status": "ok"}
    assert (await api.get("/users/user", token=ada.token)).code == 200

    # Released, the two waiting logins finish, and the queue takes work again: the reset refused while busy
    # still works, its link unspent.
    assert [response.code for response in await finish(held_queue, *waiting)] == [200, 200]
    resetting = asyncio.ensure_future(
        api.post(f"/auth/reset-password?token={reset_token}", json={"password": "a new good password"})
    )
    await until(lambda: len(held_queue.jobs) == 1)
    assert [response.code for response in await finish(held_queue, resetting)] == [204]
    assert [response.code for response in await finish(held_queue, login(api))] == [401]  # the password changed


class TestLoginsBeforeSignUps:
    @pytest.fixture
    def settings_env(self):
        return {"BCRYPT_QUEUE_MAX": "4"}

    @pytest.mark.gen_test(timeout=30)
    async def test_sign_ups_may_fill_only_half_the_queue(self, api, services, store, monkeypatch):
        await sign_up(api, "ada@example.com")
        held_queue = pause_bcrypt(services, monkeypatch)
        waiting = [login(api) for _ in range(2)]
        await until(lambda: services.passwords.pending == 2)
        users = await store.users.count_documents({})
        assert_busy(
            await api.post(
                "/auth/register", json={"name": "Bob Builder", "email": "bob@example.com", "password": PASSWORD}
            )
        )
        assert await store.users.count_documents({}) == users
        # ...while a login still finds room, and waits its turn.
        waiting.append(login(api))
        await until(lambda: services.passwords.pending == 3)
        assert [r.code for r in await finish(held_queue, *waiting)] == [200, 200, 200]

    @pytest.mark.gen_test(timeout=30)
    async def test_below_the_bound_work_waits_and_a_login_goes_before_a_sign_up(
        self, api, services, store, monkeypatch
    ):
        await sign_up(api, "ada@example.com")
        held_queue = pause_bcrypt(services, monkeypatch)
        first = login(api)
        await until(lambda: len(held_queue.jobs) == 1)
        sign_up_waiting = asyncio.ensure_future(
            api.post("/auth/register", json={"name": "Bob Builder", "email": "bob@example.com", "password": PASSWORD})
        )
        await until(lambda: services.passwords.pending == 2)
        second = login(api)
        await until(lambda: services.passwords.pending == 3)
        # The sign-up came first, but the worker freed by the first login goes to the second login.
        held_queue.release()
        await until(lambda: len(held_queue.jobs) == 1)
        assert held_queue.jobs[0][2][0] is bcrypt.checkpw
        held_queue.release()
        await until(lambda: second.done() and len(held_queue.jobs) == 1)
        assert held_queue.jobs[0][2][0] is bcrypt.hashpw
        assert [r.code for r in await finish(held_queue, first, second, sign_up_waiting)] == [200, 200, 201]
        assert await store.users.find_one({"email": "bob@example.com"}) is not None
        assert services.passwords.pending == 0


def test_the_bound_has_a_default_and_bounds():
    assert Settings.from_env({}).bcrypt_queue_max == 64
    for bad in ("0", "-1", "lots"):
        with pytest.raises(SettingsError, match="BCRYPT_QUEUE_MAX"):
            Settings.from_env({"BCRYPT_QUEUE_MAX": bad})
